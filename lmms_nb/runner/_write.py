"""Stage 4, write: the results JSON in lmms-eval v0.7's shape plus our `lmms_nb` block.

Sample records are appended per batch by `lmms_nb.logs.writer.SampleLogWriter` (fsynced, so a kill loses at
most the batch in flight); the results file is replaced atomically.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from typing import Any

from lmms_nb.logs.writer import sanitize_model_name, write_json_atomic
from lmms_nb.models.base import Model
from lmms_nb.runner._plan import RunPlan

__all__ = ["run_meta", "version", "write_results"]

_PACKAGES = ("lmms-nb", "torch", "transformers", "datasets", "polars", "numpy", "pillow", "open_clip_torch")


def run_meta(plan: RunPlan) -> dict[str, Any]:
    """The `lmms_nb` block of a run that is starting: identity, versions, status "running"."""
    return {
        "version": version("lmms-nb"),
        "run_id": plan.run_id,
        "run_key": plan.run_key,
        "status": "running",
        "task_fingerprints": {t.name: t.fingerprint() for t in plan.tasks},
        "packages": {p: version(p) for p in _PACKAGES},
        "python": platform.python_version(),
        "started": plan.started,
    }


def write_results(plan: RunPlan, model: Model, config: dict[str, Any], meta: dict[str, Any],
                  scores: dict[str, Any]) -> None:
    """Replace the run's results file with the given config, status and scores."""
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
