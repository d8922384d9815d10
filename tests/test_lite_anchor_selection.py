"""Anchor sets chosen by how well their linear correction predicts models it was not fitted on
(`_anchors.selected_anchor_points`, `_corrections.correction_loo_error`), as `anchor_corrected` uses them."""

from __future__ import annotations

import numpy as np
import pytest

from _irt import irt_population

from lmms_nb.lite_selection._anchors import ANCHOR_SETS, anchor_points, selected_anchor_points
from lmms_nb.lite_selection._corrections import correction_loo_error, linear_correction
from lmms_nb.lite_selection._heldout import FoldEstimators
from lmms_nb.lite_selection._nested import heldout_estimates


def test_the_leave_one_out_error_is_that_of_corrections_refitted_without_each_model() -> None:
    scores = irt_population(14, 300, seed=5)
    docs, weights = anchor_points(scores, 25)
    full = scores.mean(axis=1)
    for alpha in (1.0, 30.0):
        refitted = [linear_correction(np.delete(scores, j, axis=0), docs, weights, scores[j, docs][None],
                                      alphas=[alpha])[0] for j in range(len(scores))]
        assert correction_loo_error(scores, docs, weights, alphas=[alpha]) == pytest.approx(
            np.mean((np.asarray(refitted) - full) ** 2), rel=1e-9)
    # over several penalties: the best one's error, as linear_correction picks it
    assert correction_loo_error(scores, docs, weights) == pytest.approx(
        min(correction_loo_error(scores, docs, weights, alphas=[a]) for a in (1.0, 3.0, 10.0, 30.0, 100.0)))


def test_the_selected_anchor_set_is_the_one_whose_correction_predicts_held_out_models_best() -> None:
    scores = irt_population(16, 400, seed=6)
    k = 30
    sets = [anchor_points(scores, k, seed=1000 * s, n_init=1) for s in range(ANCHOR_SETS)]
    errors = [correction_loo_error(scores, d, w) for d, w in sets]
    assert len(set(np.round(errors, 12))) > 1  # the k-means seeds do give different sets
    docs, weights = selected_anchor_points(scores, k)
    best = sets[int(np.argmin(errors))]
    np.testing.assert_array_equal(docs, best[0])
    np.testing.assert_array_equal(weights, best[1])
    assert len(docs) == k and weights.sum() == pytest.approx(1.0)
    # anchor_corrected runs on that set, fitted on the training models only
    fold = FoldEstimators(scores[:-2])
    train_docs, train_w = selected_anchor_points(scores[:-2], k)
    np.testing.assert_array_equal(fold.anchors(k)[0], train_docs)
    est = heldout_estimates(fold, "anchor_corrected", k, scores[-2:])
    np.testing.assert_allclose(est[0], linear_correction(scores[:-2], train_docs, train_w, scores[-2:, train_docs]))


def test_a_held_out_models_answers_off_the_anchors_change_nothing() -> None:
    scores = irt_population(14, 300, seed=7)
    fold = FoldEstimators(scores[:-1])
    docs, _ = fold.anchors(30)
    flipped = scores[-1:].copy()
    off = np.setdiff1d(np.arange(scores.shape[1]), docs)
    flipped[:, off] = 1.0 - flipped[:, off]
    assert heldout_estimates(fold, "anchor_corrected", 30, flipped) == pytest.approx(
        heldout_estimates(fold, "anchor_corrected", 30, scores[-1:]))
