"""Corrected subset estimates: what earlier models' answers add to a new model's subset mean.

Two estimators, both fitted on training models only (models x docs scores in [0, 1]) and applied to models
they were not fitted on:

- `linear_correction` (regression of the full score on the subset, "anchor + linear correction"): across the
  training models, the gap between the full score and the subset's (weighted) mean is regressed on their
  answers to the subset's docs (ridge, the penalty chosen by exact leave-one-model-out error over a grid);
  a new model's estimate is its subset mean plus the predicted gap. It learns which subset docs go with a
  higher or lower full score than the subset mean says.
- `neighbour_control_variate` (a difference estimator with a control variate, as in survey sampling): a new
  model's answer on every doc is predicted by the training models that answered the subset most like it
  (weights ``exp(beta * agreement)``); the estimate is the mean prediction over the full set plus the
  subset's (weighted) mean prediction error. For a random subset the correction keeps it unbiased whatever
  the predictions; good predictions only shrink its variance.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> skill = rng.uniform(0.4, 0.95, 30)
    >>> scores = (rng.random((30, 400)) < skill[:, None]).astype(float)
    >>> cols = np.arange(0, 400, 10)
    >>> est = linear_correction(scores[:25], cols, np.ones(len(cols)), scores[25:, cols])
    >>> bool(np.all(np.abs(est - scores[25:].mean(1)) < 0.15))
    True
    >>> cv = neighbour_control_variate(scores[:25], np.isin(np.arange(400), cols), scores[25:])
    >>> bool(np.all(np.abs(cv - scores[25:].mean(1)) < 0.15))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MIN_TRAINING_MODELS", "NEIGHBOUR_BETA", "RIDGE_ALPHAS", "correction_loo_error", "linear_correction",
           "neighbour_control_variate"]

#: callers learn a correction only from at least this many other models (fewer: the estimate is left out)
MIN_TRAINING_MODELS = 5
#: ridge penalties tried by `linear_correction` (features are 0/1 answers, so these are in "docs" units)
RIDGE_ALPHAS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0)
#: agreement sharpness of `neighbour_control_variate`: a training model that agrees with the new model on 2.3
#: percentage points fewer subset docs gets half the weight (set on the digits population, checked on the zoo)
NEIGHBOUR_BETA = 30.0


def linear_correction(
    train: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    answers: np.ndarray,
    *,
    alphas: Sequence[float] = RIDGE_ALPHAS,
) -> np.ndarray:
    """Full-score estimates (rows of `answers`, in [0, 1]) from answers on the docs `cols` (rows x len(cols)).

    `train` is the training models' scores on every doc (models x docs); `weights` the subset's weights
    (normalised here; the uncorrected estimate is ``answers @ weights``). The ridge penalty is the one of
    `alphas` with the lowest exact leave-one-model-out squared error on the training models.
    """
    t = np.asarray(train, dtype=np.float64)
    x_new = np.atleast_2d(np.asarray(answers, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    if len(t) < 3:
        return x_new @ w + (t.mean(axis=1) - t[:, np.asarray(cols, dtype=np.int64)] @ w).mean()
    fit = _RidgeGap(t, cols, weights, alphas)
    dual = fit.evecs @ (fit.proj / (fit.evals + fit.alpha))  # K-space coefficients: coef = Fc' dual
    return x_new @ fit.w + fit.mean_gap + (x_new - fit.mean_feat) @ (fit.fc.T @ dual)


def correction_loo_error(train: np.ndarray, cols: np.ndarray, weights: np.ndarray, *,
                         alphas: Sequence[float] = RIDGE_ALPHAS) -> float:
    """The mean squared error of `linear_correction`'s estimates of the training models' full scores, each from a
    correction refitted on the other training models, penalty included (each refit picks its own from
    `alphas`, as it would for a new model; with 3 models the refits on 2 fall back to the mean gap, as
    `linear_correction` does). One number to compare subsets (e.g. anchor sets) by.

    By brute force: one refit per model (at most a few dozen models, each refit one small eigendecomposition).
    The closed-form leave-one-out of a ridge fit is exact only at a fixed penalty; choosing the penalty on all
    models lets each held-out model pull its own penalty toward itself, an optimistic error.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scores = (rng.random((8, 100)) < rng.uniform(0.3, 0.9, (8, 1))).astype(float)
        >>> cols = np.arange(0, 100, 10)
        >>> err = correction_loo_error(scores, cols, np.ones(10))
        >>> refits = [linear_correction(np.delete(scores, j, 0), cols, np.ones(10), scores[j:j + 1, cols])[0]
        ...           for j in range(8)]
        >>> bool(np.isclose(err, np.mean((np.array(refits) - scores.mean(1)) ** 2)))
        True
    """
    t = np.asarray(train, dtype=np.float64)
    c = np.asarray(cols, dtype=np.int64)
    if len(t) < 3:
        raise ValueError(f"correction_loo_error: needs at least 3 training models (2 to refit on), got {len(t)}")
    est = np.array([linear_correction(np.delete(t, j, axis=0), c, weights, t[j:j + 1, c], alphas=alphas)[0]
                    for j in range(len(t))])
    return float(np.mean((est - t.mean(axis=1)) ** 2))


class _RidgeGap:
    """The ridge regression of `linear_correction`: the training models' gap between full score and subset mean
    on their answers to the subset docs, with the penalty of `alphas` of lowest exact leave-one-model-out error."""

    def __init__(self, t: np.ndarray, cols: np.ndarray, weights: np.ndarray, alphas: Sequence[float]) -> None:
        w = np.asarray(weights, dtype=np.float64)
        self.w = w / w.sum()
        feats = t[:, np.asarray(cols, dtype=np.int64)]
        gap = t.mean(axis=1) - feats @ self.w  # what the subset mean misses, per training model
        self.mean_feat, self.mean_gap = feats.mean(axis=0), gap.mean()
        self.fc, gc = feats - self.mean_feat, gap - self.mean_gap
        # kernel ridge in the models' space (fewer models than docs): K = Fc Fc', one eigendecomposition serves
        # every penalty; the intercept (the mean gap) is not penalised, which the centring accounts for
        evals, self.evecs = np.linalg.eigh(self.fc @ self.fc.T)
        self.evals = np.clip(evals, 0.0, None)
        self.proj = self.evecs.T @ gc
        n = len(t)
        self.alpha, self.loo_error = None, np.inf
        for a in alphas:
            shrink = self.evals / (self.evals + a)
            fitted = self.evecs @ (shrink * self.proj)
            hat_diag = (self.evecs**2) @ shrink + 1.0 / n
            loo = (gc - fitted) / np.maximum(1.0 - hat_diag, 1e-9)
            err = float(np.mean(loo**2))
            if err < self.loo_error:
                self.alpha, self.loo_error = a, err


def neighbour_control_variate(
    train: np.ndarray,
    masks: np.ndarray,
    answers: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    beta: float = NEIGHBOUR_BETA,
    design_weights: bool = False,
    groups: np.ndarray | None = None,
    group_prior: float = np.inf,
) -> np.ndarray:
    """Difference estimates (rows of `answers`, rows x docs, in [0, 1]) from the docs where `masks` is True.

    Each row's prediction on every doc is the training models' answers averaged with weights
    ``exp(beta * agreement)``, agreement being one minus the mean squared difference on the row's subset
    (the share of subset docs answered alike, for 0/1 scores). The estimate is the mean prediction over all
    docs plus the subset's mean prediction error, weighted by `weights` (rows x docs or docs; default equal).

    With `design_weights`, `weights` are a sampling design's: each answered doc's share of the full set
    (``stratum share / docs drawn from the stratum``), summing to the share of the full set the subset
    reaches. The correction then uses them as given (not normalised), so a stratum the design left out is
    estimated by the predictions alone instead of being stood for by the others; agreement still uses them
    normalised.

    With `groups` (one label per doc, e.g. the category), the docs of each group are predicted by neighbours
    chosen on the group's own subset docs: a model can be like one model on counting and like another on
    charts. The group's agreement is shrunk toward the agreement on the whole subset as if `group_prior`
    subset docs had shown the latter (0: the group's alone; inf: one set of neighbours for every doc).
    """
    t = np.asarray(train, dtype=np.float64)
    y = np.atleast_2d(np.asarray(answers, dtype=np.float64))
    m = np.broadcast_to(np.asarray(masks, dtype=bool), y.shape).astype(np.float64)
    y = np.where(m > 0, y, 0.0)  # unanswered docs may hold NaN
    w = m if weights is None else m * np.broadcast_to(np.asarray(weights, dtype=np.float64), y.shape)
    correction_w = w if design_weights else None
    w = w / w.sum(axis=1, keepdims=True)
    msd = _msd(w, y, t)
    if groups is None or np.isinf(group_prior):
        pred = _neighbours(msd, beta) @ t  # rows x docs
    else:
        labels = np.unique(groups, return_inverse=True)[1].reshape(-1)
        pred = np.zeros_like(y)
        for g in range(labels.max() + 1):
            in_g = labels == g
            wg = w * in_g
            n_g = (wg > 0).sum(axis=1, keepdims=True)
            mass = wg.sum(axis=1, keepdims=True)
            msd_g = _msd(wg / np.where(mass > 0, mass, 1.0), y, t)
            mix = n_g / np.maximum(n_g + group_prior, 1e-12)  # rows without docs in the group: the whole subset's
            pred[:, in_g] = _neighbours(mix * msd_g + (1 - mix) * msd, beta) @ t[:, in_g]
    return pred.mean(axis=1) + ((w if correction_w is None else correction_w) * (y - pred)).sum(axis=1)


def _msd(w: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Weighted mean squared difference of each row of `y` to each training model (rows x models), by matrix
    products; `w` (rows x docs) sums to 1 per row."""
    return (w * y**2).sum(axis=1, keepdims=True) - 2 * (w * y) @ t.T + w @ (t**2).T


def _neighbours(msd: np.ndarray, beta: float) -> np.ndarray:
    """Weights ``exp(beta * agreement)`` over the training models, normalised per row."""
    logits = beta * (1.0 - msd)
    logits -= logits.max(axis=1, keepdims=True)
    sim = np.exp(logits)
    return sim / sim.sum(axis=1, keepdims=True)
