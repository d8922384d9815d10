"""What `evaluate()` hands back: the `Run` (scores, samples, where the logs are) and per-batch `BatchProgress`."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["BatchProgress", "Run"]


@dataclass
class BatchProgress:
    """What `on_batch` receives after each batch: enough to draw a progress bar and partial scores."""

    task: str
    done: int
    total: int
    partial_scores: dict[str, float]
    n_errors: int


@dataclass
class Run:
    """The result of `evaluate()`: scores, the per-sample table and where the logs are.

    `scores` has one row per task x metric x filter: value, stderr and n (samples that were scored).
    `samples` is the canonical sample table (see `lmms_nb.logs.schema`); `to_pandas()` converts both.
    """

    run_id: str
    model: str
    model_args: dict[str, Any]
    tasks: list[str]
    output_dir: Path
    results_file: Path
    sample_files: dict[str, Path]
    scores: pl.DataFrame
    samples: pl.DataFrame
    completed: bool
    n_errors: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return self.samples.select(pl.struct("task", "doc_id").n_unique()).item() if self.samples.height else 0

    def docs_per_task(self) -> dict[str, int]:
        """{task: how many of its docs have rows in `samples`}, in the run's task order; 0 for a task without rows."""
        counts = (dict(self.samples.group_by("task").agg(pl.col("doc_id").n_unique()).iter_rows())
                  if self.samples.height else {})
        return {task: counts.get(task, 0) for task in [*self.tasks, *sorted(set(counts) - set(self.tasks))]}

    def to_pandas(self) -> "Any":
        """The sample table as a pandas DataFrame."""
        return self.samples.to_pandas()

    def score(self, task: str, metric: str | None = None, filter: str | None = None) -> float:
        """One aggregate score (the first metric of the task when `metric` is omitted)."""
        rows = self.scores.filter(pl.col("task") == task)
        if metric is not None:
            rows = rows.filter(pl.col("metric") == metric)
        if filter is not None:
            rows = rows.filter(pl.col("filter") == filter)
        if rows.height == 0:
            raise KeyError(f"no score for task={task!r} metric={metric!r} filter={filter!r}")
        return float(rows["value"][0])

    def __repr__(self) -> str:
        state = "complete" if self.completed else "incomplete"
        return (f"Run({self.model!r}, tasks={self.tasks}, samples={self.samples.height}, "
                f"errors={self.n_errors}, {state}, logs={str(self.results_file)!r})")

    def _repr_html_(self) -> str:
        head = html.escape(f"{self.model} — {len(self.tasks)} task(s), {self.samples.height} samples, "
                           f"{self.n_errors} errors{'' if self.completed else ' (incomplete)'}")
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
            for row in self.scores.iter_rows()
        )
        cols = "".join(f"<th>{html.escape(c)}</th>" for c in self.scores.columns)
        return f"<b>{head}</b><table><tr>{cols}</tr>{rows}</table><small>{html.escape(str(self.results_file))}</small>"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
