"""`load_scores`: aggregate scores (results JSONs of lmms-eval / lm-evaluation-harness / lmms-nb, VLMEvalKit score
tables) as a long table of (run_id, model, task, metric, filter, value, stderr). Re-exported by `lmms_nb.logs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Sequence, overload

import polars as pl

from lmms_nb.logs._detect import HARNESS_RESULTS_NAME, RESULTS_NAME, discover
from lmms_nb.logs._errors import LogFormatError, Problems
from lmms_nb.logs._lmms_eval_legacy import legacy_run_id
from lmms_nb.logs._runinfo import model_from_results, read_results_json
from lmms_nb.logs._vlmevalkit_scores import read_score_table

__all__ = ["SCORE_COLUMNS", "load_scores"]

PathLike = str | os.PathLike
Paths = PathLike | Sequence[PathLike]

#: Columns of `load_scores`' table.
SCORE_COLUMNS: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "model": pl.String,
    "task": pl.String,
    "metric": pl.String,
    "filter": pl.String,
    "value": pl.Float64,
    "stderr": pl.Float64,
    "source_format": pl.String,
    "source_file": pl.String,
}


def _flatten(prefix: str, value: Any) -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(prefix, float(value))]
    if isinstance(value, dict):
        out = []
        for key, inner in value.items():
            out.extend(_flatten(f"{prefix}.{key}", inner))
        return out
    return []


def _scores_from_results(path: Path, payload: dict[str, Any]) -> pl.DataFrame:
    harness = HARNESS_RESULTS_NAME.match(path.name)
    ours = RESULTS_NAME.match(path.name)
    if harness:
        run_id, source_format = f"{path.parent.name}/{harness.group('date')}", "lm_eval_harness"
    elif ours:
        run_id, source_format = f"{path.parent.name}/{ours.group('date')}", "lmms_eval"
    else:
        run_id, source_format = legacy_run_id(path), "lmms_eval"
    block = payload.get("lmms_nb")
    if isinstance(block, dict):
        source_format = "lmms_nb"
        run_id = block.get("run_id") if isinstance(block.get("run_id"), str) else run_id
    model = model_from_results(payload) or path.parent.name
    rows = []
    results = payload.get("results") if isinstance(payload.get("results"), dict) else {}
    for task, entries in results.items():
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            metric, sep, filt = key.rpartition(",")
            if not sep:
                continue  # "alias" and other labels
            if "_stderr" in metric:
                continue
            stderr = entries.get(f"{metric}_stderr,{filt}")
            stderr = float(stderr) if isinstance(stderr, (int, float)) and not isinstance(stderr, bool) else None
            for name, number in _flatten(metric, value):
                # {"LLM_JUDGE": {"LLM_JUDGE": 1.0}}: the metric's own key is the metric
                name = metric if name == f"{metric}.{metric}" else name
                rows.append((run_id, model, str(task), name, filt, number, stderr if name == metric else None))
    frame = pl.DataFrame(rows, schema=list(SCORE_COLUMNS)[:7], orient="row")
    return frame.with_columns(source_format=pl.lit(source_format), source_file=pl.lit(str(path)))


@overload
def load_scores(paths: Paths, *, strict: Literal[True] = ...) -> pl.DataFrame: ...
@overload
def load_scores(paths: Paths, *, strict: Literal[False]) -> tuple[pl.DataFrame, list[LogFormatError]]: ...
def load_scores(paths: Paths, *, strict: bool = True) -> pl.DataFrame | tuple[pl.DataFrame, list[LogFormatError]]:
    """Aggregate scores (one row per run x task x metric x filter) from results JSONs and VLMEvalKit score tables.

    Dict-valued aggregates are flattened with dots (`accuracy_by_topic.Flags`,
    `motion_analysis_bench_acc.overall_acc`); `stderr` is filled where the source gives a number. VLMEvalKit
    score tables give one row per column (`perception`, `reasoning`, `OCR`...) with source_format
    "vlmevalkit_score" and filter "none". The run_id of a results JSON is the run_id of its samples'
    rows in `load_logs`, so the two tables join.

    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "org__m"
    >>> d.mkdir()
    >>> _ = (d / "20240101_000000_results.json").write_text(json.dumps({"results": {"t": {
    ...     "alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1}}, "model_name_sanitized": "org__m"}))
    >>> load_scores(d).select("model", "task", "metric", "value", "stderr").rows()
    [('org__m', 't', 'acc', 0.5, 0.1)]
    """
    problems = Problems(strict)
    frames: list[pl.DataFrame] = []
    found = discover(paths, problems)
    for item in found:
        if item.kind == "results":
            try:
                payload = read_results_json(item.path)
            except ValueError as e:
                problems.error(item.path, None, f"unreadable results JSON: {e}", "a results JSON object")
                continue
            frames.append(_scores_from_results(item.path, payload))
        elif item.kind == "vlmevalkit_score":
            table = read_score_table(item.path, problems)
            if table is not None:
                frames.append(
                    table.with_columns(
                        run_id=pl.lit(f"{item.path.parent.name}/{item.path.stem}"),
                        filter=pl.lit("none"),
                        stderr=pl.lit(None, pl.Float64),
                        source_format=pl.lit("vlmevalkit_score"),
                        source_file=pl.lit(str(item.path)),
                    )
                )
    if not found and not problems.items:
        problems.error(str(paths), None, "no results file found", "a results JSON or a VLMEvalKit score table")
    frames = [f.select([pl.col(c).cast(t) for c, t in SCORE_COLUMNS.items()]) for f in frames if f.height]
    df = pl.concat(frames) if frames else pl.DataFrame(schema=SCORE_COLUMNS)
    return df if strict else (df, problems.items)
