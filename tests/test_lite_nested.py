"""The estimator chosen by nested cross-validation over models (`_nested.choose_estimator`, lite_fidelity's
``chosen`` row, `build_difficulty_subset(estimator="auto")`): the pick is made from training models alone, its
errors are what the candidates really do on inner held-out models, and what is picked is what runs."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from _irt import irt_population, samples_of

from lmms_nb.lite_selection import (build_difficulty_subset, lite_fidelity, load_difficulty_subset,
                                    save_difficulty_subset, subset_summary)
from lmms_nb.lite_selection._corrections import linear_correction
from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
from lmms_nb.lite_selection._nested import CANDIDATES, choose_estimator, heldout_estimates


def digits_population(n_docs: int = 400) -> np.ndarray:
    """Correctness (models x docs) of 12 real scikit-learn classifiers on held-out digits images."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
    from sklearn.tree import DecisionTreeClassifier

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    test, train = order[:n_docs], order[n_docs:]
    models = [(LogisticRegression(C=c, max_iter=300), n) for c in (1e-4, 1e-2, 1.0) for n in (60, 600)]
    models += [(KNeighborsClassifier(k), n) for k, n in ((1, 600), (9, 100))]
    models += [(DecisionTreeClassifier(max_depth=d, random_state=0), 600) for d in (4, 8)]
    models += [(GaussianNB(), 600), (NearestCentroid(), 600)]
    rows = []
    for est, n in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # NearestCentroid on constant border pixels
            est.fit(digits.data[train[:n]], digits.target[train[:n]])
        rows.append(est.predict(digits.data[test]) == digits.target[test])
    return np.asarray(rows, dtype=np.float64)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return digits_population()


def test_inner_errors_are_the_candidates_errors_on_inner_held_out_models(digits) -> None:
    k = 40
    choice = choose_estimator(digits, k, seed=0, n_draws=6)
    # leave-one-out by default: each candidate fitted on all earlier models but one, as close as inner folds get
    # to the subset a new model meets (built on every earlier model)
    assert set(choice.inner_mae) == set(CANDIDATES) and choice.n_models == 12 and choice.folds == 12
    # replay: each inner fold fits every candidate on the other models and scores its own model
    err, sq = dict.fromkeys(CANDIDATES, 0.0), dict.fromkeys(CANDIDATES, 0.0)
    for f, test in enumerate(model_folds(12, "loo")):
        fold = FoldEstimators(np.delete(digits, test, axis=0))
        for c in CANDIDATES:
            est = heldout_estimates(fold, c, k, digits[test], n_draws=6, rng=np.random.default_rng([0, k, f]))
            err[c] += np.abs(est - digits[test].mean(axis=1)).mean(axis=0).sum()
            sq[c] += ((est - digits[test].mean(axis=1)) ** 2).mean(axis=0).sum()
    assert {c: 100 * e / 12 for c, e in err.items()} == pytest.approx(choice.inner_mae)
    assert {c: 100 * np.sqrt(e / 12) for c, e in sq.items()} == pytest.approx(choice.inner_rmse)
    # the criterion is the mean absolute error, the figure a user compares against
    assert choice.method == min(choice.inner_mae, key=choice.inner_mae.get) and not choice.kept_on_a_near_tie
    assert choice.method in choice.reason and "each held out in turn" in choice.reason
    assert "lowest error on earlier models" in choice.reason  # what _verdict reads in subsets saved before the flag
    # asked for k folds, it uses them (and says so)
    five = choose_estimator(digits, k, seed=0, n_draws=6, folds=5)
    assert five.folds == 5 and "held out by 5 folds" in five.reason and "in turn" not in five.reason
    assert "lowest error on earlier models" in five.reason
    # too few models to compare: the default, said so
    few = choose_estimator(digits[:4], k)
    assert few.inner_rmse == few.inner_mae == {} and "too few" in few.reason


