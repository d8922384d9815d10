"""The statistics under compare(): exact McNemar, Holm, bootstrap CIs, against hand computations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from lmms_nb.analysis import (
    binary_mean_ci,
    continuous_mean_ci,
    holm_adjust,
    mcnemar_exact,
    paired_binary_diff_ci,
)


def test_mcnemar_three_vs_one_is_0625_by_hand():
    # 4 discordant pairs, 3 vs 1: P(X <= 1) for Binomial(4, 1/2) = (1 + 4) / 16; two-sided doubles it.
    assert mcnemar_exact(3, 1) == pytest.approx(2 * 5 / 16)
    assert mcnemar_exact(1, 3) == pytest.approx(0.625)


def test_mcnemar_matches_scipy_binomtest_on_a_grid():
    b, c = np.meshgrid(np.arange(0, 25), np.arange(0, 25))
    b, c = b.ravel(), c.ravel()
    ours = mcnemar_exact(b, c)
    for bi, ci, p in zip(b, c, ours):
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
    low, high = binary_mean_ci([70], [100])
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
    low, high = binary_mean_ci(k, n)
    coverage = np.mean((low <= 0.3) & (0.3 <= high))
    assert 0.89 <= coverage <= 0.99


def test_binary_bootstrap_empty_and_degenerate_groups():
    low, high = binary_mean_ci([0, 5, 0], [0, 5, 4])
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert (low[1], high[1]) == (1.0, 1.0)
    assert (low[2], high[2]) == (0.0, 0.0)


def test_paired_binary_diff_ci_matches_scipy_paired_bootstrap():
    # 200 pairs: 30 A-only right, 10 B-only right, 100 both right, 60 both wrong.
    a = np.array([1] * 30 + [0] * 10 + [1] * 100 + [0] * 60, dtype=float)
    b = np.array([0] * 30 + [1] * 10 + [1] * 100 + [0] * 60, dtype=float)
    ref = scipy.stats.bootstrap(
        (a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=True, n_resamples=20000,
        method="percentile", rng=np.random.default_rng(5),
    ).confidence_interval
    low, high = paired_binary_diff_ci(30, 10, 200, n_resamples=20000, seed=6)
    assert low == pytest.approx(ref.low, abs=0.006)
    assert high == pytest.approx(ref.high, abs=0.006)
    assert low < 0.1 < high


def test_paired_binary_diff_ci_vectorised_equals_scalar_shape_and_nan():
    low, high = paired_binary_diff_ci(np.array([3, 0]), np.array([1, 0]), np.array([13, 0]))
    assert low.shape == (2,) and np.isnan(low[1]) and np.isnan(high[1])
    assert -1 <= low[0] <= 3 / 13 - 1 / 13 <= high[0] <= 1


def test_continuous_ci_close_to_normal_theory_for_a_large_sample():
    x = np.random.default_rng(4).uniform(0, 1, 4000)
    low, high = continuous_mean_ci(x, n_resamples=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_continuous_ci_degenerate_inputs():
    assert continuous_mean_ci(np.array([0.4])) == (0.4, 0.4)
    assert continuous_mean_ci(np.array([0.25, 0.25, 0.25])) == (0.25, 0.25)
    low, high = continuous_mean_ci(np.array([]))
    assert np.isnan(low) and np.isnan(high)
