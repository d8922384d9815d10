"""The public difficulty subset on held-out models: `build_difficulty_subset` + `DifficultySubset.estimate`.

Population: the scikit-learn digits classifiers of `bench_lite_fidelity.py` (per-sample correctness on --full
held-out digits, category = the true digit). For each model in turn, the subset is built from the OTHER
models' sample table only (as a user builds it from earlier models' logs) at --budget, and the held-out
model is estimated from its answers on the subset alone; this is repeated for --seeds draws. It prints the
mean absolute error in points of that estimate, of the same subset's plain mean, and of uniform random
subsets of the same size (plain mean, --seeds draws per model), plus their ratios to random.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_difficulty_subset.py [--budget 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch

from benchmarks.bench_lite_fidelity import build_samples
from lmms_nb.lite_selection import build_difficulty_subset, score_matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", type=int, default=900, help="docs in the held-out full set")
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=3, help="subset draws per held-out model")
    ap.add_argument("--models", type=int, default=0, help="held-out models (0: every model)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    samples = build_samples(args.full, 0)[0]
    sm = score_matrix(samples)
    held = range(len(sm.models)) if args.models <= 0 else np.linspace(0, len(sm.models) - 1, args.models).astype(int)
    rng = np.random.default_rng(0)
    err_est, err_plain, err_random = [], [], []
    start = time.perf_counter()
    for i in held:
        truth = sm.scores[i].mean()
        others = samples.filter(pl.col("model") != sm.models[i])
        for seed in range(args.seeds):
            sub = build_difficulty_subset(others, args.budget, seed=seed)
            answers = sm.scores[i, np.searchsorted(sm.doc_ids, sub.doc_ids)]
            err_est.append(abs(sub.estimate(answers) - truth))
            err_plain.append(abs(answers.mean() - truth))
            err_random.append(abs(sm.scores[i, rng.choice(len(sm.doc_ids), len(sub), replace=False)].mean() - truth))
    seconds = time.perf_counter() - start
    k = len(sub)
    rand = 100 * np.mean(err_random)
    print(f"digits: {len(sm.models)} models, {len(sm.doc_ids)} docs, budget {k} docs, {len(held)} held-out models x "
          f"{args.seeds} draws ({seconds / len(err_est):.2f} s per build + estimate)")
    print(f"{'estimator':<40} {'MAE (points)':>12} {'vs random':>10}")
    for name, errs in (("difficulty subset, difficulty_cv estimate", err_est),
                       ("difficulty subset, plain mean", err_plain), ("random subset, plain mean", err_random)):
        mae = 100 * np.mean(errs)
        print(f"{name:<40} {mae:12.2f} {mae / rand:10.2f}")


if __name__ == "__main__":
    main()
