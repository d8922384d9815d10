"""`LiteSubset`: the docs a Lite subset keeps, in pick order, with the weight each one stands for.

A k-center pick stands for its cell: the docs nearer to it than to any other pick. Its weight is the cell's
share of the full set (cell size / N; the weights sum to 1), so ``sum(weight * score)`` is the
cell-size-weighted estimate of the full-set score, while LMMs-Eval-Lite's estimate is the plain mean.

Example:
    >>> import numpy as np
    >>> from lmms_nb.lite_selection import TaskEmbeddings
    >>> emb = TaskEmbeddings(task="toy", doc_ids=np.array([10, 11, 12, 13]),
    ...                      vectors=np.array([[0.0], [1.0], [9.0], [20.0]], dtype=np.float32))
    >>> sub = build_lite_subset(emb, 2)
    >>> sub.doc_ids.tolist(), sub.cell_sizes.tolist(), sub.weights.tolist()
    ([10, 13], [3, 1], [0.75, 0.25])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from lmms_nb.lite_selection._embeddings import TaskEmbeddings
from lmms_nb.lite_selection._kcenter import KCenterResult, assign_to_nearest, kcenter_greedy


@dataclass(frozen=True)
class LiteSubset:
    """A Lite subset of a task: doc ids in pick order, their cell sizes and weights (cell size / n_full)."""

    task: str
    doc_ids: np.ndarray
    cell_sizes: np.ndarray
    n_full: int
    radius: float = float("nan")
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doc_ids", np.asarray(self.doc_ids, dtype=np.int64))
        object.__setattr__(self, "cell_sizes", np.asarray(self.cell_sizes, dtype=np.int64))
        if self.doc_ids.ndim != 1 or len(self.doc_ids) == 0:
            raise ValueError(f"Lite subset of {self.task!r}: doc_ids must be a non-empty list")
        if len(np.unique(self.doc_ids)) != len(self.doc_ids):
            raise ValueError(f"Lite subset of {self.task!r}: doc_ids repeat")
        if self.cell_sizes.shape != self.doc_ids.shape:
            raise ValueError(f"Lite subset of {self.task!r}: {len(self.cell_sizes)} cell sizes "
                             f"for {len(self.doc_ids)} doc ids")
        if (self.cell_sizes < 0).any() or int(self.cell_sizes.sum()) != self.n_full:
            raise ValueError(f"Lite subset of {self.task!r}: cell sizes must be >= 0 and sum to n_full "
                             f"({self.n_full}), they sum to {int(self.cell_sizes.sum())}")

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def weights(self) -> np.ndarray:
        """Each doc's share of the full set: cell size / n_full (sums to 1)."""
        return self.cell_sizes / float(self.n_full)

    def table(self) -> pl.DataFrame:
        """One row per kept doc: pick order, doc_id, cell_size, weight."""
        return pl.DataFrame({
            "order": np.arange(len(self), dtype=np.int64),
            "doc_id": self.doc_ids,
            "cell_size": self.cell_sizes,
            "weight": self.weights,
        })


def resolve_budget(budget: int | float, n: int) -> int:
    """A budget as a number of docs: an int is a count, a float in (0, 1] a fraction of `n` (rounded, >= 1).

    >>> resolve_budget(0.1, 905), resolve_budget(25, 905)
    (90, 25)
    """
    if isinstance(budget, bool):
        raise TypeError(f"budget must be a count or a fraction, got {budget!r}")
    if isinstance(budget, (int, np.integer)):
        k = int(budget)
    elif isinstance(budget, (float, np.floating)) and 0.0 < budget <= 1.0:
        k = max(1, int(round(float(budget) * n)))
    else:
        raise ValueError(f"budget must be a count >= 1 or a fraction in (0, 1], got {budget!r}")
    if not 1 <= k <= n:
        raise ValueError(f"budget {budget!r} asks for {k} docs but the task has {n}")
    return k


def build_lite_subset(
    embeddings: TaskEmbeddings,
    budget: int | float,
    *,
    start: int | Literal["random", "mean"] = 0,
    seed: int | None = None,
    device: str | None = None,
    kcenter: KCenterResult | None = None,
) -> LiteSubset:
    """Pick a Lite subset of `budget` docs (a count, or a fraction of the task) by k-center greedy.

    Farthest-first picks are nested (the first j picks are the greedy answer for j), so pass a `kcenter`
    result computed once at the largest budget to get any smaller one instantly (e.g. from a slider);
    only the cells are recomputed. `start` is a row position in `embeddings` (or "random" / "mean").
    """
    n = len(embeddings)
    k = resolve_budget(budget, n)
    if kcenter is None or len(kcenter) < k:
        kcenter = kcenter_greedy(embeddings.vectors, k, start=start, seed=seed, device=device)
    picks = kcenter.picks[:k]
    if len(kcenter) == k:
        cells = kcenter.cell_sizes
    else:
        _, cells = assign_to_nearest(embeddings.vectors, picks, device=device)
    return LiteSubset(
        task=embeddings.task,
        doc_ids=embeddings.doc_ids[picks],
        cell_sizes=cells,
        n_full=n,
        radius=float(kcenter.radii[k - 1]),
        meta={
            "method": "kcenter_greedy",
            "start": start if isinstance(start, str) else "index",
            "first_doc_id": int(embeddings.doc_ids[kcenter.picks[0]]),
            "image_model": embeddings.image_model_id,
            "text_model": embeddings.text_model_id,
            "image_weight": embeddings.image_weight,
            "text_weight": embeddings.text_weight,
        },
    )
