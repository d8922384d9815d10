"""Statistics of Lite estimates against full-set scores, vectorised over draws: correlations, errors,
bootstrap intervals, and the category-stratified random baseline.

Example:
    >>> import numpy as np
    >>> st = draw_stats(np.array([0.1, 0.5, 0.9]), np.array([[0.2, 0.4, 0.8]]))[0]
    >>> round(st["spearman"], 3), round(st["mae_points"], 3)
    (1.0, 0.1)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["bootstrap_ci", "draw_stats", "proportional_allocation", "stratified_estimates", "subset_stats"]


def subset_stats(full: np.ndarray, est: np.ndarray) -> dict[str, float]:
    return draw_stats(full, est[None, :])[0]


def draw_stats(full: np.ndarray, ests: np.ndarray) -> list[dict[str, float]]:
    """The statistics of each row of `ests` (draws x models) against `full`, vectorised over draws.

    Spearman is Pearson on average ranks, Kendall is tau-b (scipy's definitions; the tests check them against
    scipy.stats). A draw on which every model scores the same has no ranking: its correlations are NaN.
    """
    err = np.abs(ests - full)
    rank_full, rank_est = stats.rankdata(full), stats.rankdata(ests, axis=1)
    sign_full = np.sign(full[:, None] - full[None, :])
    sign_est = np.sign(ests[:, :, None] - ests[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        kendall = ((sign_est * sign_full).sum(axis=(1, 2))
                   / np.sqrt((sign_est**2).sum(axis=(1, 2)) * (sign_full**2).sum()))
        out = {"spearman": _rowwise_pearson(rank_full, rank_est), "kendall": kendall,
               "pearson": _rowwise_pearson(full, ests), "mae_points": err.mean(axis=1),
               "max_abs_error_points": err.max(axis=1)}
    return [{key: float(v[d]) for key, v in out.items()} for d in range(len(ests))]


def _rowwise_pearson(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    yc = ys - ys.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yc @ xc) / np.sqrt((yc**2).sum(axis=1) * (xc**2).sum())
    # a constant row (ptp 0) has no correlation even when rounding leaves a tiny spread
    return np.where(np.ptp(ys, axis=1) > 0, np.clip(r, -1.0, 1.0), np.nan)


def bootstrap_ci(full: np.ndarray, est: np.ndarray, seed: int, n_boot: int = 400) -> dict[str, float]:
    """95% percentile intervals of Spearman and MAE over models resampled with replacement."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(len(full), size=(n_boot, len(full)))
    mae = np.abs(est - full)[rows].mean(axis=1)
    rf, re_ = stats.rankdata(full[rows], axis=1), stats.rankdata(est[rows], axis=1)
    rf, re_ = rf - rf.mean(axis=1, keepdims=True), re_ - re_.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of tied models has no ranking
        rho = (rf * re_).sum(axis=1) / np.sqrt((rf**2).sum(axis=1) * (re_**2).sum(axis=1))
    rho = rho[np.isfinite(rho)]
    lo_hi = np.quantile(rho, [0.025, 0.975]) if len(rho) else (np.nan, np.nan)
    return {"spearman_lo": float(lo_hi[0]), "spearman_hi": float(lo_hi[1]),
            "mae_points_lo": float(np.quantile(mae, 0.025)), "mae_points_hi": float(np.quantile(mae, 0.975))}


def stratified_estimates(scores: np.ndarray, categories: np.ndarray, k: int, n_draws: int,
                          rng: np.random.Generator) -> np.ndarray:
    """(n_draws, models): stratified estimator over proportional-allocation random subsets."""
    labels, inverse, sizes = np.unique(categories, return_inverse=True, return_counts=True)
    alloc = proportional_allocation(sizes, k)
    members = [np.nonzero(inverse == h)[0] for h in range(len(labels))]
    taken = [h for h in range(len(labels)) if alloc[h] > 0]
    share = sizes[taken] / sizes[taken].sum()  # strata left out (k < #categories) are renormalised away
    out = np.zeros((n_draws, scores.shape[0]))
    for h, s in zip(taken, share):
        pos = np.argsort(rng.random((n_draws, len(members[h]))), axis=1)[:, :alloc[h]]
        out += s * scores[:, members[h][pos]].mean(axis=2).T
    return out


def proportional_allocation(sizes: np.ndarray, k: int) -> np.ndarray:
    """k split in proportion to `sizes` by largest remainders, >= 1 per stratum when k >= #strata.

    >>> proportional_allocation(np.array([50, 30, 20]), 10).tolist()
    [5, 3, 2]
    >>> proportional_allocation(np.array([97, 2, 1]), 3).tolist()
    [1, 1, 1]
    """
    quota = sizes * k / sizes.sum()
    alloc = np.floor(quota).astype(np.int64)
    order = np.lexsort((np.arange(len(sizes)), -(quota - alloc)))  # largest remainder first, ties to first
    alloc[order[: k - int(alloc.sum())]] += 1
    if k >= len(sizes):  # every category represented: the largest allocation gives one to each empty one
        for h in np.nonzero(alloc == 0)[0]:
            alloc[np.argmax(alloc)] -= 1
            alloc[h] += 1
    return alloc
