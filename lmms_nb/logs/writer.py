"""Writing our per-sample logs in lmms-eval's v0.7 layout, and healing them after a crash.

Layout: `<out>/<model_name_sanitized>/<YYYYMMDD_HHMMSS>_results.json` and
`<YYYYMMDD_HHMMSS>_samples_<task>.jsonl`. Each JSONL line is one (doc, filter) with lmms-eval's keys
(doc_id, target, filtered_resps, resps where it differs, input, one key per metric) plus ours (run_id, model,
task, filter, split, category, image_ref, error, latency_s, output_tokens). Lines are appended and flushed per
batch, so a SIGKILL loses at most the batch in flight and may leave a truncated last line, which
`read_samples_file` drops (and `heal_samples_file` removes from disk) before a resumed run appends again. Each
batch is also fsynced (against a power cut), on a background thread while the next batch runs: `close` returns
once every line written is on disk.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x_samples_t.jsonl"
    >>> with SampleLogWriter(p) as w:
    ...     w.write([{"doc_id": 0, "filter": "none", "exact_match": 1.0}])
    >>> [r["doc_id"] for r in read_samples_file(p).records]
    [0]
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[\"<>:/|\\?*\[\]]+")


def sanitize_model_name(name: str) -> str:
    """The folder name lmms-eval uses for a model (`org/model` -> `org__model`).

    >>> sanitize_model_name("Qwen/Qwen2-VL-7B-Instruct")
    'Qwen__Qwen2-VL-7B-Instruct'
    """
    return _UNSAFE.sub("__", name)


def samples_path(model_dir: Path, timestamp: str, task: str) -> Path:
    return model_dir / f"{timestamp}_samples_{task}.jsonl"


def results_path(model_dir: Path, timestamp: str) -> Path:
    return model_dir / f"{timestamp}_results.json"


class SampleLogWriter:
    """Appends JSON lines to a samples file. Each `write` is flushed before returning (a killed process loses
    nothing written) and fsynced on a background thread (a power cut loses at most the last batches); `close`
    waits for those fsyncs, so every line is on disk once it returns.

    The fsyncs run beside the model: each costs milliseconds of waiting for the disk (measured 4 ms median, up to
    20 ms, on a shared VM), which on a small model was ~15% of a run's wall time when done in line. So a failed
    fsync cannot be raised where it happened: it surfaces as `OSError("<path>: fsync failed (...)")` from the next
    `write` or from `close` (under `with`, when the block is already raising, it is logged instead so as not to
    hide that exception).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._fh = open(self.path, "a", encoding="utf-8")
        self._pending: list[Future[None]] = []
        self._sync_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmms-nb-fsync")
        if new:  # the file's folder entry must survive a power cut too, not only its lines
            self._sync(lambda: fsync_folder(self.path.parent))

    def _sync(self, fsync: Any) -> None:
        """Run `fsync` on the background thread after the earlier ones; an earlier one's error is raised here (after
        this one is queued: the lines just written still get their fsync)."""
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()] + [self._sync_thread.submit(fsync)]
        for future in done:
            future.result()

    def _fsync_file(self, fileno: int) -> None:
        try:
            os.fsync(fileno)
        except OSError as e:  # raised later, on another call: say which file
            raise OSError(e.errno, f"{self.path}: fsync failed ({e.strerror})") from e

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append `records` as one batch of lines, flushed; raises an earlier batch's failed fsync, if any."""
        # One write call per batch: the batch's lines reach the file together or (on a crash) as a prefix.
        text = "".join(json.dumps(strict_json(r), ensure_ascii=False, default=_json_default) + "\n" for r in records)
        if text:
            self._fh.write(text)
            self._fh.flush()
            fileno = self._fh.fileno()
            self._sync(lambda: self._fsync_file(fileno))

    def close(self) -> None:
        """Wait for every fsync submitted, close the file, and raise the first fsync that failed, if any."""
        try:
            self._sync_thread.shutdown(wait=True)  # every fsync submitted has run
            pending, self._pending = self._pending, []
            for future in pending:
                future.result()
        finally:
            self._fh.close()

    def __enter__(self) -> "SampleLogWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except OSError as e:  # the block's own exception is the one to see; the fsync error goes to the log
            log.error("%s (while handling %s: %s)", e, exc_type.__name__ if exc_type else "an exception", exc)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    return str(obj)


