"""The CPU pass of `kcenter_greedy`: float32 matrix-vector products over contiguous row runs, with per-row
triangle-inequality pruning (Elkan's bound, as in fast k-means) and an occasional re-sort of the rows by cell.

Pruning: row r sits in the cell of its nearest pick j so far, at float32 squared distance ``a_r``. A new pick
c can take r only if d(r, c) < d(r, j), and d(r, c) >= d(j, c) - d(r, j), so r is skipped when
d(j, c) > 2 d(r, j). The test runs on float32 squared distances with the rounding bound `tol` on both sides
(skip only if ``d(j,c)^2 - tol > 4 (a_r + tol)``), so a skipped row provably keeps its minimum, its nearest
pick (strictly nearer, so no tie is missed) and the picks stay exact.

Speed: numpy's float32 GEMV reads contiguous rows at the machine's bandwidth, but gathering scattered rows
first costs several times more than the product itself. So the rows live in a permuted copy, sorted by cell
and, inside a cell, farthest from its pick first (the rows a new pick can take), and each pick multiplies only
the runs of `BLOCK`-row blocks that hold a live row; when most rows are live, one GEMV covers the whole
matrix. The copy is re-sorted (one pass of gathering) only when the rows read in vain since the last sort
outweigh it. Memory: up to two permuted copies of the embeddings besides the input while re-sorting.

Float32 near-ties of a row's nearest pick are flagged as they happen (a new distance within 2 tol of the
running minimum), so the final cells are settled in float64 for those rows only, with no extra pass.
"""

from __future__ import annotations

import numpy as np

#: one re-sort gathers every row once: about this many GEMVs' worth of time (numpy's take is slow)
_RESORT_COST = 6.0


class PrunedPasses:
    """Per-pick distance updates on CPU; positions index the permuted copy, `perm[pos]` is the input row."""

    #: rows per block (64 x 1792 float32 = 458 KB: a run of blocks streams through the cache)
    BLOCK = 64
    #: above this share of live rows, one GEMV over the whole matrix (no runs)
    FULL_ABOVE = 0.85

    def __init__(self, x: np.ndarray, sq: np.ndarray, k: int, tol: float) -> None:
        n, d = x.shape
        self.n, self.tol = n, np.float32(tol)
        self.xp = x  # the input until the first re-sort, then a permuted copy
        self.perm = np.arange(n)
        self.where = np.arange(n)  # input row -> position
        self.sq = sq.copy()
        self.approx = np.full(n, np.inf, dtype=np.float32)  # float32 min squared distance to the picks
        self.owner = np.zeros(n, dtype=np.int32)  # position in picks of the nearest pick (float32)
        self.unsure = np.zeros(n, dtype=bool)  # a float32 near-tie for the nearest pick: settle in float64
        self.dist = np.empty(n, dtype=np.float32)
        nb = -(-n // self.BLOCK)
        self.live = np.zeros(nb * self.BLOCK, dtype=bool)
        self.picked = np.empty((k, d), dtype=np.float32)
        self.picked_sq = np.empty(k, dtype=np.float32)
        self.rows_read = 0  # rows whose distance to a new pick was computed, over all picks
        self.wasted = 0.0  # rows read although skippable since the last sort, in units of N

    def add(self, i: int, row: int, picks_left: int) -> None:
        """Fold pick number `i` (input row `row`) into the running minimum distances and cells."""
        if i >= 8 and self.wasted / i * min(picks_left, i) > _RESORT_COST:
            self._resort()
        pos = int(self.where[row])
        self.picked[i], self.picked_sq[i] = self.xp[pos], self.sq[pos]
        c, sqc = self.picked[i], self.picked_sq[i]
        n, block, tol = self.n, self.BLOCK, self.tol
        live = self.live[:n]
        if i == 0:
            live[:] = True
        else:  # skip r iff d(j,c)^2 - tol > 4 (a_r + tol), j its pick: live iff 4 a_r >= d(j,c)^2 - 5 tol
            cc = self.picked[:i] @ c
            cc *= -2.0
            cc += self.picked_sq[:i]
            cc += sqc
            np.maximum(cc, 0.0, out=cc)
            cc -= 5.0 * tol
            np.greater_equal(self.approx * np.float32(4.0), np.take(cc, self.owner), out=live)
        n_live = int(np.count_nonzero(live))
        if n_live > self.FULL_ABOVE * n:
            runs = [(0, n)]
        else:
            blocks = self.live.reshape(-1, block).any(axis=1)
            edges = np.flatnonzero(np.diff(np.concatenate(([False], blocks, [False])).view(np.int8)))
            starts, ends = edges[0::2], edges[1::2]
            apart = starts[1:] - ends[:-1] > 1  # runs one block apart are bridged: fewer, longer calls
            starts = starts[np.concatenate(([True], apart))]
            ends = ends[np.concatenate((apart, [True]))]
            runs = [(s * block, min(e * block, n)) for s, e in zip(starts.tolist(), ends.tolist())]
            self.dist.fill(np.inf)
        read = 0
        for s, e in runs:
            g = self.dist[s:e]
            np.matmul(self.xp[s:e], c, out=g)
            g *= -2.0
            g += self.sq[s:e]
            g += sqc
            np.maximum(g, 0.0, out=g)
            read += e - s
        self.rows_read += read
        self.wasted += (read - n_live) / n
        dist, approx = self.dist, self.approx
        self.unsure |= np.abs(dist - approx) <= 2.0 * tol  # inf (not read) or -inf (a pick): never
        self.owner[dist < approx] = i
        np.minimum(approx, dist, out=approx)
        # the pick itself: distance 0, and a near-tie if it was (almost) covered already (duplicate rows)
        self.owner[pos] = i
        approx[pos] = -np.inf

    def candidates(self) -> np.ndarray:
        """Input rows within 2 tol of the float32 farthest distance, ascending (the float64 check decides)."""
        top = self.approx.max()
        return np.sort(self.perm[np.flatnonzero(self.approx >= top - 2.0 * self.tol)])

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(each input row's float32 nearest pick, the input rows whose nearest pick is a float32 near-tie)."""
        assignment = np.empty(self.n, dtype=np.int64)
        assignment[self.perm] = self.owner
        return assignment, np.sort(self.perm[self.unsure])

    def _resort(self) -> None:
        # by cell, then farthest first: the rows a new pick can take cluster at the start of each cell's run
        order = np.lexsort((-self.approx, self.owner))
        self.xp = np.take(self.xp, order, axis=0)
        for name in ("perm", "sq", "approx", "owner", "unsure"):
            setattr(self, name, getattr(self, name)[order])
        self.where[self.perm] = np.arange(self.n)
        self.wasted = 0.0
