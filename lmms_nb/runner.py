"""`evaluate()`: run a model on tasks, log every sample as it is made, resume after a crash, return a `Run`.

The flow: task rows -> requests (images, prompt, generation kwargs) -> `Model.generate(batch)` -> filters ->
per-sample scores -> one JSON line per (doc, filter), appended and fsynced per batch -> aggregate scores.

Resume: a run is identified by its *run key* (model name and args, each task's fingerprint and size, limit,
seed). `evaluate(..., resume=True)` finds the newest results file in `<output_dir>/<model>/` with the same key,
heals its samples files (drops a torn last line or a doc whose filter lines were cut), skips the docs already
there and appends the rest. Killing the process at any moment therefore loses at most the batch in flight.

Example:
    >>> import tempfile, lmms_nb
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> run = lmms_nb.evaluate(FunctionModel(lambda r: "3", name="always-3"), "synthbench_count",
    ...                        limit=8, output_dir=tempfile.mkdtemp(), progress=False)
    >>> run.scores.columns[:3]
    ['task', 'metric', 'filter']
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import importlib.metadata
import json
import platform
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from lmms_nb.logs.schema import conform
from lmms_nb.logs._lmms_eval_073 import clt_stderr, results_extras, sample_line, strip_reasoning, task_config_073
from lmms_nb.logs._model_names import unify_model_names
from lmms_nb.logs.writer import (
    order_samples_file,
    SampleLogWriter,
    heal_samples_file,
    read_samples_file,
    results_path,
    samples_path,
    sanitize_model_name,
    write_json_atomic,
)
from lmms_nb.models.base import Model, Request, Response
from lmms_nb.models.registry import get_model
from lmms_nb.tasks._yaml_metrics import metric_number
from lmms_nb.tasks.task import Task

__all__ = ["evaluate", "Run", "BatchProgress"]

_PACKAGES = ("lmms-nb", "torch", "transformers", "datasets", "polars", "numpy", "pillow", "open_clip_torch")


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


def evaluate(
    model: Model | str,
    tasks: str | Task | Sequence[str | Task],
    *,
    limit: int | None = None,
    batch_size: int = 8,
    output_dir: str | Path = "outputs",
    resume: bool = True,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
    progress: bool = True,
    on_batch: Callable[[BatchProgress], None] | None = None,
    stop_event: threading.Event | None = None,
    model_type: str | None = None,
    run_config: dict[str, Any] | None = None,
) -> Run:
    """Evaluate `model` on `tasks`, logging every sample under `output_dir`; see the module docstring.

    `model` is a `Model` or a registered name (built with `model_args`); `tasks` are registered names or
    `Task` objects, lmms-eval task YAML files or folders of them (`model_type`, e.g. "llava_hf", picks the
    YAMLs' per-model prompt blocks). `stop_event`, when set by another thread (a Stop button), ends the run after the batch
    in flight: what was written stays, and the same call later resumes it. `run_config` adds lmms-eval's run
    fields to the results JSON (`lmms-nb eval` passes its command line's: config entries, system_instruction, ...).
    """
    started_perf = time.perf_counter()
    if isinstance(model, str):
        model = get_model(model, **(model_args or {}))
    from lmms_nb.tasks.yaml_loader import resolve_tasks

    task_list = resolve_tasks(tasks, model_type=model_type)
    if not task_list:
        raise ValueError("evaluate() needs at least one task")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _seed_everything(seed)

    # Load and check every dataset before generating anything, so a bad task fails fast.
    datasets_by_task = {t.name: t.dataset() for t in task_list}
    doc_ids_by_task = {}
    for t in task_list:
        ids = t.selected_doc_ids(len(datasets_by_task[t.name]))
        doc_ids_by_task[t.name] = ids[:limit] if limit is not None else ids

    margs = dict(getattr(model, "model_args", {}) or {})
    run_key = _run_key(model.name, margs, task_list, doc_ids_by_task, seed)
    model_dir = Path(output_dir) / sanitize_model_name(model.name)
    dist = _Distributed.from_env()
    # Rank 0 decides which run this is (resumed or new); every rank then works under the same id and files.
    if dist.rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
        previous = _find_resumable(model_dir, run_key) if resume else None
        if previous is not None:
            timestamp, header = previous
            run_id = header["lmms_nb"]["run_id"]
            started = header["lmms_nb"].get("started") or _now()
        else:
            timestamp = _fresh_timestamp(model_dir)
            run_id = f"{sanitize_model_name(model.name)}-{timestamp}-{uuid.uuid4().hex[:6]}"
            started = _now()
        decided = [timestamp, run_id, started]
    else:
        decided = [None, None, None]
    timestamp, run_id, started = dist.broadcast(decided)

    config = {
        "model": model.name,
        "model_args": margs,
        "batch_size": batch_size,
        "limit": limit,
        "seed": seed,
        "world_size": dist.world_size,
    }
    meta = {
        "version": _version("lmms-nb"),
        "run_id": run_id,
        "run_key": run_key,
        "status": "running",
        "task_fingerprints": {t.name: t.fingerprint() for t in task_list},
        "packages": {p: _version(p) for p in _PACKAGES},
        "python": platform.python_version(),
        "started": started,
    }
    res_file = results_path(model_dir, timestamp)
    if dist.rank == 0:
        write_json_atomic(res_file, _results_payload(model, config, meta, task_list, {}, doc_ids_by_task))

    sample_files: dict[str, Path] = {}
    stopped = False
    for task in task_list:
        s_file = samples_path(model_dir, timestamp, task.name)
        sample_files[task.name] = s_file
        if stopped:
            continue
        if dist.world_size == 1:
            stopped = _run_task(
                model, task, datasets_by_task[task.name], doc_ids_by_task[task.name], s_file,
                run_id=run_id, batch_size=batch_size, progress=progress, on_batch=on_batch, stop_event=stop_event,
            )
        else:
            # Each rank writes its shard of the docs to its own part file; rank 0 merges them into the samples
            # file (sorted by doc id, as a single process writes them) once every rank is done.
            part = _shard_path(s_file, dist.rank)
            done = {int(r["doc_id"]) for r in heal_samples_file(s_file, task.filters).records} if s_file.exists() else set()
            mine = [i for k, i in enumerate(d for d in doc_ids_by_task[task.name] if d not in done)
                    if k % dist.world_size == dist.rank]
            stopped = _run_task(
                model, task, datasets_by_task[task.name], mine, part, run_id=run_id, batch_size=batch_size,
                progress=progress and dist.rank == 0, on_batch=on_batch, stop_event=stop_event,
            )
            dist.barrier()
            if dist.rank == 0:
                _merge_shards(s_file, [_shard_path(s_file, r) for r in range(dist.world_size)], task.filters)
            dist.barrier()

    all_scores: list[pl.DataFrame] = []
    all_samples: list[pl.DataFrame] = []
    lines_by_task: dict[str, list[dict[str, Any]]] = {}
    for task in task_list:
        s_file = sample_files[task.name]
        found = heal_samples_file(s_file, task.filters) if dist.rank == 0 else _read_only(s_file, task.filters)
        if dist.rank == 0 and not stopped and len({r["doc_id"] for r in found.records}) == len(
                doc_ids_by_task[task.name]):
            # a finished task's file gets lmms-eval's order: one block of lines per filter, docs in order
            found.records = order_samples_file(s_file, list(task.filters), found.records)
        lines_by_task[task.name] = found.records
        samples = _records_to_table(found.records, s_file, _metric_names(task), task.config.get("score_key"))
        all_samples.append(samples)
        all_scores.append(_aggregate(task, found.records, datasets_by_task[task.name]))

    scores = pl.concat(all_scores, how="vertical") if all_scores else _empty_scores()
    samples = pl.concat(all_samples, how="diagonal_relaxed") if all_samples else conform(pl.DataFrame())
    samples = conform(samples)
    n_done = {t.name: samples.filter(pl.col("task") == t.name)["doc_id"].n_unique() for t in task_list}
    completed = not stopped and all(n_done[t.name] == len(doc_ids_by_task[t.name]) for t in task_list)
    meta["status"] = "complete" if completed else "stopped"
    meta["finished"] = _now()
    n_errors = int(samples.filter(pl.col("error").is_not_null()).select(pl.struct("task", "doc_id").n_unique()).item())
    meta["n_errors"] = n_errors
    if dist.rank == 0:
        extras = _lmms_eval_extras(model, task_list, datasets_by_task, lines_by_task, run_config or {},
                                   timestamp=timestamp, started=started_perf, model_type=model_type)
        write_json_atomic(res_file, _results_payload(model, config, meta, task_list,
                                                     _scores_dict(scores, _clt(task_list, lines_by_task)),
                                                     doc_ids_by_task, extras=extras, run_config=run_config))
    dist.barrier()
    return Run(
        run_id=run_id, model=model.name, model_args=margs, tasks=[t.name for t in task_list],
        output_dir=model_dir, results_file=res_file, sample_files=sample_files, scores=scores,
        samples=samples, completed=completed, n_errors=n_errors, config=config,
    )


class _Distributed:
    """Rank, world size and the two collectives the runner needs, from torchrun / accelerate's environment.

    With WORLD_SIZE > 1 it joins (or reuses) a torch.distributed process group on the gloo backend, which only
    carries a few small Python objects here; model tensors never cross it.
    """

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size

    @classmethod
    def from_env(cls) -> "_Distributed":
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as td

        if not td.is_initialized():
            td.init_process_group(backend="gloo")
        return cls(td.get_rank(), td.get_world_size())

    def broadcast(self, values: list[Any]) -> list[Any]:
        if self.world_size == 1:
            return values
        import torch.distributed as td

        td.broadcast_object_list(values, src=0)
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as td

            td.barrier()


def _shard_path(samples_file: Path, rank: int) -> Path:
    # Not named *.jsonl, so log readers never mistake a shard in progress for a samples file.
    return samples_file.with_name(samples_file.name + f".rank{rank}.part")


def _merge_shards(samples_file: Path, shards: list[Path], filters: dict[str, Any]) -> None:
    """Fold the ranks' part files into the samples file, ordered by doc id, then delete the parts."""
    records = heal_samples_file(samples_file, filters).records if samples_file.exists() else []
    for shard in shards:
        records.extend(read_samples_file(shard, filters).records)
    order = {name: i for i, name in enumerate(filters)}
    seen: set[tuple[int, str]] = set()
    merged = []
    for rec in sorted(records, key=lambda r: (int(r["doc_id"]), order.get(r.get("filter", "none"), 0))):
        key = (int(rec["doc_id"]), rec.get("filter", "none"))
        if key not in seen:
            seen.add(key)
            merged.append(rec)
    tmp = samples_file.with_name(samples_file.name + ".merge.tmp")
    tmp.unlink(missing_ok=True)  # a merge interrupted earlier
    with SampleLogWriter(tmp) as w:
        w.write(merged)
    import os

    os.replace(tmp, samples_file)
    for shard in shards:
        shard.unlink(missing_ok=True)


def _read_only(samples_file: Path, filters: dict[str, Any]) -> Any:
    return read_samples_file(samples_file, filters)


def _run_task(model: Model, task: Task, dataset: Any, doc_ids: list[int], s_file: Path, *, run_id: str,
              batch_size: int, progress: bool, on_batch: Callable[[BatchProgress], None] | None,
              stop_event: threading.Event | None) -> bool:
    """Evaluate the docs of one task not yet in `s_file`. Returns True when stopped early."""
    from tqdm.auto import tqdm

    done = {int(r["doc_id"]) for r in heal_samples_file(s_file, task.filters).records}
    pending = [i for i in doc_ids if i not in done]
    image_ref_base = f"dataset:{task.dataset_path}" if task.dataset_path else None
    bar = tqdm(total=len(doc_ids), initial=len(doc_ids) - len(pending), desc=task.name, unit="sample",
               disable=not progress, leave=True)
    totals: dict[str, list[float]] = {}
    n_errors = 0
    n_done = len(doc_ids) - len(pending)  # counted here: a disabled tqdm bar does not count
    try:
        with SampleLogWriter(s_file) as writer:
            for start in range(0, len(pending), batch_size):
                if stop_event is not None and stop_event.is_set():
                    return True
                batch_ids = pending[start:start + batch_size]
                docs = [dataset[i] for i in batch_ids]
                requests = [_make_request(task, i, d) for i, d in zip(batch_ids, docs)]
                responses = _generate_safely(model, requests)
                records = []
                batch_scores = _score_batched_metrics(task, docs, responses)
                for k, (doc_id, doc, req, resp) in enumerate(zip(batch_ids, docs, requests, responses)):
                    recs = _score_one(task, doc_id, doc, req, resp, run_id=run_id, model_name=model.name,
                                      image_ref_base=image_ref_base,
                                      precomputed={f: v[k] for f, v in batch_scores.items()})
                    records.extend(recs)
                    if recs[0]["error"] is not None:
                        n_errors += 1
                    for m, v in recs[0].items():
                        if m in _metric_names(task):
                            number = metric_number(v, task.config.get("score_key"))
                            if number is not None:
                                totals.setdefault(m, []).append(number)
                writer.write(records)
                bar.update(len(batch_ids))
                n_done += len(batch_ids)
                partial = {m: sum(v) / len(v) for m, v in totals.items() if v}
                bar.set_postfix({m: f"{v:.3f}" for m, v in partial.items()}, refresh=False)
                if on_batch is not None:
                    on_batch(BatchProgress(task.name, n_done, len(doc_ids), partial, n_errors))
    finally:
        bar.close()
    return False


def _metric_names(task: Task) -> set[str]:
    return {m.name for m in task.metrics if m.per_sample}


def _make_request(task: Task, doc_id: int, doc: dict[str, Any]) -> Request:
    return Request(
        doc_id=doc_id,
        task=task.name,
        images=list(task.doc_to_visual(doc) or []),
        prompt=task.doc_to_text(doc),
        generation_kwargs=dict(task.generation_kwargs),
        choices=task.doc_to_choice(doc) if task.doc_to_choice is not None else None,
        doc={k: v for k, v in doc.items() if k != task.image_column},
    )


def _generate_safely(model: Model, requests: list[Request]) -> list[Response]:
    """Call the model; if the batch raises, retry one request at a time so only the culprit gets the error."""
    try:
        responses = list(model.generate(requests))
        if len(responses) != len(requests):
            raise RuntimeError(f"model returned {len(responses)} responses for {len(requests)} requests")
        return responses
    except Exception as batch_error:  # noqa: BLE001
        if len(requests) == 1:
            return [Response(text=None, error=f"{type(batch_error).__name__}: {batch_error}")]
        out = []
        for req in requests:
            out.extend(_generate_safely(model, [req]))
        return out


def _score_batched_metrics(task: Task, docs: list[dict[str, Any]],
                           responses: list[Response]) -> dict[str, list[dict[str, Any]]]:
    """Values of the task's batched metrics, per filter then per doc: {filter: [{metric: value | Exception}]}.

    One call per metric and filter covers the whole batch (an LLM judge then sends its requests concurrently).
    A scorer that raises marks the batch's samples with that error instead of stopping the run.
    """
    metrics = task.batch_metrics()
    out: dict[str, list[dict[str, Any]]] = {}
    if not metrics:
        return out
    ok = [i for i, r in enumerate(responses) if r.error is None]
    for filter_name, filter_fn in task.filters.items():
        per_doc: list[dict[str, Any]] = [{} for _ in docs]
        preds, idx = [], []
        for i in ok:
            try:
                preds.append(filter_fn(responses[i].text or "", docs[i]))
                idx.append(i)
            except Exception:  # noqa: BLE001 - reported per sample by _score_one
                pass
        targets = [task.doc_to_target(docs[i]) for i in idx]
        for m in metrics:
            try:
                values = list(m.score_batch(preds, targets, [docs[i] for i in idx])) if idx else []
                if len(values) != len(idx):
                    raise RuntimeError(f"{m.name}: {len(values)} values for {len(idx)} samples")
            except Exception as e:  # noqa: BLE001
                values = [e] * len(idx)
            for i, v in zip(idx, values):
                per_doc[i][m.name] = v
        out[filter_name] = per_doc
    return out


def _score_one(task: Task, doc_id: int, doc: dict[str, Any], req: Request, resp: Response, *, run_id: str,
               model_name: str, image_ref_base: str | None,
               precomputed: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One log record per filter for this doc, in lmms-eval's key layout plus ours.

    A metric value that is NaN (e.g. a failed LLM judgement) is logged as null: missing, never a 0.
    """
    import math

    target = task.doc_to_target(doc)
    category = doc.get(task.category_column) if task.category_column else None
    metric_names = sorted(_metric_names(task))
    records = []
    for filter_name, filter_fn in task.filters.items():
        error = resp.error
        prediction = before_strip = None
        values: dict[str, float | None] = {m: None for m in metric_names}
        if error is None:
            raw = resp.text if resp.text is not None else ""
            try:
                before_strip = filter_fn(raw, doc)
                # lmms-eval 0.7.3 strips reasoning blocks and whitespace from each filtered answer before scoring
                prediction = strip_reasoning(before_strip, task.config.get("reasoning_tags"))
                batched = (precomputed or {}).get(filter_name, {})
                if task.process_results is not None:
                    values.update(task.score(doc, prediction))
                else:
                    target_value = task.doc_to_target(doc)
                    for m in task.metrics:
                        if not m.per_sample:
                            continue
                        if m.name in batched:
                            v = batched[m.name]
                            if isinstance(v, Exception):
                                raise v
                            values[m.name] = float(v)
                        else:
                            values[m.name] = float(m.score(prediction, target_value, doc))
                values = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
            except Exception as e:  # noqa: BLE001 - a scorer bug on one sample is that sample's error
                error = f"scoring failed: {type(e).__name__}: {e}"
                values = {m: None for m in metric_names}
        rec = sample_line(doc_id=doc_id, target=target, resps=before_strip if error is None else None,
                          filtered_resps=prediction, output_tokens=resp.output_tokens, doc=req.doc or {},
                          metrics=values, input=req.prompt)
        rec.update({
            "filter": filter_name,
            "run_id": run_id,
            "model": model_name,
            "task": task.name,
            "split": task.split,
            "category": None if category is None else str(category),
            "image_ref": f"{image_ref_base}#{doc_id}" if image_ref_base and req.images else None,
            "error": error,
            "latency_s": resp.latency_s,
            "output_tokens": resp.output_tokens,
            "raw_response": resp.text,
        })
        records.append(rec)
    return records


def _records_to_table(records: list[dict[str, Any]], source_file: Path, metric_names: set[str] = frozenset(),
                      score_key: str | None = None) -> pl.DataFrame:
    if not records:
        return conform(pl.DataFrame())
    rows = []
    skip = {"filtered_resps", "resps", "token_counts", "doc_hash"}
    for r in records:
        row = {k: (metric_number(v, score_key) if k in metric_names else v) for k, v in r.items() if k not in skip}
        fr = r.get("filtered_resps")
        row["prediction"] = (fr[0] if fr else None) if isinstance(fr, list) else (None if r.get("error") else fr)
        rows.append(row)
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns(source_format=pl.lit("lmms_nb"), source_file=pl.lit(str(source_file)))
    df = unify_model_names(df)  # the name load_logs gives the same rows (org/name -> org__name)
    return df


def _aggregate(task: Task, records: list[dict[str, Any]], dataset: Any) -> pl.DataFrame:
    """Task scores per metric and filter from the logged records, using each metric's aggregation.

    The aggregation gets the values as logged (dicts included, as lmms-eval passes them) and the docs.
    """
    if not records:
        return _empty_scores()
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
            else:
                value, stderr = float("nan"), None
            rows.append({"task": task.name, "metric": metric.name, "filter": filter_name, "value": float(value),
                         "stderr": None if stderr is None or stderr == "N/A" else float(stderr),
                         "n": len(values)})
    return pl.DataFrame(rows, schema=_SCORE_SCHEMA) if rows else _empty_scores()


_SCORE_SCHEMA = {"task": pl.Utf8, "metric": pl.Utf8, "filter": pl.Utf8, "value": pl.Float64,
                 "stderr": pl.Float64, "n": pl.Int64}


def _empty_scores() -> pl.DataFrame:
    return pl.DataFrame(schema=_SCORE_SCHEMA)


def _scores_dict(scores: pl.DataFrame, clt: dict[tuple[str, str, str], Any] | None = None) -> dict[str, dict[str, Any]]:
    """results.json's `results`: per task its alias, then per (metric, filter) the value and 0.7.3's stderrs."""
    out: dict[str, dict[str, Any]] = {}
    for r in scores.iter_rows(named=True):
        d = out.setdefault(r["task"], {"alias": r["task"]})
        d[f"{r['metric']},{r['filter']}"] = r["value"]
        d[f"{r['metric']}_stderr,{r['filter']}"] = r["stderr"] if r["stderr"] is not None else "N/A"
        d[f"{r['metric']}_stderr_clt,{r['filter']}"] = (clt or {}).get((r["task"], r["metric"], r["filter"]), "N/A")
        d[f"{r['metric']}_stderr_clustered,{r['filter']}"] = "N/A"  # 0.7.3: only for tasks with a cluster_key
    return out


def _clt(tasks: list[Task], lines_by_task: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for task in tasks:
        score_key = task.config.get("score_key") or "score"
        for metric in task.metrics:
            col = metric.name if metric.per_sample else (metric.source or metric.name)
            for filter_name in task.filters:
                values = [r[col] for r in lines_by_task.get(task.name, [])
                          if r.get("filter", "none") == filter_name and r.get(col) is not None]
                out[(task.name, metric.name, filter_name)] = clt_stderr(values, score_key)
    return out


def _lmms_eval_extras(model: Model, tasks: list[Task], datasets_by_task: dict[str, Any],
                      lines_by_task: dict[str, list[dict[str, Any]]], run_config: dict[str, Any], *,
                      timestamp: str, started: float, model_type: str | None) -> dict[str, Any]:
    margs = dict(getattr(model, "model_args", {}) or {})
    model_name = str(run_config.get("model_name") or margs.get("pretrained") or model.name)
    lmms_eval_keys = ("doc_id", "target", "resps", "filtered_resps", "token_counts", "doc_hash", "input")
    return results_extras(
        task_names=[t.name for t in tasks],
        lines_by_task={name: [{k: v for k, v in r.items() if k in lmms_eval_keys or k not in _OUR_KEYS}
                              for r in lines] for name, lines in lines_by_task.items()},
        n_original={t.name: len(datasets_by_task[t.name]) for t in tasks},
        higher_is_better={t.name: {m.name: bool(m.higher_is_better) for m in t.metrics} for t in tasks},
        n_shot={t.name: int(t.config.get("num_fewshot") or 0) for t in tasks},
        model_source=str(run_config.get("model_source") or model_type or model.name),
        model_name=model_name, model_name_sanitized=sanitize_model_name(model.name), date=timestamp,
        start_time=started, end_time=time.perf_counter(),
        generation_seconds=sum({(name, r.get("doc_id")): float(r.get("latency_s") or 0)
                                for name, lines in lines_by_task.items() for r in lines}.values()),
        version=_version("lmms-nb") or "unknown", system_instruction=run_config.get("system_instruction"),
        chat_template=run_config.get("chat_template"),
        fewshot_as_multiturn=bool(run_config.get("fewshot_as_multiturn")),
        groups={g: [t.name for t in tasks if g in (t.config.get("groups") or {})]
                for t0 in tasks for g in (t0.config.get("groups") or {})},
    )


#: the keys lmms-nb adds to each sample line (besides 0.7.3's and the metrics)
_OUR_KEYS = frozenset({"filter", "run_id", "model", "task", "split", "category", "image_ref", "error", "latency_s",
                       "output_tokens", "raw_response"})


def _results_payload(model: Model, config: dict[str, Any], meta: dict[str, Any], tasks: list[Task],
                     scores: dict[str, Any], doc_ids: dict[str, list[int]], *, extras: dict[str, Any] | None = None,
                     run_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json with every top-level key lmms-eval 0.7.3 writes (once the run has finished), plus our
    `lmms_nb` block; `config` holds 0.7.3's entries (from `run_config`) and ours."""
    extras = dict(extras or {})
    lmms_eval_config = dict((run_config or {}).get("config") or {})
    payload: dict[str, Any] = {
        "results": scores,
        "group_subtasks": extras.pop("group_subtasks", {t.name: [] for t in tasks}),
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
            for t in sorted(tasks, key=lambda t: t.name)
        },
        "versions": {t.name: _version_number(t.version) for t in sorted(tasks, key=lambda t: t.name)},
        "n-shot": extras.pop("n-shot", {t.name: 0 for t in tasks}),
        "higher_is_better": extras.pop("higher_is_better", {}),
        "n-samples": extras.pop("n-samples", {t.name: {"effective": len(doc_ids[t.name])} for t in tasks}),
        # 0.7.3's config entries as its command line gave them (when run through it), ours beside them
        "config": {**config, "model_args": _model_args_str(config["model_args"]), **lmms_eval_config},
        "model_name": model.name,
        "model_name_sanitized": sanitize_model_name(model.name),
        "date": _dt.datetime.now().strftime("%Y%m%d_%H%M%S"),
    }
    payload.update(extras)
    payload["lmms_nb"] = meta
    return payload


def _version_number(version: Any) -> Any:
    # lmms-eval writes a task's metadata version as the YAML gives it (1.0: a number)
    try:
        return float(version)
    except (TypeError, ValueError):
        return version


def _model_args_str(args: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in args.items())


def _run_key(model_name: str, model_args: dict[str, Any], tasks: list[Task], doc_ids: dict[str, list[int]],
             seed: int) -> str:
    parts = {
        "model": model_name,
        "model_args": model_args,
        "tasks": [[t.name, t.fingerprint(), hashlib.sha256(json.dumps(doc_ids[t.name]).encode()).hexdigest()[:12]]
                  for t in tasks],
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _find_resumable(model_dir: Path, run_key: str) -> tuple[str, dict[str, Any]] | None:
    """The newest results file in `model_dir` written by a run with the same key, with its timestamp."""
    for path in sorted(model_dir.glob("*_results.json"), reverse=True):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and (payload.get("lmms_nb") or {}).get("run_key") == run_key:
            return path.name[: -len("_results.json")], payload
    return None


def _fresh_timestamp(model_dir: Path) -> str:
    # lmms-eval names files by the second; two runs in the same second get the next free second.
    t = _dt.datetime.now()
    while True:
        stamp = t.strftime("%Y%m%d_%H%M%S")
        if not any(model_dir.glob(f"{stamp}_*")):
            return stamp
        t += _dt.timedelta(seconds=1)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:  # seed torch only when a backend already loaded it
        sys.modules["torch"].manual_seed(seed)
