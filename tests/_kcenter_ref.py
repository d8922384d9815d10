"""An independent reference for k-center greedy (farthest-first) and its cells, in float64 with scipy's `cdist`,
for the tests that check the Lite subsets, the LiteBuilder and notebook 03 against it."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def farthest_first(x: np.ndarray, k: int) -> list[int]:
    """k-center greedy picks in float64 from row 0, ties to the lowest row (numpy argmax)."""
    x = x.astype(np.float64)
    picks, d = [0], cdist(x, x[:1]).ravel()
    for _ in range(k - 1):
        picks.append(int(np.argmax(d)))
        d = np.minimum(d, cdist(x, x[picks[-1]:picks[-1] + 1]).ravel())
    return picks


def cells_of(x: np.ndarray, picks: list[int]) -> np.ndarray:
    """How many rows are nearest to each pick (ties: the earlier pick)."""
    nearest = cdist(x.astype(np.float64), x[picks].astype(np.float64)).argmin(axis=1)
    return np.bincount(nearest, minlength=len(picks))