def test_many_earlier_models_are_held_out_by_ten_folds_not_one_by_one(digits, monkeypatch) -> None:
    import lmms_nb.lite_selection._nested as nested

    monkeypatch.setattr(nested, "LOO_MAX_MODELS", 11)  # 12 models: one more than leave-one-out is used for
    assert choose_estimator(digits, 40, n_draws=2).folds == nested.INNER_FOLDS == 10
    assert choose_estimator(digits[:11], 40, n_draws=2).folds == 11


def cluster_population(n_models: int = 16, n_clusters: int = 40, size: int = 10) -> np.ndarray:
    """Scores (models x docs) where the docs come in clusters every model answers alike: one doc per cluster,
    weighted by the cluster's size, gives every model's full score exactly (anchor points' ideal case)."""
    rng = np.random.default_rng(4)
    skill = rng.normal(size=n_models)
    per_cluster = (rng.random((n_models, n_clusters)) < 1 / (1 + np.exp(rng.normal(size=n_clusters)
                                                                           - skill[:, None]))).astype(float)
    return np.repeat(per_cluster, size, axis=1)[:, rng.permutation(n_clusters * size)]


def test_the_choice_goes_to_the_candidate_that_is_clearly_closer(digits) -> None:
    k = 40
    # real classifiers: anchor points miss some models by far (their docs are few and fixed), the control
    # variate on a random spread sample does not
    choice = choose_estimator(digits[:-2], k, n_draws=6)
    assert choice.method == "spread_cv" and choice.inner_mae["spread_cv"] < 0.75 * choice.inner_mae[
        "anchor_corrected"], choice.reason
    # docs in clusters every model answers alike: one anchor per cluster is exact, random samples are not
    clusters = cluster_population()
    earlier, new = clusters[:-2], clusters[-2:]
    choice = choose_estimator(earlier, k, n_draws=6)
    assert choice.method == "anchor_corrected", choice.reason
    assert choice.inner_mae["anchor_corrected"] < 0.2 * choice.inner_mae["spread_cv"]
    # and on models the choice never saw it is the closer one too (exact: 14 earlier models tell the clusters apart)
    fold = FoldEstimators(earlier)
    mae = {c: np.abs(heldout_estimates(fold, c, k, new, n_draws=20, rng=np.random.default_rng(1))
                     - new.mean(axis=1)).mean() for c in CANDIDATES}
    assert mae["anchor_corrected"] < 1e-9 < 0.01 < mae["spread_cv"], mae


def per_model_errors(scores: np.ndarray, k: int, n_draws: int) -> dict[str, np.ndarray]:
    """Each candidate's absolute error on each model held out in turn (leave-one-out, mean over draws), replayed."""
    err = {c: np.zeros(len(scores)) for c in CANDIDATES}
    for f, test in enumerate(model_folds(len(scores), "loo")):
        fold = FoldEstimators(np.delete(scores, test, axis=0))
        for c in CANDIDATES:
            est = heldout_estimates(fold, c, k, scores[test], n_draws=n_draws, rng=np.random.default_rng([0, k, f]))
            err[c][test] = np.abs(est - scores[test].mean(axis=1)).mean(axis=0)
    return err


