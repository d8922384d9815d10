"""How faithful is a Lite subset? Scores and rankings of several models on subsets vs the full set.

From full per-sample results of several models on one task (a canonical table, e.g. from `load_logs`) and
the task's embeddings, for each budget k, methods (a subset and an estimator each):

- ``kcenter``: the first k k-center greedy picks, plain mean (LMMs-Eval-Lite's estimate);
- ``kcenter_weighted``: the same docs, each weighted by its cell size;
- ``kcenter_irt``: the same docs, gp-IRT estimate (tinyBenchmarks; `_irt`);
- ``kcenter_corrected``: the same docs, cell-weighted mean plus a linear correction learned on the training
  models (ridge of the full-minus-subset gap on their answers to the subset's docs; `_corrections`);
- ``anchor``: anchor points chosen from the training models' answers (Vivek et al., 2023), cluster-weighted;
- ``anchor_irt``: the anchor points, gp-IRT estimate;
- ``anchor_corrected``: the anchor points, linear correction;
- ``random``: uniform random subsets of k docs (`n_random` draws), plain mean;
- ``random_irt``: the same random subsets, gp-IRT estimate;
- ``random_calibrated``: the same random subsets, their mean calibrated on the training models
  (``full ~ a + b * subset mean``, least squares);
- ``random_corrected``: the same random subsets, linear correction;
- ``random_cv``: the same random subsets, difference estimate with the training models that answered the
  subset most alike as control variate (`_corrections.neighbour_control_variate`);
- ``difficulty``: random subsets stratified by the training models' mean score on each doc (docs all of them
  got right, all got wrong, and quantile bins between), Neyman allocation (one doc per stratum first when k
  allows), stratified estimate; a stratum that gets no doc (k below the number of strata) is estimated by the
  training models' mean there;
- ``difficulty_cv``: the same difficulty strata, allocated in proportion to the neighbour predictions' held-out
  error in each (`_difficulty_design.residual_spread`), difference estimate with the neighbour control variate (the
  predictions' mean over every doc plus the design-weighted mean prediction error on the subset; a stratum
  that gets no doc, k being below the number of strata, is left to the predictions); with categories, each category's docs are predicted
  by neighbours chosen on its own subset docs, shrunk toward the whole subset's by a prior chosen on the
  training models (`FoldEstimators.group_prior`);
- ``stratified``: random subsets with k split over categories in proportion to their size (largest
  remainders; every category gets at least one doc when k allows), scored with the stratified estimator
  (each category's mean weighted by its share of the full set); only when the table has categories;
- ``residual_cv``: random subsets stratified by category and by how far the neighbour predictions miss on each
  doc among the training models (`_residual_design`), Neyman on that error, scored as difficulty_cv;
- ``spread_cv``: docs drawn with probability in proportion to that error, by systematic sampling spread over
  category, difficulty and the training models' main axis of disagreement (`_spread_design`), scored as residual_cv;
- ``chosen``: per fold, whichever of spread_cv and anchor_corrected has the lower error on the fold's
  training models held out by inner folds (`_nested.choose_estimator`: nested cross-validation; the pick never
  sees the fold's held-out models), or difficulty_cv (`_nested.DEFAULT_ESTIMATOR`) when the fold has too few
  training models to choose; its subset and estimate as in that method's row (the same draws as spread_cv's
  or difficulty_cv's row, or the anchor subset repeated). `LiteFidelity.choices` says what each fold picked and why.

Methods that learn from models (anchor, *_irt) are fitted per fold over models and only estimate the models
their fold held out: nothing scores itself. Per subset: Spearman, Kendall (tau-b) and Pearson correlation
between the models' estimated and full-set scores (scipy.stats), and the mean and max absolute error in
points. Random and stratified rows give the mean, sd and a 95% interval over draws; single-subset rows a 95%
bootstrap interval over models. Every row but random says in what share of random draws it did strictly
better (paired by draw for the drawn methods; the same subsets for random_irt, _calibrated, _corrected and
_cv) and gives a plain verdict: "better than random" when it
beats random in >= 80% of draws on MAE, "worse than random" when in <= 20%, else "no better than random".

Example:
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> skill = np.linspace(0.3, 0.9, 6)
    >>> correct = (rng.random((6, 200)) < skill[:, None]).astype(float)
    >>> samples = pl.DataFrame({"model": np.repeat([f"m{i}" for i in range(6)], 200), "task": "t",
    ...                         "doc_id": np.tile(np.arange(200), 6), "acc": correct.ravel()})
    >>> emb = (np.arange(200), rng.normal(size=(200, 4)))
    >>> fid = lite_fidelity(samples, emb, budgets=[0.25], n_random=20, seed=0)
    >>> fid.summary.filter(pl.col("method") == "random")["n_draws"].to_list()
    [20]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from lmms_nb.lite_selection._embeddings import TaskEmbeddings
from lmms_nb.lite_selection._estimates import ScoreMatrix, score_matrix
from lmms_nb.lite_selection._fidelity_stats import bootstrap_ci, draw_stats, stratified_estimates, subset_stats
from lmms_nb.lite_selection._fidelity_random import learned_random_estimates
from lmms_nb.lite_selection._fidelity_summary import summarise_draws
from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds
from lmms_nb.lite_selection._nested import (CANDIDATES, DEFAULT_ESTIMATOR, EstimatorChoice, choose_estimator,
                                             heldout_estimates)
from lmms_nb.lite_selection._kcenter import KCenterResult, assign_to_nearest, kcenter_greedy
from lmms_nb.lite_selection._subset import resolve_budget

METHODS = ("kcenter", "kcenter_weighted", "kcenter_irt", "kcenter_corrected", "anchor", "anchor_irt",
           "anchor_corrected", "random", "random_irt", "random_calibrated", "random_corrected", "random_cv",
           "stratified", "difficulty", "difficulty_cv", "residual_cv", "spread_cv", "chosen")
#: what `lite_fidelity` measures unless told: all but "chosen", whose nested cross-validation costs inner folds of
#: every candidate per outer fold and budget (ask for it with ``methods=``)
DEFAULT_METHODS = tuple(m for m in METHODS if m != "chosen")
_LEARNED = ("kcenter_irt", "kcenter_corrected", "anchor", "anchor_irt", "anchor_corrected", "random_irt",
            "random_calibrated", "random_corrected", "random_cv", "difficulty", "difficulty_cv", "residual_cv",
            "spread_cv", "chosen")
_DRAWN = ("random", "random_irt", "random_calibrated", "random_corrected", "random_cv", "stratified", "difficulty",
          "difficulty_cv", "residual_cv", "spread_cv", "chosen")
#: learned methods need this many models: 5-fold CV then leaves >= 4 to fit on, 2 for each inner half
_MIN_MODELS_TO_LEARN = 6
#: a method "beats random" when its MAE is lower than random's in at least this share of draws
BEATS_RANDOM_SHARE = 0.8
_STATS = ("spearman", "kendall", "pearson", "mae_points", "max_abs_error_points")
_CI_COLS = ("spearman_lo", "spearman_hi", "mae_points_lo", "mae_points_hi")
_NO_CI = dict.fromkeys(_CI_COLS, float("nan"))


@dataclass
class LiteFidelity:
    """Fidelity of Lite subsets at several budgets. See the module docstring.

    summary: one row per (k, method): budget (k / n), n_draws, each statistic (mean over draws) and its sd,
        k-center's coverage radius, and for k-center rows beats_random_spearman / beats_random_mae (the share
        of random draws with a strictly lower Spearman / strictly higher MAE);
    draws: one row per (k, method, draw) with the statistics;
    estimates: one row per (k, single-subset method, model): full-set score and estimate in points;
    kcenter: the k-center result at the largest budget (rows of `doc_ids`);
    choices: per budget k, the `EstimatorChoice` of each fold for the ``chosen`` method (empty without it).
    """

    task: str
    metric: str
    models: list[str]
    doc_ids: np.ndarray
    summary: pl.DataFrame
    draws: pl.DataFrame
    estimates: pl.DataFrame
    kcenter: KCenterResult
    choices: dict[int, list[EstimatorChoice]] = field(default_factory=dict)

    def figure(self, stat: str = "spearman", **kwargs: Any):
        """`plot_fidelity(self, stat)`: a plotly figure of `stat` over budgets."""
        from lmms_nb.lite_selection._fidelity_plot import plot_fidelity

        return plot_fidelity(self, stat, **kwargs)


def lite_fidelity(
    samples: pl.DataFrame,
    embeddings: TaskEmbeddings | tuple[Sequence[int], np.ndarray],
    budgets: Sequence[int | float] = (0.05, 0.1, 0.2, 0.3, 0.5),
    *,
    metric: str | None = None,
    task: str | None = None,
    filter: str | None = None,
    n_random: int = 100,
    seed: int = 0,
    start: int | Literal["random", "mean"] = 0,
    scale: float = 100.0,
    device: str | None = None,
    folds: int | Literal["loo"] = 5,
    methods: Sequence[str] | None = None,
    irt_dim: int = 1,
) -> LiteFidelity:
    """Compare Lite subsets and estimators with random and stratified ones across `budgets` (counts or fractions).

    `embeddings` is a `TaskEmbeddings` or ``(doc_ids, vectors)``; the k-center picks are computed over the
    docs of the sample table (all of which need an embedding). `start` is the first pick's position among
    those docs (sorted by doc_id), or "random" / "mean". Scores are in points (`scale` x metric).

    Methods that learn from models (anchor points, gp-IRT) are fitted per fold over models (`folds`: an int,
    or "loo") and each model is estimated only by the fold that held it out. They need scores in [0, 1] and
    at least 6 models; otherwise they are left out (`methods` picks a subset of `METHODS`; default
    `DEFAULT_METHODS`, every method but the nested ``chosen``).
    """
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    sm = score_matrix(samples, metric=metric, task=task, filter=filter)
    if len(sm.models) < 3:
        raise ValueError(f"task {sm.task!r}: fidelity across models needs at least 3 models, got {sm.models}")
    wanted = list(DEFAULT_METHODS if methods is None else methods)
    unknown = [m for m in wanted if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; methods: {list(METHODS)}")
    vectors = _aligned_vectors(embeddings, sm)
    n = len(sm.doc_ids)
    ks = sorted({resolve_budget(b, n) for b in budgets})
    if not ks:
        raise ValueError("give at least one budget")
    res = kcenter_greedy(vectors, ks[-1], start=start, seed=seed, device=device)

    unit = sm.scores
    learns = len(sm.models) >= _MIN_MODELS_TO_LEARN and unit.min() >= 0 and unit.max() <= 1
    if not learns:
        wanted = [m for m in wanted if m not in _LEARNED]
    # what "chosen" picks from is computed even when its own rows are not asked for, and the default it falls
    # back to when a fold has too few training models to choose
    needed = set(wanted) | ({*CANDIDATES, DEFAULT_ESTIMATOR} if "chosen" in wanted else set())
    choices: dict[int, list[EstimatorChoice]] = {}
    fold_tests = model_folds(len(sm.models), folds, seed=seed)
    fitted = ([FoldEstimators(np.delete(unit, test, axis=0), dim=irt_dim, seed=seed) for test in fold_tests]
              if any(m in _LEARNED for m in wanted) else [])
    scores = unit * scale
    full = scores.mean(axis=1)
    rng = np.random.default_rng(seed)
    draw_rows: list[dict[str, Any]] = []
    est_rows: list[pl.DataFrame] = []
    radius: dict[int, float] = {}
    for k in ks:
        picks = res.picks[:k]
        cells = res.cell_sizes if k == ks[-1] else assign_to_nearest(vectors, picks, device=device)[1]
        radius[k] = float(res.radii[k - 1])
        single: dict[str, np.ndarray] = {}
        mask = np.zeros(n, dtype=bool)
        mask[picks] = True
        cell_w = np.zeros(n)
        cell_w[picks] = cells
        if "kcenter" in wanted:
            single["kcenter"] = scores[:, picks].mean(axis=1)
        if "kcenter_weighted" in wanted:
            single["kcenter_weighted"] = scores[:, picks] @ cells / cells.sum()
        if "kcenter_irt" in wanted:
            single["kcenter_irt"] = _per_fold(
                fold_tests, lambda f, t, mask=mask, cell_w=cell_w: fitted[f].gp_irt(unit[t], mask, cell_w)) * scale
        if "anchor" in wanted or "anchor_irt" in wanted:
            anchor, anchor_irt = np.zeros(len(full)), np.zeros(len(full))
            for f, test in enumerate(fold_tests):
                docs, w = fitted[f].anchors(k)
                anchor[test] = unit[np.ix_(test, docs)] @ w
                a_mask, a_w = np.zeros(n, dtype=bool), np.zeros(n)
                a_mask[docs], a_w[docs] = True, w
                anchor_irt[test] = fitted[f].gp_irt(unit[test], a_mask, a_w)
            single.update({m: e * scale for m, e in (("anchor", anchor), ("anchor_irt", anchor_irt)) if m in wanted})
        if "kcenter_corrected" in wanted:
            single["kcenter_corrected"] = _per_fold(
                fold_tests, lambda f, t, picks=picks, cells=cells: fitted[f].corrected(picks, cells, unit[t][:, picks])
            ) * scale
        if "anchor_corrected" in needed:
            single["anchor_corrected"] = _per_fold(fold_tests, lambda f, t, k=k: _anchor_corrected(fitted[f], k, unit[t])
                                                   ) * scale
        anchor_corrected = single.get("anchor_corrected")  # for "chosen"; its own rows only when asked for
        if "anchor_corrected" not in wanted:
            single.pop("anchor_corrected", None)
        for method, est in single.items():
            draw_rows.append({"k": k, "method": method, "draw": 0, **subset_stats(full, est),
                              **bootstrap_ci(full, est, seed)})
            est_rows.append(pl.DataFrame({"k": k, "method": method, "model": sm.models,
                                          "full_points": full, "estimate_points": est}))
        idx = np.argsort(rng.random((n_random, n)), axis=1)[:, :k]  # uniform k-subsets without replacement
        if "random" in wanted:
            draw_rows += _rows(k, "random", draw_stats(full, scores[:, idx].mean(axis=2).T))
        for method, ests in learned_random_estimates(wanted, idx, unit, fitted, fold_tests).items():
            draw_rows += _rows(k, method, draw_stats(full, ests * scale))
        if "difficulty" in wanted:
            ests, fold_rng = np.zeros((n_random, len(full))), np.random.default_rng([seed, k])
            for f, test in enumerate(fold_tests):
                design = fitted[f].difficulty_design(k)
                for d in range(n_random):
                    ests[d, test] = design.estimate(unit[test], design.draw(fold_rng))
            draw_rows += _rows(k, "difficulty", draw_stats(full, ests * scale))
        # a generator each: a method's draws do not depend on which other methods are measured
        drawn = {m: _per_fold_draws(fitted, fold_tests, m, k, unit, sm.categories, n_random,
                                    np.random.default_rng([seed, k, j])) * scale
                 for m, j in (("difficulty_cv", 2), ("residual_cv", 3), ("spread_cv", 4)) if m in needed}
        draw_rows += [row for m, ests in drawn.items() if m in wanted for row in _rows(k, m, draw_stats(full, ests))]
        if "chosen" in wanted:  # nested: each fold's pick comes from its training models alone
            choices[k] = [choose_estimator(fitted[f].train, k, sm.categories, seed=seed)
                          for f in range(len(fold_tests))]
            drawn["anchor_corrected"] = np.broadcast_to(anchor_corrected, (n_random, len(full)))
            ests = np.zeros((n_random, len(full)))
            for f, test in enumerate(fold_tests):
                ests[:, test] = drawn[choices[k][f].method][:, test]
            draw_rows += _rows(k, "chosen", draw_stats(full, ests))
        if "stratified" in wanted and sm.categories is not None:
            draw_rows += _rows(k, "stratified",
                               draw_stats(full, stratified_estimates(scores, sm.categories, k, n_random, rng)))

    draws = (pl.DataFrame(draw_rows)
             .with_columns((pl.col("k") / n).alias("budget"), pl.col(list(_STATS)).fill_nan(None))
             .select("k", "budget", "method", "draw", *_STATS, *_CI_COLS))
    summary = summarise_draws(draws, radius, methods=METHODS, drawn=_DRAWN, stats=_STATS,
                              beats_share=BEATS_RANDOM_SHARE)
    # only drawn methods asked: no single-subset estimates, an empty table of the same columns
    est_rows = est_rows or [pl.DataFrame(schema={"k": pl.Int64, "method": pl.Utf8, "model": pl.Utf8,
                                                 "full_points": pl.Float64, "estimate_points": pl.Float64})]
    estimates = pl.concat(est_rows).with_columns(
        (pl.col("k") / n).alias("budget"),
        (pl.col("estimate_points") - pl.col("full_points")).alias("error_points"),
    ).select("k", "budget", "method", "model", "full_points", "estimate_points", "error_points")
    return LiteFidelity(task=sm.task, metric=sm.metric, models=sm.models, doc_ids=sm.doc_ids, summary=summary,
                        draws=draws, estimates=estimates, kcenter=res, choices=choices)


def _rows(k: int, method: str, draw_stats: list[dict[str, float]]) -> list[dict[str, Any]]:
    return [{"k": k, "method": method, "draw": d, **st, **_NO_CI} for d, st in enumerate(draw_stats)]


def _per_fold(fold_tests: list[np.ndarray], estimate) -> np.ndarray:
    out = np.zeros(sum(len(t) for t in fold_tests))
    for f, test in enumerate(fold_tests):
        out[test] = estimate(f, test)
    return out


def _per_fold_draws(fitted: list[FoldEstimators], fold_tests: list[np.ndarray], method: str, k: int, unit: np.ndarray,
                    groups: np.ndarray | None, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws x models: each model estimated by `method` (`_nested.heldout_estimates`) of the fold that held it
    out, from `n_draws` subsets per fold drawn from `rng` fold after fold."""
    out = np.zeros((n_draws, len(unit)))
    for f, test in enumerate(fold_tests):
        out[:, test] = heldout_estimates(fitted[f], method, k, unit[test], groups=groups, rng=rng, n_draws=n_draws)
    return out


def _anchor_corrected(fold: FoldEstimators, k: int, test_scores: np.ndarray) -> np.ndarray:
    docs, weights = fold.selected_anchors(k)
    return fold.corrected(docs, weights, test_scores[:, docs])


def _aligned_vectors(embeddings: TaskEmbeddings | tuple[Sequence[int], np.ndarray], sm: ScoreMatrix) -> np.ndarray:
    if isinstance(embeddings, TaskEmbeddings):
        emb = embeddings
    else:
        ids, vecs = embeddings
        emb = TaskEmbeddings(task=sm.task, doc_ids=np.asarray(ids), vectors=np.asarray(vecs, dtype=np.float32))
    return emb.vectors[emb.rows_of(sm.doc_ids)]
