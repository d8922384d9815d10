"""Item response theory for Lite estimates, in the spirit of tinyBenchmarks (Polo et al., 2024).

A (multidimensional) two-parameter logistic model says model i answers doc j correctly with probability
``sigmoid(a_j . theta_i - b_j)``: each doc has a discrimination ``a_j`` and a difficulty ``b_j``, each model an
ability ``theta_i``. `fit_irt` fits all of them (maximum a posteriori, normal priors) on the
per-sample correctness of models that answered every doc. A new model answers only a subset: `IRTModel.ability`
finds its ability from those answers (the doc parameters stay fixed), and

- ``p-IRT`` estimates its full score as the observed answers on the subset plus the predicted probability
  on every doc it did not answer, averaged over the full set;
- ``gp-IRT`` mixes the subset's own (weighted) mean and p-IRT: ``lam * subset_mean + (1 - lam) * p_irt``,
  with ``lam = bias2 / (bias2 + var)``: `var` is the subset mean's sampling variance under the fitted model
  and `bias2` the mean squared error of p-IRT measured on models the IRT was not fitted on (an inner split
  of the fitting models). So a subset large enough to speak for itself outweighs an IRT that generalises
  badly, and an IRT that generalises well fills in for a small subset.

Every estimate is meant for models the IRT was *not* fitted on: `lite_fidelity` fits it per fold over models
and scores only the held-out ones.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> skill, hardness = rng.normal(size=12), rng.normal(size=300)
    >>> correct = (rng.random((12, 300)) < 1 / (1 + np.exp(hardness - skill[:, None]))).astype(float)
    >>> irt = fit_irt(correct[:10])
    >>> subset = np.zeros(300, bool); subset[::10] = True
    >>> est = irt.p_irt(correct[10:], subset)
    >>> bool(np.all(np.abs(est - correct[10:].mean(1)) < 0.08))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IRTModel", "fit_irt"]


@dataclass(frozen=True)
class IRTModel:
    """A fitted 2PL item response model: `discrimination` (docs x dim), `difficulty` (docs,), and the
    `abilities` (models x dim) of the models it was fitted on."""

    discrimination: np.ndarray
    difficulty: np.ndarray
    abilities: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.difficulty)

    def prob(self, theta: np.ndarray) -> np.ndarray:
        """P(correct) of abilities `theta` (rows x dim) on every doc: (rows, docs)."""
        return _sigmoid(np.atleast_2d(theta) @ self.discrimination.T - self.difficulty)

    def ability(self, answers: np.ndarray, mask: np.ndarray, *, iters: int = 25) -> np.ndarray:
        """MAP abilities (rows x dim) from the answers (rows x docs, in [0, 1]) on the docs where `mask` is True.

        Newton's method on the log posterior with a standard normal prior; `mask` is (docs,) or (rows, docs).
        """
        y = np.atleast_2d(np.asarray(answers, dtype=np.float64))
        m = np.broadcast_to(np.asarray(mask, dtype=np.float64), y.shape)
        y = np.where(m > 0, y, 0.0)  # unanswered docs may hold NaN
        a = self.discrimination
        dim = a.shape[1]
        theta = np.zeros((y.shape[0], dim))
        eye = np.eye(dim)
        for _ in range(iters):
            p = self.prob(theta)
            grad = ((y - p) * m) @ a - theta
            hess = np.einsum("bn,nd,ne->bde", m * p * (1 - p), a, a) + eye  # minus the Hessian
            step = _clip(np.linalg.solve(hess, grad[..., None])[..., 0])
            theta = theta + step
            if np.abs(step).max() < 1e-8:
                break
        return theta

    def p_irt(self, answers: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """p-IRT full-score estimates in [0, 1]: observed answers where `mask`, predicted probability elsewhere."""
        y = np.atleast_2d(np.asarray(answers, dtype=np.float64))
        m = np.broadcast_to(np.asarray(mask, dtype=bool), y.shape)
        p = self.prob(self.ability(y, m))
        return np.where(m, y, p).mean(axis=1)

    def subset_variance(self, answers: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The sampling variance of the weighted subset mean, ``sum w_j^2 p_j (1 - p_j)``, under the fitted model.

        `weights` (rows x docs or docs,) are normalised over each row's subset here.
        """
        y = np.atleast_2d(np.asarray(answers, dtype=np.float64))
        m = np.broadcast_to(np.asarray(mask, dtype=bool), y.shape)
        w = np.where(m, np.broadcast_to(weights, y.shape), 0.0)
        w = w / w.sum(axis=1, keepdims=True)
        p = self.prob(self.ability(y, m))
        return (w**2 * p * (1 - p)).sum(axis=1)


