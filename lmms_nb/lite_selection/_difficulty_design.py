"""Difficulty-stratified sampling designs: docs stratified by how earlier models did on them, the budget
allocated across strata (Neyman), one stratified random subset drawn per call, and each doc's design weight.

`difficulty_cv` draws from `difficulty_design` on the earlier models (on `residual_spread`, the neighbour
predictions' error per stratum, when its inner check says so: `_heldout.cv_choice`); `_residual_design` builds the
same `DifficultyDesign` on strata of its own.

Example:
    >>> import numpy as np
    >>> train = (np.random.default_rng(0).random((6, 40)) < np.linspace(0.05, 0.95, 40)).astype(float)
    >>> design = difficulty_design(train, 10)
    >>> int(design.alloc.sum()), len(design.draw(np.random.default_rng(1)))
    (10, 10)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lmms_nb.lite_selection._allocation import neyman_allocation
from lmms_nb.lite_selection._corrections import NEIGHBOUR_BETA
from lmms_nb.lite_selection._memo import memoised

__all__ = ["DifficultyDesign", "difficulty_design", "difficulty_strata", "residual_spread"]


@dataclass(frozen=True)
class DifficultyDesign:
    """Docs stratified by how earlier models did on them, and how many of `k` each stratum gets (Neyman).

    `strata[j]` is doc j's stratum; `alloc[h]` docs are drawn from stratum h; a stratum that gets none (every
    earlier model scored the same on all of its docs) is estimated by the earlier models' mean there
    (`impute[h]`). The estimate is ``sum_h share_h * mean_h`` with ``share_h`` the stratum's share of the docs.
    """

    strata: np.ndarray
    sizes: np.ndarray
    alloc: np.ndarray
    impute: np.ndarray

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Doc indices of one stratified random subset."""
        return np.concatenate([rng.choice(self._members[h], a, replace=False)
                               for h, a in enumerate(self.alloc) if a] or [np.zeros(0, dtype=np.int64)])

    @functools.cached_property
    def _members(self) -> list[np.ndarray]:
        """Each stratum's doc indices (found once: a design is drawn from many times)."""
        return [np.nonzero(self.strata == h)[0] for h in range(len(self.alloc))]

    def doc_weights(self, docs: np.ndarray) -> np.ndarray:
        """Each doc's design weight in the subset `docs` (its stratum's share of the full set over the docs drawn
        from it; 0 off the subset): the stratified estimate is ``scores @ doc_weights`` plus the imputed strata."""
        share = self.sizes / self.sizes.sum()
        per_doc = np.divide(share, self.alloc, out=np.zeros(len(share)), where=self.alloc > 0)[self.strata]
        w = np.zeros(len(self.strata))
        w[docs] = per_doc[docs]
        return w

    def estimate(self, scores: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Stratified estimates (rows of `scores`, models x all docs) from the subset `docs`."""
        out = np.zeros(len(scores))
        share = self.sizes / self.sizes.sum()
        for h, a in enumerate(self.alloc):
            if self.sizes[h] == 0:
                continue
            in_h = docs[self.strata[docs] == h]
            out += share[h] * (scores[:, in_h].mean(axis=1) if a else self.impute[h])
        return out


def difficulty_strata(train: np.ndarray, n_bins: int = 8) -> np.ndarray:
    """Each doc's stratum: 0 every earlier model got it right, 1 every one got it wrong, then 2 .. n_bins + 1 the
    quantile bins of the earlier models' mean score on the rest."""
    p = train.mean(axis=0)
    strata = np.full(len(p), -1)
    strata[p >= 1] = 0
    strata[p <= 0] = 1
    rest = np.nonzero((p > 0) & (p < 1))[0]
    if len(rest):
        edges = np.quantile(p[rest], np.linspace(0, 1, n_bins + 1)[1:-1])
        strata[rest] = 2 + np.searchsorted(edges, p[rest], side="right")
    return strata


@memoised()  # the same training models recur across budgets, inner models and folds (see _memo)
def residual_spread(train: np.ndarray, groups: np.ndarray | None = None, n_bins: int = 8,
                    beta: float = NEIGHBOUR_BETA) -> np.ndarray:
    """Per stratum (``2 + n_bins``), the root mean squared error of the neighbour predictions that the control
    variate corrects: each training model is predicted from the others (neighbours chosen on every doc, per
    group with `groups`), its docs stratified by the *others'* scores. So the docs every earlier model got
    right get the budget that new models' slips there deserve, which strata of the full training set (where
    those docs have no error by construction) would never give them."""
    n_strata = 2 + n_bins
    sq, count = np.zeros(n_strata), np.zeros(n_strata)
    labels = np.zeros(train.shape[1], dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    for j in range(len(train)):
        others = np.delete(train, j, axis=0)
        pred = np.zeros(train.shape[1])
        for g in range(labels.max() + 1):
            in_g = labels == g
            agree = 1.0 - ((train[j, in_g] - others[:, in_g]) ** 2).mean(axis=1)
            sim = np.exp(beta * (agree - agree.max()))
            pred[in_g] = sim / sim.sum() @ others[:, in_g]
        strata = difficulty_strata(others, n_bins)
        np.add.at(sq, strata, (train[j] - pred) ** 2)
        np.add.at(count, strata, 1)
    return np.sqrt(sq / np.maximum(count, 1))


def difficulty_design(train: np.ndarray, k: int, n_bins: int = 8, *, spread: np.ndarray | None = None
                      ) -> DifficultyDesign:
    """Strata from `difficulty_strata`; `k` allocated in proportion to size x sd (Neyman, largest remainders),
    the sd being ``sqrt(mean p (1 - p))`` of the stratum's docs, or `spread` (one per stratum, e.g.
    `residual_spread`) when given."""
    p = train.mean(axis=0)
    strata = difficulty_strata(train, n_bins)
    n_strata = int(strata.max()) + 1
    sizes = np.bincount(strata, minlength=n_strata)
    sd = (np.asarray(spread, dtype=np.float64)[:n_strata] if spread is not None else
          np.array([np.sqrt((p[strata == h] * (1 - p[strata == h])).mean()) if sizes[h] else 0.0
                    for h in range(n_strata)]))
    alloc = neyman_allocation(sizes, sd, k)
    impute = np.array([train[:, strata == h].mean() if sizes[h] else 0.0 for h in range(n_strata)])
    return DifficultyDesign(strata=strata, sizes=sizes, alloc=alloc, impute=impute)
