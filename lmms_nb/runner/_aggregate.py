"""Stage 5, aggregate: the logged records of a task -> its sample table and its scores per metric and filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.logs._lmms_eval_073 import clt_stderr
from lmms_nb.logs._model_names import unify_model_names
from lmms_nb.logs._records import NON_METRIC_KEYS
from lmms_nb.logs.schema import FIXED_COLUMNS, conform
from lmms_nb.tasks._yaml_metrics import metric_number
from lmms_nb.tasks.task import Task

__all__ = ["aggregate", "clt_stderrs", "empty_scores", "records_to_table", "scores_dict"]

_SCORE_SCHEMA = {"task": pl.Utf8, "metric": pl.Utf8, "filter": pl.Utf8, "value": pl.Float64,
                 "stderr": pl.Float64, "n": pl.Int64}


def records_to_table(records: list[dict[str, Any]], source_file: Path, metric_names: set[str] = frozenset(),
                     score_key: str | None = None) -> pl.DataFrame:
    """Our log records as the canonical sample table (see `lmms_nb.logs.schema`)."""
    if not records:
        return conform(pl.DataFrame())
    rows = []
    skip = NON_METRIC_KEYS - set(FIXED_COLUMNS)  # the log keeps them; the table has only its columns and the metrics
    for r in records:
        # process_results may return more keys than the task's metrics (MMMU's "submission"): dicts and lists
        # become their number (or null) in the table, as the metrics' dicts do; the log keeps them as they are
        row = {k: (metric_number(v, score_key) if k in metric_names or isinstance(v, (dict, list)) else v)
               for k, v in r.items() if k not in skip}
        fr = r.get("filtered_resps")  # 0.7.3: a string; older lmms-nb logs: a one-item list
        row["prediction"] = (fr[0] if fr else None) if isinstance(fr, list) else (None if r.get("error") else fr)
        rows.append(row)
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns(source_format=pl.lit("lmms_nb"), source_file=pl.lit(str(source_file)))
    return unify_model_names(df)  # the name load_logs gives the same rows (org/name -> org__name)


def aggregate(task: Task, records: list[dict[str, Any]], dataset: Any) -> pl.DataFrame:
    """Task scores per metric and filter from the logged records, using each metric's aggregation.

    The aggregation gets the values as logged (dicts included, as lmms-eval passes them) and the docs.
    """
    if not records:
        return empty_scores()
    text_cols = [c for c in dataset.column_names if c != task.image_column]
    meta = dataset.select_columns(text_cols) if text_cols else None
    rows = []
    for filter_name in task.filters:
        part = sorted((r for r in records if r.get("filter", "none") == filter_name), key=lambda r: int(r["doc_id"]))
        for metric in task.metrics:
            col = metric.name if metric.per_sample else (metric.source or metric.name)
            scored = [r for r in part if r.get(col) is not None]
            if not any(col in r for r in part):
                continue
            values = [r[col] for r in scored]
            docs = [meta[int(r["doc_id"])] for r in scored] if meta is not None else [{}] * len(values)
            if values:
                value, stderr = metric.aggregate(values, docs)
            elif metric.name == "bypass":  # lmms-eval's --predict_only metric: null per sample, 999 overall
                value, stderr = metric.aggregate([], [])
            else:
                value, stderr = float("nan"), None
            # an lmms-eval aggregation may return no number (a submission file written, MMMU's pass@k list): null
            number = float(value) if isinstance(value, (int, float)) else None
            rows.append({"task": task.name, "metric": metric.name, "filter": filter_name, "value": number,
                         "stderr": None if stderr is None or stderr == "N/A" else float(stderr),
                         "n": len(values)})
    return pl.DataFrame(rows, schema=_SCORE_SCHEMA) if rows else empty_scores()


def empty_scores() -> pl.DataFrame:
    return pl.DataFrame(schema=_SCORE_SCHEMA)


def scores_dict(scores: pl.DataFrame, clt: dict[tuple[str, str, str], Any] | None = None) -> dict[str, dict[str, Any]]:
    """The scores table in results.json's `results` layout, as lmms-eval 0.7.3 writes it: per task its alias,
    then per (metric, filter) "metric,filter", "metric_stderr,filter", "_stderr_clt" and "_stderr_clustered"."""
    out: dict[str, dict[str, Any]] = {}
    for r in scores.iter_rows(named=True):
        d = out.setdefault(r["task"], {"alias": r["task"]})
        d[f"{r['metric']},{r['filter']}"] = r["value"]
        d[f"{r['metric']}_stderr,{r['filter']}"] = r["stderr"] if r["stderr"] is not None else "N/A"
        d[f"{r['metric']}_stderr_clt,{r['filter']}"] = (clt or {}).get((r["task"], r["metric"], r["filter"]), "N/A")
        d[f"{r['metric']}_stderr_clustered,{r['filter']}"] = "N/A"  # 0.7.3: only for tasks with a cluster_key
    return out


def clt_stderrs(task: Task, records: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """0.7.3's `_stderr_clt` of every (metric, filter) of a task, from its logged records."""
    score_key = task.config.get("score_key") or "score"
    out: dict[tuple[str, str, str], Any] = {}
    for metric in task.metrics:
        col = metric.name if metric.per_sample else (metric.source or metric.name)
        for filter_name in task.filters:
            values = [r[col] for r in records if r.get("filter", "none") == filter_name and r.get(col) is not None]
            out[(task.name, metric.name, filter_name)] = clt_stderr(values, score_key)
    return out