def test_a_near_tie_keeps_the_design_based_candidate() -> None:
    from scipy import stats

    k = 40
    # clusters with 2% of answers flipped: anchor points are still ahead on the inner folds, but by less than the
    # inner folds' own noise (one standard error of the paired per-model difference)
    clusters = cluster_population()
    noisy = np.where(np.random.default_rng(7).random(clusters.shape) < 0.02, 1 - clusters, clusters)[:-2]
    choice = choose_estimator(noisy, k, n_draws=6)
    err = per_model_errors(noisy, k, 6)
    se = 100 * stats.sem(err["spread_cv"] - err["anchor_corrected"])
    assert choice.inner_diff_se == pytest.approx({"anchor_corrected": se})
    ahead_by = choice.inner_mae["spread_cv"] - choice.inner_mae["anchor_corrected"]
    assert 0 < ahead_by <= se, (ahead_by, se)  # the case the rule is for: lower, within one standard error
    assert choice.method == "spread_cv" and choice.kept_on_a_near_tie
    assert f"lower by only {ahead_by:.2f} points, within one standard error ({se:.2f})" in choice.reason
    # the rule keeps the first candidate, whichever it is: listed first, anchor_corrected is kept (here the lowest)
    first = choose_estimator(noisy, k, n_draws=6, candidates=("anchor_corrected", "spread_cv"))
    assert first.method == "anchor_corrected" and not first.kept_on_a_near_tie
    # clear of one standard error, the lower one wins and the reason says by how much it is clear
    clean = choose_estimator(clusters[:-2], k, n_draws=6)
    assert clean.method == "anchor_corrected" and not clean.kept_on_a_near_tie
    assert clean.inner_mae["spread_cv"] - clean.inner_mae["anchor_corrected"] > clean.inner_diff_se["anchor_corrected"]
    se = clean.inner_diff_se["anchor_corrected"]
    assert f"ahead of spread_cv by more than one standard error of the paired difference ({se:.2f})" in clean.reason
    assert "lowest error on earlier models" in clean.reason


def test_the_pick_never_reads_the_held_out_models_answers() -> None:
    correct = irt_population(12, 300, seed=3)
    emb = (np.arange(300), np.random.default_rng(0).normal(size=(300, 4)))
    kw = dict(budgets=[30], n_random=8, folds=4, seed=0, methods=["random", "chosen"])
    before = lite_fidelity(samples_of(correct), emb, **kw)
    held_out = model_folds(12, 4, seed=0)[0]
    perturbed = correct.copy()
    perturbed[held_out] = 1.0 - perturbed[held_out]  # every answer of fold 0's held-out models flipped
    after = lite_fidelity(samples_of(perturbed), emb, **kw)
    # fold 0 picks from its training models alone: the same pick with the same inner errors
    assert after.choices[30][0] == before.choices[30][0]
    # the other folds train on the flipped models, so their inner errors move: the check can tell
    assert any(a.inner_rmse != b.inner_rmse for a, b in zip(after.choices[30][1:], before.choices[30][1:], strict=True))


def test_chosen_rows_are_each_folds_pick_applied_to_its_held_out_models(digits) -> None:
    k, n_random = 40, 10
    samples = samples_of(digits)
    emb = (np.arange(digits.shape[1]), np.random.default_rng(0).normal(size=(digits.shape[1], 4)))
    fid = lite_fidelity(samples, emb, budgets=[k], n_random=n_random, folds=4, seed=0,
                        methods=["random", "difficulty_cv", "chosen"])
    # difficulty_cv's and spread_cv's own generators, drawn fold after fold
    rngs = {"difficulty_cv": np.random.default_rng([0, k, 2]), "spread_cv": np.random.default_rng([0, k, 4])}
    ests = np.zeros((n_random, len(digits)))
    for f, test in enumerate(model_folds(len(digits), 4, seed=0)):
        fold = FoldEstimators(np.delete(digits, test, axis=0))
        assert fid.choices[k][f] == choose_estimator(fold.train, k)
        drawn = {m: heldout_estimates(fold, m, k, digits[test], rng=rng, n_draws=n_random) for m, rng in rngs.items()}
        drawn["anchor_corrected"] = heldout_estimates(fold, "anchor_corrected", k, digits[test], n_draws=n_random)
        ests[:, test] = drawn[fid.choices[k][f].method]
    mae = 100 * np.abs(ests - digits.mean(axis=1)).mean(axis=1)
    got = fid.draws.filter(pl.col("method") == "chosen").sort("draw")["mae_points"].to_numpy()
    np.testing.assert_allclose(got, mae, rtol=1e-9)


