"""The spread design of `spread_cv` (`_spread_design`): a systematic sample along an order of the docs, each doc
drawn with its inclusion probability, so the design-weighted difference estimate stays unbiased while the sample
is spread over every stretch of the order; and `spread_cv` run end to end on real classifiers' answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from _irt import samples_of
from test_lite_nested import digits_population

from lmms_nb.lite_selection import (build_difficulty_subset, lite_fidelity, load_difficulty_subset,
                                    save_difficulty_subset, subset_summary)
from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
from lmms_nb.lite_selection._nested import design_of, heldout_estimates
from lmms_nb.lite_selection._residual_design import RESIDUAL_FLOOR, doc_residuals
from lmms_nb.lite_selection._subset_notes import pick_notes
from lmms_nb.lite_selection._spread_design import (SpreadDesign, inclusion_probabilities, spread_design,
                                                   spread_keys)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return digits_population()


@pytest.fixture(scope="module")
def groups(digits) -> np.ndarray:
    # a real category per doc: the true digit of the same held-out images digits_population scores
    from sklearn.datasets import load_digits

    target = load_digits().target
    return target[np.random.default_rng(0).permutation(len(target))[: digits.shape[1]]].astype(str)


def test_each_doc_is_drawn_with_its_probability_and_each_draw_has_k_docs(digits, groups) -> None:
    k = 40
    design = spread_design(digits, k, groups)
    # probabilities in proportion to the expected residual (floored), summing to the budget
    r = np.maximum(doc_residuals(digits, groups), RESIDUAL_FLOOR)
    np.testing.assert_allclose(design.pi, r / r.sum() * k)
    rng = np.random.default_rng(1)
    n_draws = 3000
    counts = np.zeros(digits.shape[1])
    ht = np.zeros(len(digits))
    for _ in range(n_draws):
        docs = design.draw(rng)
        assert len(docs) == k and len(np.unique(docs)) == k
        counts[docs] += 1
        ht += digits @ design.doc_weights(docs)
    # inclusion frequencies match pi within binomial noise
    se = np.sqrt(design.pi * (1 - design.pi) / n_draws)
    assert np.all(np.abs(counts / n_draws - design.pi) <= 5 * se + 1e-3)
    # so the design-weighted (Horvitz-Thompson) mean is unbiased for every model's full score
    np.testing.assert_allclose(ht / n_draws, digits.mean(axis=1), atol=0.01)


def test_the_sample_is_spread_over_every_stretch_of_the_order(digits, groups) -> None:
    design = spread_design(digits, 40, groups)
    for seed in range(20):
        # the draw's order: ties broken by the first numbers of its generator
        order = design.order(np.random.default_rng(seed))
        picked = np.isin(order, design.draw(np.random.default_rng(seed)))
        # systematic sampling: any prefix of the order holds its expected number of picks, rounded down or up
        assert np.all(np.abs(np.cumsum(picked) - np.cumsum(design.pi[order])) < 1 + 1e-9)
    # whereas simple random samples of the same size stray far further on some prefix
    strays = [np.abs(np.cumsum(np.isin(order, np.random.default_rng(s).choice(400, 40, replace=False)))
                     - np.arange(1, 401) * 0.1).max() for s in range(20)]
    assert np.median(strays) > 2


def test_order_runs_by_category_then_difficulty_bins_with_ties_drawn_at_random(digits, groups) -> None:
    design = spread_design(digits, 40, groups)
    order = design.order(np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(digits.shape[1]))
    labels = groups[order]
    assert all(labels[i] <= labels[i + 1] for i in range(len(labels) - 1))  # one run per category
    p = digits.mean(axis=0)
    for g in np.unique(groups):
        docs = order[labels == g]
        edges = np.quantile(p[docs], [1 / 3, 2 / 3])
        bins = np.searchsorted(edges, p[docs], side="left")
        assert np.all(np.diff(bins) >= 0)  # easier bins after harder ones, never back
    # the keys are a function of the earlier models' answers; only tied docs move between draws
    for a, b in zip(spread_keys(digits, groups), spread_keys(digits.copy(), groups.copy()), strict=True):
        np.testing.assert_array_equal(a, b)
    other = design.order(np.random.default_rng(1))
    assert not np.array_equal(order, other)
    keys = np.column_stack(design.keys)
    np.testing.assert_array_equal(keys[order], keys[other])
    # and a draw depends only on its generator
    np.testing.assert_array_equal(design.draw(np.random.default_rng(7)), design.draw(np.random.default_rng(7)))


def test_docs_with_the_same_answers_share_every_key_so_their_order_is_the_generators(digits, groups) -> None:
    """The principal-axis key is rounded: docs every earlier model answered alike get one key (not keys apart in
    the SVD's last bits), so `order` shuffles them with its generator, the same way on every machine."""
    labels, bins, axis = spread_keys(digits, groups)
    columns = np.ascontiguousarray(digits.T)
    _, same, counts = np.unique(np.column_stack([labels, columns]), axis=0, return_inverse=True, return_counts=True)
    assert (counts > 1).sum() >= 5  # the population has groups of alike docs to check
    for g in np.nonzero(counts > 1)[0]:
        docs = np.nonzero(same.reshape(-1) == g)[0]
        assert len(set(axis[docs].tolist())) == 1 and len(set(bins[docs].tolist())) == 1


def test_the_axis_follows_which_models_disagree_not_how_hard_a_doc_is() -> None:
    """Within a bin the docs run along the earlier models' main axis of disagreement, double-centred: shifting
    every doc's scores by its own constant (its difficulty) leaves the axis where it was, and docs that one half
    of the models get right and the other half wrong sit at the opposite end from the reverse ones."""
    rng = np.random.default_rng(5)
    half = np.repeat([1.0, 0.0], 6)  # models 0-5 vs 6-11
    pattern = np.where(rng.random(60) < 0.5, 1.0, -1.0)  # which half a doc favours
    scores = np.clip(0.5 + 0.3 * np.outer(half - 0.5, pattern) * 2 + rng.normal(0, 0.05, (12, 60)), 0, 1)
    _, bins, axis = spread_keys(scores, None, n_bins=1)
    assert np.all(bins == 0)
    favours_first_half = pattern > 0
    assert axis[favours_first_half].min() > axis[~favours_first_half].max() or \
        axis[favours_first_half].max() < axis[~favours_first_half].min()
    shifted = scores + rng.uniform(-0.3, 0.3, 60)  # each doc's difficulty moved, who disagrees with whom kept
    np.testing.assert_allclose(np.abs(spread_keys(shifted, None, n_bins=1)[2]), np.abs(axis), atol=1e-8)


def test_probabilities_above_one_are_capped_and_the_rest_share_the_budget() -> None:
    pi = inclusion_probabilities(np.array([100.0, 1.0, 1.0, 2.0]), 2)
    np.testing.assert_allclose(pi, [1.0, 0.25, 0.25, 0.5])
    design = SpreadDesign(keys=(np.zeros(4),), pi=pi)
    for seed in range(10):
        docs = design.draw(np.random.default_rng(seed))
        assert 0 in docs and len(docs) == 2  # the certain doc is always drawn
    # a budget of every doc takes every doc, each standing for itself
    every = SpreadDesign(keys=(np.zeros(4),), pi=inclusion_probabilities(np.ones(4), 4))
    docs = every.draw(np.random.default_rng(0))
    np.testing.assert_array_equal(docs, np.arange(4))
    np.testing.assert_allclose(every.doc_weights(docs), 0.25)
    with pytest.raises(ValueError, match="budget k=5"):
        inclusion_probabilities(np.ones(4), 5)


def test_fidelity_rows_are_each_folds_spread_design_applied_to_its_held_out_models(digits, groups) -> None:
    k, n_random = 40, 12
    samples = samples_of(digits).with_columns(pl.Series("category", np.tile(groups, len(digits))))
    emb = (np.arange(digits.shape[1]), np.random.default_rng(0).normal(size=(digits.shape[1], 4)))
    fid = lite_fidelity(samples, emb, budgets=[k], n_random=n_random, folds=4, seed=0, methods=["random", "spread_cv"])
    rng = np.random.default_rng([0, k, 4])  # spread_cv's own generator, drawn fold after fold
    ests = np.zeros((n_random, len(digits)))
    for test in model_folds(len(digits), 4, seed=0):
        # the design and the neighbours come from the fold's training models alone
        fold = FoldEstimators(np.delete(digits, test, axis=0))
        ests[:, test] = heldout_estimates(fold, "spread_cv", k, digits[test], groups=groups, rng=rng, n_draws=n_random)
    mae = 100 * np.abs(ests - digits.mean(axis=1)).mean(axis=1)
    got = fid.draws.filter(pl.col("method") == "spread_cv").sort("draw")["mae_points"].to_numpy()
    np.testing.assert_allclose(got, mae, rtol=1e-9)
    assert fid.summary.filter(pl.col("method") == "spread_cv")["n_draws"].to_list() == [n_random]


def test_built_spread_subset_estimates_a_new_model_and_survives_a_round_trip(digits, groups, tmp_path) -> None:
    n_docs = digits.shape[1]
    names = [f"m{i:02d}" for i in range(len(digits))]
    logs = pl.DataFrame({"model": np.repeat(names, n_docs), "task": "digits", "doc_id": np.tile(np.arange(n_docs),
                         len(digits)), "category": np.tile(groups, len(digits)), "acc": digits.ravel()})
    sub = build_difficulty_subset(logs.filter(pl.col("model") != "m11"), 40, estimator="spread_cv")
    assert sub.meta["method"] == "spread_cv" and len(sub) == 40 and "m11" not in sub.train_models
    assert "systematic sample" in subset_summary(sub)
    # each pick's note gives its inclusion probability and the docs it stands for, 1 / pi (not a stratum share)
    notes = pick_notes(sub)
    assert [what for what, _ in notes] == ["inclusion weight"] * 40
    assert [how for _, how in notes] == [f"drawn with p={1 / (w * n_docs):.2f}, stands for {w * n_docs:.1f} docs "
                                         f"(weight {w:.3f})" for w in sub.design_weights]
    # the subset is the design's draw on the earlier models, and the estimate is heldout_estimates' for it
    fold = FoldEstimators(digits[:11])
    design = design_of(fold, "spread_cv", 40, groups)
    np.testing.assert_array_equal(sub.doc_ids, design.draw(np.random.default_rng([0, 40])))
    answers = digits[11, sub.doc_ids]
    expected = heldout_estimates(fold, "spread_cv", 40, digits[11:12], groups=groups,
                                 design_weights=design.doc_weights(sub.doc_ids)[None])[0, 0]
    assert sub.estimate(answers) == pytest.approx(expected)
    assert abs(sub.estimate(answers) - digits[11].mean()) < 0.06
    again = load_difficulty_subset(save_difficulty_subset(sub, tmp_path / "spread.npz"))
    assert again.meta["method"] == "spread_cv" and again.estimate(answers) == pytest.approx(sub.estimate(answers))
