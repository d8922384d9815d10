"""IRT, anchor points and held-out estimation: on populations simulated from known item parameters."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lmms_nb.lite_selection import anchor_points, fidelity_verdicts, fit_irt, lite_fidelity, subset_vs_random
from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
from lmms_nb.logs.schema import conform


def simulate(n_models: int, n_docs: int, seed: int = 0, log_a: float = 0.0):
    """Correctness drawn from a 2PL model with known abilities, discriminations and difficulties."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(size=n_models)
    a = np.exp(rng.normal(loc=log_a, scale=0.3, size=n_docs))
    b = rng.normal(scale=1.5, size=n_docs)
    p = 1 / (1 + np.exp(-(a * skill[:, None] - b)))
    return (rng.random((n_models, n_docs)) < p).astype(float), skill, a, b


def test_fit_irt_recovers_known_parameters() -> None:
    correct, skill, _, b = simulate(60, 400)
    irt = fit_irt(correct)
    assert np.corrcoef(irt.difficulty, b)[0, 1] > 0.9
    assert np.corrcoef(irt.abilities[:, 0], skill)[0, 1] > 0.95
    # abilities are standardised, so a new model's N(0, 1) prior is the fitted models' own spread
    assert irt.abilities.mean() == pytest.approx(0, abs=1e-9) and irt.abilities.std() == pytest.approx(1)
    # a model that answered everything: its predicted score is close to its real one
    full = irt.prob(irt.ability(correct, np.ones(400, bool))).mean(1)
    assert np.abs(full - correct.mean(1)).max() < 0.03
    with pytest.raises(ValueError, match="scores in \\[0, 1\\]"):
        fit_irt(correct * 2)
    with pytest.raises(ValueError, match="at least 2 models"):
        fit_irt(correct[:1])


def test_p_irt_beats_the_subset_mean_on_models_it_was_not_fitted_on() -> None:
    # docs that discriminate sharply: most of a random subset's error is then which docs it drew (easy or
    # hard ones), which IRT knows from the training models; the coin-flip part no estimator can remove
    correct, *_ = simulate(70, 1000, seed=1, log_a=1.0)
    train, test = correct[:50], correct[50:]
    irt = fit_irt(train)
    rng = np.random.default_rng(0)
    err_irt, err_mean = [], []
    for _ in range(40):
        mask = np.zeros(1000, bool)
        mask[rng.choice(1000, 50, replace=False)] = True
        err_irt.append(np.abs(irt.p_irt(test, mask) - test.mean(1)).mean())
        err_mean.append(np.abs(test[:, mask].mean(1) - test.mean(1)).mean())
    # even with the true item parameters p-IRT is only ~14% better here (the subset's coin flips limit how well
    # 50 answers pin the ability down); fitted on 50 models it keeps most of that
    assert np.mean(err_irt) < 0.93 * np.mean(err_mean)