def test_builder_uses_and_names_the_picked_estimator(digits, tmp_path) -> None:
    logs = samples_of(digits[:11])  # the 12th model is new
    auto = build_difficulty_subset(logs, 40)
    pick = choose_estimator(digits[:11], 40)
    assert auto.meta["method"] == pick.method and auto.meta["estimator_reason"] == pick.reason
    assert pick.reason in subset_summary(auto)
    anchors = build_difficulty_subset(logs, 40, estimator="anchor_corrected")
    assert anchors.meta["method"] == "anchor_corrected" and "anchor points" in subset_summary(anchors)
    cols = np.searchsorted(anchors.all_doc_ids, anchors.doc_ids)
    new = digits[11]
    assert anchors.estimate(new[cols]) == pytest.approx(
        linear_correction(digits[:11], cols, anchors.design_weights, new[None, cols])[0])
    assert abs(anchors.estimate(new[cols]) - new.mean()) < 0.1
    # the pick travels with the subset: read back from its file, it estimates the same way
    back = load_difficulty_subset(save_difficulty_subset(anchors, tmp_path / "anchors.npz"))
    assert back.meta == anchors.meta and back.estimate(new[cols]) == pytest.approx(anchors.estimate(new[cols]))
    residual = build_difficulty_subset(logs, 40, estimator="residual_cv")
    design = FoldEstimators(digits[:11]).residual_design(40)
    np.testing.assert_array_equal(residual.doc_ids, design.draw(np.random.default_rng([0, 40])))
    assert "prediction-error strata" in subset_summary(residual)
    with pytest.raises(ValueError, match="estimator must be 'auto' or one of"):
        build_difficulty_subset(logs, 40, estimator="irt")


def test_residual_strata_follow_the_prediction_errors_and_keep_every_doc_reachable(digits) -> None:
    from lmms_nb.lite_selection._residual_design import RESIDUAL_FLOOR, doc_residuals, residual_design

    groups = np.array(["low" if j % 3 else "high" for j in range(digits.shape[1])])
    design = residual_design(digits, 40, groups)
    assert design.alloc.sum() == 40 and (design.alloc <= design.sizes).all()
    # each stratum holds one category's docs
    assert all(len(np.unique(groups[design.strata == h])) == 1 for h in range(len(design.sizes)))
    r = np.maximum(doc_residuals(digits, groups), RESIDUAL_FLOOR)
    rate = (design.alloc / design.sizes)[design.strata]  # each doc's chance of being drawn
    # Neyman: the docs the predictions miss most are drawn more often than the ones they miss least ...
    assert rate[r >= np.quantile(r, 0.9)].mean() > 2 * rate[r <= np.quantile(r, 0.1)].mean()
    # ... yet docs every earlier model got right stay reachable (a new model can slip there)
    assert (rate[digits.min(axis=0) == 1] > 0).all()
    # and the design's estimate of a model's full score from its own answers on a draw is unbiased on average
    y = digits[0]
    rng = np.random.default_rng(0)
    est = np.mean([design.doc_weights(design.draw(rng)) @ y + (design.impute * (design.alloc == 0)
                   * design.sizes / design.sizes.sum()).sum() for _ in range(400)])
    assert est == pytest.approx(y.mean(), abs=0.01)


