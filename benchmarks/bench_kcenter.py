"""k-center greedy speed: `kcenter_greedy` against the naive published method, side by side in one run.

The naive reference is the published method (LMMs-Eval-Lite's `kCenterGreedy`, from Google's
active-learning code): for each pick, sklearn `pairwise_distances` from every row to the new center,
elementwise min into the running distances, `np.argmax` for the next pick. By default it gets the float32
embeddings, as LMMs-Eval-Lite fed it; sklearn then computes each distance in float64 and rounds it to
float32, so two rows whose distances round to the same float32 tie there (lowest index wins) while
`kcenter_greedy` compares them exactly. `--reference float64` runs the same code on float64 embeddings (the
exact farthest-first picks); `both` runs the two.

Data (`--data lite`, the default): N rows shaped like Lite embeddings, a 768-d "CLIP" part and a 1024-d text
part, each L2-normalised, concatenated with weight sqrt(1/2) each (d = 1792), drawn like a mix of benchmarks
of 2,000 items each: per part, a shared direction (real embeddings are anisotropic), a benchmark direction, one
of 60 topics per benchmark, and each item's own variation in a 32-d subspace of its benchmark with a
heavy-tailed (log-normal) size, so a few items are outliers as in real data. The weights were chosen from a
small grid so that one benchmark (`--n 2000`) looks like all-MiniLM-L6-v2 embeddings of the 2,017 real
ScienceQA questions in ../shared/realworld (`--embeddings` on them): mean cosine of random pairs 0.29 here vs
0.26 there, median nearest-neighbour cosine 0.90 vs 0.96, k-center radius 1.21 vs 1.26 at k = 1% of N and
0.94 vs 0.91 at k = 10%. Every run prints these figures for its data. `--data isotropic` is the earlier data:
300 centres with isotropic noise as large as the centres (nearest-neighbour cosine about 0.5, random pairs 0).

Figures, each measured side by side and repeated (medians; the machine is shared, so absolute times drift):
- bandwidth: the one full pass of the CPU method (the first pick: a GEMV over every row, then the O(N)
  folding) against one numpy float32 matrix-vector product of the same matrix, interleaved; bytes read per
  second of each (later picks read only the rows whose bounds need it; the final cells are one BLAS-3 pass);
- speed: rounds of [kcenter_greedy, the naive method on the first k/5 picks (--naive-picks)]; the naive
  method costs the same per pick whatever the picks, so its full time is k/(k/5) times that; ratio per
  round, median; its picks are checked against the same prefix of ours (greedy picks are a prefix of the
  longer run); unless `--reference none`, it also runs all k picks once, for the full identical-picks check;
- lazy bounds: row-pick distances computed while picking, out of k N (CPU only).

Run:  python benchmarks/bench_kcenter.py                      # N=50000 d=1792 k=500, 1 thread
      python benchmarks/bench_kcenter.py --n 20000 --k 200
      python benchmarks/bench_kcenter.py --n 20000 --k 200 --data isotropic
      python benchmarks/bench_kcenter.py --embeddings emb.npy --k 200   # real embeddings (N x d .npy)
      python benchmarks/bench_kcenter.py --n 50000 --k 500 --naive-picks 50 --reference none   # shorter
      python benchmarks/bench_kcenter.py --threads 2 --device cuda
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
from sklearn.metrics import pairwise_distances
from threadpoolctl import threadpool_limits

from lmms_nb.lite_selection import kcenter_greedy
from lmms_nb.lite_selection._kcenter import _row_sq_norms32, _tolerance
from lmms_nb.lite_selection._kcenter_cpu import LazyPasses

#: per part: weights of the shared, benchmark and topic directions and of the item's own variation
_WEIGHTS = {"shared": 0.15, "benchmark": 0.15, "topic": 0.5, "item": 0.15}
_BENCH_ITEMS, _TOPICS, _ITEM_DIMS, _TAIL = 2000, 60, 32, 0.8


def _lite_part(rng: np.random.Generator, bench: np.ndarray, topic: np.ndarray, dim: int) -> np.ndarray:
    w = {key: math.sqrt(v) for key, v in _WEIGHTS.items()}

    def unit(rows: int) -> np.ndarray:
        u = rng.normal(size=(rows, dim)).astype(np.float32)
        return u / np.linalg.norm(u, axis=1, keepdims=True)

    v = w["shared"] * unit(1) + w["benchmark"] * unit(bench.max() + 1)[bench] + w["topic"] * unit(topic.max() + 1)[topic]
    spectrum = 1.0 / np.sqrt(np.arange(1, _ITEM_DIMS + 1))
    spectrum /= np.linalg.norm(spectrum)
    size = np.exp(_TAIL * rng.normal(size=(len(bench), 1))).astype(np.float32)  # a few outliers
    for b in range(bench.max() + 1):
        rows = np.flatnonzero(bench == b)
        basis = np.linalg.qr(rng.normal(size=(dim, _ITEM_DIMS)))[0].T.astype(np.float32)
        coords = (rng.normal(size=(len(rows), _ITEM_DIMS)) * spectrum).astype(np.float32)
        v[rows] += w["item"] * size[rows] * (coords @ basis)
    v += 0.02 / math.sqrt(dim) * rng.normal(size=v.shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_embeddings(n: int, d_img: int, d_txt: int, data: str = "lite", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d_img + d_txt), dtype=np.float32)
    if data == "lite":
        bench = np.arange(n) * max(1, round(n / _BENCH_ITEMS)) // n  # ~2,000 items per benchmark
        topic = bench * _TOPICS + rng.integers(_TOPICS, size=n)
        out[:, :d_img] = _lite_part(rng, bench, topic, d_img) * np.sqrt(0.5)
        out[:, d_img:] = _lite_part(rng, bench, topic, d_txt) * np.sqrt(0.5)
        return out[rng.permutation(n)]  # benchmarks interleaved, as after a concatenation and shuffle
    n_clusters = 300  # --data isotropic: the earlier data
    centers_img = rng.normal(size=(n_clusters, d_img)).astype(np.float32)
    centers_txt = rng.normal(size=(n_clusters, d_txt)).astype(np.float32)
    for s in range(0, n, 5000):  # in blocks, so no float64 N x d temporary exists
        e = min(n, s + 5000)
        lab = rng.integers(n_clusters, size=e - s)
        spread = rng.uniform(0.5, 2.0, size=(e - s, 1)).astype(np.float32)
        img = centers_img[lab] + spread * rng.normal(size=(e - s, d_img)).astype(np.float32)
        txt = centers_txt[lab] + spread * rng.normal(size=(e - s, d_txt)).astype(np.float32)
        img /= np.linalg.norm(img, axis=1, keepdims=True)
        txt /= np.linalg.norm(txt, axis=1, keepdims=True)
        out[s:e, :d_img] = img * np.sqrt(0.5)
        out[s:e, d_img:] = txt * np.sqrt(0.5)
    return out


def clustering_figures(x: np.ndarray, sample: int = 300) -> str:
    """Mean cosine of random pairs and median cosine to the nearest other row (over all rows), for sampled rows."""
    rows = np.sort(np.random.default_rng(1).choice(len(x), min(sample, len(x)), replace=False))
    s = x[rows] / np.linalg.norm(x[rows], axis=1, keepdims=True)
    nearest = np.full(len(rows), -np.inf, dtype=np.float32)
    total = 0.0
    for start in range(0, len(x), 8192):
        block = x[start : start + 8192]
        cos = s @ (block / np.linalg.norm(block, axis=1, keepdims=True)).T
        total += float(cos.sum(dtype=np.float64))
        inside = (rows >= start) & (rows < start + len(block))
        cos[np.flatnonzero(inside), rows[inside] - start] = -np.inf  # not itself
        np.maximum(nearest, cos.max(axis=1), out=nearest)
    mean = (total - len(rows)) / (len(rows) * (len(x) - 1))
    return (f"cosine of random pairs: mean {mean:.3f}; cosine to the nearest other row: median "
            f"{np.median(nearest):.3f} (for {len(rows)} sampled rows, against all {len(x)})")


def naive_kcenter(x64: np.ndarray, k: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The published method: pairwise_distances to each new center, min, argmax."""
    picks = [start]
    min_dist = pairwise_distances(x64, x64[start : start + 1]).ravel()
    radii = []
    for _ in range(k - 1):
        radii.append(min_dist.max())
        nxt = int(np.argmax(min_dist))
        picks.append(nxt)
        min_dist = np.minimum(min_dist, pairwise_distances(x64, x64[nxt : nxt + 1]).ravel())
    radii.append(min_dist.max())
    return np.asarray(picks), np.asarray(radii)


