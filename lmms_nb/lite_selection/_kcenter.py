"""Exact k-center greedy (farthest-first traversal) in vectorised, chunked torch, on CPU or GPU.

How it stays fast *and* exact:

- The bulk work is float32 (||x||^2 - 2 x.c + ||c||^2, clamped at 0), folded into a vector of min squared
  distances; memory stays O(N d): the embeddings plus a few length-N vectors and the picks' rows.
- On GPU each pick is one matrix-vector product over the N x d embeddings. On CPU the passes are lazy
  (`_kcenter_cpu`): a row's running minimum is an upper bound on its distance to the picks, so only rows whose
  bound could make them the farthest are measured, each against all the picks it missed in one
  matrix-matrix product; on Lite-like data a pick reads a few percent of the rows. The final cells take one
  matrix-matrix pass (rows x picks, in blocks).
- float32 rounding could swap two near-tied farthest points, so every pick is confirmed in float64: rows
  whose float32 value lies within twice a rounding bound of the float32 maximum are re-measured
  exactly (float64, against every pick so far, incrementally) and the farthest wins, ties to the lowest row
  index (as `numpy.argmax`). The same check settles near-ties of the final nearest-pick assignment. The
  picks therefore equal a float64 reference (e.g. sklearn `pairwise_distances`, then min, then argmax) while
  the heavy pass runs at float32 speed. The bound is 16 sqrt(d) u (||x||^2 + ||c||^2) with u = 2^-24, the
  probabilistic bound of a float32 dot product with a margin (BLAS' blocked sums stay far below it).
- Once every row is covered (all remaining distances are 0: duplicated rows), the next pick is the lowest
  unpicked row, so picks stay distinct (a naive argmax would re-pick row 0).

Example:
    >>> import numpy as np
    >>> pts = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0], [5.0, 0.0]])
    >>> res = kcenter_greedy(pts, 3, start=0)
    >>> res.picks.tolist(), res.radii.round(3).tolist(), res.cell_sizes.tolist()
    ([0, 3, 4], [11.0, 5.0, 1.0], [2, 2, 1])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lmms_nb.lite_selection._kcenter_cpu import LazyPasses

_U32 = 2.0**-24  # unit roundoff of float32
#: elements of the (rows x picks) distance block of the assignment pass held at once (64 MiB of float32)
_ASSIGN_BLOCK = 1 << 24


@dataclass(frozen=True)
class KCenterResult:
    """The outcome of `kcenter_greedy`.

    picks: row indices in the order they were chosen (a prefix of length j is the greedy solution for j);
    radii: coverage radius after each pick (max over rows of the distance to the nearest pick so far);
    cell_sizes: how many rows are nearest to each pick (ties to the earliest pick; sums to N);
    assignment: for every row, the position in `picks` of its nearest pick;
    rows_measured: row-pick distances computed while picking (k x N for the eager method; the final cell
      pass, k x N more, is not counted).
    """

    picks: np.ndarray
    radii: np.ndarray
    cell_sizes: np.ndarray
    assignment: np.ndarray
    rows_measured: int = 0

    def __len__(self) -> int:
        return len(self.picks)


def kcenter_greedy(
    embeddings: np.ndarray | torch.Tensor,
    k: int,
    *,
    start: int | Literal["random", "mean"] = 0,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> KCenterResult:
    """Pick `k` rows of `embeddings` (N x d) by exact farthest-first traversal.

    `start` is the first pick: a row index, ``"random"`` (a row drawn with `seed`), or ``"mean"`` (the row
    nearest to the mean embedding). `device` defaults to the tensor's own device (CPU for numpy input).
    Distances are Euclidean; see the module docstring for the float32/float64 scheme.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> res = kcenter_greedy(x, 10, start="mean")
    >>> len(res.picks), int(res.cell_sizes.sum()), bool((np.diff(res.radii) <= 0).all())
    (10, 200, True)
    """
    x = _as_float32_matrix(embeddings, device)
    n, d = x.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer between 1 and the number of rows ({n}), got {k!r}")
    first = _resolve_start(x, start, seed)

    sq32 = _row_sq_norms32(x)
    tol = _tolerance(sq32, d)
    exact = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)  # float64, for rows checked
    counted = torch.zeros(n, dtype=torch.int64, device=x.device)  # picks already folded into `exact`
    picked64 = torch.empty((k, d), dtype=torch.float64, device=x.device)  # the picks' rows, for the checks
    picked_sq = torch.empty(k, dtype=torch.float64, device=x.device)
    picks = np.empty(k, dtype=np.int64)
    radii = np.empty(k, dtype=np.float64)
    cpu = LazyPasses(x.numpy(), sq32.numpy(), k, tol) if x.device.type == "cpu" else None
    approx = None if cpu is not None else torch.full((n,), float("inf"), dtype=torch.float32, device=x.device)

    nxt = first
    with _ieee_fp32():
        for i in range(k):
            picks[i] = nxt
            picked64[i] = x[nxt]
            picked_sq[i] = (picked64[i] * picked64[i]).sum()
            if cpu is not None:  # lazy: rows are measured when their bound could make them the farthest
                cpu.add(nxt)
            else:  # one pass over x per pick (a GEMV); the rest is O(N)
                dist = torch.mv(x, x[nxt]).mul_(-2.0).add_(sq32).add_(sq32[nxt]).clamp_min_(0.0)
                torch.minimum(approx, dist, out=approx)
                approx[nxt] = -float("inf")  # a picked row is never a candidate again
            exact[nxt] = 0.0
            if i + 1 == n:  # every row picked
                radii[i] = 0.0
                continue
            if cpu is not None:
                cand = torch.from_numpy(cpu.candidates())
            else:
                cand = torch.nonzero(approx >= float(approx.max()) - 2.0 * tol).flatten()  # ascending rows
            nxt, best = _farthest_exact(x, picked64[: i + 1], picked_sq[: i + 1], cand, exact, counted)
            radii[i] = math.sqrt(max(best, 0.0))
        assignment, cell_sizes = _assign(x, sq32, torch.as_tensor(picks, device=x.device), tol)
    return KCenterResult(
        picks=picks,
        radii=radii,
        cell_sizes=cell_sizes,
        assignment=assignment,
        rows_measured=cpu.distances if cpu is not None else k * n,
    )


def assign_to_nearest(
    embeddings: np.ndarray | torch.Tensor,
    centers: Sequence[int] | np.ndarray,
    *,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest center (its position in `centers`, ties to the earlier) and every center's cell size.

    Use it for the cells of a prefix of a `kcenter_greedy` result (the picks of a smaller budget).

    >>> import numpy as np
    >>> pts = np.array([[0.0], [1.0], [9.0], [10.0]])
    >>> assignment, sizes = assign_to_nearest(pts, [3, 0])
    >>> assignment.tolist(), sizes.tolist()
    ([1, 1, 0, 0], [2, 2])
    """
    x = _as_float32_matrix(embeddings, device)
    idx = torch.as_tensor(np.asarray(centers, dtype=np.int64), device=x.device)
    if idx.ndim != 1 or idx.numel() == 0:
        raise ValueError("centers must be a non-empty 1-d sequence of row indices")
    if int(idx.min()) < 0 or int(idx.max()) >= x.shape[0]:
        raise ValueError(f"centers must be row indices in [0, {x.shape[0]}), got {idx.min()}..{idx.max()}")
    sq32 = _row_sq_norms32(x)
    with _ieee_fp32():
        return _assign(x, sq32, idx, _tolerance(sq32, x.shape[1]))


