"""Strata for a difference estimator: docs grouped by how far the neighbour predictions miss on them, per category.

`difficulty_cv` corrects neighbour predictions of a new model's answers by their error on a random subset, so
its variance is the spread of those errors (residuals) over the docs drawn. `residual_design` stratifies on
exactly that: each training model in turn is predicted from the others (neighbours chosen per category on
its answers, as `_difficulty_design.residual_spread` does), each doc's root mean squared prediction error across them
is its expected residual, and the docs are binned by it (quantiles) and by category; `k` is then allocated
by Neyman on each stratum's residual (`_allocation.neyman_allocation`, one doc per stratum first). With many
categories and a small budget the bins per category shrink (to ``k // categories``, at least 1), so there are
no more strata than docs to draw and every stratum, hence every doc, can be drawn. A doc the training models all agree on
has no residual among them, but a new model can still slip there: every doc's expected residual is at least
`RESIDUAL_FLOOR`, so those docs keep a share of the budget and the estimate stays unbiased.

`residual_cv` in `lite_fidelity` draws its subsets from this design and scores them as `difficulty_cv` does.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> skill, hard = rng.normal(size=10), rng.normal(size=300)
    >>> correct = (rng.random((10, 300)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
    >>> design = residual_design(correct, 30, np.repeat(["a", "b"], 150))
    >>> int(design.alloc.sum()), len(design.sizes) <= 2 * RESIDUAL_BINS
    (30, True)
"""

from __future__ import annotations

import numpy as np

from lmms_nb.lite_selection._allocation import neyman_allocation
from lmms_nb.lite_selection._corrections import NEIGHBOUR_BETA
from lmms_nb.lite_selection._difficulty_design import DifficultyDesign
from lmms_nb.lite_selection._memo import memoised

__all__ = ["RESIDUAL_BINS", "RESIDUAL_FLOOR", "doc_residuals", "residual_design"]

#: quantile bins of the expected residual within each category (plus one bin for docs at the floor)
RESIDUAL_BINS = 4
#: least expected residual of a doc (a 0/1 answer that a new model gets wrong 2-3% of the time has ~0.15);
#: chosen on the digits and zoo populations among 0.02-0.2 (0.02: docs at the floor get too little budget)
RESIDUAL_FLOOR = 0.15


@memoised()  # the same training models recur across budgets and folds (see _memo)
def doc_residuals(train: np.ndarray, groups: np.ndarray | None = None, beta: float = NEIGHBOUR_BETA) -> np.ndarray:
    """Per doc, the root mean squared error of each training model's answers predicted from the other models
    (weights ``exp(beta * agreement)``, agreement on the category's docs)."""
    t = np.asarray(train, dtype=np.float64)
    labels = np.zeros(t.shape[1], dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    sq = np.zeros(t.shape[1])
    for j in range(len(t)):
        others = np.delete(t, j, axis=0)
        for g in range(int(labels.max()) + 1):
            in_g = labels == g
            agree = 1.0 - ((t[j, in_g] - others[:, in_g]) ** 2).mean(axis=1)
            sim = np.exp(beta * (agree - agree.max()))
            sq[in_g] += (t[j, in_g] - sim / sim.sum() @ others[:, in_g]) ** 2
    return np.sqrt(sq / len(t))


def residual_design(train: np.ndarray, k: int, groups: np.ndarray | None = None, *, n_bins: int = RESIDUAL_BINS,
                    floor: float = RESIDUAL_FLOOR) -> DifficultyDesign:
    """Strata: per category, the docs in each of `n_bins` quantile bins (over all docs; fewer, down to 1, when
    `k` is too small to give each category that many) of the expected residual (`doc_residuals`, at least
    `floor`); `k` allocated by Neyman on each stratum's root mean squared expected residual, every stratum at
    least one doc when `k` allows."""
    t = np.asarray(train, dtype=np.float64)
    r = np.maximum(doc_residuals(t, groups), floor)
    labels = np.zeros(t.shape[1], dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    n_bins = int(np.clip(k // (int(labels.max()) + 1), 1, n_bins))
    # quantile edges over every doc: docs at the floor share the lowest bin(s), repeated edges leave bins empty
    bins = np.searchsorted(np.quantile(r, np.linspace(0, 1, n_bins + 1)[1:-1]), r, side="right")
    strata = np.unique(bins + n_bins * labels, return_inverse=True)[1].reshape(-1)  # empty bins dropped
    n_strata = int(strata.max()) + 1
    sizes = np.bincount(strata, minlength=n_strata)
    sd = np.sqrt(np.bincount(strata, weights=r**2, minlength=n_strata) / sizes)
    impute = np.array([t[:, strata == h].mean() for h in range(n_strata)])
    return DifficultyDesign(strata=strata, sizes=sizes, alloc=neyman_allocation(sizes, sd, k), impute=impute)
