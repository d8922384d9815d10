"""Do anchor points and residual strata combine into a better Lite estimate at the same budget? (Printed per seed.)

On held-out models (5 folds over the zoo's 29 models, as `bench_lite_fidelity.py --folds 5` holds them out;
leave-one-out, that script's default, over the 27 scikit-learn digits classifiers), at a 10% budget k, each fold
fitted on its training models only:

- ``anchor_corrected`` and ``residual_cv`` alone (k docs each; `_nested.heldout_estimates`);
- ``split``: anchor_corrected on ka docs and residual_cv on k - ka docs, estimates blended
  ``w * anchor + (1 - w) * residual`` for a grid of w: stacking at a total budget of k (the best w of the grid is
  an oracle, so this row flatters the blend). The residual draws are drawn independently of the anchors and may
  repeat some, so the two parts can read fewer than k distinct docs between them;
- ``hybrid``: the ka anchor docs as a take-all stratum plus k - ka docs drawn from residual strata of the other
  docs, one subset for both: the neighbour control variate over every doc with its error measured exactly on
  the anchors and by design weight on the draws, and the linear correction on all k docs, blended by w.

Per fold and method the MAE over the held-out models, averaged over --draws subsets. Run from the repository root:
``PYTHONPATH=. python benchmarks/bench_lite_hybrids.py --population zoo --logs outputs/demo``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lmms_nb.lite_selection._corrections import linear_correction, neighbour_control_variate
from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
from lmms_nb.lite_selection._nested import heldout_estimates
from lmms_nb.lite_selection._residual_design import residual_design

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
SHARES = (0.3, 0.5, 0.7)


def population(name: str, logs: str, seed: int) -> tuple[np.ndarray, np.ndarray, int | str]:
    """Scores (models x docs), categories and the outer folds of `bench_lite_fidelity.py`'s run."""
    import polars as pl

    from bench_lite_fidelity import ZOO_METRICS, build_samples
    from lmms_nb.lite_selection import score_matrix
    from lmms_nb.logs.schema import conform

    if name == "digits":
        sm = score_matrix(build_samples(900, seed)[0])
        return sm.scores, sm.categories, "loo"
    from lmms_nb import load_logs

    samples, parts = load_logs(logs), []
    for offset, (task, metric) in enumerate(ZOO_METRICS.items()):
        parts.append(samples.filter(pl.col("task") == task).select(
            "model", pl.lit("synthbench").alias("task"), pl.col("doc_id") + 100_000 * offset,
            pl.lit(task.removeprefix("synthbench_")).alias("category"), pl.col(metric).alias("score")))
    sm = score_matrix(conform(pl.concat(parts)))
    return sm.scores, sm.categories, 5


def split_and_hybrid(y: np.ndarray, groups: np.ndarray, folds, seed: int, k: int, ka: int, draws: int
                     ) -> dict[str, np.ndarray]:
    """Draws x models estimates of each part (anchor / residual on split budgets; the hybrid's two estimates)."""
    n_docs = y.shape[1]
    out = {m: np.zeros((draws, len(y))) for m in ("split_anchor", "split_residual", "hybrid_cv", "hybrid_linear")}
    rng = np.random.default_rng([seed, k, ka])
    for test in model_folds(len(y), folds, seed=seed):
        fold = FoldEstimators(np.delete(y, test, axis=0), seed=seed)
        out["split_anchor"][:, test] = heldout_estimates(fold, "anchor_corrected", ka, y[test], n_draws=draws)
        out["split_residual"][:, test] = heldout_estimates(fold, "residual_cv", k - ka, y[test], groups=groups,
                                                           rng=rng, n_draws=draws)
        anchors, anchor_w = fold.selected_anchors(ka)  # the set split_anchor's anchor_corrected used
        rest = np.setdiff1d(np.arange(n_docs), anchors)
        design = residual_design(fold.train[:, rest], k - ka, groups[rest])
        prior = fold.group_prior(k, groups)
        for d in range(draws):
            drawn = design.draw(rng)
            w = np.zeros(n_docs)
            w[rest[drawn]] = design.doc_weights(drawn)[drawn] * len(rest) / n_docs
            w[anchors] = 1.0 / n_docs  # a take-all stratum: each anchor stands for itself
            cols = np.nonzero(w)[0]
            base = np.zeros(n_docs)  # the linear correction's subset mean: anchors by cluster share, draws by design
            base[anchors] = anchor_w * ka / k
            base[rest[drawn]] = w[rest[drawn]] / w[rest[drawn]].sum() * (k - ka) / k
            out["hybrid_linear"][d, test] = linear_correction(fold.train, cols, base[cols], y[np.ix_(test, cols)])
            out["hybrid_cv"][d, test] = neighbour_control_variate(fold.train, w > 0, y[test], w, design_weights=True,
                                                                  groups=groups, group_prior=prior)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", choices=["digits", "zoo"], default="zoo")
    ap.add_argument("--logs", default="outputs/demo", help="the zoo's logs (from `lmms-nb demo`)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    y, groups, folds = population(args.population, args.logs, args.seed)
    k = round(0.1 * y.shape[1])
    full = y.mean(axis=1)

    def mae(est: np.ndarray) -> float:
        return float(100 * np.abs(est - full).mean())

    rng = np.random.default_rng([args.seed, k])
    alone = {m: np.zeros((args.draws, len(y))) for m in ("anchor_corrected", "residual_cv")}
    for test in model_folds(len(y), folds, seed=args.seed):
        fold = FoldEstimators(np.delete(y, test, axis=0), seed=args.seed)
        for m in alone:
            alone[m][:, test] = heldout_estimates(fold, m, k, y[test], groups=groups, rng=rng, n_draws=args.draws)
    print(f"{args.population}, seed {args.seed}: {len(y)} models, {y.shape[1]} docs, k={k}, {args.draws} draws; "
          f"MAE in points on held-out models")
    print(f"  alone (k docs each): anchor_corrected {mae(alone['anchor_corrected']):.2f}, "
          f"residual_cv {mae(alone['residual_cv']):.2f}")
    for share in SHARES:
        ka = int(round(share * k))
        parts = split_and_hybrid(y, groups, folds, args.seed, k, ka, args.draws)
        for kind, (a, b) in (("split", ("split_anchor", "split_residual")), ("hybrid", ("hybrid_linear", "hybrid_cv"))):
            grid = ", ".join(f"w={w:g} {mae(w * parts[a] + (1 - w) * parts[b]):.2f}" for w in WEIGHTS)
            print(f"  {kind:6s} {ka:3d} anchors + {k - ka:3d} residual-strata docs (w on the anchor side): {grid}")


if __name__ == "__main__":
    main()