@dataclass
class SamplesFile:
    """What `read_samples_file` found: the good records and what it had to drop."""

    records: list[dict[str, Any]] = field(default_factory=list)
    truncated_tail: bool = False
    dropped: int = 0  # lines dropped as duplicates or incomplete filter sets


def read_samples_file(path: Path, filters: Iterable[str] | None = None) -> SamplesFile:
    """Read one of our samples files, tolerating what a crash can leave behind.

    A last line without a newline or that is not valid JSON is a truncated write and is dropped. When `filters`
    is given, a doc counts only if it has one line per filter (a crash can split a doc's lines); docs that
    appear twice keep their first complete set. Any other invalid line is an error naming file and line.
    """
    path = Path(path)
    out = SamplesFile()
    if not path.exists():
        return out
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        # no final newline: the last write was cut short
        lines.pop()
        out.truncated_tail = True
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=1):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "doc_id" not in rec:
                raise ValueError("expected a JSON object with a doc_id")
        except ValueError as e:
            if i == len(lines):  # a torn last line that happened to end in a newline byte
                out.truncated_tail = True
                break
            raise ValueError(f"{path}:{i}: invalid sample line ({e})") from None
        records.append(rec)
    wanted = set(filters) if filters is not None else None
    by_doc: dict[int, dict[str, dict[str, Any]]] = {}
    for rec in records:
        by_doc.setdefault(int(rec["doc_id"]), {}).setdefault(rec.get("filter", "none"), rec)
    kept: list[dict[str, Any]] = []
    for doc_id, per_filter in by_doc.items():
        if wanted is not None and set(per_filter) != wanted:
            continue
        kept.extend(per_filter.values())
    out.dropped = len(records) - len(kept)
    out.records = kept
    return out


def heal_samples_file(path: Path, filters: Iterable[str]) -> SamplesFile:
    """Read a samples file and, if a crash left a torn line, a partial doc or duplicates, rewrite it clean.

    The rewrite goes to a temporary file that replaces the original atomically, so healing itself cannot lose
    data if it is interrupted.
    """
    found = read_samples_file(path, filters)
    if found.truncated_tail or found.dropped:
        rewrite_samples_file(path, found.records)
    return found


def rewrite_samples_file(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace a samples file with `records`, atomically (see `replace_atomically`)."""
    text = "".join(json.dumps(strict_json(r), ensure_ascii=False, default=_json_default) + "\n" for r in records)
    replace_atomically(Path(path), text)


def order_samples_file(path: Path, filters: list[str], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rewrite a finished samples file in lmms-eval's order (one block of lines per filter, in `filters` order,
    docs ascending), atomically; returns the records in that order."""
    rank = {name: i for i, name in enumerate(filters)}
    ordered = sorted(records, key=lambda r: (rank.get(r.get("filter", "none"), len(rank)), int(r["doc_id"])))
    if ordered != records:
        rewrite_samples_file(path, ordered)
    return ordered


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write strict JSON (NaN and infinities become null) so readers never see half a results file.

    >>> import tempfile, pathlib, json
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.json"
    >>> write_json_atomic(p, {"acc": float("nan"), "n": 3})
    >>> json.loads(p.read_text())
    {'acc': None, 'n': 3}
    """
    text = json.dumps(strict_json(payload), indent=2, ensure_ascii=False, default=_json_default, allow_nan=False)
    replace_atomically(Path(path), text)


def replace_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file of its own beside `path`, fsync it, rename it over `path`, fsync the folder.

    After a crash at any moment `path` holds either the old or the new content, whole; concurrent writers never
    share a temporary file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def strict_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None, as strict JSON readers require.

    >>> strict_json({"a": [1.0, float("inf")], "b": float("nan")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy / torch scalars
        return strict_json(value.item())
    return value
