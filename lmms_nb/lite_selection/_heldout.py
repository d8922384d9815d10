"""Held-out estimation: estimators that learn from earlier models, fitted on some models and scored on others.

`model_folds` splits the models into folds (k-fold, or leave-one-out); `FoldEstimators` holds what one fold
learns from its training models (an IRT model, plus an inner IRT that measures how well IRT generalises to
models it was not fitted on) and estimates the held-out models' full scores from their answers on a subset:
gp-IRT (see `_irt`) and anchor points (see `_anchors`). Nothing here ever sees a held-out model's answers
outside the subset.

Example:
    >>> model_folds(5, 2, seed=0)
    [array([0, 2, 4]), array([1, 3])]
    >>> [f.tolist() for f in model_folds(3, "loo")]
    [[0], [1], [2]]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from lmms_nb.lite_selection._anchors import anchor_points, selected_anchor_points
from lmms_nb.lite_selection._corrections import linear_correction, neighbour_control_variate
from lmms_nb.lite_selection._difficulty_design import DifficultyDesign, difficulty_design, residual_spread
from lmms_nb.lite_selection._irt import IRTModel, fit_irt
from lmms_nb.lite_selection._memo import memoised
from lmms_nb.lite_selection._residual_design import residual_design
from lmms_nb.lite_selection._spread_design import SpreadDesign, spread_design

__all__ = ["GROUP_PRIORS", "FoldEstimators", "cv_choice", "model_folds"]

#: random subsets per budget used to measure the inner IRT's error (the gp-IRT mixing weight)
_BIAS_DRAWS = 16
#: per-group neighbour shrinkage tried by `FoldEstimators._cv_choice` (subset docs; inf: no groups)
GROUP_PRIORS: tuple[float, ...] = (0.0, 5.0, 20.0, np.inf)
#: inner held-out models and design draws each that choose the group prior
_INNER_MODELS, _INNER_DRAWS = 12, 8


def model_folds(n_models: int, folds: int | Literal["loo"] = 5, *, seed: int = 0) -> list[np.ndarray]:
    """Test-model indices of each fold: "loo" (one model per fold) or `folds` groups (models dealt round-robin
    in a seeded order, at most one fold per model)."""
    if folds == "loo":
        return [np.array([i]) for i in range(n_models)]
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be 'loo' or an int >= 2, got {folds!r}")
    n_folds = min(int(folds), n_models)
    order = np.arange(n_models) if seed == 0 else np.random.default_rng(seed).permutation(n_models)
    return [np.sort(order[f::n_folds]) for f in range(n_folds)]


class FoldEstimators:
    """What one fold learns from its training models' scores (models x docs, in [0, 1])."""

    def __init__(self, train: np.ndarray, *, dim: int = 1, seed: int = 0) -> None:
        self.train = np.asarray(train, dtype=np.float64)
        self.seed = seed
        self._dim = dim
        self._irt: IRTModel | None = None
        self._inner_irt: IRTModel | None = None
        self._bias2: dict[int, float] = {}
        self._anchors: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        # keyed by budget, and for difficulty_cv by the docs' categories too (both depend on them)
        self._designs: dict[Any, DifficultyDesign | SpreadDesign] = {}
        self._group_priors: dict[Any, tuple[bool, float]] = {}

    @property
    def irt(self) -> IRTModel:
        """The IRT model of the training models (fitted on first use: only the *_irt methods need it)."""
        if self._irt is None:
            self._irt = fit_irt(self.train, dim=self._dim, seed=self.seed)
        return self._irt

    def corrected(self, cols: np.ndarray, weights: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """Subset means with a linear correction learned on the training models (`_corrections.linear_correction`);
        `answers` are the held-out models' scores on the docs `cols` (rows x len(cols))."""
        return linear_correction(self.train, cols, weights, answers)

    def control_variate(self, answers: np.ndarray, masks: np.ndarray, weights: np.ndarray | None = None, *,
                        design_weights: bool = False, groups: np.ndarray | None = None,
                        group_prior: float = np.inf) -> np.ndarray:
        """Difference estimates with the training models as control variate
        (`_corrections.neighbour_control_variate`); `answers` and `masks` are rows x docs."""
        return neighbour_control_variate(self.train, masks, answers, weights, design_weights=design_weights,
                                         groups=groups, group_prior=group_prior)

    def group_prior(self, k: int, groups: np.ndarray | None) -> float:
        """The per-group neighbour shrinkage for `difficulty_cv` at budget `k` (see `neighbour_control_variate`):
        categories that models differ on get their own neighbours, categories that do not get none. Chosen
        with the design's allocation (`cv_design`) by `_cv_choice`."""
        return self._cv_choice(k, groups)[1]

    def cv_design(self, k: int, groups: np.ndarray | None = None) -> DifficultyDesign:
        """The difficulty strata allocated for `difficulty_cv` at budget `k`: Neyman on the neighbour predictions'
        held-out error in each stratum (`residual_spread`) or on the scores' spread, whichever `_cv_choice`
        finds better on the training models."""
        key = ("cv", k, _groups_key(groups))
        if key not in self._designs:
            spread = residual_spread(self.train, groups) if self._cv_choice(k, groups)[0] else None
            self._designs[key] = difficulty_design(self.train, k, spread=spread)
        return self._designs[key]

    def _cv_choice(self, k: int, groups: np.ndarray | None) -> tuple[bool, float]:
        """(allocate on prediction errors?, group prior) for budget `k` (`cv_choice`)."""
        key = (k, _groups_key(groups))
        if key not in self._group_priors:
            self._group_priors[key] = cv_choice(self.train, k, groups, seed=self.seed)
        return self._group_priors[key]

    def residual_design(self, k: int, groups: np.ndarray | None = None) -> DifficultyDesign:
        """The strata of `residual_cv` at budget `k` (`_residual_design.residual_design`)."""
        key = ("residual", k, _groups_key(groups))
        if key not in self._designs:
            self._designs[key] = residual_design(self.train, k, groups)
        return self._designs[key]

    def spread_design(self, k: int, groups: np.ndarray | None = None) -> SpreadDesign:
        """The systematic PPS design of `spread_cv` at budget `k` (`_spread_design.spread_design`)."""
        key = ("spread", k, _groups_key(groups))
        if key not in self._designs:
            self._designs[key] = spread_design(self.train, k, groups)
        return self._designs[key]

    def difficulty_design(self, k: int) -> DifficultyDesign:
        """The difficulty-stratified design for budget `k`, from the training models' scores."""
        if k not in self._designs:
            self._designs[k] = difficulty_design(self.train, k)
        return self._designs[k]

    def calibrated(self, subset_train: np.ndarray, subset_test: np.ndarray) -> np.ndarray:
        """Subset means calibrated on the training models: ``full ~ a + b * subset`` by least squares, fitted per
        draw. `subset_train` is (draws, training models), `subset_test` (draws, held-out models); in [0, 1]."""
        full = self.train.mean(axis=1)
        x = subset_train - subset_train.mean(axis=1, keepdims=True)
        var = (x**2).sum(axis=1)
        slope = np.where(var > 0, (x @ (full - full.mean())) / np.where(var > 0, var, 1.0), 1.0)
        intercept = full.mean() - slope * subset_train.mean(axis=1)
        return intercept[:, None] + slope[:, None] * subset_test

    def anchors(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Anchor docs and weights for budget `k`, chosen from the training models' scores as Vivek et al. do
        (`anchor_points`: k-means of 3 starts); the `anchor` and `anchor_irt` baselines."""
        if ("published", k) not in self._anchors:
            self._anchors["published", k] = anchor_points(self.train, k, seed=self.seed)
        return self._anchors["published", k]

    def selected_anchors(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The anchor set `anchor_corrected` uses at budget `k`: of several k-means seeds, the one whose linear
        correction predicts held-out training models best (`selected_anchor_points`)."""
        if ("selected", k) not in self._anchors:
            self._anchors["selected", k] = selected_anchor_points(self.train, k, seed=self.seed)
        return self._anchors["selected", k]

    def bias2(self, k: int) -> float:
        """Mean squared error of p-IRT at budget `k` on models the (inner) IRT was not fitted on."""
        if k not in self._bias2:
            # the inner split: fit on every other training model, measure p-IRT's error on the rest
            half = np.arange(len(self.train)) % 2 == 0
            if self._inner_irt is None:
                self._inner_irt = fit_irt(self.train[half], dim=self._dim, seed=self.seed)
            inner_test = self.train[~half]
            rng = np.random.default_rng(self.seed + k)
            n = self.train.shape[1]
            errs = []
            for _ in range(_BIAS_DRAWS):
                mask = np.zeros(n, dtype=bool)
                mask[rng.choice(n, size=k, replace=False)] = True
                est = self._inner_irt.p_irt(inner_test, mask)
                errs.append((est - inner_test.mean(axis=1)) ** 2)
            self._bias2[k] = float(np.mean(errs))
        return self._bias2[k]

    def gp_irt(self, answers: np.ndarray, masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """gp-IRT full-score estimates in [0, 1] for rows of `answers` (rows x docs) seen through `masks`
        (rows x docs, bool) with subset `weights` (rows x docs; the subset mean is ``sum(w * y) / sum(w)``)."""
        y = np.atleast_2d(answers)
        m = np.broadcast_to(masks, y.shape)
        w = np.where(m, np.broadcast_to(weights, y.shape), 0.0)
        w = w / w.sum(axis=1, keepdims=True)
        subset_mean = (np.where(m, y, 0.0) * w).sum(axis=1)
        theta = self.irt.ability(y, m)
        p = self.irt.prob(theta)
        p_irt = np.where(m, y, p).mean(axis=1)
        var = (w**2 * p * (1 - p)).sum(axis=1)
        k = int(m[0].sum())
        b2 = self.bias2(k)
        lam = b2 / (b2 + var) if b2 > 0 else np.zeros(len(y))
        return lam * subset_mean + (1 - lam) * p_irt


@memoised()  # with outer leave-one-out, inner folds (f, i) and (i, f) train on the same models (see _memo)
def cv_choice(train: np.ndarray, k: int, groups: np.ndarray | None, *, seed: int = 0) -> tuple[bool, float]:
    """For `difficulty_cv` at budget `k` on `train`'s models: (allocate on prediction errors?, group prior), the
    pair with the lowest squared error of its estimates on training models held out in turn (up to 12, each
    with its designs and neighbours fitted on the other training models, 8 draws per design)."""
    priors = GROUP_PRIORS if groups is not None else (np.inf,)
    if len(train) < 4:
        return False, np.inf
    rng = np.random.default_rng([seed, k, 1])
    inner = np.unique(np.linspace(0, len(train) - 1, min(_INNER_MODELS, len(train))).astype(int))
    errs = np.zeros((2, len(priors)))
    for j in inner:
        others = np.delete(train, j, axis=0)
        for on_errors in (False, True):
            design = difficulty_design(others, k, spread=residual_spread(others, groups) if on_errors else None)
            w = np.stack([design.doc_weights(design.draw(rng)) for _ in range(_INNER_DRAWS)])
            rows = np.broadcast_to(train[j], w.shape)
            for c, prior in enumerate(priors):
                est = neighbour_control_variate(others, w > 0, rows, w, design_weights=True, groups=groups,
                                                group_prior=prior)
                errs[int(on_errors), c] += np.mean((est - train[j].mean()) ** 2)
    best = np.unravel_index(int(np.argmin(errs)), errs.shape)
    return bool(best[0]), float(priors[best[1]])


def _groups_key(groups: np.ndarray | None) -> tuple | None:
    """A cache key of the docs' categories by content (an object's id could be reused by another array)."""
    return None if groups is None else tuple(np.asarray(groups).tolist())