# --------------------------------------------------------------------------------------------- internals


def _as_float32_matrix(embeddings: np.ndarray | torch.Tensor, device: str | torch.device | None) -> torch.Tensor:
    if isinstance(embeddings, torch.Tensor):
        x = embeddings.detach()
        if device is not None:
            x = x.to(device)
    else:
        arr = np.asarray(embeddings)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"embeddings must be a numeric array, got dtype {arr.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(arr))
        x = x.to(device) if device is not None else x
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (rows x dims), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"embeddings are empty (shape {tuple(x.shape)})")
    return x.to(torch.float32).contiguous()


def _row_chunks(n: int, rows: int) -> Iterator[slice]:
    for s in range(0, n, rows):
        yield slice(s, min(n, s + rows))


def _row_sq_norms32(x: torch.Tensor) -> torch.Tensor:
    """Squared row norms (float32, relative error ~2u); a non-finite one flags NaN/inf/overflowing rows."""
    sq = torch.linalg.vector_norm(x, dim=1).square_()  # one fast pass; isfinite(x) would be 100x slower
    bad = ~torch.isfinite(sq)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise ValueError(f"embeddings have NaN, infinite or overflowing (|v| > 1e19) values in rows {rows}")
    return sq


def _tolerance(sq32: torch.Tensor, d: int) -> float:
    """A bound on |float32 squared distance - exact| for any pair: 16 sqrt(d) u (||x||^2 + ||c||^2)."""
    return 16.0 * math.sqrt(d) * _U32 * 2.0 * float(sq32.max()) * (1 + 4 * _U32) + 1e-30


