"""The statistics under compare(): exact McNemar, Holm, bootstrap CIs, against hand computations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from lmms_nb.analysis import (
    binary_mean_ci,
    wilson_ci,
    holm_adjust,
    mcnemar_exact,
    paired_binary_diff_ci,
    paired_t_pvalue,
    shared_bootstrap_ci,
)


def test_mcnemar_three_vs_one_is_0625_by_hand():
    # 4 discordant pairs, 3 vs 1: P(X <= 1) for Binomial(4, 1/2) = (1 + 4) / 16; two-sided doubles it.
    assert mcnemar_exact(3, 1) == pytest.approx(2 * 5 / 16)
    assert mcnemar_exact(1, 3) == pytest.approx(0.625)


def test_mcnemar_matches_scipy_binomtest_on_a_grid():
    b, c = np.meshgrid(np.arange(0, 25), np.arange(0, 25))
    b, c = b.ravel(), c.ravel()
    ours = mcnemar_exact(b, c)
    for bi, ci, p in zip(b, c, ours, strict=True):
        expected = 1.0 if bi + ci == 0 else scipy.stats.binomtest(int(bi), int(bi + ci), 0.5).pvalue
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-15), (bi, ci)


def test_mcnemar_edge_cases():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: nothing against the null
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)


def test_holm_against_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_ignores_nan_and_keeps_ties():
    out = holm_adjust([0.5, float("nan"), 0.4, 0.01])
    # m = 3 real tests: 0.01*3 = 0.03; 0.4*2 = 0.8; 0.5*1 = 0.5 -> 0.8
    assert out[[0, 2, 3]] == pytest.approx([0.8, 0.8, 0.03])
    assert np.isnan(out[1])
    assert holm_adjust([0.2, 0.2]) == pytest.approx([0.4, 0.4])
    assert holm_adjust([0.9, 0.8]).tolist() == [1.0, 1.0]
    assert holm_adjust([]).size == 0


def test_binary_bootstrap_matches_scipy_bootstrap_on_the_same_data():
    data = np.array([1] * 70 + [0] * 30, dtype=float)
    ref = scipy.stats.bootstrap(
        (data,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    low, high = binary_mean_ci([70], [100], method="bootstrap")
    # scipy's Monte Carlo percentiles of a distribution on a 0.01 grid vs its exact binomial quantiles.
    assert low[0] == pytest.approx(ref.low, abs=0.011)
    assert high[0] == pytest.approx(ref.high, abs=0.011)
    # and by hand: the 2.5% / 97.5% quantiles of Binomial(100, 0.7) are 61 and 79
    assert (low[0], high[0]) == (pytest.approx(0.61), pytest.approx(0.79))
    assert low[0] < 0.7 < high[0]


def test_binary_bootstrap_covers_the_true_mean_at_about_95_percent():
    rng = np.random.default_rng(0)
    n = np.full(400, 150)
    k = rng.binomial(n, 0.3)
    low, high = binary_mean_ci(k, n)  # Wilson
    coverage = np.mean((low <= 0.3) & (0.3 <= high))
    assert 0.89 <= coverage <= 0.99


def test_binary_ci_empty_and_degenerate_groups():
    low, high = binary_mean_ci([0, 5, 0], [0, 5, 4], method="bootstrap")
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert (low[1], high[1]) == (1.0, 1.0)  # the bootstrap collapses: why it is not the default
    assert (low[2], high[2]) == (0.0, 0.0)
    low, high = binary_mean_ci([0, 5, 0, 200], [0, 5, 4, 200])  # Wilson never collapses to a point
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert high[1] == 1.0 and 0.5 < low[1] < 0.6
    assert low[2] == 0.0 and 0.4 < high[2] < 0.5
    assert high[3] == 1.0 and 0.97 < low[3] < 0.99


def test_wilson_matches_scipy_binomtest():
    for k, n in [(0, 1), (1, 1), (3, 13), (70, 100), (200, 200), (0, 37), (999, 1000)]:
        ref = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
        low, high = wilson_ci([k], [n], confidence=0.9)
        assert (low[0], high[0]) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12)), (k, n)


def test_paired_binary_diff_ci_matches_scipy_paired_bootstrap():
    # 200 pairs: 30 A-only right, 10 B-only right, 100 both right, 60 both wrong.
    a = np.array([1] * 30 + [0] * 10 + [1] * 100 + [0] * 60, dtype=float)
    b = np.array([0] * 30 + [1] * 10 + [1] * 100 + [0] * 60, dtype=float)
    ref = scipy.stats.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        n_resamples=20000,
        method="percentile",
        rng=np.random.default_rng(5),
    ).confidence_interval
    low, high = paired_binary_diff_ci(30, 10, 200, n_resamples=20000, seed=6)
    assert low == pytest.approx(ref.low, abs=0.006)
    assert high == pytest.approx(ref.high, abs=0.006)
    assert low < 0.1 < high


def test_paired_binary_diff_ci_vectorised_equals_scalar_shape_and_nan():
    low, high = paired_binary_diff_ci(np.array([3, 0]), np.array([1, 0]), np.array([13, 0]))
    assert low.shape == (2,) and np.isnan(low[1]) and np.isnan(high[1])
    assert -1 <= low[0] <= 3 / 13 - 1 / 13 <= high[0] <= 1


def test_shared_bootstrap_of_a_mean_matches_scipy_bootstrap():
    x = np.random.default_rng(4).uniform(0, 1, 500)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    low, high = shared_bootstrap_ci(x[:, None], np.ones((x.size, 1)), n_resamples=20000, seed=1)
    width = ref.high - ref.low
    assert low[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert high[0] == pytest.approx(ref.high, abs=0.03 * width)


def test_shared_bootstrap_close_to_normal_theory_for_a_large_sample():
    x = np.random.default_rng(4).uniform(0, 1, 4000)
    low, high = shared_bootstrap_ci(x[:, None], np.ones((x.size, 1)), n_resamples=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low[0] == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high[0] == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_shared_bootstrap_of_paired_differences_matches_scipy_paired_bootstrap():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 400)
    b = np.clip(a - 0.05 + rng.normal(0, 0.2, 400), 0, 1)
    ref = scipy.stats.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        n_resamples=20000,
        method="percentile",
        rng=np.random.default_rng(8),
    ).confidence_interval
    # columns: a's mean, b's mean, the paired difference; all from the same resamples
    num = np.stack([a, b, a - b], axis=1)
    low, high = shared_bootstrap_ci(num, np.ones_like(num), n_resamples=20000, seed=9)
    width = ref.high - ref.low
    assert low[2] == pytest.approx(ref.low, abs=0.03 * width) and high[2] == pytest.approx(ref.high, abs=0.03 * width)
    assert low[0] < a.mean() < high[0] and low[1] < b.mean() < high[1]


def test_shared_bootstrap_ratio_skips_absent_rows_and_is_column_independent():
    x = np.array([1.0, 0.0, 0.5, 0.0, 1.0])
    present = np.array([1.0, 1.0, 1.0, 0.0, 1.0])  # row 3 absent for this column
    alone = shared_bootstrap_ci(x[:, None], present[:, None], seed=3)
    with_other = shared_bootstrap_ci(np.stack([x, x * 0], 1), np.stack([present, np.zeros(5)], 1), seed=3)
    assert (alone[0][0], alone[1][0]) == (with_other[0][0], with_other[1][0])
    assert 0.0 <= alone[0][0] <= 0.625 <= alone[1][0] <= 1.0
    assert np.isnan(with_other[0][1]) and np.isnan(with_other[1][1])  # never present: no interval
    empty = shared_bootstrap_ci(np.zeros((0, 2)), np.zeros((0, 2)))
    assert np.isnan(empty[0]).all()


def test_paired_t_pvalue_matches_scipy_and_edge_cases():
    d = np.array([0.1, -0.05, 0.2, 0.3, 0.0])
    assert paired_t_pvalue(d) == pytest.approx(scipy.stats.ttest_1samp(d, 0).pvalue)
    assert paired_t_pvalue(np.zeros(4)) == 1.0 and paired_t_pvalue(np.full(4, 0.2)) == 0.0
    assert np.isnan(paired_t_pvalue(np.array([0.3])))


def test_shared_bootstrap_contrasts_equal_the_explicit_difference_columns():
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 1, (300, 3))
    explicit = shared_bootstrap_ci(np.hstack([x, x[:, [0]] - x[:, [2]]]), np.ones((300, 4)), seed=5)
    contrasts = np.array([[1.0], [0.0], [-1.0]])
    via_contrast = shared_bootstrap_ci(x, contrasts=contrasts, seed=5)
    np.testing.assert_allclose(via_contrast[0], explicit[0], rtol=1e-10)
    np.testing.assert_allclose(via_contrast[1], explicit[1], rtol=1e-10)


def test_shared_bootstrap_segments_equal_masked_columns():
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 1, (200, 2))
    first = (np.arange(200) < 70).astype(float)  # rows 0-69 are segment 0, 70-199 segment 1
    masked = np.hstack([x * first[:, None], x * (1 - first)[:, None]])
    dens = np.hstack([np.repeat(first[:, None], 2, 1), np.repeat((1 - first)[:, None], 2, 1)])
    explicit = shared_bootstrap_ci(masked, dens, seed=2)
    via_segments = shared_bootstrap_ci(x, segments=[slice(0, 70), slice(70, 200)], seed=2)
    np.testing.assert_allclose(via_segments[0][2:], explicit[0])
    np.testing.assert_allclose(via_segments[1][2:], explicit[1])
    assert explicit[0][0] <= x[:70, 0].mean() <= explicit[1][0]
