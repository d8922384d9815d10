"""Stage 1, plan: which docs of which tasks this run covers, and whether it resumes an earlier run.

Every dataset is loaded and checked before anything is generated, so a bad task fails fast. Rank 0 decides
which run this is; every rank then works under the same id and files.

- Resuming: the newest run in the model's folder with the same identity (`_identity`), unless another
  thread or process is running it right now (each run holds a lock on its own hidden `.<ts>.lock` file).
  When the newest earlier run of the same tasks differs, one log line says what changed; `resume="must"`
  raises instead of starting a new run.
- A new run claims its results file with an exclusive create (O_EXCL), so two runs started in the same
  second, by threads or processes, always get two different files.
"""

from __future__ import annotations

import math

import datetime as _dt
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lmms_nb.logs.writer import results_path, samples_path, sanitize_model_name
from lmms_nb.models.base import Model
from lmms_nb.runner._distributed import Distributed, names_in
from lmms_nb.runner._identity import RunIdentity, describe_changes, run_identity
from lmms_nb.tasks.task import Task

__all__ = ["ResumeError", "RunPlan", "now", "plan_run"]

log = logging.getLogger("lmms_nb.runner")

Resume = bool | Literal["must"]


class ResumeError(RuntimeError):
    """`evaluate(..., resume="must")` found no earlier run with the same identity; the message says why."""


@dataclass
class RunPlan:
    """What a run will do and where it writes: decided once, before any generation."""

    tasks: list[Task]
    datasets: dict[str, Any]
    doc_ids: dict[str, list[int]]
    model_args: dict[str, Any]
    identity: RunIdentity
    model_dir: Path
    timestamp: str
    run_id: str
    started: str
    #: the results JSON of the run this one resumes (its scores stay there until new ones are complete)
    previous: dict[str, Any] | None = None
    lock: Any = None

    @property
    def run_key(self) -> str:
        return self.identity.key

    @property
    def results_file(self) -> Path:
        return results_path(self.model_dir, self.timestamp)

    def samples_file(self, task: Task) -> Path:
        return samples_path(self.model_dir, self.timestamp, task.name)

    def release(self) -> None:
        """Let other runs resume this one (the lock is also dropped when the process dies)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def sample_size(n_docs: int, limit: int | float | None) -> int:
    """How many docs a `limit` takes, as lmms-eval reads --limit: None or -1 all, 0 < limit < 1 that fraction of
    the task (rounded up), otherwise a count."""
    if limit is None or limit == -1:
        return n_docs
    if 0 < limit < 1:
        return min(n_docs, math.ceil(n_docs * limit))
    return int(limit)


def plan_run(model: Model, tasks: list[Task], *, limit: int | float | None, seed: int, output_dir: str | Path,
             resume: Resume, dist: Distributed, version: str | None) -> RunPlan:
    """Load the tasks' datasets, select their docs, and resume the newest matching run or start a new one."""
    if resume not in (True, False, "must"):
        raise ValueError(f"resume must be True, False or 'must', got {resume!r}")
    datasets = {t.name: t.dataset() for t in tasks}
    doc_ids = {}
    for t in tasks:
        ids = t.selected_doc_ids(len(datasets[t.name]))
        doc_ids[t.name] = ids[:sample_size(len(ids), limit)]

    from lmms_nb.images import allow_image_roots

    allow_image_roots(*[t.dataset_path for t in tasks if t.dataset_path])  # the logs' image_refs point there
    identity = run_identity(model, tasks, datasets, doc_ids, seed, version)
    model_dir = Path(output_dir) / sanitize_model_name(model.name)
    previous, lock = None, None
    if dist.rank == 0:
        model_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            previous, lock = _resume_or_explain(model_dir, identity, [t.name for t in tasks], must=resume == "must")
        if previous is not None:
            timestamp, header = previous
            run_id = header["lmms_nb"]["run_id"]
            started = header["lmms_nb"].get("started") or now()
        else:
            timestamp = _claim_fresh_timestamp(model_dir)
            lock = _try_lock(model_dir, timestamp)
            run_id = f"{sanitize_model_name(model.name)}-{timestamp}-{uuid.uuid4().hex[:6]}"
            started = now()
        decided = [timestamp, run_id, started]
    else:
        decided = [None, None, None]
    timestamp, run_id, started = dist.broadcast(decided)
    return RunPlan(tasks=tasks, datasets=datasets, doc_ids=doc_ids,
                   model_args=dict(getattr(model, "model_args", {}) or {}), identity=identity,
                   model_dir=model_dir, timestamp=timestamp, run_id=run_id, started=started,
                   previous=previous[1] if previous else None, lock=lock)