def _exact_sq_dists(x: torch.Tensor, rows: torch.Tensor, centers64: torch.Tensor,
                    centers_sq: torch.Tensor | None = None) -> torch.Tensor:
    """float64 squared distances between rows `rows` of x and float64 `centers64` (float32 -> 64 is exact)."""
    a = x[rows].to(torch.float64)
    if centers_sq is None:
        centers_sq = (centers64 * centers64).sum(1)
    return ((a * a).sum(1)[:, None] - 2.0 * (a @ centers64.T) + centers_sq[None, :]).clamp_min_(0.0)


def _farthest_exact(
    x: torch.Tensor, picked64: torch.Tensor, picked_sq: torch.Tensor, cand: torch.Tensor, exact: torch.Tensor,
    counted: torch.Tensor,
) -> tuple[int, float]:
    """Among candidate rows `cand` (ascending), the farthest from the picks in float64 and its sq distance.

    The first maximum wins: the lowest row index among exact ties, as numpy.argmax.
    """
    m = picked64.shape[0]
    # fold in only the picks a candidate has not been measured against yet: candidates recur pick after pick
    stale = cand[counted[cand] < m]
    if stale.numel():
        lo = int(counted[stale].min())
        new, new_sq = picked64[lo:m], picked_sq[lo:m]
        for sl in _row_chunks(stale.numel(), max(1, _ASSIGN_BLOCK // (new.shape[0] + x.shape[1]))):
            rows = stale[sl]
            d = _exact_sq_dists(x, rows, new, new_sq).min(dim=1).values
            exact[rows] = torch.minimum(exact[rows], d)
        counted[stale] = m
    vals = exact[cand]
    j = int(torch.argmax(vals))
    return int(cand[j]), float(vals[j])


def _assign(x: torch.Tensor, sq32: torch.Tensor, centers: torch.Tensor, tol: float) -> tuple[np.ndarray, np.ndarray]:
    n, k = x.shape[0], centers.numel()
    c = x[centers]
    csq = sq32[centers]
    assignment = torch.empty(n, dtype=torch.int64, device=x.device)
    rows_per_chunk = max(1, _ASSIGN_BLOCK // max(k, 1))
    for sl in _row_chunks(n, rows_per_chunk):
        d = torch.addmm(sq32[sl, None] + csq[None, :], x[sl], c.T, alpha=-2.0).clamp_min_(0.0)
        if k == 1:
            assignment[sl] = 0
            continue
        two = torch.topk(d, 2, dim=1, largest=False)
        assignment[sl] = two.indices[:, 0]
        # near-ties between the two closest centers: settle them in float64, earliest center wins exact ties
        unsure = torch.nonzero(two.values[:, 1] - two.values[:, 0] <= 2.0 * tol).flatten()
        if unsure.numel():
            rows = unsure + sl.start
            assignment[rows] = torch.argmin(_exact_sq_dists(x, rows, x[centers].to(torch.float64)), dim=1)
    cell_sizes = torch.bincount(assignment, minlength=k)
    return assignment.cpu().numpy(), cell_sizes.cpu().numpy()


def _resolve_start(x: torch.Tensor, start: int | str, seed: int | None) -> int:
    n = x.shape[0]
    if isinstance(start, str):
        if start == "random":
            return int(np.random.default_rng(seed).integers(n))
        if start == "mean":
            mean = _chunked_mean64(x)
            d = torch.empty(n, dtype=torch.float64, device=x.device)
            for sl in _row_chunks(n, max(1, _ASSIGN_BLOCK // (2 * x.shape[1]))):
                d[sl] = ((x[sl].to(torch.float64) - mean) ** 2).sum(dim=1)
            return int(torch.argmin(d))
        raise ValueError(f"start must be a row index, 'random' or 'mean', got {start!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < n:
        raise ValueError(f"start must be a row index in [0, {n}), 'random' or 'mean', got {start!r}")
    return int(start)


def _chunked_mean64(x: torch.Tensor) -> torch.Tensor:
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for sl in _row_chunks(x.shape[0], max(1, _ASSIGN_BLOCK // (2 * x.shape[1]))):
        total += x[sl].to(torch.float64).sum(dim=0)
    return total / x.shape[0]


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """Keep float32 matmuls in full float32 on GPUs (no TF32), so the rounding bound holds; restored after."""
    if not torch.cuda.is_available():
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
