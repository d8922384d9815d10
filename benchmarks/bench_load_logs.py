"""`load_logs` speed and memory against pandas.read_json(lines=True) and raw polars.read_ndjson, side by side.

Data: lmms-eval v0.7 per-sample logs generated here (default 1M rows over 8 files: 4 models x 2 tasks, in
`<out>/<model>/<date>_samples_<task>.jsonl` with a results JSON per run). Lines are shaped like real v0.7
ones: `filtered_resps` a bare string, `token_counts`, `doc_hash`, `input_media` paths, a ~200-character
prompt, doc_ids in multi-GPU order; one task scores with `exact_match` floats, the other with MME-style dict
metrics `{question_id, category, score}`.

Each method runs in its own fresh subprocess (so its peak RSS is its own), `--repeat` times; the table
shows the median time, the peak RSS (ru_maxrss) and the RSS growth during the load, then the ratios:
- pandas: `pd.concat(pd.read_json(f, lines=True) for f in files)` (no canonical columns, dicts stay objects);
- raw polars: `pl.concat(pl.read_ndjson(f) for f in files, how="diagonal_relaxed")` (inferred schema, no
  canonical columns): the floor for "parse the JSON";
- load_logs: the canonical table (prediction, category and score out of the dict metrics, output tokens...),
  cache off; "load_logs cold" fills an empty Parquet cache, "load_logs warm" reloads from it (a notebook cell
  run again);
- scan_logs aggregate: `scan_logs(folder)` -> mean score per model and task, collected with polars' streaming
  engine: "lazy-jsonl" (cache=False: lazy NDJSON plans), "cold" (an empty cache: each file parsed once into
  Parquet, one file in memory at a time) and "warm" (the cache's Parquet): the memory a lab-scale aggregate needs.
  `--keep DIR` reuses generated data: copies of its model folders make larger sets without generating again.
- `--scale-rows N` (e.g. 10_000_000): the aggregate again over N rows, made of hard links to the generated
  files under more model names (no new data written, each link its own path, so its own cache entry), one run
  each: scan_logs cold and warm, raw polars `scan_ndjson` streaming, and (`--scale-pandas`) pandas
  `read_json(lines=True, chunksize=...)` folding the means chunk by chunk (slow: minutes).
Goals: load_logs >= 5x faster than pandas, >= 0.5x the speed of raw polars, peak RSS <= half of pandas';
warm reload of 1M rows well under a second; scan_logs aggregate of 10M rows within 1 GB peak RSS.

Run:  python benchmarks/bench_load_logs.py                   # 1M rows, polars on 1 thread
      python benchmarks/bench_load_logs.py --rows 200000 --repeat 1   # a quick look
      python benchmarks/bench_load_logs.py --threads 2
      python benchmarks/bench_load_logs.py --repeat 1 --scale-rows 10000000 --scale-pandas   # + 10M aggregate
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ["org__model-a", "org__model-b", "org__model-c", "org__model-d"]
TASKS = ["scienceqa_img", "mme"]
WORDS = ("which of these objects is shown in the picture what color is the small shape near the left edge "
         "how many animals can you count answer with the option letter from the given choices directly").split()


def generate(out: Path, rows: int, seed: int = 0) -> list[Path]:
    """Write `rows` sample lines over len(MODELS) x len(TASKS) files; return the samples files."""
    rng = random.Random(seed)
    per_file = rows // (len(MODELS) * len(TASKS))
    files = []
    for m, model in enumerate(MODELS):
        folder = out / model
        folder.mkdir(parents=True, exist_ok=True)
        date = f"20250101_1200{m:02d}"
        (folder / f"{date}_results.json").write_text(json.dumps({
            "results": {t: {"alias": t} for t in TASKS},
            "configs": {t: {"task": t, "test_split": "test"} for t in TASKS},
            "config": {"model": "hf", "model_args": f"pretrained={model.replace('__', '/')}"},
            "model_name": model.replace("__", "/"), "model_name_sanitized": model,
        }))
        for task in TASKS:
            path = folder / f"{date}_samples_{task}.jsonl"
            # two "GPUs": rank 0 wrote the even doc_ids, rank 1 the odd ones, then the logs were concatenated
            order = list(range(0, per_file, 2)) + list(range(1, per_file, 2))
            with open(path, "w", encoding="utf-8") as fh:
                lines = []
                for doc_id in order:
                    target = "ABCD"[doc_id % 4] if task == "scienceqa_img" else ("Yes" if doc_id % 2 else "No")
                    answer = target if rng.random() < 0.6 + 0.05 * m else ("ABCD"[rng.randrange(4)] if task == "scienceqa_img" else "Yes")
                    rec = {
                        "doc_id": doc_id,
                        "target": target,
                        "filtered_resps": answer,
                        "token_counts": [{"input_tokens": rng.randrange(200, 400), "output_tokens": rng.randrange(1, 4),
                                          "generation_seconds": round(rng.uniform(0.1, 0.5), 4)}],
                        "doc_hash": f"{rng.getrandbits(256):064x}",
                        "input_media": [f"images/{doc_id:07d}.png"],
                    }
                    if task == "scienceqa_img":
                        rec["exact_match"] = float(answer == target)
                    else:
                        rec["mme_perception_score"] = {"question_id": f"images/{doc_id:07d}.png",
                                                       "category": ["color", "count", "OCR"][doc_id % 3],
                                                       "score": float(answer == target)}
                    rec["input"] = " ".join(rng.choice(WORDS) for _ in range(30)) + "?"
                    lines.append(json.dumps(rec))
                    if len(lines) == 10_000:
                        fh.write("\n".join(lines) + "\n")
                        lines = []
                if lines:
                    fh.write("\n".join(lines) + "\n")
            files.append(path)
    return files


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_one(method: str, folder: Path) -> dict:
    """Runs in the child process: import, then time one load and report peak RSS."""
    files = sorted(folder.rglob("*_samples_*.jsonl"))
    if method == "pandas chunked aggregate":
        import pandas as pd

        def load():
            sums: dict = {}
            for f in files:
                model = f.parent.name
                for chunk in pd.read_json(f, lines=True, chunksize=100_000):
                    if "exact_match" in chunk:
                        score = chunk["exact_match"]
                    else:
                        score = chunk["mme_perception_score"].map(lambda d: d["score"])
                    key = (model, f.stem.rsplit("_samples_", 1)[1])
                    total, count = sums.get(key, (0.0, 0))
                    sums[key] = (total + float(score.sum()), count + len(chunk))
            return pd.DataFrame([(m, t, s / n, n) for (m, t), (s, n) in sums.items()],
                                columns=["model", "task", "score", "len"])
    elif method == "polars scan_ndjson aggregate":
        import polars as pl

        def load():
            lazies = []
            for f in files:
                lazy = pl.scan_ndjson(f)
                names = lazy.collect_schema().names()
                score = pl.col("exact_match") if "exact_match" in names else pl.col("mme_perception_score").struct.field("score")
                lazies.append(lazy.select(model=pl.lit(f.parent.name), task=pl.lit(f.stem.rsplit("_samples_", 1)[1]),
                                          score=score))
            return pl.concat(lazies).group_by("model", "task").agg(pl.col("score").mean(), pl.len()).collect(engine="streaming")
    elif method == "pandas":
        import pandas as pd

        def load():
            return pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    elif method == "polars":
        import polars as pl

        def load():
            return pl.concat([pl.read_ndjson(f) for f in files], how="diagonal_relaxed")
    elif method.startswith("scan_logs"):
        import polars as pl

        from lmms_nb.logs.readers import scan_logs

        def load():
            lazy = scan_logs(folder, cache=method != "scan_logs lazy-jsonl")
            score = pl.coalesce(pl.col("exact_match"), pl.col("mme_perception_score"))
            return lazy.group_by("model", "task").agg(score.mean(), pl.len()).collect(engine="streaming")
    else:
        from lmms_nb.logs.readers import load_logs

        def load():
            return load_logs(folder, cache=method != "load_logs")
    base = _rss_now_mb()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    frame = load()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = after.ru_maxrss / 1024
    rows = int(frame["len"].sum()) if "aggregate" in method or method.startswith("scan_logs") else len(frame)
    return {"method": method, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "growth_mb": peak - base,
            "rows": rows}


def measure(method: str, folder: Path, threads: int, cache: Path) -> dict:
    if method in ("load_logs cold", "scan_logs cold"):
        for entry in cache.glob("logs/*.parquet"):
            entry.unlink()
    if method in ("load_logs warm", "scan_logs warm") and not any(cache.glob("logs/*.parquet")):
        measure("load_logs cold", folder, threads, cache)  # fill the cache first
    env = dict(os.environ, POLARS_MAX_THREADS=str(threads), OMP_NUM_THREADS="1", LMMS_NB_CACHE=str(cache))
    out = subprocess.run([sys.executable, __file__, "--child", method, str(folder)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="POLARS_MAX_THREADS for load_logs and raw polars")
    ap.add_argument("--keep", help="generate into (or reuse) this folder instead of a temporary one")
    ap.add_argument("--scale-rows", type=int, default=0, help="also aggregate this many rows (hard links)")
    ap.add_argument("--scale-pandas", action="store_true", help="include pandas in the --scale-rows runs")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--methods", default="pandas,polars,load_logs,load_logs cold,load_logs warm,scan_logs lazy-jsonl,"
                    "scan_logs cold,scan_logs warm", help="comma-separated subset of the methods")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], Path(args.child[1]))))
        return

    with tempfile.TemporaryDirectory(prefix="bench_load_logs_") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        t0 = time.perf_counter()
        files = sorted(folder.rglob("*_samples_*.jsonl")) if args.keep else []
        if not files:
            files = generate(folder, args.rows)
        size = sum(f.stat().st_size for f in files) / 2**20
        print(f"data: {len(files)} files, {size:.0f} MiB, {args.rows:,} rows (generated in {time.perf_counter() - t0:.1f} s); "
              f"polars threads: {args.threads}; median of {args.repeat}")
        results = {}
        cache = Path(tempfile.mkdtemp(prefix="bench_cache_"))
        for method in args.methods.split(","):
            runs = [measure(method, folder, args.threads, cache) for _ in range(args.repeat)]
            results[method] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                "growth_mb": statistics.median(r["growth_mb"] for r in runs),
                "rows": runs[0]["rows"],
            }
        shutil.rmtree(cache, ignore_errors=True)  # a 1M-row cache is ~200 MiB of Parquet
        print(f"load average before the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(wall times on a shared machine vary; CPU times much less)")
        print(f"{'method':<28}{'rows':>10}{'wall s':>9}{'CPU s':>9}{'rows/CPU s':>12}{'peak RSS MiB':>14}{'RSS growth MiB':>16}")
        labels = {"pandas": "pandas.read_json(lines)", "polars": "polars.read_ndjson (raw)", "load_logs": "lmms_nb.load_logs"}
        for method, r in results.items():
            print(f"{labels.get(method, method):<28}{r['rows']:>10,}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}"
                  f"{r['rows'] / r['cpu_seconds']:>12,.0f}{r['peak_rss_mb']:>14,.0f}{r['growth_mb']:>16,.0f}")
        if "load_logs warm" in results and "load_logs cold" in results:
            warm, cold = results["load_logs warm"], results["load_logs cold"]
            print(f"{'warm reload vs cold load:':<31}{cold['seconds'] / warm['seconds']:6.2f}x faster "
                  f"({warm['seconds']:.2f} s for {warm['rows']:,} rows; goal well under 1 s per 1M rows)")
        for name in ("scan_logs lazy-jsonl", "scan_logs cold", "scan_logs warm"):
            if name in results:
                r = results[name]
                print(f"{name + ' peak RSS:':<31}{r['peak_rss_mb']:6.0f} MiB for {r['rows']:,} rows (goal <= 1024 MiB at 10M)")
        if {"load_logs", "pandas", "polars"} <= set(results):
            compare_1m(results)
        if args.scale_rows:
            scale(folder, files, args)


def compare_1m(results: dict) -> None:
    ours, pandas, raw = results["load_logs"], results["pandas"], results["polars"]

    def line(label: str, wall: float, cpu: float, goal: str, ok) -> None:
        verdict = "ok" if ok(wall) and ok(cpu) else ("ok on CPU time" if ok(cpu) else "MISSED")
        print(f"{label:<31}{wall:6.2f}x wall  {cpu:6.2f}x CPU   (goal {goal})  {verdict}")

    line("load_logs speed vs pandas:", pandas["seconds"] / ours["seconds"], pandas["cpu_seconds"] / ours["cpu_seconds"],
         ">= 5x", lambda x: x >= 5)
    line("load_logs speed vs raw polars:", raw["seconds"] / ours["seconds"], raw["cpu_seconds"] / ours["cpu_seconds"],
         ">= 0.5x", lambda x: x >= 0.5)
    rss = ours["peak_rss_mb"] / pandas["peak_rss_mb"]
    print(f"{'load_logs peak RSS / pandas:':<31}{rss:6.2f}   (goal <= 0.5)  {'ok' if rss <= 0.5 else 'MISSED'}")
    print(f"{'RSS growth / pandas:':<31}{ours['growth_mb'] / pandas['growth_mb']:6.2f}")


def link_copies(folder: Path, files: list[Path], rows: int, out: Path) -> int:
    """`out` holding hard links to `files` under enough model names to make about `rows` rows."""
    per_copy = sum(1 for f in files for _ in open(f, "rb"))
    copies = max(1, round(rows / per_copy))
    for c in range(copies):
        for f in folder.rglob("*"):
            if f.is_file():
                target = out / f"copy{c:03d}_{f.parent.name}" / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(f, target)
    return copies * per_copy


def scale(folder: Path, files: list[Path], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=folder.parent) as tmp:
        big = Path(tmp)
        rows = link_copies(folder, files, args.scale_rows, big)
        cache = Path(tempfile.mkdtemp(prefix="bench_cache_scale_"))
        print(f"\naggregate of {rows:,} rows ({len(list(big.rglob('*_samples_*.jsonl')))} files, hard links), one run each:")
        methods = ["scan_logs cold", "scan_logs warm", "polars scan_ndjson aggregate"]
        methods += ["pandas chunked aggregate"] if args.scale_pandas else []
        print(f"{'method':<30}{'rows':>12}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}")
        for method in methods:
            r = measure(method, big, args.threads, cache)
            print(f"{method:<30}{r['rows']:>12,}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}{r['peak_rss_mb']:>14,.0f}",
                  flush=True)
        shutil.rmtree(cache, ignore_errors=True)
        print("goal: scan_logs peak RSS <= 1024 MiB")


if __name__ == "__main__":
    main()
