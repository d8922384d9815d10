"""Neyman allocation of a budget over strata: in proportion to size x spread, in whole docs.

Every stratum gets at least one doc when the budget allows: a stratum with no doc drawn is never observed, so
an estimate there falls back to the training models (a guess, biased for a new model that differs there).

Example:
    >>> neyman_allocation(np.array([10, 10, 5]), np.array([1.0, 3.0, 0.0]), 8).tolist()
    [2, 5, 1]
    >>> neyman_allocation(np.array([10, 10, 5]), np.array([1.0, 3.0, 0.0]), 2).tolist()  # too few for all
    [1, 1, 0]
    >>> neyman_allocation(np.array([2, 10]), np.array([1.0, 0.0]), 5).tolist()  # leftover to strata with room
    [2, 3]
"""

from __future__ import annotations

import numpy as np

__all__ = ["neyman_allocation"]


def neyman_allocation(sizes: np.ndarray, sd: np.ndarray, k: int) -> np.ndarray:
    """Docs of `k` per stratum: one per non-empty stratum when `k` is at least their number, the rest in
    proportion to ``sizes * sd`` (by size alone when every sd is 0) rounded by largest remainders, at most a
    stratum's size; budget left over (a stratum smaller than its quota, or strata with no spread) goes to the
    strata with room, neediest first, so a budget of every doc takes every doc."""
    sizes = np.asarray(sizes, dtype=np.int64)
    need = sizes * np.asarray(sd, dtype=np.float64)
    if need.sum() == 0:
        need = sizes.astype(np.float64)
    base = (sizes > 0).astype(np.int64) if k >= int((sizes > 0).sum()) else np.zeros_like(sizes)
    rest = k - int(base.sum())
    quota = need / need.sum() * rest
    alloc = np.floor(quota).astype(np.int64)
    alloc[np.argsort(-(quota - alloc), kind="stable")[: rest - int(alloc.sum())]] += 1
    alloc = np.minimum(alloc + base, sizes)
    left = k - int(alloc.sum())
    for h in np.lexsort((-(sizes - alloc), -need)):
        take = min(left, int(sizes[h] - alloc[h]))
        alloc[h] += take
        left -= take
    return alloc