def fit_irt(correct: np.ndarray, *, dim: int = 1, iters: int = 60, seed: int = 0) -> IRTModel:
    """Fit a `dim`-dimensional 2PL model to models x docs correctness (MAP by alternating Newton steps).

    Scores in [0, 1] that are not 0/1 (partial credit) enter as soft labels of the Bernoulli likelihood.
    Priors: discriminations N(0, 1), difficulties N(0, 3^2) (docs every model got right or wrong keep a finite
    difficulty). After each round the abilities are standardised (mean 0, sd 1 per dimension, the doc
    parameters rescaled to match), so the N(0, 1) prior that `IRTModel.ability` puts on a new model's
    ability is the fitted models' own spread, not a guess.
    """
    y = np.asarray(correct, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"fit_irt needs a models x docs matrix with at least 2 models, got shape {y.shape}")
    if np.isnan(y).any() or (y < 0).any() or (y > 1).any():
        raise ValueError("fit_irt needs scores in [0, 1] for every model and doc (no NaN)")
    n_models, n_docs = y.shape
    rng = np.random.default_rng(seed)
    acc = y.mean(axis=1).clip(0.02, 0.98)
    theta = np.zeros((n_models, dim))
    theta[:, 0] = np.log(acc / (1 - acc))
    if dim > 1:
        theta[:, 1:] = rng.normal(scale=0.5, size=(n_models, dim - 1))
    theta = (theta - theta.mean(axis=0)) / np.maximum(theta.std(axis=0), 1e-6)
    a = np.full((n_docs, dim), 0.1)
    a[:, 0] = 1.0
    p_doc = y.mean(axis=0).clip(0.02, 0.98)
    b = -np.log(p_doc / (1 - p_doc))
    prior = np.diag([1.0] * dim + [1.0 / 9.0])  # precision of (a, b)
    eye = np.eye(dim)
    for _ in range(iters):
        # doc step: each doc's (a_j, b_j) given the abilities, one damped Newton step, all docs at once
        x = np.hstack([theta, -np.ones((n_models, 1))])  # z = x_i . (a_j, b_j)
        params = np.hstack([a, b[:, None]])
        p = _sigmoid(x @ params.T)  # models x docs
        grad = (y - p).T @ x - params @ prior
        hess = np.einsum("md,mn,me->nde", x, p * (1 - p), x) + prior
        params = params + _clip(np.linalg.solve(hess, grad[..., None])[..., 0])
        a, b = params[:, :dim], params[:, dim]
        # model step: each model's ability given the docs
        p = _sigmoid(theta @ a.T - b)
        grad = (y - p) @ a - theta
        hess = np.einsum("mn,nd,ne->mde", p * (1 - p), a, a) + eye
        theta = theta + _clip(np.linalg.solve(hess, grad[..., None])[..., 0])
        # standardise: z = a . theta - b is unchanged
        mu, sd = theta.mean(axis=0), np.maximum(theta.std(axis=0), 1e-6)
        theta = (theta - mu) / sd
        b = b - a @ mu
        a = a * sd
    return IRTModel(discrimination=a, difficulty=b, abilities=theta)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _clip(step: np.ndarray, limit: float = 1.0) -> np.ndarray:
    # damped Newton: a step longer than `limit` is shortened, so a near-flat direction cannot throw it off
    norm = np.linalg.norm(step, axis=-1, keepdims=True)
    return step * np.minimum(1.0, limit / np.maximum(norm, 1e-300))
