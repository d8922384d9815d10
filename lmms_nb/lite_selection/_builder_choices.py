"""What a Lite subset is built from: the task choices, budgets as doc counts, and the metrics of the logs.

These are the choices `LiteBuilder` offers; they live here so that the widget only lays them out.

Example:
    >>> import polars as pl
    >>> logs = pl.DataFrame({"model": ["a", "a"], "task": ["t", "u"], "doc_id": [0, 0], "acc": [1.0, None]})
    >>> metric_and_filter_choices(task_log_rows(logs, "t"))
    (['acc'], [])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from lmms_nb.lite_selection._subset import resolve_budget

__all__ = [
    "budget_doc_count",
    "default_filter",
    "default_metric",
    "metric_and_filter_choices",
    "task_choices",
    "task_log_rows",
]


def task_choices(item: Any) -> list[Any]:
    """The task(s) `item` stands for: [a `Task`], the `Task`s of a YAML file or folder, or [a registered name].

    Registered names stay names (a task is built only when chosen); an unknown name raises with the close
    matches, a missing YAML path with its path.

    >>> task_choices("synthbench_count")
    ['synthbench_count']
    """
    from lmms_nb.tasks import Task
    from lmms_nb.tasks.yaml_loader import is_yaml_task_spec, load_tasks

    if isinstance(item, Task):
        return [item]
    if is_yaml_task_spec(item):
        return load_tasks(item)  # a YAML file or a folder of them
    if isinstance(item, os.PathLike) or (isinstance(item, str) and item.endswith((".yaml", ".yml"))):
        raise FileNotFoundError(f"no such task YAML: {item}")
    if isinstance(item, str):
        import lmms_nb

        if item not in lmms_nb.list_tasks():
            lmms_nb.get_task(item)  # raises with the close matches
        return [item]  # built lazily, when chosen and embedded
    raise TypeError(f"a task is a Task, a registered name or a YAML path, got {type(item).__name__}")


def budget_doc_count(budget: int | float, n: int, what: str = "budget") -> int:
    """A budget as a doc count for a task of `n` docs: a fraction via `resolve_budget`, a count capped at n.

    >>> budget_doc_count(0.1, 905), budget_doc_count(5000, 905)
    (90, 905)
    """
    if isinstance(budget, (int, np.integer)) and not isinstance(budget, bool):
        if budget < 1:
            raise ValueError(f"{what} must be a count >= 1 or a fraction in (0, 1], got {budget!r}")
        return min(int(budget), n)
    return resolve_budget(budget, n)


def task_log_rows(logs: pl.DataFrame | None, task: str) -> pl.DataFrame | None:
    """The rows of `task` in a canonical sample table (all of it when it has no task column)."""
    if logs is None or "task" not in logs.columns:
        return logs
    return logs.filter(pl.col("task") == task)


def metric_and_filter_choices(rows: pl.DataFrame | None) -> tuple[list[str], list[str]]:
    """(numeric metric columns with at least one value, the filters present) of a task's sample rows."""
    from lmms_nb.logs.schema import metric_columns

    metrics: list[str] = []
    filters: list[str] = []
    if rows is not None and rows.height:
        metrics = [c for c in metric_columns(rows) if rows.schema[c].is_numeric() and rows[c].null_count() < rows.height]
        if "filter" in rows.columns:
            filters = rows["filter"].fill_null("none").unique().sort().to_list()
    return metrics, filters


def default_metric(metrics: Sequence[str], preferred: Sequence[str | None]) -> str | None:
    """The first of `preferred` among `metrics` (the one asked for, then the task's headline), else the first.

    >>> default_metric(["acc", "anls"], [None, "anls"]), default_metric([], ["acc"])
    ('anls', None)
    """
    return next((m for m in preferred if m in metrics), metrics[0] if metrics else None)


def default_filter(filters: Sequence[str]) -> str | None:
    """The filter "none" (lmms-eval's unfiltered answers) when present, else the first filter, else None.

    >>> default_filter(["flexible", "none"]), default_filter(["strict"]), default_filter([])
    ('none', 'strict', None)
    """
    return ("none" if "none" in filters else filters[0]) if filters else None
