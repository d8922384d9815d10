"""The vectors `find_slices` clusters and maps the samples by: Lite embeddings per part, and their 2-D map.

`embedding_parts` aligns the "image", "text" and "image+text" parts of Lite `TaskEmbeddings` (given, or
computed from `Task`s with the offline models) with the sample rows, or embeds the prompts alone ("text",
cached on disk); `map_coordinates` puts the samples on a plane by their two principal components.

Example:
    >>> import numpy as np
    >>> xs = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> [s.round(3).to_list() for s in map_coordinates({"text": xs}, seed=0)]
    [[-1.414, 0.0, 1.414], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

__all__ = ["embedding_parts", "map_coordinates", "text_embeddings"]


def text_embeddings(texts: list[str], embedder: Any, local_models: Any) -> np.ndarray:
    """The prompts embedded with the offline text model, cached on disk by (model, prompts)."""
    import hashlib

    from lmms_nb.config import cache_dir

    encoder = embedder(local_models()[1], device="cpu")
    digest = hashlib.sha256("\x00".join([encoder.model_id, *texts]).encode()).hexdigest()[:24]
    path = cache_dir("slice_text_embeddings") / f"{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = encoder.encode(texts)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return vectors


def embedding_parts(embeddings: Any, rows: pl.DataFrame) -> dict[str, np.ndarray]:
    """{"image" | "text" | "image+text": (samples x dim)} aligned with `rows`, from Lite embeddings."""
    if embeddings is None:
        return {}
    from lmms_nb.lite_selection import TaskEmbeddings, TextEmbedder, embed_task, local_embedding_models
    from lmms_nb.tasks.task import Task

    if isinstance(embeddings, str):
        if embeddings != "text":
            raise ValueError(f"embeddings={embeddings!r}: pass 'text', Lite TaskEmbeddings or Tasks")
        return {"text": text_embeddings(rows["input"].fill_null("").to_list(), TextEmbedder, local_embedding_models)}
    items = list(embeddings.values()) if isinstance(embeddings, Mapping) else (
        [embeddings] if isinstance(embeddings, (TaskEmbeddings, Task)) else list(embeddings))
    if any(isinstance(e, Task) for e in items):
        image_model, text_model = local_embedding_models()
        items = [embed_task(e, image_model=image_model, text_model=text_model, progress=False, device="cpu")
                 if isinstance(e, Task) else e for e in items]
    by_task = {e.task: e for e in items}
    absent = sorted(set(rows["task"].to_list()) - set(by_task))
    if absent:
        raise ValueError(f"embeddings cover tasks {sorted(by_task)} but not {absent}")
    parts: dict[str, np.ndarray] = {}
    for part in ("image", "text", "vectors"):
        chunks, order = [], []
        for task, group in rows.with_row_index("_row").group_by("task", maintain_order=True):
            emb = by_task[task[0]]
            values = getattr(emb, part)
            if values is None or not np.any(values):
                break
            chunks.append(values[emb.rows_of(group["doc_id"].to_list())])
            order.append(group["_row"].to_numpy())
        else:
            if len({c.shape[1] for c in chunks}) != 1:
                raise ValueError(f"the tasks' {part} embeddings have different sizes; embed them with the same models")
            out = np.empty((rows.height, chunks[0].shape[1]), np.float32)
            out[np.concatenate(order)] = np.concatenate(chunks)
            parts["image+text" if part == "vectors" else part] = out
    if len(parts) == 2 and "image+text" in parts:  # only one part was computed: "vectors" is that part again
        parts.pop("image+text")
    return parts


def map_coordinates(parts: dict[str, np.ndarray], seed: int) -> list[pl.Series]:
    """The samples' two principal components (eigenvectors of the d x d covariance: cheap for any n)."""
    vectors = np.asarray(parts.get("image+text", next(iter(parts.values()))), dtype=np.float64)
    centred = vectors - vectors.mean(axis=0)
    _, eigenvectors = np.linalg.eigh(centred.T @ centred)
    xy = centred @ eigenvectors[:, ::-1][:, :2]
    xy *= np.where(xy.sum(axis=0) < 0, -1.0, 1.0)  # a fixed sign, so the map does not flip between runs
    return [pl.Series("map_x", xy[:, 0]), pl.Series("map_y", xy[:, 1])]