def full_pass_vs_gemv(x: np.ndarray, repeat: int) -> tuple[float, float]:
    """Median seconds of one numpy float32 GEMV and of the first pick's full pass (every row), interleaved."""
    sq = _row_sq_norms32(torch.from_numpy(x)).numpy()
    tol = _tolerance(torch.from_numpy(sq), x.shape[1])
    c = x[123].copy()
    gemv, ours = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        x @ c
        gemv.append(time.perf_counter() - t0)
        passes = LazyPasses(x, sq, 1, tol)
        t0 = time.perf_counter()
        passes.add(123)  # the first pick reads every row
        ours.append(time.perf_counter() - t0)
    return statistics.median(gemv), statistics.median(ours)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--d-img", type=int, default=768)
    ap.add_argument("--d-txt", type=int, default=1024)
    ap.add_argument("--data", choices=["lite", "isotropic"], default="lite", help="see the module docstring")
    ap.add_argument("--embeddings", help="an N x d .npy file of real embeddings instead (--n, --data ignored)")
    ap.add_argument("--rounds", type=int, default=3, help="side-by-side rounds for the speed ratio")
    ap.add_argument("--naive-picks", type=int, help="picks of the naive method per round (default k/5)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads for both methods")
    ap.add_argument("--device", default="cpu", help="device for kcenter_greedy (the reference is numpy)")
    ap.add_argument("--reference", choices=["published", "float64", "both", "none"], default="published",
                    help="naive reference on float32 (published) or float64 embeddings, both, or none")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.embeddings:
        x = np.ascontiguousarray(np.load(args.embeddings), dtype=np.float32)
    else:
        x = make_embeddings(args.n, args.d_img, args.d_txt, args.data)
    n, d = x.shape
    k, nbytes = args.k, x.nbytes
    print(f"N={n} d={d} k={k} threads={args.threads} device={args.device} data="
          f"{args.embeddings or args.data} embeddings={nbytes / 1e6:.0f} MB float32")
    print(f"data: {clustering_figures(x)}")

    with threadpool_limits(limits=args.threads):
        t_gemv, t_pass = full_pass_vs_gemv(x, repeat=7)
        print(f"full pass vs numpy float32 GEMV (median of 7, interleaved): GEMV {t_gemv * 1e3:.2f} ms = "
              f"{nbytes / t_gemv / 1e9:.2f} GB/s; kcenter full pass {t_pass * 1e3:.2f} ms = "
              f"{nbytes / t_pass / 1e9:.2f} GB/s; ratio {t_gemv / t_pass:.2f}x the GEMV bandwidth (goal >= 0.9x)")

        xt = torch.from_numpy(x)
        if args.device != "cpu":
            xt = xt.to(args.device)
            kcenter_greedy(xt[:2000], 5)  # warm up kernels
            torch.cuda.synchronize()

        def ours() -> tuple[float, object]:
            t0 = time.perf_counter()
            res = kcenter_greedy(xt, k, start=0)
            if args.device != "cpu":
                torch.cuda.synchronize()
            return time.perf_counter() - t0, res

        k_part = min(k, args.naive_picks or max(1, k // 5))
        ratios, ours_times, prefix_same = [], [], []
        for _ in range(args.rounds):
            t_ours, res = ours()
            t0 = time.perf_counter()
            part_picks, _ = naive_kcenter(x, k_part, start=0)
            t_naive = (time.perf_counter() - t0) * k / k_part
            ours_times.append(t_ours)
            ratios.append(t_naive / t_ours)
            prefix_same.append(bool(np.array_equal(res.picks[:k_part], part_picks)))
            print(f"  round: kcenter_greedy {t_ours:.2f} s, naive {t_naive:.2f} s (from {k_part} picks x "
                  f"{k / k_part:g}), ratio {t_naive / t_ours:.1f}x; first {k_part} picks identical to the naive "
                  f"method's (a greedy prefix): {prefix_same[-1]}")
        t_ours = statistics.median(ours_times)
        speedup = statistics.median(ratios)
        share = res.rows_measured / (k * n)
        print(f"kcenter_greedy: median {t_ours:.2f} s = {t_ours / k * 1e3:.2f} ms/pick; speedup over the naive "
              f"method: median {speedup:.1f}x over {args.rounds} rounds")
        goal = 20 if (n >= 50_000 and k >= 500) else 10
        print(f"goal: >= {goal}x the naive method -> {'meets' if speedup >= goal else 'misses'} (median {speedup:.1f}x); "
              f"picks identical on the first {k_part}: {all(prefix_same)}" + ("" if args.reference == "none" else
                                                                           "; all k picks: checked below"))
        print(f"lazy bounds (CPU): {res.rows_measured} of {k * n} row-pick distances computed while picking "
              f"({share:.1%}), in matrix-matrix blocks; then one rows x picks pass for the cells")
        print(f"per pick: kcenter_greedy {t_ours / k * 1e3:.2f} ms vs one float32 GEMV {t_gemv * 1e3:.2f} ms "
              f"(the eager method's floor): {t_gemv * k / t_ours:.2f}x the one-read-per-pick floor")
        print(f"radius after {k} picks: {res.radii[-1]:.3f}; cell sizes: min {res.cell_sizes.min()}, median "
              f"{int(np.median(res.cell_sizes))}, max {res.cell_sizes.max()}, sum {res.cell_sizes.sum()}")
        if args.device == "cpu":  # a method reading N x d float32 values per pick at the GEMV rate
            print(f"(reading every row once per pick at the GEMV rate would be {speedup * t_ours / (k * t_gemv):.1f}x)")
        kinds = {"published": ["float32"], "float64": ["float64"], "both": ["float32", "float64"], "none": []}
        for kind in kinds[args.reference]:
            xr = x if kind == "float32" else x.astype(np.float64)
            t0 = time.perf_counter()
            ref_picks, ref_radii = naive_kcenter(xr, k, start=0)
            t_ref = time.perf_counter() - t0
            del xr
            same = bool(np.array_equal(res.picks, ref_picks))
            label = "published method, float32" if kind == "float32" else "same code, float64 input"
            print(f"naive reference ({label}), all {k} picks once: {t_ref:.2f} s = {t_ref / k * 1e3:.2f} ms/pick; "
                  f"direct ratio to the median kcenter_greedy run {t_ref / t_ours:.1f}x; identical picks: {same}")
            print(f"  goal: >= {goal}x the naive method with identical picks -> "
                  f"{'meets' if same and speedup >= goal else 'misses'} (median {speedup:.1f}x)")
            if not same:
                j = int(np.nonzero(res.picks != ref_picks)[0][0])
                a, b = res.picks[j], ref_picks[j]
                prev = res.picks[:j]
                da = np.sqrt(((x[prev].astype(np.float64) - x[a]) ** 2).sum(1)).min()
                db = np.sqrt(((x[prev].astype(np.float64) - x[b]) ** 2).sum(1)).min()
                print(f"  first difference at pick {j}: ours row {a} (exact distance {da!r}), reference row {b} "
                      f"({db!r}); as float32: {np.float32(da)!r} vs {np.float32(db)!r}")
            print(f"  max |radius - reference radius|: {np.abs(res.radii - ref_radii).max():.3g}")


if __name__ == "__main__":
    main()
