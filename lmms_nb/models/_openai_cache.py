"""The response cache of the OpenAI-compatible backend: a sqlite file of finished answers, keyed by request hash."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from lmms_nb.models.base import Response

__all__ = ["ResponseCache", "request_cache_key"]


def request_cache_key(base_url: str, model: str, messages: Any, params: Mapping[str, Any]) -> str:
    """The cache key of one request: a sha256 of endpoint, model, messages and parameters, canonically encoded."""
    blob = json.dumps(
        {"base_url": base_url.rstrip("/"), "model": model, "messages": messages, "params": dict(params)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Finished responses in a sqlite file, committed one by one so a crash keeps what was paid for.

    Stores only the key (a hash), the answer, its token count and latency: never prompts, images or keys.
    WAL mode lets several processes (data-parallel workers) share one file.

    >>> import tempfile, pathlib
    >>> c = ResponseCache(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
    >>> c.put("k", Response(text="A", latency_s=0.5, output_tokens=1, truncated=False), model="m")
    >>> hit = c.get("k")
    >>> hit.text, hit.output_tokens, hit.latency_s, hit.cached, hit.truncated
    ('A', 1, 0.5, True, False)
    >>> len(c)
    1
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # check_same_thread=False: generate() may run its loop in a worker thread; the lock serialises use.
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # v2 adds `truncated`; rows of the first table (no finish_reason recorded) are not reused
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS responses_v2 (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "output_tokens INTEGER, latency_s REAL, model TEXT, created REAL, truncated INTEGER)"
        )

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text, output_tokens, latency_s, truncated FROM responses_v2 WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Response(text=row[0], output_tokens=row[1], latency_s=row[2], cached=True,
                        truncated=None if row[3] is None else bool(row[3]))

    def put(self, key: str, response: Response, model: str = "") -> None:
        with self._lock:  # autocommit (isolation_level=None): each insert is durable on return
            self._conn.execute(
                "INSERT OR REPLACE INTO responses_v2 VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, response.text or "", response.output_tokens, response.latency_s, model, time.time(),
                 None if response.truncated is None else int(response.truncated)),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses_v2").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
