"""Neyman allocation of a budget over strata: in proportion to size x spread, in whole docs.

Example:
    >>> neyman_allocation(np.array([10, 10, 5]), np.array([1.0, 3.0, 0.0]), 8).tolist()
    [2, 6, 0]
    >>> neyman_allocation(np.array([2, 10]), np.array([1.0, 0.0]), 5).tolist()  # leftover to strata with room
    [2, 3]
"""

from __future__ import annotations

import numpy as np

__all__ = ["neyman_allocation"]


def neyman_allocation(sizes: np.ndarray, sd: np.ndarray, k: int) -> np.ndarray:
    """Docs of `k` per stratum: quotas in proportion to ``sizes * sd`` (by size alone when every sd is 0) rounded
    by largest remainders, at most a stratum's size; budget left over (a stratum smaller than its quota, or
    strata with no spread) goes to the strata with room, neediest first, so a budget of every doc takes every
    doc."""
    sizes = np.asarray(sizes, dtype=np.int64)
    need = sizes * np.asarray(sd, dtype=np.float64)
    if need.sum() == 0:
        need = sizes.astype(np.float64)
    quota = need / need.sum() * k
    alloc = np.floor(quota).astype(np.int64)
    alloc[np.argsort(-(quota - alloc), kind="stable")[: k - int(alloc.sum())]] += 1
    alloc = np.minimum(alloc, sizes)
    left = k - int(alloc.sum())
    for h in np.lexsort((-(sizes - alloc), -need)):
        take = min(left, int(sizes[h] - alloc[h]))
        alloc[h] += take
        left -= take
    return alloc
