"""The CPU passes of `kcenter_greedy`: lazy farthest-first with upper bounds, in float32 blocks.

Why lazy: the next pick is the row farthest from its nearest pick. A row's running minimum over the picks it
has been measured against so far is an *upper bound* on its true minimum (more picks can only lower it). So
rows need not be measured against every new pick: after a pick, the rows with the largest bounds are
brought up to date first (measured against all the picks they missed, at once), and once the best
up-to-date distance exceeds every stale bound (by the float32 rounding margin), no stale row can be the
farthest and the pick is settled. On Lite-like embeddings a pick updates a few percent of the rows, each
against dozens of missed picks in one matrix-matrix product (compute-bound BLAS-3) instead of a
matrix-vector product over all N rows (memory-bound): far fewer bytes read per pick, and identical picks.
The classic triangle-inequality bound (Elkan's: a row cannot move to a new pick c unless its distance to
its own pick j exceeds d(j, c) / 2) skips little on such data at a 1% budget: the k-center radius stays
near half the data's diameter, so d(j, c) < 2 d(r, j) for almost every row; the lazy bound skips most rows.

Rounding: float32 squared distances are within `tol` of the exact ones, so a stale row is skipped only if
its bound is below the best up-to-date value minus 2 tol, and the rows within 2 tol of the float32 maximum
go to the float64 check in `_kcenter` (the exact picks, ties to the lowest row index).
"""

from __future__ import annotations

import numpy as np


class LazyPasses:
    """float32 upper bounds on each row's squared distance to its nearest pick, updated lazily (CPU, numpy)."""

    #: rows brought up to date first after each pick (the largest bounds), before the best value is known
    SEED = 64
    #: rows per matrix-matrix block (a block of rows x the picks they missed; ~1 MB of float32 at d=1792)
    BLOCK = 256

    def __init__(self, x: np.ndarray, sq: np.ndarray, k: int, tol: float) -> None:
        n, d = x.shape
        self.x, self.sq, self.n, self.tol = x, sq, n, np.float32(tol)
        self.bound = np.full(n, np.inf, dtype=np.float32)  # min over the picks [0, upto) of the float32 distance
        self.upto = np.zeros(n, dtype=np.int32)  # how many picks each row has been measured against
        self.picked = np.empty((k, d), dtype=np.float32)
        self.picked_sq = np.empty(k, dtype=np.float32)
        self.m = 0  # picks so far
        self.distances = 0  # row-pick distances computed, over all picks (k N for the eager method)

    def add(self, row: int) -> None:
        """Record the next pick (an input row). The first pick is one full GEMV pass over every row."""
        i = self.m
        self.picked[i], self.picked_sq[i] = self.x[row], self.sq[row]
        self.m = i + 1
        if i == 0:
            dist = self.x @ self.picked[0]
            dist *= -2.0
            dist += self.sq
            dist += self.picked_sq[0]
            np.maximum(dist, 0.0, out=dist)
            self.bound[:] = dist
            self.upto[:] = 1
            self.distances += self.n
        self.bound[row] = -np.inf  # a pick is never a candidate again
        self.upto[row] = self.m

    def candidates(self) -> np.ndarray:
        """Rows whose float32 distance to the picks lies within 2 tol of the maximum, ascending; all up to date."""
        m, bound, upto, margin = self.m, self.bound, self.upto, 2.0 * self.tol
        stale = np.flatnonzero(upto < m)
        if stale.size:  # seed: the largest bounds first, so the best up-to-date value is high from the start
            top = stale[np.argpartition(bound[stale], -min(self.SEED, stale.size))[-min(self.SEED, stale.size):]]
            self._update(top)
        while True:
            best = bound[upto == m].max()
            rows = np.flatnonzero((upto < m) & (bound >= best - margin))
            if not rows.size:
                break
            self._update(rows)
        top = bound.max()
        return np.flatnonzero(bound >= top - margin)

    def _update(self, rows: np.ndarray) -> None:
        """Fold into `bound` every pick the rows missed (refolding one they saw is harmless: a min)."""
        m = self.m
        # blocks of rows that missed about as many picks (within a factor 2): few refolds, few BLAS calls
        missed = m - self.upto[rows]
        rows = rows[np.argsort(missed, kind="stable")]
        width = np.floor(np.log2(np.sort(missed, kind="stable"))).astype(np.int64)
        cuts = np.flatnonzero(np.diff(width)) + 1
        starts = np.unique(np.concatenate([np.arange(0, rows.size, self.BLOCK), cuts]))
        for s, e in zip(starts.tolist(), np.append(starts[1:], rows.size).tolist()):
            block = rows[s:e]
            lo = int(self.upto[block].min())
            g = self.x[block] @ self.picked[lo:m].T  # rows x missed picks, one BLAS-3 call
            g *= -2.0
            g += self.sq[block, None]
            g += self.picked_sq[None, lo:m]
            self.bound[block] = np.minimum(self.bound[block], g.min(axis=1).clip(min=0.0))
            self.upto[block] = m
            self.distances += g.size
