"""How `find_slices` chooses what to report: ranking on the discovery half, one-sided tests on the confirmation
half, and pruning of slices that repeat or merely merge others.

Example:
    >>> import numpy as np
    >>> round(one_sided_p(np.array([1.0] * 8 + [0.0] * 2), np.array([1.0] * 2 + [0.0] * 8), baseline=False), 4)
    0.0115
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.stats

from lmms_nb.analysis._slice_candidates import Candidates

_DUPLICATE_JACCARD = 0.8  # two candidates this alike are one slice: test (and report) only the better one
_COVER = 0.8  # a slice that is this much covered by smaller reported slices merely merges them


def discovery_ranking(cands: Candidates, y: np.ndarray, half: np.ndarray, min_size: int, max_tests: int) -> list[int]:
    """Candidates in order of their one-sided z on the discovery half (z > 1.645), duplicates left out."""
    m = cands.matrix.tocsr()[half].tocsc()
    yd = y[half]
    n_in = np.asarray(m.sum(axis=0)).ravel()
    s_in = m.T @ yd
    n_out = len(yd) - n_in
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = s_in / n_in - (yd.sum() - s_in) / n_out
        z = effect / np.sqrt(yd.var() * (1 / n_in + 1 / n_out))
    z = np.where((n_in >= max(5, min_size // 2)) & (n_out >= 5) & np.isfinite(z), z, -np.inf)
    for j, parents in enumerate(cands.parents):  # a pair must fail more than either of its two conditions
        if parents is not None and effect[j] <= max(effect[parents[0]], effect[parents[1]]):
            z[j] = -np.inf
    chosen: list[int] = []
    full = cands.matrix
    sizes = np.asarray(full.sum(axis=0)).ravel()
    for j in np.argsort(-z, kind="stable"):
        if z[j] <= 1.645 or len(chosen) >= max_tests:
            break
        if chosen:
            inter = (full[:, chosen].T @ full[:, j]).toarray().ravel()
            if np.any(inter / (sizes[chosen] + sizes[j] - inter) >= _DUPLICATE_JACCARD):
                continue
        chosen.append(int(j))
    return chosen


def prune_merges(matrix: sp.csc_matrix, confirm: np.ndarray, y: np.ndarray, baseline: bool, alpha: float) -> list[int]:
    """Indices (columns of `matrix`, the significant slices) to drop where one slice merges smaller ones.

    A slice S holding (>= 80% of) smaller significant slices, whose remainder once they are taken out is
    unremarkable on the confirmation half (one-sided test, p > alpha), only fails through its parts. With one
    part, or parts covering less than 80% of it, S goes. If several parts covering it fail alike (chi-square
    homogeneity on the confirmation half, p > alpha: e.g. one blind spot that a finer clustering cut in two),
    S is the one slice that says it all and the parts go; otherwise S merely merges different failures and
    goes itself."""
    sizes = np.asarray(matrix.sum(axis=0)).ravel()
    inter = (matrix.T @ matrix).toarray()
    dense = matrix.toarray() > 0
    dropped: list[int] = []
    for i in np.argsort(-sizes, kind="stable"):
        if i in dropped:
            continue
        parts = [j for j in range(len(sizes)) if j != i and j not in dropped and sizes[j] < sizes[i]
                 and inter[i, j] >= _COVER * sizes[j]]
        # the largest parts only: a part nested in another part is the other's business
        parts = [j for j in parts if not any(k != j and sizes[k] > sizes[j] and inter[k, j] >= _COVER * sizes[j]
                                             for k in parts)]
        if not parts:
            continue
        rest_of_slice = dense[:, i] & ~dense[:, parts].any(axis=1) & confirm
        outside = ~dense[:, i] & confirm
        if rest_of_slice.sum() and one_sided_p(y[rest_of_slice], y[outside], baseline) <= alpha:
            continue  # S fails beyond its parts: a slice of its own
        counts = np.array([[int((y[dense[:, j] & confirm] > 0).sum()), int((y[dense[:, j] & confirm] <= 0).sum())]
                           for j in parts])
        covered = (dense[:, i] & dense[:, parts].any(axis=1)).sum() >= _COVER * sizes[i]
        alike = len(parts) > 1 and covered and (counts.sum(axis=0).min() == 0 or
                                    scipy.stats.chi2_contingency(counts[counts.sum(axis=1) > 0]).pvalue > alpha)
        dropped.extend(parts if alike else [int(i)])
    return dropped


def prune_overlaps(matrix: sp.csc_matrix, ranked: list[int], confirm: np.ndarray, y: np.ndarray, baseline: bool,
                    alpha: float) -> set[int]:
    """Walking the significant slices best first, drop one that repeats those kept: sharing >= 80% of the
    smaller one's samples with a kept slice, or failing only where kept slices are (what lies outside them
    is unremarkable on the confirmation half, p > alpha): the same group seen through another word."""
    sizes = np.asarray(matrix.sum(axis=0)).ravel()
    inter = (matrix.T @ matrix).toarray()
    kept: list[int] = []
    dropped: set[int] = set()
    for i in ranked:
        if any(inter[i, k] >= _COVER * min(sizes[i], sizes[k]) for k in kept):
            dropped.add(i)
            continue
        if kept:
            mask = matrix[:, i].toarray().ravel() > 0
            elsewhere = (matrix[:, kept].sum(axis=1).A1 > 0)
            own = mask & ~elsewhere & confirm
            if one_sided_p(y[own], y[~mask & ~elsewhere & confirm], baseline) > alpha:
                dropped.add(i)
                continue
        kept.append(i)
    return dropped


def one_sided_p(inside: np.ndarray, outside: np.ndarray, baseline: bool) -> float:
    """One-sided p-value that `inside` fails more than `outside`. Without a baseline (0/1 failures): Fisher's
    exact test. With one (+1 the model loses to the baseline, 0 a tie, -1 it wins) the slice must be worse in two
    ways, so the larger of two p-values (an intersection-union test, valid at the same level): the model loses
    more than it wins inside the slice (one-sided exact McNemar), and its gap there is worse than on the rest
    (Mann-Whitney U on the outcomes, counting wins as well as losses)."""
    if len(inside) == 0 or len(outside) == 0:
        return 1.0
    if not baseline:
        worse_in, worse_out = int((inside > 0).sum()), int((outside > 0).sum())
        table = [[worse_in, len(inside) - worse_in], [worse_out, len(outside) - worse_out]]
        return float(scipy.stats.fisher_exact(table, alternative="greater").pvalue)
    losses, wins = int((inside > 0).sum()), int((inside < 0).sum())
    p_inside = float(scipy.stats.binom.sf(losses - 1, losses + wins, 0.5)) if losses else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = scipy.stats.mannwhitneyu(inside, outside, alternative="greater", method="asymptotic").pvalue
    p_rest = float(p) if np.isfinite(p) else 1.0  # all outcomes equal: no evidence either way
    return max(p_inside, p_rest)


__all__ = ["discovery_ranking", "one_sided_p", "prune_merges", "prune_overlaps"]
