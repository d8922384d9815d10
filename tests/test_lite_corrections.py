"""Linear correction and control-variate estimates: against scikit-learn's RidgeCV and explicit sums."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import RidgeCV

from lmms_nb.lite_selection import subset_vs_random
from lmms_nb.lite_selection._corrections import RIDGE_ALPHAS, linear_correction, neighbour_control_variate
from lmms_nb.logs.schema import conform


def population(n_models: int = 30, n_docs: int = 400, seed: int = 0) -> np.ndarray:
    """0/1 correctness with a skill per model, a difficulty per doc and two kinds of docs models differ on."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(size=(n_models, 1))
    style = rng.normal(size=(n_models, 1))
    kind = rng.random(n_docs) < 0.5
    logit = 1.5 * skill - rng.normal(scale=1.5, size=n_docs) + np.where(kind, style, -style)
    return (rng.random((n_models, n_docs)) < 1 / (1 + np.exp(-logit))).astype(float)


def test_linear_correction_is_ridge_with_leave_one_out_penalty_as_scikit_learn_fits_it() -> None:
    scores = population()
    train, new = scores[:24], scores[24:]
    cols = np.arange(0, 400, 9)
    weights = np.random.default_rng(1).uniform(1, 5, len(cols))
    w = weights / weights.sum()
    gap = train.mean(1) - train[:, cols] @ w
    # RidgeCV's default leave-one-out (efficient GCV mode) over the same grid, intercept fitted
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, fit_intercept=True).fit(train[:, cols], gap)
    expected = new[:, cols] @ w + ridge.predict(new[:, cols])
    np.testing.assert_allclose(linear_correction(train, cols, weights, new[:, cols]), expected, atol=1e-9)


def test_linear_correction_removes_a_subset_bias_that_the_training_models_show() -> None:
    scores = population(n_models=60, seed=2)
    train, new = scores[:30], scores[30:]
    p = train.mean(0)
    # 40 of the docs the training models found harder than the median: a biased subset
    hard = np.random.default_rng(0).choice(np.nonzero(p < np.median(p))[0], 40, replace=False)
    raw = new[:, hard].mean(1)
    corrected = linear_correction(train, hard, np.ones(40), new[:, hard])
    full = new.mean(1)
    assert np.abs(raw - full).mean() > 0.1
    assert np.abs(corrected - full).mean() < 0.5 * np.abs(raw - full).mean()
    with pytest.raises(ValueError):
        linear_correction(train, hard, np.ones(3), new[:, hard])


def test_control_variate_matches_its_definition_and_is_exact_on_the_full_set() -> None:
    scores = population(seed=3)
    train, new = scores[:20], scores[20:]
    rng = np.random.default_rng(0)
    masks = rng.random((len(new), 400)) < 0.1
    est = neighbour_control_variate(train, masks, new, beta=30.0)
    for r in range(len(new)):
        s = masks[r]
        agree = (train[:, s] == new[r, s]).mean(1)  # 0/1 scores: one minus the mean squared difference
        sim = np.exp(30.0 * agree)
        pred = (sim / sim.sum()) @ train
        assert est[r] == pytest.approx(pred.mean() + (new[r, s] - pred[s]).mean())
    # every doc answered: the correction is the whole prediction error, so the estimate is the full score
    full_est = neighbour_control_variate(train, np.ones(400, bool), new)
    np.testing.assert_allclose(full_est, new.mean(1))
    # unanswered docs may hold NaN: they are never read
    holes = np.where(masks, new, np.nan)
    np.testing.assert_allclose(neighbour_control_variate(train, masks, holes, beta=30.0), est)


def test_control_variate_beats_the_plain_mean_on_random_subsets_of_held_out_models() -> None:
    scores = population(n_models=40, seed=4)
    train, new = scores[:30], scores[30:]
    rng = np.random.default_rng(1)
    plain, cv = [], []
    for _ in range(60):
        mask = np.zeros(400, bool)
        mask[rng.choice(400, 40, replace=False)] = True
        plain.append(np.abs(new[:, mask].mean(1) - new.mean(1)).mean())
        cv.append(np.abs(neighbour_control_variate(train, mask, new) - new.mean(1)).mean())
    assert np.mean(cv) < 0.95 * np.mean(plain)  # measured: 0.052 vs 0.058


def test_subset_vs_random_corrects_each_model_on_the_others_only() -> None:
    scores = population(n_models=12, n_docs=300, seed=5)
    samples = conform(pl.DataFrame({"model": np.repeat([f"m{i:02d}" for i in range(12)], 300), "task": "t",
                                    "doc_id": np.tile(np.arange(300), 12), "acc": scores.ravel()}))
    cols = np.argsort(scores.mean(0))[100:130]
    weights = np.arange(1.0, 31.0)
    out = subset_vs_random(samples, doc_ids=cols.tolist(), weights=weights.tolist(), n_random=40)
    assert out["estimator"].to_list() == ["plain mean", "weighted mean", "weighted mean + linear correction"]
    loo = [linear_correction(np.delete(scores, i, 0), cols, weights, scores[i:i + 1, cols])[0] for i in range(12)]
    row = out.row(2, named=True)
    assert row["mae_points"] == pytest.approx(100 * np.abs(np.array(loo) - scores.mean(1)).mean())
    # five models are too few to learn a correction from the others: only the two plain estimators
    few = subset_vs_random(samples.filter(pl.col("model") < "m05"), doc_ids=cols.tolist(), n_random=10)
    assert few["estimator"].to_list() == ["plain mean", "weighted mean"]


def test_lite_estimates_correct_a_model_that_answered_only_the_subset() -> None:
    from lmms_nb.lite_selection import lite_estimates

    scores = population(n_models=9, n_docs=200, seed=6)
    cols = np.arange(0, 200, 8)
    names = [f"m{i}" for i in range(9)]
    complete = pl.DataFrame({"model": np.repeat(names[:8], 200), "task": "t",
                             "doc_id": np.tile(np.arange(200), 8), "acc": scores[:8].ravel()})
    # the new model ran the Lite subset only
    new = pl.DataFrame({"model": names[8], "task": "t", "doc_id": cols, "acc": scores[8, cols]})
    est = lite_estimates(pl.concat([complete, new]), doc_ids=cols.tolist()).sort("model")
    row = est.row(8, named=True)
    assert row["full_points"] is None and row["lite_corrected_error_points"] is None
    assert row["lite_corrected_points"] == pytest.approx(
        100 * linear_correction(scores[:8], cols, np.ones(len(cols)), scores[8:, cols])[0])
    # a complete model is corrected on the 7 other complete ones, never on itself
    assert est["lite_corrected_points"][0] == pytest.approx(
        100 * linear_correction(scores[1:8], cols, np.ones(len(cols)), scores[:1, cols])[0])
    # four complete models besides the one estimated are too few to learn from: no corrected estimate
    few = lite_estimates(complete.filter(pl.col("model") < "m5"), doc_ids=cols.tolist())
    assert few["lite_corrected_points"].null_count() == 5
