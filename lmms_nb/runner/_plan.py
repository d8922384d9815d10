"""Stage 1, plan: which docs of which tasks this run covers, and whether it resumes an earlier run.

Every dataset is loaded and checked before anything is generated, so a bad task fails fast. Rank 0 decides
which run this is (resumed or new); every rank then works under the same id and files.
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmms_nb.logs.writer import results_path, samples_path, sanitize_model_name
from lmms_nb.models.base import Model
from lmms_nb.runner._distributed import Distributed
from lmms_nb.runner._identity import run_key
from lmms_nb.tasks.task import Task

__all__ = ["RunPlan", "plan_run"]


@dataclass
class RunPlan:
    """What a run will do and where it writes: decided once, before any generation."""

    tasks: list[Task]
    datasets: dict[str, Any]
    doc_ids: dict[str, list[int]]
    model_args: dict[str, Any]
    run_key: str
    model_dir: Path
    timestamp: str
    run_id: str
    started: str

    @property
    def results_file(self) -> Path:
        return results_path(self.model_dir, self.timestamp)

    def samples_file(self, task: Task) -> Path:
        return samples_path(self.model_dir, self.timestamp, task.name)


def plan_run(model: Model, tasks: list[Task], *, limit: int | None, seed: int, output_dir: str | Path,
             resume: bool, dist: Distributed) -> RunPlan:
    """Load the tasks' datasets, select their docs, and resume the newest matching run or start a new one."""
    datasets = {t.name: t.dataset() for t in tasks}
    doc_ids = {}
    for t in tasks:
        ids = t.selected_doc_ids(len(datasets[t.name]))
        doc_ids[t.name] = ids[:limit] if limit is not None else ids

    margs = dict(getattr(model, "model_args", {}) or {})
    key = run_key(model.name, margs, tasks, doc_ids, seed)
    model_dir = Path(output_dir) / sanitize_model_name(model.name)
    if dist.rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
        previous = _find_resumable(model_dir, key) if resume else None
        if previous is not None:
            timestamp, header = previous
            run_id = header["lmms_nb"]["run_id"]
            started = header["lmms_nb"].get("started") or now()
        else:
            timestamp = _fresh_timestamp(model_dir)
            run_id = f"{sanitize_model_name(model.name)}-{timestamp}-{uuid.uuid4().hex[:6]}"
            started = now()
        decided = [timestamp, run_id, started]
    else:
        decided = [None, None, None]
    timestamp, run_id, started = dist.broadcast(decided)
    return RunPlan(tasks=tasks, datasets=datasets, doc_ids=doc_ids, model_args=margs, run_key=key,
                   model_dir=model_dir, timestamp=timestamp, run_id=run_id, started=started)


def _find_resumable(model_dir: Path, key: str) -> tuple[str, dict[str, Any]] | None:
    """The newest results file in `model_dir` written by a run with the same key, with its timestamp."""
    for path in sorted(model_dir.glob("*_results.json"), reverse=True):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and (payload.get("lmms_nb") or {}).get("run_key") == key:
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


def now() -> str:
    """The current UTC time, as the logs record it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
