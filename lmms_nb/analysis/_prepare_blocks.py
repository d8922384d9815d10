"""Steps 2 and 3 of `prepare`: the block summary (one row per model x run x task x filter) and the choices read
off it: which rows (models, tasks), which metric per task and which run per model and task.

Example:
    >>> import polars as pl
    >>> from lmms_nb.logs.schema import conform
    >>> table = conform(pl.DataFrame({"model": ["a", "a"], "task": ["t", "t"], "doc_id": [0, 1], "acc": [1.0, 0.0]}))
    >>> block_summary(table, metric_candidates(table, []))[["model", "rows", "acc:n", "acc:sum", "acc:01"]].rows()
    [('a', 2, 2, 1.0, True)]
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import polars as pl

from lmms_nb.logs.schema import FIXED_COLUMNS

__all__ = ["RunChoice", "block_summary", "choose_metrics", "default_by", "metric_candidates", "resolve_runs",
           "select_rows"]

RunChoice = Mapping[str, str] | Literal["latest"] | None


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
