"""From a canonical sample table to the "scored" long table that every comparison works on.

Steps, each with an error that names the offending field, model, task or run:
1. accept polars (eager or lazy) or pandas, check the key columns, `conform` to the schema;
2. summarise the table once per block (model x run x task x filter): rows, distinct doc ids and, per
   metric column, the count of values, their sum and whether they are all 0/1. Every later decision
   reads this small table instead of scanning the samples again;
3. keep the requested models and tasks; choose one metric per task (`choose_metrics`); keep one run per
   model and task (`resolve_runs`) (steps 2 and 3: `_prepare_blocks`);
4. add `value` (the chosen metric), `correct` (value == 1 for 0/1 metrics; value >= 0.5 for continuous
   ones such as ANLS: the binary view used by slices, flips and agreement) and an integer sample key
   `_key` standing for (task, filter, doc_id), so that aligning models is an integer join.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["a", "b"], "task": ["t", "t"], "doc_id": [0, 0], "acc": [1.0, 0.0]})
    >>> scored, info = prepare(as_canonical(df))
    >>> info.metrics, scored["correct"].to_list()
    ({'t': 'acc'}, [True, False])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import polars as pl

from lmms_nb.analysis._prepare_blocks import (
    RunChoice,
    block_summary,
    choose_metrics,
    default_by,
    metric_candidates,
    resolve_runs,
    select_rows,
)
from lmms_nb.logs.schema import ALIGN_KEY, FIXED_COLUMNS, conform

#: Threshold of the binary view of a continuous metric (ANLS, F1...): a sample counts as "correct" at or above it.
CONTINUOUS_CORRECT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Prepared:
    """What `prepare` decided, and the block summary (one row per model x task x filter) it computed.

    `blocks` has model, task, filter, run_id, *by, rows, n (scored samples), sum (of the chosen metric).
    Sample keys: `_key = block_index[(task, filter)] * key_stride + (doc_id - min_doc_id)`.
    """

    models: list[str]
    tasks: list[str]
    metrics: dict[str, str]
    binary: dict[str, bool]
    by: list[str]
    blocks: pl.DataFrame
    block_index: dict[tuple[str, str], int]
    key_stride: int
    min_doc_id: int


def as_canonical(df: Any, *, keep: Sequence[str] = ()) -> pl.DataFrame:
    """A polars canonical table from polars/pandas input; `keep` names extra (non-metric) columns kept as-is.

    >>> import pandas as pd
    >>> as_canonical(pd.DataFrame({"model": ["m"], "task": ["t"], "doc_id": [0], "acc": [1]}))["acc"].dtype
    Float64
    """
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if not isinstance(df, pl.DataFrame):
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"expected a polars or pandas DataFrame (the canonical sample table), got {type(df).__name__}"
            )
        df = pl.from_pandas(df)
    required = ("model", "task", "doc_id")
    absent = [c for c in required if c not in df.columns]
    if absent:
        raise ValueError(
            f"the sample table lacks column(s) {absent}; it needs at least {list(required)} and one metric column "
            f"(see lmms_nb.logs.schema.FIXED_COLUMNS); columns found: {df.columns}"
        )
    unknown_keep = [c for c in keep if c not in df.columns]
    if unknown_keep:
        raise ValueError(f"by= names column(s) {unknown_keep} that are not in the sample table; columns: {df.columns}")
    extra = [c for c in keep if c not in FIXED_COLUMNS]
    out = conform(df.drop(extra))
    if extra:
        out = out.with_columns(df.get_column(c) for c in extra)
    if out["doc_id"].null_count():
        row = out.select(pl.col("doc_id").is_null().arg_true().first()).item()
        raise ValueError(
            f"doc_id must be an integer: row {row} has doc_id={df['doc_id'][row]!r} "
            f"(model={df['model'][row]!r}, task={df['task'][row]!r})"
        )
    for col in ("model", "task"):
        if out[col].null_count():
            row = out.select(pl.col(col).is_null().arg_true().first()).item()
            raise ValueError(f"column {col!r} is null in row {row}; every sample needs a model and a task")
    return out


def prepare(
    table: pl.DataFrame,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    metric: str | Mapping[str, str] | None = None,
    by: str | Sequence[str] | None = None,
    runs: RunChoice = None,
) -> tuple[pl.DataFrame, Prepared]:
    """The scored long table (one row per model x task x doc x filter) and the decisions made on the way.

    `table` is a canonical table (`as_canonical`). The scored table adds `value`, `correct`, `_key`.
    """
    by_list = default_by(table, by)
    candidates = metric_candidates(table, by_list)
    blocks = block_summary(table, candidates, by_list)
    table, blocks, model_order, task_order = select_rows(table, blocks, models=models, tasks=tasks)
    chosen = choose_metrics(blocks, metric, candidates)
    table, blocks = resolve_runs(table, blocks, runs)

    binary = {t: bool(blocks.filter(pl.col("task") == t)[f"{m}:01"].all()) for t, m in chosen.items()}
    # The block summary already holds each block's count and sum of its chosen metric.
    metric_of = pl.col("task").replace_strict(chosen, return_dtype=pl.Utf8)
    n_expr: Any = pl
    sum_expr: Any = pl
    for m in sorted(set(chosen.values())):
        is_m = metric_of == m
        n_expr = n_expr.when(is_m).then(pl.col(f"{m}:n"))
        sum_expr = sum_expr.when(is_m).then(pl.col(f"{m}:sum"))
    blocks = blocks.select(
        "model", "task", "filter", "run_id", *by_list, "rows", n_expr.alias("n"), sum_expr.alias("sum")
    )

    # value: the chosen metric of each row's task (one column when every task uses the same metric).
    by_metric: dict[str, list[str]] = {}
    for task, m in chosen.items():
        by_metric.setdefault(m, []).append(task)
    if len(by_metric) == 1:
        value: Any = pl.col(next(iter(by_metric)))
    else:
        value = pl
        for m, ts in by_metric.items():
            value = value.when(pl.col("task").is_in(ts)).then(pl.col(m))
    binary_tasks = [t for t, b in binary.items() if b]
    if len(binary_tasks) == len(binary):
        correct = pl.col("value") == 1.0
    elif not binary_tasks:
        correct = pl.col("value") >= CONTINUOUS_CORRECT_THRESHOLD
    else:
        correct = (
            pl.when(pl.col("task").is_in(binary_tasks))
            .then(pl.col("value") == 1.0)
            .otherwise(pl.col("value") >= CONTINUOUS_CORRECT_THRESHOLD)
        )

    # Integer sample key: aligning models becomes a join on one Int64 column instead of (str, str, int).
    pairs = blocks.select("task", "filter").unique().sort("task", "filter").rows()
    filters = sorted({f for _, f in pairs})
    task_ids = {t: i for i, t in enumerate(sorted({t for t, _ in pairs}))}
    filter_ids = {f: i for i, f in enumerate(filters)}
    min_doc, max_doc = table["doc_id"].min(), table["doc_id"].max()
    stride = int(max_doc - min_doc + 1)
    if len(task_ids) * len(filters) * stride >= 2**62:
        raise ValueError(f"doc_id range [{min_doc}, {max_doc}] is too wide to key samples; renumber doc ids")
    block_of = pl.col("task").replace_strict(task_ids, return_dtype=pl.Int64)
    if len(filters) > 1:
        block_of = block_of * len(filters) + pl.col("filter").replace_strict(filter_ids, return_dtype=pl.Int64)
    block_index = {(t, f): task_ids[t] * len(filters) + filter_ids[f] for t, f in pairs}
    scored = table.with_columns(value.cast(pl.Float64).alias("value")).with_columns(
        correct.alias("correct"),
        (block_of * stride + (pl.col("doc_id") - min_doc)).alias("_key"),
    )
    return scored, Prepared(model_order, task_order, chosen, binary, by_list, blocks, block_index, stride, int(min_doc))


# RunChoice (of _prepare_blocks, steps 2 and 3) is imported from here by _compare and _slices
__all__ = ["ALIGN_KEY", "CONTINUOUS_CORRECT_THRESHOLD", "Prepared", "RunChoice", "as_canonical", "prepare"]
