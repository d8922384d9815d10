"""`TaskEmbeddings`, one task's per-doc vectors, and `combine_embeddings`, which weighs the image and text parts.

Why parts are L2-normalised then weighted by square roots: see `lmms_nb.lite_selection._embeddings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TaskEmbeddings", "combine_embeddings", "l2_normalise"]


@dataclass
class TaskEmbeddings:
    """Per-doc embeddings of one task: the combined `vectors` that k-center works on, and the two parts.

    Row i of every array belongs to `doc_ids[i]`. `image` / `text` are None for a part that was not computed.
    """

    task: str
    doc_ids: np.ndarray
    vectors: np.ndarray
    image: np.ndarray | None = None
    text: np.ndarray | None = None
    image_model_id: str | None = None
    text_model_id: str | None = None
    image_weight: float = 0.5
    text_weight: float = 0.5

    def __post_init__(self) -> None:
        self.doc_ids = np.asarray(self.doc_ids, dtype=np.int64)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.doc_ids):
            raise ValueError(
                f"vectors must have one row per doc id: shape {self.vectors.shape} for {len(self.doc_ids)} doc ids"
            )
        if len(np.unique(self.doc_ids)) != len(self.doc_ids):
            raise ValueError(f"task {self.task!r}: doc_ids are not unique")

    def __len__(self) -> int:
        return len(self.doc_ids)

    def rows_of(self, doc_ids: Sequence[int]) -> np.ndarray:
        """Row positions of `doc_ids` (an error names the ones that have no embedding)."""
        pos = {int(d): i for i, d in enumerate(self.doc_ids)}
        missing = [int(d) for d in doc_ids if int(d) not in pos]
        if missing:
            raise KeyError(f"task {self.task!r}: no embedding for doc ids {missing[:10]} ({len(missing)} in all)")
        return np.asarray([pos[int(d)] for d in doc_ids], dtype=np.int64)


def combine_embeddings(
    image: np.ndarray | None,
    text: np.ndarray | None,
    *,
    image_weight: float = 0.5,
    text_weight: float = 0.5,
) -> np.ndarray:
    """Concatenate L2-normalised parts as ``[sqrt(w_img) * image, sqrt(w_txt) * text]`` (weights summing to 1).

    All-zero rows (a doc without images) stay zero. Either part may be None (then only the other is used).

    >>> import numpy as np
    >>> combine_embeddings(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[2.0], [5.0]])).astype(float).round(4).tolist()
    [[0.4243, 0.5657, 0.7071], [0.0, 0.0, 0.7071]]
    """
    parts = [(p, w, name) for p, w, name in ((image, image_weight, "image"), (text, text_weight, "text"))
             if p is not None]
    if not parts:
        raise ValueError("combine_embeddings needs an image part, a text part, or both")
    total = sum(w for _, w, _ in parts)
    for _, w, name in parts:
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"{name}_weight must be a finite number >= 0, got {w!r}")
    if total <= 0:
        raise ValueError("image_weight + text_weight must be > 0")
    n = {p.shape[0] for p, _, _ in parts}
    if len(n) != 1:
        raise ValueError(f"image and text parts have different numbers of rows: {sorted(n)}")
    out = [np.sqrt(w / total) * l2_normalise(np.asarray(p, dtype=np.float32)) for p, w, _ in parts]
    return np.concatenate(out, axis=1).astype(np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length; all-zero rows (a doc without images) stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
