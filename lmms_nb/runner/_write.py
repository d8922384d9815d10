"""Stage 4, write: the results JSON in lmms-eval v0.7's shape plus our `lmms_nb` block.

Sample records are appended per batch by `lmms_nb.logs.writer.SampleLogWriter` (fsynced, so a kill loses at
most the batch in flight); the results file is replaced atomically (file and folder fsynced). A resumed run
keeps its earlier scores in the results file until the new ones are complete. Status: "running", "stopped"
(not every doc done), "complete" or "complete_with_errors" (every doc done, some failed: a model error, a
scorer error or a failed judgement, counted in `n_errors`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from lmms_nb.logs.writer import (
    SampleLogWriter,
    read_samples_file,
    rewrite_samples_file,
    sanitize_model_name,
    write_json_atomic,
)
from lmms_nb.models.base import Model
from lmms_nb.runner._plan import RunPlan
from lmms_nb.runner._score import is_failed

__all__ = ["history_path", "read_history", "retire_failed", "run_meta", "version", "write_results"]

_PACKAGES = ("lmms-nb", "torch", "transformers", "datasets", "polars", "numpy", "pillow", "open_clip_torch")


def run_meta(plan: RunPlan) -> dict[str, Any]:
    """The `lmms_nb` block of a run that is starting: identity, versions, status "running"."""
    return {
        "version": version("lmms-nb"),
        "run_id": plan.run_id,
        "run_key": plan.run_key,
        "identity": plan.identity.parts,
        "status": "running",
        "task_fingerprints": {t.name: t.fingerprint() for t in plan.tasks},
        "packages": {p: version(p) for p in _PACKAGES},
        "python": platform.python_version(),
        "started": plan.started,
    }


def write_results(plan: RunPlan, model: Model, config: dict[str, Any], meta: dict[str, Any],
                  scores: dict[str, Any] | None) -> None:
    """Replace the run's results file with the given config, status and scores (None: the earlier run's)."""
    if scores is None:
        scores = (plan.previous or {}).get("results") or {}
    write_json_atomic(plan.results_file, _results_payload(plan, model, config, meta, scores))


def _results_payload(plan: RunPlan, model: Model, config: dict[str, Any], meta: dict[str, Any],
                     scores: dict[str, Any]) -> dict[str, Any]:
    tasks = plan.tasks
    return {
        "results": scores,
        "configs": {
            t.name: {
                "task": t.name,
                "test_split": t.split,
                "dataset_path": t.dataset_path,
                "generation_kwargs": t.generation_kwargs,
                "metric_list": [{"metric": m.name, "higher_is_better": m.higher_is_better} for m in t.metrics],
                "filter_list": [{"name": f} for f in t.filters],
                "output_type": "generate_until",
                "metadata": {"version": t.version},
                **({"category_column": t.category_column} if t.category_column else {}),
                **t.config,
            }
            for t in tasks
        },
        "versions": {t.name: t.version for t in tasks},
        "n-samples": {t.name: {"effective": len(plan.doc_ids[t.name])} for t in tasks},
        "config": {**config, "model_args": _model_args_str(config["model_args"])},
        "model_name": model.name,
        "model_name_sanitized": sanitize_model_name(model.name),
        "date": time.time(),
        "lmms_nb": meta,
    }


def _model_args_str(args: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in args.items())


def version(package: str) -> str | None:
    """The installed version of `package`, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def history_path(samples_file: Path) -> Path:
    # Not named *.jsonl: log readers must not take earlier attempts for samples.
    return samples_file.with_name(samples_file.name + ".history")


def retire_failed(samples_file: Path, records: list[dict[str, Any]]) -> set[int]:
    """Move the docs that failed (see `is_failed`) out of the samples file into its history file, to retry them.

    Their lines are appended (fsynced) to the history file before the samples file is rewritten without them,
    so a kill in between loses nothing. Returns the doc ids moved.
    """
    failed = {int(r["doc_id"]) for r in records if is_failed(r)}
    if failed:
        with SampleLogWriter(history_path(samples_file)) as history:
            history.write(r for r in records if int(r["doc_id"]) in failed)
        rewrite_samples_file(samples_file, [r for r in records if int(r["doc_id"]) not in failed])
    return failed


def read_history(samples_file: Path, first_filter: str) -> dict[int, list[dict[str, Any]]]:
    """The earlier failed attempts of each doc, oldest first: what each new record keeps in `history`."""
    out: dict[int, list[dict[str, Any]]] = {}
    for rec in read_samples_file(history_path(samples_file)).records:
        if rec.get("filter", "none") == first_filter:
            out.setdefault(int(rec["doc_id"]), []).append(
                {k: rec.get(k) for k in ("run_id", "error", "failed_metrics", "raw_response")})
    return out
