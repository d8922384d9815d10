"""Paired statistics for model comparison: exact McNemar, Holm adjustment, bootstrap confidence intervals.

Everything here works on numpy arrays of counts or values and is vectorised over groups, so `compare()`
stays fast with millions of rows: the per-sample work happens in polars before these functions are called.

Example:
    >>> round(mcnemar_exact(3, 1), 4)
    0.625
    >>> holm_adjust([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.stats

#: Default number of bootstrap resamples; 2000 keeps the Monte Carlo error of a 95% percentile bound
#: around a tenth of the interval's own width while costing milliseconds with the shortcuts below.
DEFAULT_RESAMPLES = 2000


def mcnemar_exact(a_right_b_wrong: int | np.ndarray, b_right_a_wrong: int | np.ndarray) -> float | np.ndarray:
    """Exact two-sided McNemar p-value from the discordant pair counts (vectorised).

    This is `scipy.stats.binomtest(b, b + c, 0.5).pvalue`: under the null each discordant pair is a fair coin.
    For p = 0.5 the binomial is symmetric, so the two-sided p-value is `min(1, 2 * cdf(min(b, c)))`, which
    we compute in one vectorised call instead of one `binomtest` per pair (the tests check both agree).
    No discordant pair at all gives p = 1.

    >>> mcnemar_exact(3, 1)
    0.625
    >>> mcnemar_exact([0, 10], [0, 0]).round(5).tolist()
    [1.0, 0.00195]
    """
    b = np.asarray(a_right_b_wrong, dtype=np.int64)
    c = np.asarray(b_right_a_wrong, dtype=np.int64)
    n = b + c
    p = np.minimum(1.0, 2.0 * scipy.stats.binom.cdf(np.minimum(b, c), n, 0.5))
    p = np.where(n == 0, 1.0, p)
    return float(p) if p.ndim == 0 else p


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values; NaN entries are ignored and stay NaN.

    Sorted ascending, p_(i) becomes max_{j<=i} min(1, (m - j + 1) * p_(j)) with m the number of tests.
    (scipy.stats.false_discovery_control is Benjamini-Hochberg, not Holm, and statsmodels is not a
    dependency, so this is the textbook step-down in five numpy lines.)

    >>> holm_adjust([0.01, 0.02, 0.03, float("nan")]).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = (m - np.arange(m)) * p[ok][order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    valid = np.empty(m)
    valid[order] = adjusted
    out[ok] = valid
    return out


def _percentile_bounds(draws: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - confidence) / 2.0
    # Same interpolation as scipy.stats.bootstrap(method="percentile") (np.percentile, linear).
    low, high = np.percentile(draws, [100 * alpha, 100 * (1 - alpha)], axis=-1)
    return low, high


def binary_mean_ci(
    successes: np.ndarray | Sequence[int],
    n: np.ndarray | Sequence[int],
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean of 0/1 data, computed exactly, for many groups at once.

    Resampling n values with replacement from data with k ones gives a Binomial(n, k/n) count of ones, so
    the bootstrap distribution of the mean is exactly Binomial(n, k/n) / n, and its percentiles are binomial
    quantiles: the interval scipy.stats.bootstrap(method="percentile") converges to as n_resamples grows
    (tests check), with no Monte Carlo error, no seed, and O(1) cost per group however large n is.
    Groups with n = 0 get NaN.

    >>> low, high = binary_mean_ci([70], [100])
    >>> low.round(2).tolist(), high.round(2).tolist()
    ([0.61], [0.79])
    """
    k = np.atleast_1d(np.asarray(successes, dtype=np.int64))
    n = np.atleast_1d(np.asarray(n, dtype=np.int64))
    alpha = (1.0 - confidence) / 2.0
    safe_n = np.maximum(n, 1)
    p = k / safe_n
    low = scipy.stats.binom.ppf(alpha, safe_n, p) / safe_n
    high = scipy.stats.binom.ppf(1.0 - alpha, safe_n, p) / safe_n
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def paired_binary_diff_ci(
    a_right_b_wrong: int | np.ndarray,
    b_right_a_wrong: int | np.ndarray,
    n_both: int | np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Paired bootstrap CI of acc(A) - acc(B) on n_both aligned 0/1 samples, for many pairs at once.

    Each pair's difference is +1 (A right, B wrong), -1 (B right, A wrong) or 0, so resampling the n_both
    pairs with replacement is a multinomial draw of those three counts: exactly the paired bootstrap, at a
    cost independent of n_both. Scalars in, floats out; arrays in, arrays out; n_both = 0 gives NaN.

    >>> low, high = paired_binary_diff_ci(30, 10, 200)
    >>> bool(low < 0.1 < high), bool(low > 0)
    (True, True)
    """
    scalar = np.ndim(n_both) == 0
    b = np.atleast_1d(np.asarray(a_right_b_wrong, dtype=np.int64))
    c = np.atleast_1d(np.asarray(b_right_a_wrong, dtype=np.int64))
    n = np.atleast_1d(np.asarray(n_both, dtype=np.int64))
    draws = np.zeros((len(n), n_resamples))
    for r in range(len(n)):
        size = int(n[r])
        if size == 0:
            continue
        plus_p, minus_p = b[r] / size, c[r] / size
        # Seeded by the counts themselves, so a pair's interval depends on its own data only (not on the other
        # pairs or their order). A multinomial (n; p_ab, p_ba, rest) draw is done as two binomials: the +1
        # count, then the -1 count among the remaining pairs.
        rng = np.random.default_rng([seed, size, int(b[r]), int(c[r])])
        plus = rng.binomial(size, plus_p, n_resamples)
        minus = rng.binomial(size - plus, min(1.0, minus_p / (1.0 - plus_p)) if plus_p < 1.0 else 0.0)
        draws[r] = (plus - minus) / size
    low, high = _percentile_bounds(draws, confidence)
    low, high = np.where(n == 0, np.nan, low), np.where(n == 0, np.nan, high)
    return (float(low[0]), float(high[0])) if scalar else (low, high)


def continuous_mean_ci(
    values: np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of continuous values (ANLS, a paired difference...).

    scipy.stats.bootstrap in vectorised mode, in batches bounded to ~16M drawn values so memory stays small
    with 100k samples. Fewer than two values give (mean, mean) for one value and NaN for none.

    >>> low, high = continuous_mean_ci(np.linspace(0, 1, 101))
    >>> bool(low < 0.5 < high), bool(high - low < 0.2)
    (True, True)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        # Every resample has the same mean; scipy would warn about a degenerate distribution.
        mean = float(x.mean())
        return mean, mean
    res = scipy.stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        batch=max(1, int(16_000_000 // x.size)),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_t_pvalue(diffs: np.ndarray) -> float:
    """Two-sided p-value of a paired t-test on the per-sample differences (scipy.stats.ttest_1samp vs 0).

    All-zero differences give p = 1; constant non-zero differences give p = 0.

    >>> paired_t_pvalue(np.zeros(5))
    1.0
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2:
        return float("nan")
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(scipy.stats.ttest_1samp(d, 0.0).pvalue)