def _resume_or_explain(model_dir: Path, identity: RunIdentity, task_names: list[str], *,
                       must: bool) -> tuple[tuple[str, dict[str, Any]] | None, Any]:
    """The run to resume and its lock, or (None, None) after saying in one line why none is resumed."""
    if identity.undetermined:
        reason = f"not resuming: {identity.undetermined}; starting a new run"
        if not must and _why_no_match(model_dir, identity, task_names, []) is None:
            return None, None  # nothing of these tasks ran here before: nothing could have been resumed
    else:
        busy = []
        for stamp, payload in _earlier_runs(model_dir):
            if (payload.get("lmms_nb") or {}).get("run_key") != identity.key:
                continue
            lock = _try_lock(model_dir, stamp)
            if lock is not None:
                return (stamp, payload), lock
            busy.append(stamp)
        reason = _why_no_match(model_dir, identity, task_names, busy)
        if reason is None:
            return None, None  # nothing of these tasks ran here before: a new run, nothing to say
    if must:
        raise ResumeError(reason.replace("starting a new run", 'resume="must" refuses to start a new one'))
    log.warning("lmms-nb: %s", reason)
    return None, None


def _why_no_match(model_dir: Path, identity: RunIdentity, task_names: list[str], busy: list[str]) -> str | None:
    if busy:
        return f"run {busy[0]} is in progress in another thread or process; starting a new run"
    for stamp, payload in _earlier_runs(model_dir):
        meta = payload.get("lmms_nb") or {}
        if sorted((payload.get("configs") or {}).keys()) != sorted(task_names):
            continue
        old_parts = meta.get("identity")
        if not isinstance(old_parts, dict):
            return f"run {stamp} was written by an older lmms-nb (no identity recorded); starting a new run"
        return f"run {stamp} differs in {describe_changes(old_parts, identity.parts)}; starting a new run"
    return None


def _earlier_runs(model_dir: Path):
    """(timestamp, results JSON) of our earlier runs in `model_dir`, newest first."""
    for path in sorted((model_dir / n for n in names_in(model_dir) if n.endswith("_results.json")), reverse=True):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an empty file just claimed by a run starting now, or not ours
        if isinstance(payload, dict) and isinstance(payload.get("lmms_nb"), dict):
            yield path.name[: -len("_results.json")], payload


def _claim_fresh_timestamp(model_dir: Path) -> str:
    """A timestamp whose results file this call created (empty) itself: O_EXCL makes the claim atomic.

    The first second from now on that no file in the folder starts with (`<stamp>_`). Runs shorter than a second
    push later runs' stamps into the future, so the folder is listed once and the taken seconds skipped in memory
    (listed again only when another run wins the O_EXCL race), not listed once per taken second.
    """
    t = _dt.datetime.now()
    taken = _taken_stamps(model_dir)
    while True:
        stamp = t.strftime("%Y%m%d_%H%M%S")
        if stamp not in taken:
            try:
                os.close(os.open(results_path(model_dir, stamp), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                return stamp
            except FileExistsError:  # another run claimed this second first: see what else it wrote meanwhile
                taken = _taken_stamps(model_dir)
        t += _dt.timedelta(seconds=1)


def _taken_stamps(model_dir: Path) -> set[str]:
    """Every `<stamp>` some file in `model_dir` is named `<stamp>_...` after (stamps have 15 characters)."""
    return {n[:15] for n in names_in(model_dir) if len(n) > 15 and n[15] == "_"}


def _try_lock(model_dir: Path, stamp: str) -> Any:
    """An open file holding an exclusive lock on run `stamp`, or None when another run holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent resumes of one run are then not guarded
        return open(os.devnull)
    fh = open(model_dir / f".{stamp}.lock", "a")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def now() -> str:
    """The current UTC time, as the logs record it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
