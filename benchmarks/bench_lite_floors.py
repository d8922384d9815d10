"""How low can a Lite estimate's error go? MAE floors of difference estimators at a budget, per population.

`difficulty_cv` (the best estimator `bench_lite_fidelity.py` measures) is a difference estimator: a new model's
answer on every doc is predicted from earlier models' answers, and its prediction errors on a random
(stratified) subset correct the predictions' mean. Its error is the subset's weighted mean of those
prediction errors, so its expected MAE is about ``sqrt(2 / pi) * sd`` with ``sd**2 = sum_h share_h**2 *
var_h(residual) * (1 - a_h / n_h) / a_h`` (random subset: one stratum). This script prints that figure,
averaged over the models, for predictions far better informed than any held-out estimator's, each under a
uniform random subset, under `difficulty_cv`'s strata and allocation (`FoldEstimators.cv_design`, fitted on
the other models) and under `residual_cv`'s (`FoldEstimators.residual_design`, category x expected residual):

- ``none``: no prediction (the plain subset mean);
- ``linear, in-sample``: each model's answers regressed by least squares on the other models' answers to the
  same doc plus its category, fitted on every doc of the model itself (the bench's "oracle" control variate);
- ``linear, cross-fitted``: the same regression (ridge) fitted on 4/5 of the model's own docs and predicting
  the other 1/5 (5 folds over docs);
- ``linear per category, cross-fitted``: with one coefficient per (other model, category);
- ``gradient boosting, cross-fitted``: scikit-learn's HistGradientBoostingRegressor on the same features
  (non-linear).

The cross-fitted predictors learn from some 800 of the model's own answers, where a held-out estimator at a
10% budget sees ~100: a floor above the goal's line says that no difference estimator built on earlier models'
answers (and the docs' categories) can meet it, however it predicts; one below says how much better its
predictions would have to be.

Populations: the scikit-learn digits classifiers of `bench_lite_fidelity.py` (category = the true digit) and,
with --logs, the synthbench zoo pooled over its five tasks (category = family) from `lmms-nb demo`'s logs.

Run from the repository root:
    PYTHONPATH=. python benchmarks/bench_lite_floors.py [--population digits|zoo|both] [--logs outputs/demo]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict
from threadpoolctl import threadpool_limits

from benchmarks.bench_lite_fidelity import ZOO_METRICS, build_samples
from lmms_nb.lite_selection import score_matrix
from lmms_nb.lite_selection._difficulty_design import DifficultyDesign
from lmms_nb.lite_selection._heldout import FoldEstimators
from lmms_nb.logs.schema import conform

PREDICTORS = ("none", "linear, in-sample", "linear, cross-fitted", "linear per category, cross-fitted",
              "gradient boosting, cross-fitted")


def zoo_samples(logs: str) -> pl.DataFrame:
    """The zoo pooled over the five synthbench tasks as `bench_lite_fidelity.zoo_population` pools it."""
    from lmms_nb import load_logs

    samples = load_logs(logs)
    parts = []
    for offset, (task, metric) in enumerate(ZOO_METRICS.items()):
        parts.append(samples.filter(pl.col("task") == task).select(
            "model", pl.lit("synthbench").alias("task"), pl.col("doc_id") + offset * 100_000,
            pl.lit(task.removeprefix("synthbench_")).alias("category"), pl.col(metric).alias("score")))
    return conform(pl.concat(parts))


def residuals(y: np.ndarray, others: np.ndarray, onehot: np.ndarray, predictor: str) -> np.ndarray:
    """`y` (one model's scores on every doc) minus its prediction by `predictor` from `others` (models x docs)."""
    n = len(y)
    x = np.column_stack([others.T, onehot])
    folds = KFold(5, shuffle=True, random_state=0)
    if predictor == "none":
        return y - y.mean()
    if predictor == "linear, in-sample":
        design = np.column_stack([np.ones(n), x])
        return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    if predictor == "linear, cross-fitted":
        return y - cross_val_predict(Ridge(1.0), x, y, cv=folds)
    if predictor == "linear per category, cross-fitted":
        x_cat = np.column_stack([(others.T[:, :, None] * onehot[:, None, :]).reshape(n, -1), onehot])
        return y - cross_val_predict(Ridge(1.0), x_cat, y, cv=folds)
    gbm = HistGradientBoostingRegressor(max_iter=80, learning_rate=0.1, min_samples_leaf=10, random_state=0)
    return y - np.clip(cross_val_predict(gbm, x, y, cv=folds), 0.0, 1.0)


def expected_mae(res: np.ndarray, k: int, design: DifficultyDesign | None) -> float:
    """sqrt(2/pi) x the sd of a (stratified) random subset's weighted mean of `res`, finite-population corrected;
    a stratum the design leaves out adds its whole mean residual."""
    n = len(res)
    if design is None:
        return float(np.sqrt(2 / np.pi) * res.std() * np.sqrt((1 - k / n) / k))
    var = 0.0
    for h, a in enumerate(design.alloc):
        r = res[design.strata == h]
        if len(r):
            share = len(r) / n
            var += share**2 * r.var() * (1 - a / len(r)) / a if a else (share * r.mean()) ** 2
    return float(np.sqrt(2 / np.pi) * np.sqrt(var))


def print_floors(title: str, samples: pl.DataFrame, budget: float, seed: int) -> None:
    t0 = time.perf_counter()
    sm = score_matrix(samples)
    y = sm.scores
    n_models, n = y.shape
    k = round(budget * n)
    cats = sm.categories if sm.categories is not None else np.zeros(n, dtype=np.int64)
    onehot = (np.asarray(cats)[:, None] == np.unique(cats)[None, :]).astype(np.float64)
    floors = np.zeros((len(PREDICTORS), 3, n_models))
    for i in range(n_models):
        others = np.delete(y, i, axis=0)
        fold = FoldEstimators(others, seed=seed)  # as difficulty_cv and residual_cv hold model i out
        design, res_design = fold.cv_design(k, sm.categories), fold.residual_design(k, sm.categories)
        for p, predictor in enumerate(PREDICTORS):
            res = residuals(y[i], others, onehot, predictor)
            floors[p, :, i] = (expected_mae(res, k, None), expected_mae(res, k, design),
                               expected_mae(res, k, res_design))
    print(f"\n=== {title}: {n_models} models, {n} docs, budget {budget:.0%} (k={k}); expected MAE in points of a "
          f"difference estimator, mean over models ({time.perf_counter() - t0:.0f} s) ===")
    print(f"  {'prediction of each doc':36s} | random subset | difficulty_cv's strata | residual_cv's strata")
    for p, predictor in enumerate(PREDICTORS):
        print(f"  {predictor:36s} | {100 * floors[p, 0].mean():13.2f} | {100 * floors[p, 1].mean():22.2f} | "
              f"{100 * floors[p, 2].mean():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", choices=["digits", "zoo", "both"], default="both")
    ap.add_argument("--logs", default="outputs/demo", help="the zoo's logs (from `lmms-nb demo`)")
    ap.add_argument("--full", type=int, default=900, help="docs in the digits full set")
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        if args.population in ("digits", "both"):
            print_floors("digits", build_samples(args.full, args.seed)[0], args.budget, args.seed)
        if args.population in ("zoo", "both"):
            print_floors(f"zoo ({args.logs})", zoo_samples(args.logs), args.budget, args.seed)


if __name__ == "__main__":
    main()
