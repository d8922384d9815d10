"""A columnar cache of parsed log files, so re-running a notebook cell reloads a lab's logs from Parquet.

Each file's canonical rows are stored as `<cache>/logs/<key>.parquet`, where the key hashes the file's
resolved path, size and modification time, those of the files its reading depends on (its results JSON,
VLMEvalKit's judged copies), and the source of the readers themselves (so a new lmms-nb never reads an old
cache). A changed file gets a new key and is read again alone; stale entries are left for `clear_cache()`.

Only reads that raised no problem (no error, no warning) are cached: a cached file therefore replays exactly.
The cache lives under `$LMMS_NB_CACHE/logs` (default `~/.cache/lmms_nb/logs`); `load_logs(..., cache=False)`
bypasses it.

Example:
    >>> import tempfile, pathlib, polars as pl
    >>> cache = LogCache(pathlib.Path(tempfile.mkdtemp()))
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = log.write_text("{}")
    >>> calls = []
    >>> read = lambda: calls.append(1) or pl.DataFrame({"a": [1]})
    >>> cache.get_or_read(log, (), "samples", read).rows(), cache.get_or_read(log, (), "samples", read).rows()
    ([(1,)], [(1,)])
    >>> len(calls)
    1
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

__all__ = ["LogCache", "default_cache", "clear_cache"]


@lru_cache(maxsize=1)
def _code_version() -> str:
    digest = hashlib.sha1()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _stat_key(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path}|absent"
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class LogCache:
    """Parquet files of canonical rows, one per (log file, its dependencies, reader version)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def key(self, path: Path, depends_on: Sequence[Path], kind: str) -> str:
        parts = [_code_version(), kind, _stat_key(path), *(_stat_key(p) for p in depends_on)]
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()

    def entry(self, path: Path, depends_on: Sequence[Path], kind: str) -> Path | None:
        """The cache file of `path` when there is one (for lazy scans), else None."""
        entry = self.root / f"{self.key(path, depends_on, kind)}.parquet"
        return entry if entry.is_file() else None

    def get_or_read(
        self, path: Path, depends_on: Sequence[Path], kind: str, read: Callable[[], pl.DataFrame | None],
        *, cacheable: Callable[[], bool] = lambda: True,
    ) -> pl.DataFrame | None:
        """The cached rows of `path`, or `read()` (stored when `cacheable()` says the read was clean)."""
        entry = self.root / f"{self.key(path, depends_on, kind)}.parquet"
        if entry.is_file():
            try:
                return pl.read_parquet(entry)
            except Exception:  # noqa: BLE001 - a torn or foreign cache entry: read the log again
                entry.unlink(missing_ok=True)
        frame = read()
        if frame is not None and cacheable():
            self._store(entry, frame)
        return frame

    def _store(self, entry: Path, frame: pl.DataFrame) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            os.close(fd)
            # uncompressed: a warm reload then only copies strings (lz4 took ~1.6x the CPU; the cache is ~2.5x
            # larger on disk, a cache's fair price)
            frame.write_parquet(tmp, compression="uncompressed", statistics=False)
            os.replace(tmp, entry)  # atomic: a concurrent reader sees the old entry or the whole new one
        except OSError:
            pass  # a read-only or full cache folder only costs speed


def default_cache() -> LogCache:
    base = os.environ.get("LMMS_NB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lmms_nb")
    return LogCache(Path(base) / "logs")


def clear_cache() -> int:
    """Delete every cached log table; returns how many entries were removed."""
    cache = default_cache()
    removed = 0
    for entry in cache.root.glob("*.parquet"):
        entry.unlink(missing_ok=True)
        removed += 1
    return removed
