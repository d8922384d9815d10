"""find_slices() speed on 10 models x 100k samples, side by side with compare() on the same table.

The table: one synthetic task of --samples docs per model (prompts built from a 300-word vocabulary, 12
categories, answer letters A-D), 10 models; model i fails at 20% everywhere and at 70% on a planted
group (even i: the prompts holding the i-th word;
odd i: category c{i} with answer B). Embeddings: one 64-d Lite `TaskEmbeddings`
with 16 gaussian blobs (k-means candidates at k = 4, 8, 16, 32 on 100k rows use mini-batch k-means).

Printed: the time of find_slices per model (median over the models) and for all 10, with a baseline
(model 0 vs model 1), compare() on the same 1M-row table as the reference, their ratio, the number of
candidates tried, and whether each model's planted group was the top slice.

The machine is shared (2 cores): read the ratio to compare(), measured side by side.

Usage:
    python benchmarks/bench_slices.py [--models 10] [--samples 100000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import polars as pl

from lmms_nb.analysis import compare, find_slices
from lmms_nb.lite_selection import TaskEmbeddings

VOCABULARY = ["w" + "".join("abcdefghijklmnopqrstuvwxyz"[i // 26**j % 26] for j in range(2)) for i in range(300)]


def synthetic(n_models: int, n_docs: int, seed: int = 0) -> tuple[pl.DataFrame, TaskEmbeddings, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    words = rng.integers(0, len(VOCABULARY), size=(n_docs, 6))
    prompts = [" ".join(VOCABULARY[w] for w in row) + " question?" for row in words]
    category = rng.integers(0, 12, n_docs)
    answer = rng.integers(0, 4, n_docs)
    docs = pl.DataFrame({
        "task": "synth", "doc_id": np.arange(n_docs), "input": prompts,
        "target": np.array(list("ABCD"))[answer], "category": [f"c{c}" for c in category],
    })
    frames, planted = [], []
    for m in range(n_models):
        # even models: prompts with the word w<m>; odd models: category c<m> with answer B (a pair of columns)
        group = (words == m).any(axis=1) if m % 2 == 0 else (category == m % 12) & (answer == 1)
        fail = rng.random(n_docs) < np.where(group, 0.7, 0.2)
        planted.append(group)
        frames.append(docs.with_columns(pl.lit(f"model-{m}").alias("model"),
                                        pl.Series("exact_match", (~fail).astype(np.float64))))
    centers = rng.normal(size=(16, 64)).astype(np.float32)
    vectors = centers[rng.integers(0, 16, n_docs)] + 0.5 * rng.normal(size=(n_docs, 64)).astype(np.float32)
    return pl.concat(frames), TaskEmbeddings(task="synth", doc_ids=np.arange(n_docs), vectors=vectors), planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100_000)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    df, emb, planted = synthetic(args.models, args.samples)
    print(f"table: {df.height:,} rows ({args.models} models x {args.samples:,} samples)")

    start = time.perf_counter()
    compare(df)
    t_compare = time.perf_counter() - start
    print(f"compare() on the same table:          {t_compare:7.2f} s  (reference)")

    times, hits, candidates = [], 0, 0
    for m in range(args.models):
        start = time.perf_counter()
        found = find_slices(df, f"model-{m}", embeddings=emb)
        times.append(time.perf_counter() - start)
        candidates = found.n_candidates
        if found.significant.height:
            members = found.members.filter(pl.col("slice_id") == found.significant["slice_id"][0])["doc_id"].to_numpy()
            truth = np.nonzero(planted[m])[0]
            hit = len(np.intersect1d(members, truth))
            hits += hit / len(members) >= 0.8 and hit / len(truth) >= 0.8
    total = sum(times)
    print(f"find_slices, one model (median):       {statistics.median(times):7.2f} s  "
          f"= {statistics.median(times) / t_compare:.1f} x compare()")
    print(f"find_slices, all {args.models} models:              {total:7.2f} s  = {total / t_compare:.1f} x compare()")
    start = time.perf_counter()
    pair = find_slices(df, "model-0", baseline="model-1", embeddings=emb)
    t_pair = time.perf_counter() - start
    print(f"find_slices, model-0 vs model-1:       {t_pair:7.2f} s  = {t_pair / t_compare:.1f} x compare()")
    print(f"candidates tried per model: {candidates}; planted group recovered as the top slice (precision and "
          f"recall >= 0.8) for {hits} of {args.models} models; model-0 vs model-1: {pair.significant.height} "
          f"significant slices")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
