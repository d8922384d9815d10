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

import warnings
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


def wilson_ci(
    successes: np.ndarray | Sequence[int],
    n: np.ndarray | Sequence[int],
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, for many groups at once (vectorised; n = 0 gives NaN).

    Unlike a bootstrap (or the Wald interval), it never collapses to a point: 200 right of 200 gives
    [0.981, 1.0], 5 of 5 gives [0.566, 1.0]. It is what `scipy.stats.binomtest(k, n).proportion_ci(
    method="wilson")` returns (the tests check), computed for every group in one numpy pass.

    >>> low, high = wilson_ci([200, 5], [200, 5])
    >>> low.round(3).tolist(), high.tolist()
    ([0.981, 0.566], [1.0, 1.0])
    """
    k = np.atleast_1d(np.asarray(successes, dtype=np.float64))
    n = np.atleast_1d(np.asarray(n, dtype=np.float64))
    z = scipy.stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    safe_n = np.maximum(n, 1.0)
    p = k / safe_n
    denom = 1.0 + z * z / safe_n
    centre = (p + z * z / (2.0 * safe_n)) / denom
    half = z * np.sqrt(np.maximum(p * (1.0 - p) / safe_n + z * z / (4.0 * safe_n * safe_n), 0.0)) / denom
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    # the closed form's rounding can leave 1e-17 instead of the exact 0 / 1 at k = 0 / k = n
    low, high = np.where(k == 0, 0.0, low), np.where(k == n, 1.0, high)
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def binary_mean_ci(
    successes: np.ndarray | Sequence[int],
    n: np.ndarray | Sequence[int],
    *,
    confidence: float = 0.95,
    method: str = "wilson",
) -> tuple[np.ndarray, np.ndarray]:
    """CI of the mean of 0/1 data for many groups at once: `method` "wilson" (default) or "bootstrap".

    "wilson" is `wilson_ci`: it never collapses to a point, so 200 of 200 right still reads as "at least
    98.1%", not "exactly 100%". "bootstrap" is the percentile bootstrap computed exactly: resampling n values
    with replacement from data with k ones gives a Binomial(n, k/n) count of ones, so its percentiles are
    binomial quantiles (what scipy.stats.bootstrap(method="percentile") converges to; tests check); it is
    [1, 1] for 5 of 5, which is why it is not the default. Groups with n = 0 get NaN.

    >>> low, high = binary_mean_ci([70], [100], method="bootstrap")
    >>> low.round(2).tolist(), high.round(2).tolist()
    ([0.61], [0.79])
    >>> [round(float(v[0]), 3) for v in binary_mean_ci([5], [5])]
    [0.566, 1.0]
    """
    if method == "wilson":
        return wilson_ci(successes, n, confidence=confidence)
    if method != "bootstrap":
        raise ValueError(f"method must be 'wilson' or 'bootstrap', got {method!r}")
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


def shared_bootstrap_ci(
    numerators: np.ndarray,
    denominators: np.ndarray | None = None,
    *,
    contrasts: np.ndarray | None = None,
    segments: Sequence[slice] = (),
    segment_columns: int | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CIs of sum(num[:, c]) / sum(den[:, c]) for every column c, from one shared set
    of resamples of the rows.

    Rows are samples (aligned across models); a column is a model's values with 0/1 presence as its
    denominator (a mean over the samples it has), or a pair's differences over the samples both have.
    `denominators=None` means 1 everywhere (plain means). One resample is a vector of counts (how often each
    row was drawn), so every column's resampled statistic is a matrix product `counts @ num / counts @ den`:
    the costly part of a bootstrap, drawing n indices per resample, is paid once per set of rows instead of
    once per model and per pair.

    Output columns, in order: the numerator columns; then `contrasts` (columns x m), m linear combinations of
    the resampled statistics (e.g. +1/-1 for a difference of means when every model has every sample); then,
    for each row slice in `segments` (e.g. the rows of one category, rows sorted by category), the first
    `segment_columns` statistics (default all) restricted to that slice, whose size then varies between
    resamples as it would between draws of the benchmark.

    With a denominator of 1 this is exactly the percentile bootstrap of a mean (scipy.stats.bootstrap with
    np.mean; tests check). The generator is seeded by (seed, number of rows), so a column's interval does
    not depend on which other columns are computed with it. Resamples where a denominator is 0 are left out.

    >>> x = np.linspace(0, 1, 101)[:, None]
    >>> low, high = shared_bootstrap_ci(x)
    >>> bool(low[0] < 0.5 < high[0]), bool(high[0] - low[0] < 0.2)
    (True, True)
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = None if denominators is None else np.asarray(denominators, dtype=np.float64)
    n, columns = num.shape
    per_segment = columns if segment_columns is None else segment_columns
    n_contrasts = 0 if contrasts is None else np.shape(contrasts)[1]
    width = columns + n_contrasts + len(segments) * per_segment
    if n == 0:
        return np.full(width, np.nan), np.full(width, np.nan)
    rng = np.random.default_rng([seed, n])
    batch = max(1, min(n_resamples, 4_000_000 // n))  # bounds the (batch x n) count matrix to ~32 MB
    draws = np.empty((n_resamples, width))
    buffer = np.empty(batch * n)  # float counts, reused: no fresh 32 MB per batch
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        rows = slice(start, start + size)
        picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = buffer[: size * n].reshape(size, n)
        np.copyto(counts, np.bincount(picks.ravel(), minlength=size * n).reshape(size, n))
        with np.errstate(invalid="ignore", divide="ignore"):
            # every resample draws n rows, so with unit denominators the divisor is n
            stat = counts @ num / (n if den is None else counts @ den)
            draws[rows, :columns] = stat
            if contrasts is not None:
                draws[rows, columns : columns + n_contrasts] = stat @ contrasts
            at = columns + n_contrasts
            for seg in segments:
                part = np.ascontiguousarray(counts[:, seg])  # BLAS is far slower on the strided view
                seg_num = part @ num[seg, :per_segment]
                seg_den = part.sum(axis=1)[:, None] if den is None else part @ den[seg, :per_segment]
                draws[rows, at : at + per_segment] = seg_num / seg_den
                at += per_segment
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column: no sample at all -> NaN interval
        low, high = np.nanpercentile(draws, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return low, high


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
