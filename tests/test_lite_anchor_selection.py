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
    # over several penalties: each refit picks its own (the held-out model has no say in it), so the error is
    # that of true refits, not the closed form's at the penalty chosen on every model
    refitted = [linear_correction(np.delete(scores, j, axis=0), docs, weights, scores[j, docs][None])[0]
                for j in range(len(scores))]
    assert correction_loo_error(scores, docs, weights) == pytest.approx(np.mean((np.asarray(refitted) - full) ** 2))
    # 3 models: refits on 2 fall back to the mean gap, and so does the error
    three = scores[:3]
    fallback = [(three[j, docs] @ weights / weights.sum()) + np.mean(np.delete(three, j, axis=0).mean(axis=1)
                - np.delete(three, j, axis=0)[:, docs] @ weights / weights.sum()) for j in range(3)]
    assert correction_loo_error(three, docs, weights) == pytest.approx(np.mean((np.asarray(fallback)
                                                                                - three.mean(axis=1)) ** 2))
    with pytest.raises(ValueError, match="at least 3"):
        correction_loo_error(scores[:2], docs, weights)


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
    np.testing.assert_array_equal(fold.selected_anchors(k)[0], train_docs)
    est = heldout_estimates(fold, "anchor_corrected", k, scores[-2:])
    np.testing.assert_allclose(est[0], linear_correction(scores[:-2], train_docs, train_w, scores[-2:, train_docs]))


def test_a_held_out_models_answers_off_the_anchors_change_nothing() -> None:
    scores = irt_population(14, 300, seed=7)
    fold = FoldEstimators(scores[:-1])
    docs, _ = fold.selected_anchors(30)
    flipped = scores[-1:].copy()
    off = np.setdiff1d(np.arange(scores.shape[1]), docs)
    flipped[:, off] = 1.0 - flipped[:, off]
    assert heldout_estimates(fold, "anchor_corrected", 30, flipped) == pytest.approx(
        heldout_estimates(fold, "anchor_corrected", 30, scores[-1:]))


def test_the_anchor_baselines_keep_the_published_anchor_points() -> None:
    # `anchor` and `anchor_irt` are Vivek et al.'s method (k-means, 3 starts); only anchor_corrected uses the
    # selected set
    from _irt import samples_of

    from lmms_nb.lite_selection import lite_fidelity
    from lmms_nb.lite_selection._heldout import model_folds

    scores = irt_population(12, 240, seed=9)
    emb = (np.arange(240), np.random.default_rng(0).normal(size=(240, 4)))
    fid = lite_fidelity(samples_of(scores), emb, budgets=[24], n_random=2, folds=3, seed=2,
                        methods=["random", "anchor", "anchor_corrected"])
    got = {(m, model): e for m, model, e in fid.estimates.select("method", "model", "estimate_points").iter_rows()}
    for test in model_folds(12, 3, seed=2):
        train = np.delete(scores, test, axis=0)
        published = anchor_points(train, 24, seed=2)
        selected = selected_anchor_points(train, 24, seed=2)
        expected = {"anchor": scores[np.ix_(test, published[0])] @ published[1],
                    "anchor_corrected": linear_correction(train, *selected, scores[np.ix_(test, selected[0])])}
        for method, values in expected.items():
            np.testing.assert_allclose([got[method, fid.models[i]] / 100 for i in test], values, rtol=1e-12)


def test_selected_anchor_points_rejects_no_sets_and_falls_back_below_three_models() -> None:
    scores = irt_population(6, 200, seed=10)
    with pytest.raises(ValueError, match="n_sets"):
        selected_anchor_points(scores, 10, n_sets=0)
    # two models: no leave-one-out error to compare sets by, so the published 3-start set
    for got, expected in zip(selected_anchor_points(scores[:2], 10, seed=4), anchor_points(scores[:2], 10, seed=4),
                             strict=True):
        np.testing.assert_array_equal(got, expected)
