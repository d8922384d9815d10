"""`evaluate()`: plan -> (per task, per batch) generate -> score -> write -> aggregate -> final results file."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import polars as pl

from lmms_nb.logs.schema import conform
from lmms_nb.logs.writer import SampleLogWriter, heal_samples_file, order_samples_file, read_samples_file
from lmms_nb.models.base import Model
from lmms_nb.models.registry import get_model
from lmms_nb.runner._aggregate import aggregate, clt_stderrs, empty_scores, records_to_table, scores_dict
from lmms_nb.runner._distributed import Distributed, found_shards, merge_shards, shard_path
from lmms_nb.runner._generate import check_model_can_run, make_request, respond
from lmms_nb.runner._plan import RunPlan, now, plan_run
from lmms_nb.runner._run import BatchProgress, Run
from lmms_nb.runner._score import is_failed, metric_names, score_batch
from lmms_nb.runner._write import (
    lmms_eval_extras,
    read_history,
    retire_failed,
    run_meta,
    version,
    write_results,
)
from lmms_nb.tasks._yaml_metrics import AGGREGATION_ARGS, EvalArgs, metric_number
from lmms_nb.tasks.yaml_loader import group_scores
from lmms_nb.tasks.task import Task

__all__ = ["evaluate"]


def evaluate(
    model: Model | str,
    tasks: str | Task | Sequence[str | Task],
    *,
    limit: int | float | None = None,
    batch_size: int = 8,
    output_dir: str | Path = "outputs",
    resume: bool | Literal["must"] = True,
    retry_errors: bool = True,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
    progress: bool = True,
    on_batch: Callable[[BatchProgress], None] | None = None,
    stop_event: threading.Event | None = None,
    model_type: str | None = None,
    include_path: str | Path | Sequence[str | Path] | None = None,
    run_config: dict[str, Any] | None = None,
) -> Run:
    """Evaluate `model` on `tasks`, logging every sample under `output_dir`; see `lmms_nb.runner`.

    `model` is a `Model` or a registered name (built with `model_args`); `tasks` are registered names or
    `Task` objects, lmms-eval task YAML files or folders of them (`model_type`, e.g. "llava_hf", picks the
    YAMLs' per-model prompt blocks); a name not registered resolves from lmms-eval's installed task catalogue and
    the `include_path` folders (groups and tags expand to their tasks; see `lmms_nb.tasks.catalogue`).
    `resume=True` continues the newest earlier run with the same identity (see `lmms_nb.runner._identity`),
    `False` always starts a new run, `"must"` raises `ResumeError` when there is none to continue.
    `retry_errors` (default True) asks again, on a resumed run, for the docs whose generation or scoring failed
    (a failed judgement included); the earlier errors stay in the record's `history`. `stop_event`, when set
    by another thread (a Stop button), ends the run after the batch in flight: what was written stays, and the
    same call later resumes it. An API backend gets at least `model.concurrency` requests per call, so
    `batch_size` never caps the requests it keeps in flight.
    `limit` is lmms-eval's: a count per task, or a fraction of each task when below 1. `run_config` adds
    lmms-eval 0.7.3's run fields to the results JSON (`lmms-nb eval` passes its command line's).
    """
    started = time.perf_counter()
    if isinstance(model, str):
        model = get_model(model, **(model_args or {}))
    from lmms_nb.tasks.yaml_loader import resolve_tasks

    task_list = resolve_tasks(tasks, model_type=model_type, include_path=include_path)
    if not task_list:
        raise ValueError("evaluate() needs at least one task")
    check_model_can_run(model, task_list)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _seed_everything(seed)

    dist = Distributed.from_env()
    plan = plan_run(model, task_list, limit=limit, seed=seed, output_dir=output_dir, resume=resume, dist=dist,
                    version=version("lmms-nb"))
    try:
        return _execute(model, plan, dist, batch_size=batch_size, limit=limit, seed=seed, retry_errors=retry_errors,
                        progress=progress, on_batch=on_batch, stop_event=stop_event,
                        lmms_eval={"run_config": run_config or {}, "started": started, "model_type": model_type})
    finally:
        plan.release()


def _execute(model: Model, plan: RunPlan, dist: Distributed, *, batch_size: int, limit: int | None, seed: int,
             retry_errors: bool, progress: bool, on_batch: Callable[[BatchProgress], None] | None,
             stop_event: threading.Event | None, lmms_eval: dict[str, Any]) -> Run:
    config = {"model": model.name, "model_args": plan.model_args, "batch_size": batch_size, "limit": limit,
              "seed": seed, "world_size": dist.world_size}
    meta = run_meta(plan)
    if dist.rank == 0:
        write_results(plan, model, config, meta, None)  # "running"; a resumed run keeps its scores meanwhile

    generate_batch = max(batch_size, int(getattr(model, "concurrency", 0) or 0))
    stopped = False
    for task in plan.tasks:
        task_run = _TaskRun(model, task, plan, batch_size=generate_batch, retry_errors=retry_errors,
                            on_batch=on_batch, stop_event=stop_event)
        stopped = task_run.run_sharded(dist, progress=progress)
        if stopped:
            break

    all_scores: list[pl.DataFrame] = []
    all_samples: list[pl.DataFrame] = []
    lines_by_task: dict[str, list[dict[str, Any]]] = {}
    clt: dict[tuple[str, str, str], Any] = {}
    for task in plan.tasks:
        s_file = plan.samples_file(task)
        found = heal_samples_file(s_file, task.filters) if dist.rank == 0 else read_samples_file(s_file, task.filters)
        if dist.rank == 0 and not stopped and {int(r["doc_id"]) for r in found.records} >= set(plan.doc_ids[task.name]):
            # a finished task's file takes lmms-eval's order: one block of lines per filter, docs ascending
            found.records = order_samples_file(s_file, list(task.filters), found.records)
        lines_by_task[task.name] = found.records
        clt.update(clt_stderrs(task, found.records))
        all_samples.append(records_to_table(found.records, s_file, metric_names(task), task.config.get("score_key")))
        # lmms-eval hands aggregations that take `args` its CLI arguments (submission files go to output_path)
        token = AGGREGATION_ARGS.set(EvalArgs(model=model.name, model_args=plan.model_args, limit=limit,
                                              output_path=str(plan.model_dir.parent),
                                              tasks=",".join(t.name for t in plan.tasks)))
        try:
            all_scores.append(aggregate(task, found.records, plan.datasets[task.name]))
        finally:
            AGGREGATION_ARGS.reset(token)
        meta.setdefault("n_failed", {})[task.name] = len({int(r["doc_id"]) for r in found.records if is_failed(r)})

    scores = pl.concat(all_scores, how="vertical") if all_scores else empty_scores()
    # lmms-eval groups with an aggregate_metric_list get their score rows (task = the group's name)
    scores = pl.concat([scores, group_scores(scores, plan.tasks)], how="vertical")
    samples = conform(pl.concat(all_samples, how="diagonal_relaxed") if all_samples else pl.DataFrame())
    n_done = {t.name: samples.filter(pl.col("task") == t.name)["doc_id"].n_unique() for t in plan.tasks}
    completed = not stopped and all(n_done[t.name] == len(plan.doc_ids[t.name]) for t in plan.tasks)
    n_errors = sum(meta["n_failed"].values())
    status = "stopped" if not completed else "complete_with_errors" if n_errors else "complete"
    meta.update(status=status, finished=now(), n_errors=n_errors, n_done=n_done)
    if dist.rank == 0:
        extras = lmms_eval_extras(plan, model, lines_by_task, lmms_eval["run_config"], started=lmms_eval["started"],
                                  model_type=lmms_eval["model_type"])
        write_results(plan, model, config, meta, scores_dict(scores, clt), extras=extras,
                      run_config=lmms_eval["run_config"])
    dist.barrier()
    return Run(
        run_id=plan.run_id, model=model.name, model_args=plan.model_args, tasks=[t.name for t in plan.tasks],
        output_dir=plan.model_dir, results_file=plan.results_file,
        sample_files={t.name: plan.samples_file(t) for t in plan.tasks}, scores=scores,
        samples=samples, completed=completed, n_errors=n_errors, config=config,
    )


class _TaskRun:
    """One task of a run: its pending docs, batch by batch, through generate -> score -> write."""

    def __init__(self, model: Model, task: Task, plan: RunPlan, *, batch_size: int, retry_errors: bool,
                 on_batch: Callable[[BatchProgress], None] | None, stop_event: threading.Event | None):
        self.model, self.task, self.plan = model, task, plan
        self.batch_size, self.retry_errors = batch_size, retry_errors
        self.on_batch, self.stop_event = on_batch, stop_event
        self.s_file = plan.samples_file(task)

    def run_sharded(self, dist: Distributed, *, progress: bool) -> bool:
        """Run this task's pending docs, split over the ranks. Returns True when stopped early."""
        doc_ids = self.plan.doc_ids[self.task.name]
        if dist.rank == 0:  # alone, before the other ranks read the file
            if self.plan.previous is not None:  # a new run's timestamp has no files of an earlier run to merge
                merge_shards(self.s_file, found_shards(self.s_file), self.task.filters)
            found = heal_samples_file(self.s_file, self.task.filters)
            if self.retry_errors:
                retire_failed(self.s_file, found.records)
        dist.barrier()
        done = {int(r["doc_id"]) for r in read_samples_file(self.s_file, self.task.filters).records}
        pending = [d for d in doc_ids if d not in done]
        history = read_history(self.s_file, next(iter(self.task.filters)))
        if dist.world_size == 1:
            return self.run(pending, len(doc_ids), self.s_file, history, progress=progress)
        mine = pending[dist.rank::dist.world_size]
        stopped = self.run(mine, len(mine), shard_path(self.s_file, dist.rank), history,
                           progress=progress and dist.rank == 0)
        dist.barrier()
        if dist.rank == 0:
            merge_shards(self.s_file, found_shards(self.s_file), self.task.filters)
        dist.barrier()
        return stopped

    def run(self, pending: list[int], total: int, out_file: Path, history: dict[int, list[dict[str, Any]]], *,
            progress: bool) -> bool:
        """Generate, score and append the `pending` docs to `out_file`. Returns True when stopped early."""
        from tqdm.auto import tqdm

        task, dataset = self.task, self.plan.datasets[self.task.name]
        n_done = total - len(pending)  # counted here: a disabled tqdm bar does not count
        bar = tqdm(total=total, initial=n_done, desc=task.name, unit="sample", disable=not progress, leave=True)
        scored_metrics = metric_names(task)
        totals: dict[str, list[float]] = {}
        n_errors = 0
        try:
            with SampleLogWriter(out_file) as writer:
                for start in range(0, len(pending), self.batch_size):
                    if self.stop_event is not None and self.stop_event.is_set():
                        return True
                    batch_ids = pending[start:start + self.batch_size]
                    docs = [dataset[i] for i in batch_ids]
                    chat = bool(getattr(self.model, "accepts_messages", False))
                    requests = [make_request(task, i, d, chat=chat) for i, d in zip(batch_ids, docs)]
                    responses = respond(self.model, task, requests)
                    records = score_batch(task, batch_ids, docs, requests, responses, run_id=self.plan.run_id,
                                          model_name=self.model.name, history=history)
                    writer.write(records)
                    for rec in records[::len(task.filters)]:  # the first filter's record of each doc
                        n_errors += is_failed(rec)
                        for m in scored_metrics:
                            number = metric_number(rec.get(m), task.config.get("score_key"))
                            if number is not None:
                                totals.setdefault(m, []).append(number)
                    bar.update(len(batch_ids))
                    n_done += len(batch_ids)
                    partial = {m: sum(v) / len(v) for m, v in totals.items() if v}
                    bar.set_postfix({m: f"{v:.3f}" for m, v in partial.items()}, refresh=False)
                    if self.on_batch is not None:
                        self.on_batch(BatchProgress(task.name, n_done, total, partial, n_errors))
        finally:
            bar.close()
        return False


def _seed_everything(seed: int) -> None:
    import random
    import sys

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "torch" in sys.modules:  # seed torch only when a backend already loaded it
        sys.modules["torch"].manual_seed(seed)
