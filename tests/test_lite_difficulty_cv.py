"""Difficulty-stratified subsets scored with a control variate (`difficulty_cv`): its definition, that it scores a
model only through the docs drawn for it by a design fitted on the other models, and that on a population drawn
from a known item response model it recovers full scores better than random subsets of the same size."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from _irt import irt_population, samples_of

from lmms_nb.lite_selection import lite_fidelity
from lmms_nb.lite_selection._corrections import neighbour_control_variate
from lmms_nb.lite_selection._difficulty_design import difficulty_design
from lmms_nb.lite_selection._heldout import FoldEstimators


def test_design_weighted_control_variate_is_its_definition_and_exact_on_the_full_set() -> None:
    correct = irt_population(16, 300, seed=1)
    train, y = correct[:12], correct[12]
    design = difficulty_design(train, 30)
    docs = design.draw(np.random.default_rng(0))
    w = design.doc_weights(docs)
    assert np.count_nonzero(w) == 30
    # the weights of the strata the design reaches sum to their share of the docs
    reached = design.alloc > 0
    assert w.sum() == pytest.approx(design.sizes[reached].sum() / design.sizes.sum())
    seen = np.where(w > 0, y, np.nan)  # nothing off the subset is read
    est = neighbour_control_variate(train, w > 0, seen, w, design_weights=True, beta=30.0)[0]
    wn = w / w.sum()
    agree = 1 - (wn * (y - train) ** 2).sum(axis=1)
    sim = np.exp(30.0 * (agree - agree.max()))
    pred = sim / sim.sum() @ train
    assert est == pytest.approx(pred.mean() + (w * (y - pred)).sum())
    # normalised weights would make the reached strata stand for the strata the design left out
    if not reached.all():
        assert neighbour_control_variate(train, w > 0, seen, w, beta=30.0)[0] != pytest.approx(est)
    # a budget of every doc: the design takes every doc and the estimate is the full score
    everything = difficulty_design(train, 300)
    all_docs = everything.draw(np.random.default_rng(0))
    w_all = everything.doc_weights(all_docs)
    full_est = neighbour_control_variate(train, w_all > 0, y, w_all, design_weights=True)[0]
    assert full_est == pytest.approx(y.mean())


def test_difficulty_cv_scores_each_held_out_model_only_through_its_subset() -> None:
    correct = irt_population(8, 200, seed=2)
    k, n_random = 20, 15
    fid = lite_fidelity(samples_of(correct), (np.arange(200), np.random.default_rng(0).normal(size=(200, 4))),
                        budgets=[k], n_random=n_random, folds="loo", seed=0, methods=["random", "difficulty_cv"])
    # replay: fold i fits its design (strata and allocation) and neighbours on the 7 other models, draws its subsets in fold order, and
    # sees model i's answers only on the docs drawn (NaN elsewhere)
    rng = np.random.default_rng([0, k, 2])  # difficulty_cv's own generator
    ests = np.zeros((n_random, 8))
    for i in range(8):
        fold = FoldEstimators(np.delete(correct, i, axis=0))
        design = fold.cv_design(k)
        for d in range(n_random):
            w = design.doc_weights(design.draw(rng))
            seen = np.where(w > 0, correct[i], np.nan)
            ests[d, i] = fold.control_variate(seen, w > 0, w, design_weights=True)[0]
    full = correct.mean(axis=1)
    got = fid.draws.filter(pl.col("method") == "difficulty_cv").sort("draw")
    np.testing.assert_allclose(got["mae_points"].to_numpy(), 100 * np.abs(ests - full).mean(axis=1), atol=1e-9)
    rho = [stats.spearmanr(e, full)[0] for e in ests]
    np.testing.assert_allclose(got["spearman"].to_numpy(), rho, atol=1e-9)


def test_difficulty_cv_recovers_scores_of_a_known_irt_population_better_than_random() -> None:
    correct = irt_population(30, 800, seed=3)
    emb = (np.arange(800), np.random.default_rng(0).normal(size=(800, 4)))
    fid = lite_fidelity(samples_of(correct), emb, budgets=[0.1], n_random=60, folds=5, seed=0,
                        methods=["random", "difficulty_cv"])
    s = {r["method"]: r for r in fid.summary.iter_rows(named=True)}
    cv, rnd = s["difficulty_cv"], s["random"]
    assert cv["n_draws"] == rnd["n_draws"] == 60
    # the docs nearly every model gets right or wrong are drawn little (Neyman), so the error falls by a third
    # (measured: 2.67 vs 4.19 points); in a pure IRT world the answers are coin flips given ability, so the
    # other models cannot predict them and random draws are sometimes as good (beats 77% of them)
    assert cv["mae_points"] < 0.75 * rnd["mae_points"]
    assert cv["beats_random_mae"] >= 0.7


def styled_population(n_models: int, n_docs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five kinds of docs; each model has a skill per kind of its own, so which models are alike depends on the
    kind (as zoo members good at counting and bad at charts, or the reverse)."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n_docs) % 5
    skill = rng.normal(size=(n_models, 5)) * 1.5
    b = rng.normal(-0.5, 2.0, size=n_docs)
    logit = 4.0 * (skill[:, kind] - b)  # steep: answers follow skill, little coin-flipping
    return (rng.random((n_models, n_docs)) < 1 / (1 + np.exp(-logit))).astype(float), kind


def test_group_neighbours_are_chosen_where_the_groups_tell_models_apart() -> None:
    correct, kind = styled_population(24, 1000, seed=4)
    fold = FoldEstimators(correct[:18], seed=0)
    # the kinds tell models apart: the prior chosen on held-out training models gives each kind its neighbours
    assert np.isfinite(fold.group_prior(100, kind))
    # and on the 6 models it never saw, per-kind neighbours estimate full scores better
    design = fold.cv_design(100, kind)
    rng = np.random.default_rng(1)
    w = np.stack([design.doc_weights(design.draw(rng)) for _ in range(40)])
    errs = {}
    for prior in (np.inf, fold.group_prior(100, kind)):
        ests = np.stack([fold.control_variate(np.broadcast_to(correct[i], w.shape), w > 0, w, design_weights=True,
                                              groups=kind, group_prior=prior) for i in range(18, 24)])
        errs[prior] = np.abs(ests - correct[18:].mean(axis=1, keepdims=True)).mean()
    grouped = fold.group_prior(100, kind)
    # measured: 1.84 vs 2.03 points (coin flips given skill bound what any neighbours can predict)
    assert errs[grouped] < 0.95 * errs[np.inf]
    # the cached choice and design follow the categories: without them, what a fresh estimator chooses
    fresh = FoldEstimators(correct[:18], seed=0)
    assert fold.group_prior(100, None) == fresh.group_prior(100, None) == np.inf
    assert fold.cv_design(100, None).alloc.tolist() == fresh.cv_design(100, None).alloc.tolist()


def test_difficulty_cv_draws_do_not_depend_on_the_other_methods_measured() -> None:
    logs = samples_of(irt_population(10, 200, seed=6))
    emb = (np.arange(200), np.random.default_rng(0).normal(size=(200, 4)))
    alone = lite_fidelity(logs, emb, budgets=[20], methods=["difficulty_cv"], n_random=10, seed=0)
    both = lite_fidelity(logs, emb, budgets=[20], methods=["difficulty", "difficulty_cv"], n_random=10, seed=0)
    cols = ["k", "mae_points", "spearman"]
    assert (alone.summary.filter(pl.col("method") == "difficulty_cv").select(cols).to_dicts()
            == both.summary.filter(pl.col("method") == "difficulty_cv").select(cols).to_dicts())