def test_chosen_falls_back_to_difficulty_cv_when_a_fold_has_too_few_models_to_choose() -> None:
    # 6 models, 5 folds: every fold trains on 4 or 5 models, fewer than choose_estimator needs to compare
    correct = irt_population(6, 60, seed=1)
    emb = (np.arange(60), np.random.default_rng(0).normal(size=(60, 4)))
    fid = lite_fidelity(samples_of(correct), emb, budgets=[12], n_random=6, folds=5, seed=0,
                        methods=["random", "chosen", "difficulty_cv"])
    assert [c.method for c in fid.choices[12]] == ["difficulty_cv"] * 5
    assert all("too few" in c.reason for c in fid.choices[12])
    # the fallback runs difficulty_cv itself: the same draws as its own row
    rows = fid.draws.filter(pl.col("method").is_in(["chosen", "difficulty_cv"])).sort("method", "draw")
    chosen, cv = (rows.filter(pl.col("method") == m)["mae_points"].to_numpy() for m in ("chosen", "difficulty_cv"))
    np.testing.assert_allclose(chosen, cv, rtol=1e-12)
    # asked for alone (no difficulty_cv row) it runs too
    alone = lite_fidelity(samples_of(correct), emb, budgets=[12], n_random=6, folds=5, seed=0,
                          methods=["random", "chosen"])
    assert set(alone.summary["method"]) == {"random", "chosen"}
    np.testing.assert_allclose(alone.draws.filter(pl.col("method") == "chosen").sort("draw")["mae_points"].to_numpy(),
                               chosen, rtol=1e-12)


def test_residual_design_with_many_categories_keeps_every_doc_reachable_within_the_budget() -> None:
    from lmms_nb.lite_selection._difficulty_design import difficulty_design
    from lmms_nb.lite_selection._residual_design import residual_design

    correct = irt_population(12, 1000, seed=2)
    groups = np.repeat([f"c{i:02d}" for i in range(20)], 50)
    k = 50  # 5%: 2.5 docs per category
    design = residual_design(correct, k, groups)
    assert design.alloc.sum() == k and (design.alloc >= 1).all() and (design.alloc <= design.sizes).all()
    rate = (design.alloc / design.sizes)[design.strata]
    assert (rate > 0).all()
    draw = design.draw(np.random.default_rng(0))
    assert len(draw) == k and len(np.unique(draw)) == k
    # the difficulty strata (difficulty, difficulty_cv) share the allocation: no stratum left empty either
    for kk in (10, 50):
        d = difficulty_design(correct, kk)
        assert d.alloc.sum() == kk and (d.alloc[d.sizes > 0] >= 1).all()


def test_memoised_fits_give_the_estimates_of_fitting_every_time() -> None:
    # nested folds refit on the same training models many times; the memo (_memo) must change nothing but time
    from lmms_nb.lite_selection._memo import caching

    correct = irt_population(8, 160, seed=8)
    emb = (np.arange(160), np.random.default_rng(0).normal(size=(160, 4)))
    kw = dict(budgets=[16, 24], n_random=3, folds="loo", seed=0,
              methods=["random", "residual_cv", "spread_cv", "difficulty_cv", "anchor_corrected", "chosen"])
    with caching(False):
        uncached = lite_fidelity(samples_of(correct), emb, **kw)
    cached = lite_fidelity(samples_of(correct), emb, **kw)
    assert cached.choices == uncached.choices
    assert cached.draws.equals(uncached.draws) and cached.estimates.equals(uncached.estimates)


def test_at_the_fewest_models_to_choose_the_pick_is_by_mean_absolute_error_alone(digits) -> None:
    # 6 earlier models: each held out in turn, candidates fitted on 5. No guard on squared error or the largest
    # miss: the pick is the lowest inner MAE even where the root mean squared error ranks the candidates the
    # other way (one large miss among 6); the reason shows both figures so a user can see such a split
    from lmms_nb.lite_selection._nested import MIN_MODELS_TO_CHOOSE

    few = digits[:MIN_MODELS_TO_CHOOSE]
    choice = choose_estimator(few, 40, n_draws=4)
    assert choice.folds == choice.n_models == MIN_MODELS_TO_CHOOSE
    assert choice.method == min(choice.inner_mae, key=lambda c: (choice.inner_mae[c], CANDIDATES.index(c)))
    for c in CANDIDATES:
        assert f"{choice.inner_mae[c]:.2f}" in choice.reason and f"{choice.inner_rmse[c]:.2f}" in choice.reason
    assert choose_estimator(digits[:MIN_MODELS_TO_CHOOSE - 1], 40).inner_mae == {}
