"""The disk cache of embeddings: per part and model, append-only shards of (doc_ids, vectors).

Each batch is written as soon as it is computed, so an interrupted run keeps the batches it finished and a
rerun loads them without loading any model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmms_nb.config import cache_dir
from lmms_nb.tasks.task import Task

__all__ = ["PartCache", "embed_part", "part_cache_key"]


def embed_part(task: Task, ds: Any, doc_ids: np.ndarray, key: str, compute: Callable, use_cache: bool,
                progress: bool, batch_size: int, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    store = PartCache(cache_dir("lite_embeddings", key)) if use_cache else None
    have = store.load() if store is not None else {}
    missing = np.asarray([d for d in doc_ids.tolist() if d not in have], dtype=np.int64)
    if len(missing):
        bar = tqdm(total=len(doc_ids), initial=len(doc_ids) - len(missing), desc=desc, unit="doc",
                   disable=not progress, leave=False)
        try:
            for s in range(0, len(missing), batch_size):
                ids = missing[s:s + batch_size]
                docs = [ds[int(i)] for i in ids]
                vecs = compute(docs, ids)
                have.update(zip(ids.tolist(), vecs))
                if store is not None:  # per batch, so an interrupted run keeps what it finished
                    store.append(ids, vecs)
                bar.update(len(ids))
        finally:
            bar.close()
    return np.stack([have[d] for d in doc_ids.tolist()]).astype(np.float32)


class PartCache:
    """Append-only shards of (doc_ids, vectors) in one folder; read back as {doc_id: vector}."""

    _COMPACT_AT = 32

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        shards = sorted(self.folder.glob("shard-*.npz"))
        for shard in shards:
            try:
                with np.load(shard) as z:
                    out.update(zip(z["doc_ids"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue  # a shard cut short by a crash: its docs are simply recomputed
        if len(shards) > self._COMPACT_AT and out:
            ids = np.fromiter(out, dtype=np.int64)
            self.append(ids, np.stack([out[i] for i in ids.tolist()]), name="shard-0-compact")
            for shard in shards:
                if shard.name != "shard-0-compact.npz":
                    shard.unlink(missing_ok=True)
        return out

    def append(self, ids: np.ndarray, vecs: np.ndarray, name: str | None = None) -> None:
        name = name or f"shard-{uuid.uuid4().hex}"
        tmp = self.folder / f".{name}.tmp"
        buf = io.BytesIO()
        np.savez(buf, doc_ids=np.asarray(ids, dtype=np.int64), vectors=np.asarray(vecs, dtype=np.float32))
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, self.folder / f"{name}.npz")  # atomic: readers never see half a shard


def part_cache_key(part: str, fingerprint: str, extra: str, model_id: str) -> str:
    h = hashlib.sha256(json.dumps([part, fingerprint, extra, model_id]).encode()).hexdigest()[:20]
    return f"{part}-{h}"
