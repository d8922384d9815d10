"""From a canonical sample table to the "scored" long table that every comparison works on.

Steps, each with an error that names the offending field, model, task or run:
1. accept polars (eager or lazy) or pandas, check the key columns, `conform` to the schema;
2. summarise the table once per block (model x run x task x filter): rows, distinct doc ids and, per
   metric column, the count of values, their sum and whether they are all 0/1. Every later decision
   reads this small table instead of scanning the samples again;
3. keep the requested models and tasks; choose one metric per task (`choose_metrics`); keep one run per
   model and task (`resolve_runs`);
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
from typing import Any, Literal, Mapping, Sequence

import polars as pl

from lmms_nb.logs.schema import ALIGN_KEY, FIXED_COLUMNS, conform

#: Threshold of the binary view of a continuous metric (ANLS, F1...): a sample counts as "correct" at or above it.
CONTINUOUS_CORRECT_THRESHOLD = 0.5

RunChoice = Mapping[str, str] | Literal["latest"] | None


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


def metric_candidates(table: pl.DataFrame, by: Sequence[str]) -> list[str]:
    candidates = [c for c in table.columns if c not in FIXED_COLUMNS and c not in by]
    if not candidates:
        raise ValueError(
            "the sample table has no metric column (every column that is not in lmms_nb.logs.schema.FIXED_COLUMNS "
            f"is one); columns: {table.columns}"
        )
    return candidates


def block_summary(table: pl.DataFrame, candidates: Sequence[str], by: Sequence[str] = ()) -> pl.DataFrame:
    """One row per (model, run_id, task, filter, *by): rows and, per metric column c, `c:n` (values),
    `c:sum` and `c:01` (all values are 0 or 1). The only group-by over all samples: scores per task and per
    group, the metric choice and the run checks are all read off this small table."""
    aggs: list[pl.Expr] = [pl.len().alias("rows")]
    for c in candidates:
        col = pl.col(c)
        aggs += [
            col.count().alias(f"{c}:n"),
            col.sum().alias(f"{c}:sum"),
            ((col == 0.0) | (col == 1.0) | col.is_null()).all().alias(f"{c}:01"),
        ]
    return table.group_by("model", "run_id", "task", "filter", *by).agg(aggs)


def select_rows(
    table: pl.DataFrame, blocks: pl.DataFrame, *, models: Sequence[str] | None, tasks: Sequence[str] | None
) -> tuple[pl.DataFrame, pl.DataFrame, list[str], list[str]]:
    """Keep the requested models and tasks (in the order given), with an error naming any that are absent."""
    if isinstance(models, str) or isinstance(tasks, str):
        raise TypeError("models= and tasks= take a list of names, not a single string")
    present_models = blocks["model"].unique().sort().to_list()
    present_tasks = blocks["task"].unique().sort().to_list()
    keep = pl.lit(True)
    if tasks is not None:
        absent = [t for t in tasks if t not in present_tasks]
        if absent:
            raise ValueError(f"task(s) {absent} not in the sample table; tasks present: {present_tasks}")
        keep = keep & pl.col("task").is_in(list(tasks))
    if models is not None:
        absent = [m for m in models if m not in present_models]
        if absent:
            raise ValueError(f"model(s) {absent} not in the sample table; models present: {present_models}")
        keep = keep & pl.col("model").is_in(list(models))
    if tasks is not None or models is not None:
        before = blocks.height
        blocks = blocks.filter(keep)
        if blocks.height < before:
            table = table.filter(keep)
    model_order = list(dict.fromkeys(models)) if models is not None else blocks["model"].unique().sort().to_list()
    task_order = list(dict.fromkeys(tasks)) if tasks is not None else present_tasks
    task_order = [t for t in task_order if t in set(blocks["task"].to_list())]
    if blocks.height == 0:
        if models is None and tasks is None:
            raise ValueError("the sample table has no rows")
        raise ValueError(f"no samples left for models={models} and tasks={tasks}")
    have = set(blocks["model"].to_list())
    empty = [m for m in model_order if m not in have]
    if empty:
        raise ValueError(f"model(s) {empty} have no samples in task(s) {task_order}")
    return table, blocks, model_order, task_order


def choose_metrics(
    blocks: pl.DataFrame, metric: str | Mapping[str, str] | None, candidates: Sequence[str]
) -> dict[str, str]:
    """One metric column per task.

    A metric given by name (for all tasks) or as {task: metric} is used as is. Otherwise a task's metric is
    the only metric column that holds at least one non-null value on that task's rows: a canonical table
    built from several tasks has the other tasks' metric columns null there. When a task has several such
    columns the choice is the user's, and the error lists the candidates.
    """
    filled = blocks.group_by("task").agg(pl.col(f"{c}:n").sum().alias(c) for c in candidates)
    with_values = {row["task"]: [c for c in candidates if row[c] > 0] for row in filled.iter_rows(named=True)}
    if isinstance(metric, str):
        if metric not in candidates:
            raise ValueError(f"metric {metric!r} is not a metric column; metric columns: {list(candidates)}")
        empty = sorted(t for t, cols in with_values.items() if metric not in cols)
        if empty:
            raise ValueError(
                f"metric {metric!r} has no value for task(s) {empty}; their metrics: "
                + "; ".join(f"{t}: {with_values[t]}" for t in empty)
                + " (pass metric={task: name} or tasks=[...])"
            )
        return {t: metric for t in with_values}
    given = dict(metric or {})
    unknown = [t for t in given if t not in with_values]
    if unknown:
        raise ValueError(f"metric= names task(s) {unknown} that are not compared; tasks: {sorted(with_values)}")
    chosen: dict[str, str] = {}
    for task, cols in sorted(with_values.items()):
        if task in given:
            if given[task] not in cols:
                raise ValueError(
                    f"metric {given[task]!r} has no value for task {task!r}; its metric columns with values: {cols}"
                )
            chosen[task] = given[task]
        elif len(cols) == 1:
            chosen[task] = cols[0]
        elif not cols:
            raise ValueError(f"task {task!r} has no metric value in any row (all metric columns are null)")
        else:
            raise ValueError(
                f"task {task!r} has several metric columns with values: {cols}; choose one with "
                f"metric={cols[0]!r} or metric={{{task!r}: {cols[0]!r}}}"
            )
    return chosen


def resolve_runs(table: pl.DataFrame, blocks: pl.DataFrame, runs: RunChoice) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep one run per (model, task).

    A model evaluated once (or in several runs covering different tasks) needs nothing. When several runs of
    one model cover the same task, `runs={"model": "run_id"}` picks one, `runs="latest"` keeps the run whose
    run_id sorts last (our run ids and lmms-eval timestamps start with the date), and otherwise this raises,
    naming the model, task and run ids: silently mixing two checkpoints would corrupt every statistic.
    """
    keep: pl.Expr | None = None
    if isinstance(runs, Mapping):
        compared = set(blocks["model"].to_list())
        for model, run_id in runs.items():
            if model not in compared:
                raise ValueError(f"runs= names model {model!r}, which is not compared; models: {sorted(compared)}")
            have = blocks.filter(pl.col("model") == model)["run_id"].unique().to_list()
            if run_id not in have:
                raise ValueError(
                    f"runs= picks run {run_id!r} for model {model!r}, whose runs are {sorted(map(str, have))}"
                )
        keep = pl.lit(True)
        for model, run_id in runs.items():
            keep = keep & ((pl.col("model") != model) | (pl.col("run_id") == run_id))
        blocks = blocks.filter(keep)
    elif runs is not None and runs != "latest":
        raise ValueError(f"runs= takes {{model: run_id}} or 'latest', not {runs!r}")
    multi = (
        blocks.group_by("model", "task")
        .agg(pl.col("run_id").unique().sort(nulls_last=False).alias("runs"))
        .filter(pl.col("runs").list.len() > 1)
        .sort("model", "task")
    )
    if multi.height:
        if runs != "latest":
            first = multi.row(0, named=True)
            raise ValueError(
                f"model {first['model']!r} has rows from {len(first['runs'])} runs for task {first['task']!r} "
                f"(run ids: {first['runs']}); compare() needs one run per model and task: pass "
                f"runs={{{first['model']!r}: {first['runs'][-1]!r}}} or runs='latest', or use "
                f"flips(df, {first['runs'][0]!r}, {first['runs'][-1]!r}) to see what changed between them"
                + (f" ({multi.height} model/task pairs are ambiguous)" if multi.height > 1 else "")
            )
        dropped = multi.select("model", "task", pl.col("runs").list.head(pl.col("runs").list.len() - 1)).explode("runs")
        drop = pl.lit(False)
        for model, task, run_id in dropped.iter_rows():
            drop = drop | (
                (pl.col("model") == model) & (pl.col("task") == task) & (pl.col("run_id").eq_missing(run_id))
            )
        keep = ~drop if keep is None else keep & ~drop
        blocks = blocks.filter(~drop)
    if keep is not None:
        table = table.filter(keep)
    return table, blocks


def default_by(table: pl.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    """`by` as a list; None means ["category"] when the table has any category, else no grouping."""
    if by is None:
        return ["category"] if table["category"].null_count() < table.height else []
    return [by] if isinstance(by, str) else list(by)


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


__all__ = ["ALIGN_KEY", "CONTINUOUS_CORRECT_THRESHOLD", "Prepared", "as_canonical", "prepare"]
