"""Estimates and fidelity: checked against values computed here with numpy / scipy, and by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from scipy import stats

from _kcenter_ref import cells_of, farthest_first

from lmms_nb.lite_selection import (
    TaskEmbeddings,
    build_lite_subset,
    lite_estimates,
    lite_fidelity,
    plot_fidelity,
    score_matrix,
)
from lmms_nb.lite_selection._fidelity_stats import proportional_allocation as _proportional_allocation
from lmms_nb.logs.schema import conform

torch.set_num_threads(1)


def population(n_models: int = 8, n_docs: int = 300, seed: int = 0):
    """Models of graded skill answering docs of graded difficulty, docs embedded near their difficulty."""
    rng = np.random.default_rng(seed)
    skill = np.linspace(-1.5, 1.5, n_models)
    difficulty = rng.normal(size=n_docs)
    p = 1 / (1 + np.exp(-(skill[:, None] - difficulty[None, :]) * 2))
    correct = (rng.random((n_models, n_docs)) < p).astype(float)
    doc_ids = rng.permutation(np.arange(1000, 1000 + n_docs))  # not 0..n-1 and not sorted
    categories = np.where(difficulty > 0, "hard", "easy")
    models = [f"model_{i}" for i in range(n_models)]
    samples = conform(pl.DataFrame({
        "model": np.repeat(models, n_docs),
        "task": "toy",
        "doc_id": np.tile(doc_ids, n_models),
        "category": np.tile(categories, n_models),
        "acc": correct.ravel(),
    }))
    vectors = np.column_stack([difficulty, rng.normal(scale=0.3, size=(n_docs, 3))]).astype(np.float32)
    emb = TaskEmbeddings(task="toy", doc_ids=doc_ids, vectors=vectors)
    return samples, emb, correct, doc_ids, models


def test_score_matrix_aligns_docs_and_models() -> None:
    samples, _, correct, doc_ids, models = population(4, 50)
    sm = score_matrix(samples.sample(fraction=1.0, shuffle=True, seed=3))
    order = np.argsort(doc_ids)
    assert sm.models == models and sm.metric == "acc" and sm.task == "toy"
    assert sm.doc_ids.tolist() == doc_ids[order].tolist()
    np.testing.assert_array_equal(sm.scores, correct[:, order])
    assert sm.categories is not None and set(sm.categories) == {"easy", "hard"}


def test_score_matrix_errors_name_the_problem() -> None:
    samples, *_ = population(3, 10)
    with pytest.raises(ValueError, match="several tasks"):
        score_matrix(pl.concat([samples, samples.with_columns(pl.lit("other").alias("task"))]))
    with pytest.raises(ValueError, match="several filters"):
        score_matrix(pl.concat([samples, samples.with_columns(pl.lit("strict").alias("filter"))]))
    with pytest.raises(ValueError, match=r"pick the metric with metric=; numeric metric columns: \['acc', 'f1'\]"):
        score_matrix(samples.with_columns(pl.col("acc").alias("f1")))
    with pytest.raises(ValueError, match="metric 'bleu' is not a column"):
        score_matrix(samples, metric="bleu")
    with pytest.raises(ValueError, match=r"appear more than once.*filter on run_id"):
        score_matrix(pl.concat([samples, samples.head(1)]))
    holed = samples.with_columns(
        pl.when((pl.col("model") == "model_1") & (pl.col("doc_id") == samples["doc_id"][0]))
        .then(None).otherwise(pl.col("acc")).alias("acc"))
    with pytest.raises(ValueError, match=rf"model 'model_1' has no score for 1 doc\(s\), e.g. doc_id \[{samples['doc_id'][0]}\]"):
        score_matrix(holed)
    with pytest.raises(ValueError, match="no column"):
        score_matrix(samples.drop("doc_id"))


def test_lite_estimates_by_hand_and_from_a_subset() -> None:
    samples, emb, correct, doc_ids, models = population(5, 120)
    sub = build_lite_subset(emb, 12)
    est = lite_estimates(samples, sub)
    cols = [int(np.nonzero(doc_ids == d)[0][0]) for d in sub.doc_ids]
    w = sub.cell_sizes / sub.cell_sizes.sum()
    np.testing.assert_allclose(est["full_points"].to_numpy(), correct.mean(1) * 100)
    np.testing.assert_allclose(est["lite_points"].to_numpy(), correct[:, cols].mean(1) * 100)
    np.testing.assert_allclose(est["lite_weighted_points"].to_numpy(), correct[:, cols] @ w * 100)
    np.testing.assert_allclose(est["lite_error_points"].to_numpy(),
                               (correct[:, cols].mean(1) - correct.mean(1)) * 100)
    assert est["model"].to_list() == models and est["n_subset"].to_list() == [12] * 5
    with pytest.raises(ValueError, match=r"subset doc ids \[5\] are not in the sample table"):
        lite_estimates(samples, doc_ids=[5])
    with pytest.raises(ValueError, match="2 weights for 1 doc_ids"):
        lite_estimates(samples, doc_ids=[int(doc_ids[0])], weights=[1, 2])


def test_subset_cells_and_weights_match_an_independent_assignment() -> None:
    _, emb, *_ = population(3, 200)
    sub = build_lite_subset(emb, 0.1)
    picks = farthest_first(emb.vectors, 20)
    assert sub.doc_ids.tolist() == emb.doc_ids[picks].tolist()
    cells = cells_of(emb.vectors, picks)
    assert sub.cell_sizes.tolist() == cells.tolist()
    np.testing.assert_allclose(sub.weights, cells / 200)
    assert sub.table().columns == ["order", "doc_id", "cell_size", "weight"]
    # nested budgets from one k-center run give the same subset as a fresh run
    big = build_lite_subset(emb, 50)
    from lmms_nb.lite_selection import kcenter_greedy

    res = kcenter_greedy(emb.vectors, 50)
    again = build_lite_subset(emb, 20, kcenter=res)
    assert again.doc_ids.tolist() == sub.doc_ids.tolist() and again.cell_sizes.tolist() == sub.cell_sizes.tolist()
    assert big.doc_ids[:20].tolist() == sub.doc_ids.tolist()


def test_fidelity_kcenter_rows_equal_an_independent_computation() -> None:
    samples, emb, correct, doc_ids, models = population(8, 300)
    fid = lite_fidelity(samples, emb, budgets=[0.1, 30, 0.5], n_random=50, seed=1)
    assert fid.summary["k"].unique().sort().to_list() == [30, 150]  # 0.1 and 30 are the same budget
    order = np.argsort(doc_ids)
    scores = correct[:, order] * 100
    vectors = emb.vectors[order]
    full = scores.mean(1)
    for k in (30, 150):
        picks = farthest_first(vectors, k)
        cells = cells_of(vectors, picks)
        for method, est in (("kcenter", scores[:, picks].mean(1)),
                            ("kcenter_weighted", scores[:, picks] @ cells / cells.sum())):
            row = fid.summary.filter((pl.col("k") == k) & (pl.col("method") == method)).row(0, named=True)
            assert row["spearman"] == pytest.approx(stats.spearmanr(full, est).statistic)
            assert row["kendall"] == pytest.approx(stats.kendalltau(full, est).statistic)
            assert row["pearson"] == pytest.approx(stats.pearsonr(full, est).statistic)
            assert row["mae_points"] == pytest.approx(np.abs(est - full).mean())
            assert row["max_abs_error_points"] == pytest.approx(np.abs(est - full).max())
            assert row["budget"] == pytest.approx(k / 300)
            assert row["n_draws"] == 1
            # beats_random: share of random draws that k-center beats, recomputed from the draws table
            rnd = fid.draws.filter((pl.col("k") == k) & (pl.col("method") == "random"))
            assert row["beats_random_mae"] == pytest.approx(np.mean(rnd["mae_points"].to_numpy() > row["mae_points"]))
            assert row["beats_random_spearman"] == pytest.approx(
                np.mean(rnd["spearman"].fill_null(-2).to_numpy() < row["spearman"]))
            ests = fid.estimates.filter((pl.col("k") == k) & (pl.col("method") == method))
            np.testing.assert_allclose(ests["estimate_points"].to_numpy(), est)
            assert ests["model"].to_list() == models
    rnd = fid.summary.filter(pl.col("method") == "random")
    assert rnd["n_draws"].to_list() == [50, 50]
    summary_again = lite_fidelity(samples, emb, budgets=[30, 150], n_random=50, seed=1).summary
    assert summary_again.equals(fid.summary)  # seeded: reproducible


def test_random_draws_are_unbiased_and_full_budget_is_exact() -> None:
    samples, emb, correct, *_ = population(6, 200)
    fid = lite_fidelity(samples, emb, budgets=[1.0, 40], n_random=400, seed=2)
    at_full = fid.summary.filter(pl.col("k") == 200)
    np.testing.assert_allclose(at_full["mae_points"].to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(at_full["spearman"].to_numpy(), 1.0)
    # the random draws' errors have the spread sampling theory says: E|mean error| = sqrt(2/pi) * SE, with
    # SE = sqrt((1 - k/N) S^2 / k) (without replacement), averaged over the models
    rows = fid.draws.filter((pl.col("k") == 40) & (pl.col("method") == "random"))
    mae_expected = np.mean([np.sqrt((1 - 40 / 200) * c.var(ddof=1) / 40) * np.sqrt(2 / np.pi) * 100
                            for c in correct])
    assert rows["mae_points"].mean() == pytest.approx(mae_expected, rel=0.15)


def test_stratified_estimator_is_exact_when_scores_depend_only_on_category() -> None:
    rng = np.random.default_rng(4)
    n, models = 90, [f"m{i}" for i in range(4)]
    cats = np.array(["a"] * 60 + ["b"] * 20 + ["c"] * 10)
    per_cat = {"a": [0.0, 1.0, 1.0, 0.0], "b": [1.0, 0.0, 1.0, 1.0], "c": [1.0, 1.0, 0.0, 0.0]}
    correct = np.array([[per_cat[c][m] for c in cats] for m in range(4)])
    samples = pl.DataFrame({"model": np.repeat(models, n), "task": "t", "doc_id": np.tile(np.arange(n), 4),
                            "category": np.tile(cats, 4), "acc": correct.ravel()})
    emb = (np.arange(n), rng.normal(size=(n, 3)))
    fid = lite_fidelity(samples, emb, budgets=[9], n_random=30, seed=0)
    strat = fid.draws.filter(pl.col("method") == "stratified")
    assert strat.height == 30
    np.testing.assert_allclose(strat["mae_points"].to_numpy(), 0.0, atol=1e-9)
    # random subsets of 9 from the same docs are not exact
    assert fid.draws.filter(pl.col("method") == "random")["mae_points"].max() > 1.0


def test_proportional_allocation() -> None:
    assert _proportional_allocation(np.array([60, 20, 10]), 9).tolist() == [6, 2, 1]
    assert _proportional_allocation(np.array([5, 3, 2]), 4).tolist() == [2, 1, 1]
    assert _proportional_allocation(np.array([100, 1, 1, 1]), 2).tolist() == [2, 0, 0, 0]
    for sizes, k in [(np.array([7, 1, 1]), 3), (np.array([3, 3, 3]), 9), (np.array([50, 49, 1]), 7)]:
        alloc = _proportional_allocation(sizes, k)
        assert alloc.sum() == k and (alloc <= sizes).all() and (alloc >= 1).all()


def test_fidelity_input_errors() -> None:
    samples, emb, *_ = population(2, 20)
    with pytest.raises(ValueError, match="at least 3 models"):
        lite_fidelity(samples, emb)
    samples, emb, *_ = population(3, 20)
    short = TaskEmbeddings(task="toy", doc_ids=emb.doc_ids[:10], vectors=emb.vectors[:10])
    with pytest.raises(KeyError, match=r"no embedding for doc ids .*\(10 in all\)"):
        lite_fidelity(samples, short, budgets=[5])
    with pytest.raises(ValueError, match="asks for 40 docs but the task has 20"):
        lite_fidelity(samples, emb, budgets=[40])
    with pytest.raises(ValueError, match="fraction in"):
        lite_fidelity(samples, emb, budgets=[1.5])


def test_plot_fidelity_draws_the_summary() -> None:
    samples, emb, *_ = population(5, 100)
    fid = lite_fidelity(samples, emb, budgets=[0.1, 0.3], n_random=20)
    fig = fid.figure("mae_points", goal=1.5)
    lines = {t.name: t for t in fig.data if t.name}
    # 5 models: too few to learn from, so only the methods that need no fitting
    assert set(lines) == {"k-center (plain mean)", "k-center (cell-weighted)", "random (mean ± sd)",
                          "stratified (mean ± sd)"}
    kc = fid.summary.filter(pl.col("method") == "kcenter").sort("k")
    assert list(lines["k-center (plain mean)"].y) == pytest.approx(kc["mae_points"].to_list())
    assert list(lines["k-center (plain mean)"].x) == pytest.approx(kc["budget"].to_list())
    with pytest.raises(ValueError, match="stat must be one of"):
        plot_fidelity(fid, "accuracy")


def test_every_method_has_a_colour_and_a_legend_name() -> None:
    """A method added to lite_fidelity without its plot entry broke notebook 03 (KeyError in the figure)."""
    from lmms_nb.lite_selection._fidelity import METHODS
    from lmms_nb.lite_selection._fidelity_plot import _COLORS, _NAMES

    assert set(METHODS) <= set(_COLORS) and set(METHODS) <= set(_NAMES)
