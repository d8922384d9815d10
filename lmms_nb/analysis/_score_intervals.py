"""Scores with confidence intervals per model x task (x group), summed from `prepare`'s block summary.

0/1 metrics get Wilson intervals from counts; continuous metrics get percentile bootstrap intervals from one
shared set of resamples per (task, filter), which also yields the pairs' paired-difference CIs and t-tests.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import polars as pl

from lmms_nb.analysis import _stats
from lmms_nb.analysis._alignment import sort_by_display_order
from lmms_nb.analysis._prepare import Prepared

__all__ = ["block_scores", "continuous_intervals"]


def _with_cis(
    table: pl.DataFrame, keys: list[str], info: Prepared, continuous: pl.DataFrame | None, *, confidence: float
) -> pl.DataFrame:
    """Add metric, binary, ci_low, ci_high, ci_method to a table of groups with n, n_unscored, score, _sum.

    0/1 metrics: the Wilson interval from (n, successes), which never collapses to a point. Continuous
    metrics: the bootstrap intervals `continuous_intervals` computed (`continuous`, keyed like `table`); where
    every value was the same (the bootstrap gives a point) and the values lie in [0, 1], the Wilson interval
    of the mean instead (a [0, 1] variable has at most the variance of a 0/1 one with that mean).
    """
    table = table.with_columns(
        pl.col("task").replace_strict(info.metrics, return_dtype=pl.Utf8).alias("metric"),
        pl.col("task").replace_strict(info.binary, return_dtype=pl.Boolean).alias("binary"),
    )
    wilson_low, wilson_high = _stats.wilson_ci(table["_sum"].to_numpy(), table["n"].to_numpy(), confidence=confidence)
    table = table.with_columns(_wl=pl.Series(wilson_low), _wh=pl.Series(wilson_high))
    if continuous is not None and not table["binary"].all():
        table = table.join(continuous, on=keys, how="left", nulls_equal=True)
    else:
        table = table.with_columns(ci_low=pl.lit(None, pl.Float64), ci_high=pl.lit(None, pl.Float64))
    collapsed = (
        ~pl.col("binary")
        & (pl.col("ci_low").is_null() | (pl.col("ci_low") == pl.col("ci_high")))
        & pl.col("score").is_between(0.0, 1.0)
        & (pl.col("n") > 0)
    )
    wilson = pl.col("binary") | collapsed
    table = table.with_columns(
        pl.when(wilson).then(pl.col("_wl")).otherwise(pl.col("ci_low")).alias("ci_low"),
        pl.when(wilson).then(pl.col("_wh")).otherwise(pl.col("ci_high")).alias("ci_high"),
        pl.when(pl.col("binary")).then(pl.lit("wilson")).when(collapsed).then(pl.lit("wilson (constant values)"))
        .otherwise(pl.lit("bootstrap")).alias("ci_method"),
    )
    return table.select(
        *keys, "metric", "binary", "n", "n_unscored", "score", "ci_low", "ci_high", "ci_method"
    ).with_columns(pl.col("ci_low", "ci_high").fill_nan(None))


def block_scores(
    info: Prepared, keys: list[str], continuous: pl.DataFrame | None, *, confidence: float
) -> pl.DataFrame:
    """Scores per group of `keys`, summed from the block summary (no second pass over the samples)."""
    table = info.blocks.group_by(keys).agg(
        pl.col("n").sum().cast(pl.Int64),
        (pl.col("rows") - pl.col("n")).sum().cast(pl.Int64).alias("n_unscored"),
        pl.col("sum").sum().alias("_sum"),
    )
    table = table.with_columns((pl.col("_sum") / pl.col("n")).fill_nan(None).alias("score"))
    table = _with_cis(table, keys, info, continuous, confidence=confidence)
    return sort_by_display_order(table, {"model": info.models, "task": info.tasks}, keys[2:])


def continuous_intervals(
    wide: pl.DataFrame, scored: pl.DataFrame, info: Prepared, *, confidence: float, n_resamples: int, seed: int
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, dict[tuple[int, int, int], tuple[float, float, float]]]:
    """Bootstrap CIs for the continuous-metric tasks: per model x task, per model x task x group, per pair.

    Per (task, filter) one set of resamples of the aligned samples serves every model's mean, every pair's
    mean difference and every model's mean per group (`shared_bootstrap_ci`; a group's size then varies
    between resamples, as it would between draws of the benchmark). Pairs also get their paired t-test
    p-value here, from the same aligned matrices. Returns (task CIs, group CIs, {(block, i, j):
    (ci_low, ci_high, p_value)}).
    """
    k = len(info.models)
    names = {b: tf for tf, b in info.block_index.items()}
    blocks = [b for b, (t, _) in names.items() if not info.binary[t]]
    if not blocks:
        return None, None, {}
    stats = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    sub = wide.filter(pl.col("_block").is_in(blocks))
    if info.by:
        # a sample's group (e.g. its category) is a property of the doc: take it from any model's row
        continuous_tasks = sorted({names[b][0] for b in blocks})
        groups = (
            scored.filter(pl.col("task").is_in(continuous_tasks)).select("_key", *info.by).unique("_key", keep="first")
        )
        sub = sub.join(groups, on="_key", how="left").sort("_key")
    pairs = list(combinations(range(k), 2))
    ia, ib = [i for i, _ in pairs], [j for _, j in pairs]
    task_rows: list[tuple] = []
    group_rows: list[tuple] = []
    pair_cis: dict[tuple[int, int, int], tuple[float, float, float]] = {}

    def matrices(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = frame.select(f"value_{i}" for i in range(k)).to_numpy().astype(np.float64)
        present = ~np.isnan(values)
        return np.where(present, values, 0.0), present.astype(np.float64)

    for block in blocks:
        task, filter_ = names[block]
        part = sub.filter(pl.col("_block") == block)
        segments: list[slice] = []
        group_keys: list[tuple] = []
        if info.by:
            # rows sorted by group, so each group is one slice of rows for the shared bootstrap
            part = part.sort(info.by, nulls_last=True, maintain_order=True)
            keys = part.select(info.by).rows()
            bounds = [0] + [r for r in range(1, len(keys)) if keys[r] != keys[r - 1]] + [len(keys)]
            segments = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            group_keys = [keys[a] for a in bounds[:-1]]
        x, p = matrices(part)
        n_pairs = len(pairs)
        both = p[:, ia] * p[:, ib]
        diffs = (x[:, ia] - x[:, ib]) * both
        # Columns of one shared bootstrap: the k model means; then the pairs' mean differences, as contrasts
        # of the means when every model has every sample, else as their own columns over the shared samples;
        # then each model's mean per group (row segments).
        if p.all():
            contrasts = np.zeros((k, n_pairs))
            contrasts[ia, np.arange(n_pairs)], contrasts[ib, np.arange(n_pairs)] = 1.0, -1.0
            low, high = _stats.shared_bootstrap_ci(
                x, contrasts=contrasts if n_pairs else None, segments=segments, segment_columns=k, **stats
            )
        else:
            low, high = _stats.shared_bootstrap_ci(
                np.hstack([x, diffs]), np.hstack([p, both]), segments=segments, segment_columns=k, **stats
            )
        # either way the output columns are: k models, n_pairs pairs, then k per group
        pair_at, group_at = k, k + n_pairs
        task_rows += [(m, task, filter_, low[i], high[i]) for i, m in enumerate(info.models)]
        for c, (i, j) in enumerate(pairs):
            p_value = _stats.paired_t_pvalue(diffs[both[:, c] > 0, c])
            pair_cis[(block, i, j)] = (low[pair_at + c], high[pair_at + c], p_value)
        for g, key in enumerate(group_keys):
            for i, m in enumerate(info.models):
                col = group_at + g * k + i
                group_rows.append((m, task, filter_, *key, low[col], high[col]))
    task_cis = pl.DataFrame(task_rows, schema=["model", "task", "filter", "ci_low", "ci_high"], orient="row")
    group_cis = None
    if info.by:
        group_schema = {
            "model": pl.Utf8,
            "task": pl.Utf8,
            "filter": pl.Utf8,
            **{c: scored.schema[c] for c in info.by},
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
        }
        group_cis = pl.DataFrame(group_rows, schema=group_schema, orient="row")
    return task_cis, group_cis, pair_cis
