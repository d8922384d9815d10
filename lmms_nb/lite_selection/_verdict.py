"""Plain words on whether a Lite subset does better than random: for one subset, and for a fidelity run.

`subset_vs_random` scores one subset (its plain mean, its weighted mean and, with enough models, its weighted
mean corrected on the other models) against `n_random` uniform random subsets of the same size, on the models
of a sample table; `fidelity_verdicts` turns a `LiteFidelity` summary at one budget into one sentence per
method. Both say "no better than random" whenever that is the case: a
Lite subset that looks faithful but is not is worse than none.

Example:
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> correct = (rng.random((5, 100)) < np.linspace(0.3, 0.9, 5)[:, None]).astype(float)
    >>> samples = pl.DataFrame({"model": np.repeat([f"m{i}" for i in range(5)], 100), "task": "t",
    ...                         "doc_id": np.tile(np.arange(100), 5), "acc": correct.ravel()})
    >>> out = subset_vs_random(samples, doc_ids=list(range(10)), n_random=50)
    >>> out["estimator"].to_list(), out["verdict"].null_count()
    (['plain mean', 'weighted mean'], 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from lmms_nb.lite_selection._estimates import _corrected, score_matrix
from lmms_nb.lite_selection._fidelity import BEATS_RANDOM_SHARE, LiteFidelity
from lmms_nb.lite_selection._fidelity_stats import draw_stats
from lmms_nb.lite_selection._subset import LiteSubset

__all__ = ["PICKED_ON_THESE_MODELS", "fidelity_verdicts", "subset_fidelity_verdicts", "subset_vs_random", "verdict_of"]

#: said under a verdict of an estimator that `build_difficulty_subset(estimator="auto")` picked by comparing
#: errors on the same models the verdict is measured on: the winner of a comparison looks better than it is
PICKED_ON_THESE_MODELS = (
    "Caveat: measured on the models this estimator was picked on, so it may look better than it is; "
    "lite_fidelity(..., methods=[..., 'chosen']) measures the pick itself (nested cross-validation).")

_NAMES = {"kcenter": "k-center, plain mean", "kcenter_weighted": "k-center, cell-weighted",
          "kcenter_irt": "k-center, gp-IRT", "kcenter_corrected": "k-center, cell-weighted + linear correction",
          "anchor": "anchor points", "anchor_irt": "anchor points, gp-IRT",
          "anchor_corrected": "anchor points + linear correction",
          "random_corrected": "random subsets + linear correction",
          "random_cv": "random subsets, control variate from similar models",
          "random_irt": "random subsets, gp-IRT", "random_calibrated": "random subsets, calibrated mean",
          "stratified": "stratified random subsets", "difficulty": "difficulty-stratified random subsets",
          "difficulty_cv": "difficulty-stratified random subsets, control variate from similar models",
          "residual_cv": "random subsets stratified by category and prediction error, control variate from similar models",
          "spread_cv": "systematic samples spread over category and difficulty, drawn in proportion to prediction "
                       "error, control variate from similar models",
          "chosen": "the estimator chosen by cross-validation over the earlier models (nested)"}


def verdict_of(beats_random_share: float | None) -> str | None:
    """"better than random" (beats random in >= 80% of draws), "worse than random" (<= 20%), else "no better".

    >>> verdict_of(0.9), verdict_of(0.5), verdict_of(0.1)
    ('better than random', 'no better than random', 'worse than random')
    """
    if beats_random_share is None or np.isnan(beats_random_share):
        return None
    if beats_random_share >= BEATS_RANDOM_SHARE:
        return "better than random"
    if beats_random_share <= 1 - BEATS_RANDOM_SHARE:
        return "worse than random"
    return "no better than random"


def subset_vs_random(
    samples: pl.DataFrame,
    subset: LiteSubset | None = None,
    *,
    doc_ids: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    metric: str | None = None,
    task: str | None = None,
    filter: str | None = None,
    n_random: int = 200,
    seed: int = 0,
    scale: float = 100.0,
) -> pl.DataFrame:
    """One row per estimator of `subset`: its MAE and Spearman across the models, random subsets' (plain mean)
    MAE and Spearman, the share of random draws it beats on MAE, and the verdict.

    Estimators: the plain mean, the weighted mean, and, with `MIN_TRAINING_MODELS` models besides each one and
    scores in [0, 1], the weighted mean plus a linear correction (`_corrections.linear_correction`) that each
    model gets from the other models only (leave one model out), so no model's estimate has seen its own
    answers off the subset."""
    if subset is not None:
        doc_ids, weights = subset.doc_ids, subset.weights
        task = task if task is not None else (subset.task if "task" in samples.columns else None)
    if doc_ids is None:
        raise ValueError("subset_vs_random needs a subset or doc_ids")
    sm = score_matrix(samples, metric=metric, task=task, filter=filter)
    pos = {int(d): j for j, d in enumerate(sm.doc_ids)}
    absent = [int(d) for d in doc_ids if int(d) not in pos]
    if absent:
        raise ValueError(f"task {sm.task!r}: subset doc ids {absent[:10]} are not in the sample table")
    cols = np.asarray([pos[int(d)] for d in doc_ids])
    w = np.ones(len(cols)) if weights is None else np.asarray(weights, dtype=np.float64)
    scores = sm.scores * scale
    full = scores.mean(axis=1)
    k, n = len(cols), scores.shape[1]
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n_random, n)), axis=1)[:, :k]
    rand = draw_stats(full, scores[:, idx].mean(axis=2).T)
    rand_mae = np.array([r["mae_points"] for r in rand])
    rand_rho = np.array([r["spearman"] for r in rand], dtype=np.float64)
    estimators = [("plain mean", scores[:, cols].mean(axis=1)), ("weighted mean", scores[:, cols] @ w / w.sum())]
    # each model's weighted mean corrected by what the *other* models show (leave one model out)
    corrected = _corrected(sm.scores, cols, w)
    if not np.isnan(corrected).all():
        estimators.append(("weighted mean + linear correction", corrected * scale))
    rows = []
    for name, est in estimators:
        st = draw_stats(full, est[None, :])[0]
        # strictly better, beyond rounding: scores are discrete, so random draws often tie the subset exactly
        share = float(np.mean(rand_mae > st["mae_points"] + 1e-9))
        rows.append({"estimator": name, "k": k, "n_models": len(sm.models), "mae_points": st["mae_points"],
                     "spearman": st["spearman"], "random_mae_points": float(rand_mae.mean()),
                     "random_spearman": float(np.nanmean(rand_rho)) if np.isfinite(rand_rho).any() else None,
                     "beats_random_mae": share, "verdict": verdict_of(share)})
    return pl.DataFrame(rows).with_columns(pl.col("spearman", "random_spearman").fill_nan(None))


def fidelity_verdicts(fidelity: LiteFidelity, budget: int | float, *,
                      methods: Sequence[str] | None = None) -> list[str]:
    """One plain sentence per method at the fidelity budget nearest `budget` (a count or a fraction), best
    (lowest MAE) first, and a first sentence saying whether any method beats random there. `methods` keeps only
    those methods (e.g. ``["difficulty_cv"]``); none of them measured at that budget is a ValueError."""
    s = fidelity.summary
    n = len(fidelity.doc_ids)
    k_want = budget if isinstance(budget, (int, np.integer)) and not isinstance(budget, bool) else budget * n
    ks = s["k"].unique().to_list()
    k = min(ks, key=lambda x: (abs(x - k_want), x))
    at = s.filter(pl.col("k") == k)
    rnd = at.filter(pl.col("method") == "random").row(0, named=True)
    others = at.filter(pl.col("method") != "random").sort("mae_points")
    if methods is not None:
        others = others.filter(pl.col("method").is_in(list(methods)))
        if others.height == 0:
            raise ValueError(f"the fidelity results have no method of {list(methods)} at {k} docs")
    better = others.filter(pl.col("verdict") == "better than random")["method"].to_list()
    head = (f"At {k} of {n} docs ({k / n:.0%}), across {len(fidelity.models)} models "
            f"(methods that learn from models are scored on held-out models only): random subsets are "
            f"{rnd['mae_points']:.2f} points off on average (Spearman {rnd['spearman']:.3f}). ")
    head += (f"Better than random: {'; '.join(_NAMES.get(m, m) for m in better)}." if better else
             "No method does better than random here: use a random subset of this size, or a larger budget.")
    lines = [head]
    for r in others.iter_rows(named=True):
        lines.append(f"{_NAMES.get(r['method'], r['method'])}: {r['verdict']} (MAE {r['mae_points']:.2f} points, "
                     f"95% [{r['mae_points_lo']:.2f}, {r['mae_points_hi']:.2f}]; Spearman {r['spearman']:.3f}; "
                     f"lower MAE than random in {r['beats_random_mae']:.0%} of draws)")
    return lines


def subset_fidelity_verdicts(fidelity: LiteFidelity, subset) -> list[str]:
    """`fidelity_verdicts` of the estimator a `DifficultySubset` uses (``meta["method"]``) at its size, and
    `PICKED_ON_THESE_MODELS` after them when that estimator was picked automatically by comparing errors on
    earlier models (``meta["estimator_picked"]``): the held-out row of the winner is then optimistic. A
    ValueError when `fidelity` has no row of that estimator."""
    meta = subset.meta
    lines = fidelity_verdicts(fidelity, len(subset), methods=[meta.get("method", "difficulty_cv")])
    return [*lines, PICKED_ON_THESE_MODELS] if _picked_automatically(meta) else lines


def _picked_automatically(meta: dict) -> bool:
    if "estimator_picked" in meta:
        return bool(meta["estimator_picked"])
    # subsets saved before the flag: an automatic pick's reason names the comparison
    return "lowest error on earlier models" in str(meta.get("estimator_reason", ""))