def test_anchor_points_pick_one_doc_per_answer_pattern() -> None:
    # 3 patterns of answers over 4 models, repeated 10, 20 and 30 times: 3 anchors weighted 1/6, 1/3, 1/2
    patterns = np.array([[1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=float).T
    scores = np.repeat(patterns, [10, 20, 30], axis=1)
    docs, weights = anchor_points(scores, 3)
    assert len(set((scores[:, docs].T @ [1, 2, 4, 8]).tolist())) == 3
    assert sorted(weights.tolist()) == pytest.approx([1 / 6, 1 / 3, 1 / 2])
    # the anchor estimate is then exact for any model that follows the patterns
    np.testing.assert_allclose(scores[:, docs] @ weights, scores.mean(1))
    # a budget above the number of patterns goes to the largest clusters, and weights still sum to 1
    docs, weights = anchor_points(scores, 5)
    assert len(set(docs.tolist())) == 5 and weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(scores[:, docs] @ weights, scores.mean(1))
    with pytest.raises(ValueError, match="between 1 and the number of docs"):
        anchor_points(scores, 61)


def test_model_folds() -> None:
    folds = model_folds(11, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(11)) and len(folds) == 5
    assert [len(f) for f in model_folds(3, 5)] == [1, 1, 1]
    with pytest.raises(ValueError, match="folds must be"):
        model_folds(5, 1)


def samples_of(correct: np.ndarray) -> pl.DataFrame:
    n_models, n_docs = correct.shape
    return conform(pl.DataFrame({"model": np.repeat([f"m{i:02d}" for i in range(n_models)], n_docs), "task": "t",
                                 "doc_id": np.tile(np.arange(n_docs), n_models), "acc": correct.ravel()}))


def test_learned_methods_only_see_held_out_models_through_the_subset() -> None:
    correct, _, _, b = simulate(12, 300, seed=2)
    emb = (np.arange(300), np.column_stack([b, np.random.default_rng(0).normal(size=(300, 2))]))
    fid = lite_fidelity(samples_of(correct), emb, budgets=[30], n_random=10, folds="loo", seed=0)
    picks = fid.kcenter.picks[:30]
    mask = np.zeros(300, bool)
    mask[picks] = True
    weights = np.zeros(300)
    weights[picks] = fid.kcenter.cell_sizes
    ests = fid.estimates.filter(pl.col("method") == "kcenter_irt").sort("model")
    # model 4's estimate is what a FoldEstimators fitted on the 11 others makes of its 30 answers
    fold = FoldEstimators(np.delete(correct, 4, axis=0), seed=0)
    assert ests["estimate_points"][4] == pytest.approx(100 * fold.gp_irt(correct[4], mask, weights)[0])
    # changing model 4's answers off the subset changes its full score, not its estimate
    changed = correct.copy()
    changed[4, ~mask] = 1 - changed[4, ~mask]
    again = lite_fidelity(samples_of(changed), emb, budgets=[30], n_random=10, folds="loo", seed=0)
    ests2 = again.estimates.filter(pl.col("method") == "kcenter_irt").sort("model")
    assert ests2["estimate_points"][4] == pytest.approx(ests["estimate_points"][4])
    assert ests2["full_points"][4] != pytest.approx(ests["full_points"][4])
    # the linear correction of the same k-center docs: fitted on the 11 others, fed model 4's 30 answers only
    corrected = [f.estimates.filter(pl.col("method") == "kcenter_corrected").sort("model")["estimate_points"][4]
                 for f in (fid, again)]
    expected = 100 * fold.corrected(picks, fid.kcenter.cell_sizes, correct[4:5, picks])[0]
    assert corrected[0] == pytest.approx(expected) and corrected[1] == pytest.approx(expected)
    anchors = again.estimates.filter(pl.col("method") == "anchor").sort("model")
    assert anchors.height == 12


def test_verdict_says_when_a_method_is_no_better_than_random() -> None:
    correct, *_ = simulate(10, 400, seed=3)
    # embeddings that are pure noise: k-center is then a random-looking subset, and says so
    emb = (np.arange(400), np.random.default_rng(1).normal(size=(400, 8)))
    fid = lite_fidelity(samples_of(correct), emb, budgets=[40], n_random=60, seed=0)
    s = fid.summary
    for row in s.iter_rows(named=True):
        share = row["beats_random_mae"]
        if row["method"] == "random":
            assert row["verdict"] is None
        elif share >= 0.8:
            assert row["verdict"] == "better than random"
        elif share <= 0.2:
            assert row["verdict"] == "worse than random"
        else:
            assert row["verdict"] == "no better than random"
        assert row["mae_points_lo"] <= row["mae_points"] <= row["mae_points_hi"] or row["n_draws"] > 1
    assert set(s["method"]) == {"kcenter", "kcenter_weighted", "kcenter_irt", "kcenter_corrected", "anchor",
                                "anchor_irt", "anchor_corrected", "random", "random_irt", "random_calibrated",
                                "random_corrected", "random_cv", "difficulty", "difficulty_cv", "residual_cv",
                                "spread_cv"}
    rnd = fid.draws.filter(pl.col("method") == "random")["mae_points"].to_numpy()
    rnd_irt = fid.draws.filter(pl.col("method") == "random_irt")["mae_points"].to_numpy()
    row = s.filter(pl.col("method") == "random_irt").row(0, named=True)
    assert row["beats_random_mae"] == pytest.approx(np.mean(rnd_irt < rnd))  # paired: the same subsets
    assert row["mae_points_lo"] == pytest.approx(np.quantile(rnd_irt, 0.025))
    with pytest.raises(ValueError, match="unknown method"):
        lite_fidelity(samples_of(correct), emb, budgets=[40], methods=["kcenter", "magic"])


def test_fidelity_verdicts_and_subset_vs_random_say_it_plainly() -> None:
    correct, *_ = simulate(10, 400, seed=4)
    noise = (np.arange(400), np.random.default_rng(2).normal(size=(400, 8)))
    fid = lite_fidelity(samples_of(correct), noise, budgets=[0.05, 0.1], n_random=40, seed=0)
    lines = fidelity_verdicts(fid, 0.1)
    at = fid.summary.filter(pl.col("k") == 40)
    better = at.filter(pl.col("verdict") == "better than random")
    assert lines[0].startswith("At 40 of 400 docs (10%), across 10 models")
    if better.height == 0:
        assert "No method does better than random here" in lines[0]
    assert len(lines) == at.height  # one line per method besides random, plus the headline
    assert all(any(w in line for w in ("better than random", "worse than random")) for line in lines[1:])
    # one method alone (the LiteBuilder's difficulty mode): its verdict line, under a headline about it only
    cv = at.filter(pl.col("method") == "difficulty_cv").row(0, named=True)
    only = fidelity_verdicts(fid, 0.1, methods=["difficulty_cv"])
    assert len(only) == 2 and only[1] in lines and only[1].startswith("difficulty-stratified random subsets, control")
    assert (("Better than random: difficulty-stratified" in only[0]) == (cv["verdict"] == "better than random"))
    with pytest.raises(ValueError, match=r"no method of \['nope'\] at 40 docs"):
        fidelity_verdicts(fid, 0.1, methods=["nope"])
    # a subset made of the docs every model got right is worse than random at the score
    easy = np.nonzero(correct.mean(0) == 1)[0][:20]
    out = subset_vs_random(samples_of(correct), doc_ids=easy.tolist(), n_random=50)
    row = out.row(0, named=True)
    assert row["mae_points"] == pytest.approx(np.abs(100 - correct.mean(1) * 100).mean())
    assert row["verdict"] == "worse than random" and row["beats_random_mae"] == 0.0
    with pytest.raises(ValueError, match=r"subset doc ids \[999\] are not in the sample table"):
        subset_vs_random(samples_of(correct), doc_ids=[999])


def test_difficulty_design_and_calibration() -> None:
    from lmms_nb.lite_selection._difficulty_design import difficulty_design

    correct, *_ = simulate(20, 500, seed=5)
    correct[:, :50] = 1.0  # docs every model gets right: no spread among the earlier models
    design = difficulty_design(correct, 50)
    assert design.alloc.sum() == 50 and (design.alloc <= design.sizes).all()
    # ... yet a new model can slip there: the budget allows one doc per stratum, so that stratum gets one
    assert design.alloc[0] == 1 and design.impute[0] == 1.0 and design.sizes[0] >= 50
    assert (design.alloc[design.sizes > 0] >= 1).all()
    docs = design.draw(np.random.default_rng(0))
    assert len(np.unique(docs)) == 50
    # a budget below the number of strata leaves some empty: those are imputed with the earlier models' mean
    small = difficulty_design(correct, 3)
    assert small.alloc.sum() == 3 and small.alloc[0] == 0
    for design, k in ((design, 50), (small, 3)):
        docs = design.draw(np.random.default_rng(0))
        assert len(np.unique(docs)) == k
        # the estimate is the stratified one: share-weighted stratum means, an empty stratum imputed
        share = design.sizes / design.sizes.sum()
        by_hand = sum(share[h] * (correct[:, docs[design.strata[docs] == h]].mean(1) if design.alloc[h]
                                  else design.impute[h]) for h in range(len(share)) if design.sizes[h])
        np.testing.assert_allclose(design.estimate(correct, docs), by_hand)
    # calibration: exact when the full score is a linear function of the subset mean
    fold = FoldEstimators(correct[:10])
    sub_train = (correct[:10].mean(1) * 0.5 + 0.2)[None, :]
    cal = fold.calibrated(sub_train, (correct[10:].mean(1) * 0.5 + 0.2)[None, :])
    np.testing.assert_allclose(cal[0], correct[10:].mean(1))
