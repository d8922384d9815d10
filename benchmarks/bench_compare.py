"""compare() speed: 10 models x 100k samples against the 1 s goal, and against a straightforward baseline.

Two measurements, printed as figures and ratios:

1. Goal: `compare()` over a synthetic canonical table of 10 models x 100k samples each (1M rows, 4 tasks,
   7 categories, 0/1 metric, text columns as real logs have), median of --repeats runs. Goal: <= 1 s.
2. A continuous metric (ANLS-like values in [0, 1]) on --continuous-samples per model: no exact shortcut
   there, the bootstrap draws resamples (once per task, shared by all models, pairs and categories).
3. Side by side with a baseline on a smaller table (--baseline-models x --baseline-samples), interleaved
   so machine noise hits both alike. The baseline is how one would write it without this module: pandas
   merges per model pair, `scipy.stats.binomtest` per pair, `scipy.stats.bootstrap` (vectorised,
   percentile, same n_resamples) per model x task score and per paired difference, and Holm by hand. The
   script also checks that both give the same counts and p-values.

The machine is shared (2 cores); read the ratio, which is measured side by side, rather than absolute times.

Usage:
    python benchmarks/bench_compare.py [--models 10] [--samples 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from itertools import combinations

import numpy as np
import pandas as pd
import polars as pl
import scipy.stats

from lmms_nb.analysis import compare

TASKS = ["vqa", "mcq", "ocr", "chart"]
CATEGORIES = ["count", "color", "shape", "text", "size", "position", "other"]


def continuous_table(n_models: int, n_samples: int, seed: int = 0) -> pl.DataFrame:
    """The same table with an ANLS-like continuous metric instead of exact match."""
    table = synthetic_table(n_models, n_samples, seed)
    noise = np.random.default_rng(seed + 1).random(table.height)
    return table.with_columns((pl.col("exact_match") * 0.6 + pl.Series(noise) * 0.4).round(3).alias("anls")).drop(
        "exact_match"
    )


def synthetic_table(n_models: int, n_samples: int, seed: int = 0) -> pl.DataFrame:
    """n_models x n_samples canonical rows; model skill and doc difficulty make correlated, realistic errors."""
    rng = np.random.default_rng(seed)
    doc_id = np.arange(n_samples)
    task = np.array(TASKS)[doc_id % len(TASKS)]
    category = np.array(CATEGORIES)[(doc_id // len(TASKS)) % len(CATEGORIES)]
    difficulty = rng.uniform(-0.3, 0.3, n_samples)
    frames = []
    for m in range(n_models):
        p = np.clip(0.35 + 0.05 * m - difficulty, 0.01, 0.99)
        right = (rng.random(n_samples) < p).astype(np.float64)
        frames.append(
            pl.DataFrame(
                {
                    "run_id": f"model-{m}-20250101_000000",
                    "model": f"model-{m}",
                    "task": task,
                    "doc_id": doc_id,
                    "filter": "none",
                    "input": "What is shown in the picture? Answer with one word.",
                    "target": "cat",
                    "prediction": np.where(right == 1, "cat", "dog"),
                    "category": category,
                    "image_ref": "dataset:/data/synth#0",
                    "exact_match": right,
                }
            )
        )
    return pl.concat(frames)


def baseline(df: pd.DataFrame, n_resamples: int, seed: int = 0) -> pd.DataFrame:
    """The same statistics written the straightforward way (see the module docstring)."""
    models = sorted(df.model.unique())
    rng = np.random.default_rng(seed)
    for _, g in df.groupby(["model", "task"]):
        scipy.stats.bootstrap(
            (g.exact_match.to_numpy(),), np.mean, n_resamples=n_resamples, method="percentile", vectorized=True, rng=rng
        )
    rows = []
    for task, t in df.groupby("task"):
        for a, b in combinations(models, 2):
            m = t[t.model == a].merge(t[t.model == b], on=["task", "doc_id", "filter"], suffixes=("_a", "_b"))
            ra, rb = m.exact_match_a.to_numpy() == 1, m.exact_match_b.to_numpy() == 1
            n_ab, n_ba = int((ra & ~rb).sum()), int((~ra & rb).sum())
            p = scipy.stats.binomtest(n_ab, n_ab + n_ba, 0.5).pvalue if n_ab + n_ba else 1.0
            scipy.stats.bootstrap(
                (m.exact_match_a.to_numpy(), m.exact_match_b.to_numpy()),
                lambda x, y, axis: x.mean(axis) - y.mean(axis),
                paired=True,
                n_resamples=n_resamples,
                method="percentile",
                vectorized=True,
                rng=rng,
            )
            rows.append((a, b, task, len(m), n_ab, n_ba, p))
    out = pd.DataFrame(
        rows, columns=["model_a", "model_b", "task", "n_both", "a_right_b_wrong", "b_right_a_wrong", "p_value"]
    )
    # Holm per task, by hand
    for _, idx in out.groupby("task").groups.items():
        p = out.loc[idx, "p_value"].to_numpy()
        order = np.argsort(p)
        adj = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
        out.loc[idx[order], "p_holm"] = adj
    return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def timed_cpu(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall seconds and CPU seconds of this process (all threads): on a shared machine the CPU time shows
    the work done, the wall time also the wait for a core."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100_000, help="samples per model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--continuous-samples", type=int, default=10_000, help="per model, continuous metric")
    parser.add_argument("--baseline-models", type=int, default=4)
    parser.add_argument("--baseline-samples", type=int, default=10_000)
    parser.add_argument("--n-resamples", type=int, default=2000)
    args = parser.parse_args()

    print(
        f"polars {pl.__version__}, threads {pl.thread_pool_size()}, cpus {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    # 1. the goal
    df = synthetic_table(args.models, args.samples)
    print(f"\n[goal] compare() on {args.models} models x {args.samples:,} samples = {df.height:,} rows")
    compare(df.head(1000))  # warm-up: lazy imports
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu_times = [], []
    for _ in range(args.repeats):
        seconds, cpu, cmp = timed_cpu(compare, df, n_resamples=args.n_resamples)
        times.append(seconds)
        cpu_times.append(cpu)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    med = statistics.median(times)
    cpu_med = statistics.median(cpu_times)
    print(
        f"  compare(): median {med:.3f} s wall, {cpu_med:.3f} s CPU over {args.repeats} "
        f"(wall runs: {', '.join(f'{t:.3f}' for t in times)})"
    )
    print(f"  goal 1.000 s -> {'MET' if med <= 1.0 else 'MISSED'} (wall / goal {med:.2f}; CPU / goal {cpu_med:.2f})")
    print(
        f"  peak RSS grew by {(rss_after - rss_before) / 1024:.0f} MiB during the runs (table itself: "
        f"{df.estimated_size('mb'):.0f} MB)"
    )
    print(
        f"  pairwise rows {cmp.pairwise.height}, score rows {cmp.scores.height}, "
        f"group score rows {cmp.scores_by_group.height}"
    )
    for name, fn in (
        ("a_right_b_wrong(model-0, model-9)", lambda: cmp.a_right_b_wrong(cmp.models[0], cmp.models[-1])),
        ("all_fail()", cmp.all_fail),
        ("most_separating(20)", lambda: cmp.most_separating(20)),
        ("bar_figure()", cmp.bar_figure),
        ("sample_heatmap()", cmp.sample_heatmap),
        ("agreement_figure()", cmp.agreement_figure),
    ):
        seconds, _ = timed(fn)
        print(f"  {name:38s} {seconds:.3f} s")

    # 2. a continuous metric
    cont = continuous_table(args.models, args.continuous_samples)
    wall, cpu, _ = timed_cpu(compare, cont, n_resamples=args.n_resamples)
    print(
        f"\n[continuous] compare() on {args.models} models x {args.continuous_samples:,} samples (ANLS-like): "
        f"{wall:.3f} s wall, {cpu:.3f} s CPU"
    )

    # 3. side by side with the baseline
    small = synthetic_table(args.baseline_models, args.baseline_samples, seed=1)
    small_pd = small.to_pandas()
    print(
        f"\n[baseline] {args.baseline_models} models x {args.baseline_samples:,} samples, "
        f"{args.n_resamples} resamples, interleaved x{args.repeats}"
    )
    ours_t, base_t = [], []
    for _ in range(args.repeats):
        t, ours = timed(compare, small, n_resamples=args.n_resamples)
        ours_t.append(t)
        t, base = timed(baseline, small_pd, args.n_resamples)
        base_t.append(t)
    ours_med, base_med = statistics.median(ours_t), statistics.median(base_t)
    print(f"  baseline (pandas + scipy per pair) median {base_med:.3f} s")
    print(f"  compare()                          median {ours_med:.3f} s")
    print(f"  speed-up {base_med / ours_med:.1f}x")
    merged = ours.pairwise.to_pandas().merge(base, on=["model_a", "model_b", "task"], suffixes=("", "_base"))
    same = all((merged[c] == merged[f"{c}_base"]).all() for c in ("n_both", "a_right_b_wrong", "b_right_a_wrong"))
    close = np.allclose(merged.p_value, merged.p_value_base, rtol=1e-9) and np.allclose(
        merged.p_holm, merged.p_holm_base, rtol=1e-9
    )
    print(f"  same counts: {same}; same p-values and Holm p-values: {close} ({len(merged)} pair x task rows)")


if __name__ == "__main__":
    main()
