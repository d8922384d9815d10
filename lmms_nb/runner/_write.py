"""Stage 4, write: the results JSON in lmms-eval v0.7's shape plus our `lmms_nb` block.

Sample records are appended per batch by `lmms_nb.logs.writer.SampleLogWriter` (fsynced, so a kill loses at
most the batch in flight); the results file is replaced atomically (file and folder fsynced). A resumed run
keeps its earlier scores in the results file until the new ones are complete. Status: "running", "stopped"
(not every doc done), "complete" or "complete_with_errors" (every doc done, some failed: a model error, a
scorer error or a failed judgement, counted in `n_errors`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from lmms_nb.logs._lmms_eval_073 import results_extras, task_config_073
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

__all__ = ["history_path", "lmms_eval_extras", "read_history", "retire_failed", "run_meta", "version",
           "write_results"]

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
                  scores: dict[str, Any] | None, *, extras: dict[str, Any] | None = None,
                  run_config: dict[str, Any] | None = None) -> None:
    """Replace the run's results file with the given config, status and scores (None: the earlier run's);
    `extras` are lmms-eval 0.7.3's other top-level keys (a finished run's, see `lmms_eval_extras`)."""
    if scores is None:
        scores = (plan.previous or {}).get("results") or {}
    write_json_atomic(plan.results_file, _results_payload(plan, model, config, meta, scores, extras or {},
                                                          run_config or {}))


def lmms_eval_extras(plan: RunPlan, model: Model, lines_by_task: dict[str, list[dict[str, Any]]],
                     run_config: dict[str, Any], *, started: float, model_type: str | None) -> dict[str, Any]:
    """lmms-eval 0.7.3's top-level keys beside results / configs / versions / config, for a finished run."""
    tasks = plan.tasks
    margs = dict(getattr(model, "model_args", {}) or {})
    return results_extras(
        task_names=[t.name for t in tasks],
        lines_by_task={name: [{k: v for k, v in r.items() if k not in _OUR_KEYS} for r in lines]
                       for name, lines in lines_by_task.items()},
        n_original={t.name: len(plan.datasets[t.name]) for t in tasks},
        higher_is_better={t.name: {m.name: bool(m.higher_is_better) for m in t.metrics} for t in tasks},
        n_shot={t.name: int(t.config.get("num_fewshot") or 0) for t in tasks},
        model_source=str(run_config.get("model_source") or model_type or model.name),
        model_name=str(run_config.get("model_name") or margs.get("pretrained") or model.name),
        model_name_sanitized=sanitize_model_name(model.name), date=plan.results_file.name.split("_results")[0],
        start_time=started, end_time=time.perf_counter(),
        generation_seconds=sum({(name, r.get("doc_id")): float(r.get("latency_s") or 0)
                                for name, lines in lines_by_task.items() for r in lines}.values()),
        version=version("lmms-nb") or "unknown", system_instruction=run_config.get("system_instruction"),
        chat_template=run_config.get("chat_template"),
        fewshot_as_multiturn=bool(run_config.get("fewshot_as_multiturn")),
        groups={g: [t.name for t in tasks if g in (t.config.get("groups") or {})]
                for t0 in tasks for g in (t0.config.get("groups") or {})},
    )


#: the keys lmms-nb adds to each sample line (besides 0.7.3's and the metrics)
_OUR_KEYS = frozenset({"filter", "run_id", "model", "task", "split", "category", "image_ref", "error", "latency_s",
                       "output_tokens", "raw_response", "history", "failed_metrics", "cached", "truncated"})


def _results_payload(plan: RunPlan, model: Model, config: dict[str, Any], meta: dict[str, Any],
                     scores: dict[str, Any], extras: dict[str, Any], run_config: dict[str, Any]) -> dict[str, Any]:
    """results.json with every top-level key lmms-eval 0.7.3 writes (all of them once the run has finished),
    plus our `lmms_nb` block; `config` holds 0.7.3's entries (from the command line, `run_config`) and ours."""
    tasks = sorted(plan.tasks, key=lambda t: t.name)
    extras = dict(extras)
    payload: dict[str, Any] = {
        "results": scores,
        "group_subtasks": extras.pop("group_subtasks", {t.name: [] for t in plan.tasks}),
        "configs": {
            t.name: task_config_073({
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
            })
            for t in tasks
        },
        "versions": {t.name: _version_number(t.version) for t in tasks},
        "n-shot": extras.pop("n-shot", {t.name: int(t.config.get("num_fewshot") or 0) for t in tasks}),
        "higher_is_better": extras.pop(
            "higher_is_better", {t.name: {m.name: bool(m.higher_is_better) for m in t.metrics} for t in tasks}),
        "n-samples": extras.pop("n-samples", {t.name: {"original": len(plan.datasets[t.name]),
                                                       "effective": len(plan.doc_ids[t.name])} for t in plan.tasks}),
        # 0.7.3's config entries as its command line gave them (when run through it), ours beside them
        "config": {**config, "model_args": _model_args_str(config["model_args"]), **(run_config.get("config") or {})},
        "model_name": model.name,
        "model_name_sanitized": sanitize_model_name(model.name),
        "date": plan.results_file.name.split("_results")[0],
    }
    payload.update(extras)
    payload["lmms_nb"] = meta
    return payload


def _version_number(value: Any) -> Any:
    # lmms-eval writes a task's version as its YAML's metadata gives it (1.0: a number)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _model_args_str(args: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in args.items())


@functools.lru_cache(maxsize=None)
def version(package: str) -> str | None:
    """The installed version of `package`, or None.

    Read once per process (each read parses the package's METADATA file; a run asks 11 times): a package
    upgraded after this process imported it still runs as the version it was imported as."""
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
