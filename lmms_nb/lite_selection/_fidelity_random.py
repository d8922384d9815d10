"""`lite_fidelity`'s learned estimators on uniform random subsets: gp-IRT, calibrated mean, linear correction and
the neighbour control variate, each fitted per fold on its training models and applied to the fold's held-out
models only, on the same draws as the plain ``random`` row (so their shares of draws beating random are paired).

Example:
    >>> import numpy as np
    >>> from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
    >>> rng = np.random.default_rng(0)
    >>> unit = (rng.random((8, 100)) < rng.uniform(0.3, 0.9, (8, 1))).astype(float)
    >>> tests = model_folds(8, 4)
    >>> fitted = [FoldEstimators(np.delete(unit, t, axis=0)) for t in tests]
    >>> idx = np.argsort(rng.random((5, 100)), axis=1)[:, :20]
    >>> ests = learned_random_estimates(["random_cv", "random_calibrated"], idx, unit, fitted, tests)
    >>> sorted(ests), ests["random_cv"].shape
    (['random_calibrated', 'random_cv'], (5, 8))
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from lmms_nb.lite_selection._heldout import FoldEstimators

__all__ = ["RANDOM_LEARNED", "learned_random_estimates"]

#: the methods `learned_random_estimates` computes
RANDOM_LEARNED = ("random_irt", "random_calibrated", "random_corrected", "random_cv")


def learned_random_estimates(wanted: Collection[str], idx: np.ndarray, unit: np.ndarray,
                             fitted: list[FoldEstimators], fold_tests: list[np.ndarray]) -> dict[str, np.ndarray]:
    """For each method of `RANDOM_LEARNED` in `wanted`: full-score estimates in [0, 1] (draws x models) from the
    random subsets `idx` (draws x k doc indices) of `unit` (models x docs), each model estimated by the fold
    (`fitted[f]`, trained without `fold_tests[f]`) that held it out."""
    n_random, k = idx.shape
    n_models, n = unit.shape
    out: dict[str, np.ndarray] = {}
    if "random_irt" in wanted:
        masks = np.zeros((n_random, n), dtype=bool)
        np.put_along_axis(masks, idx, True, axis=1)
        ests = np.zeros((n_random, n_models))
        for f, test in enumerate(fold_tests):
            rows = np.repeat(unit[test], n_random, axis=0)  # model-major: row = model * n_random + draw
            got = fitted[f].gp_irt(rows, np.tile(masks, (len(test), 1)), np.tile(masks, (len(test), 1)))
            ests[:, test] = got.reshape(len(test), n_random).T
        out["random_irt"] = ests
    if "random_calibrated" in wanted:
        subset_means = unit[:, idx].mean(axis=2).T  # draws x models
        ests = np.zeros((n_random, n_models))
        for f, test in enumerate(fold_tests):
            train = np.delete(np.arange(n_models), test)
            ests[:, test] = fitted[f].calibrated(subset_means[:, train], subset_means[:, test])
        out["random_calibrated"] = ests
    if "random_corrected" in wanted:
        ests = np.zeros((n_random, n_models))
        for f, test in enumerate(fold_tests):
            for d in range(n_random):
                ests[d, test] = fitted[f].corrected(idx[d], np.ones(k), unit[test][:, idx[d]])
        out["random_corrected"] = ests
    if "random_cv" in wanted:
        masks = np.zeros((n_random, n), dtype=bool)
        np.put_along_axis(masks, idx, True, axis=1)
        ests = np.zeros((n_random, n_models))
        for f, test in enumerate(fold_tests):
            for i in test:
                ests[:, i] = fitted[f].control_variate(np.broadcast_to(unit[i], masks.shape), masks)
        out["random_cv"] = ests
    return out
