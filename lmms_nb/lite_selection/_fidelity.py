"""How faithful is a Lite subset? Scores and rankings of several models on subsets vs the full set.

From full per-sample results of several models on one task (a canonical table, e.g. from `load_logs`) and
the task's embeddings, for each budget k:

- ``kcenter``: the first k k-center greedy picks, plain mean (LMMs-Eval-Lite's estimate);
- ``kcenter_weighted``: the same docs, each weighted by its cell size;
- ``random``: uniform random subsets of k docs (`n_random` draws);
- ``stratified``: random subsets with k split over categories in proportion to their size (largest
  remainders; every category gets at least one doc when k allows), scored with the stratified estimator
  (each category's mean weighted by its share of the full set); only when the table has categories.

Per subset: Spearman, Kendall (tau-b) and Pearson correlation between the models' subset and full-set scores
(scipy.stats), and the mean and max absolute error in points. Random and stratified rows give the mean and
sd over draws; k-center rows also say in what share of random draws k-center did strictly better.

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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy import stats

from lmms_nb.lite_selection._embeddings import TaskEmbeddings
from lmms_nb.lite_selection._estimates import ScoreMatrix, score_matrix
from lmms_nb.lite_selection._kcenter import KCenterResult, assign_to_nearest, kcenter_greedy
from lmms_nb.lite_selection._subset import resolve_budget

METHODS = ("kcenter", "kcenter_weighted", "random", "stratified")
_STATS = ("spearman", "kendall", "pearson", "mae_points", "max_abs_error_points")


@dataclass
class LiteFidelity:
    """Fidelity of Lite subsets at several budgets. See the module docstring.

    summary: one row per (k, method): budget (k / n), n_draws, each statistic (mean over draws) and its sd,
        k-center's coverage radius, and for k-center rows beats_random_spearman / beats_random_mae (the share
        of random draws with a strictly lower Spearman / strictly higher MAE);
    draws: one row per (k, method, draw) with the statistics;
    estimates: one row per (k, method in kcenter / kcenter_weighted, model): full and subset score in points;
    kcenter: the k-center result at the largest budget (rows of `doc_ids`).
    """

    task: str
    metric: str
    models: list[str]
    doc_ids: np.ndarray
    summary: pl.DataFrame
    draws: pl.DataFrame
    estimates: pl.DataFrame
    kcenter: KCenterResult

    def figure(self, stat: str = "spearman", **kwargs: Any):
        """`plot_fidelity(self, stat)`: a plotly figure of `stat` over budgets."""
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
) -> LiteFidelity:
    """Compare k-center subsets with random and stratified ones across `budgets` (counts or fractions).

    `embeddings` is a `TaskEmbeddings` or ``(doc_ids, vectors)``; the k-center picks are computed over the
    docs of the sample table (all of which need an embedding). `start` is the first pick's position among
    those docs (sorted by doc_id), or "random" / "mean". Scores are in points (`scale` x metric).
    """
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    sm = score_matrix(samples, metric=metric, task=task, filter=filter)
    if len(sm.models) < 3:
        raise ValueError(f"task {sm.task!r}: fidelity across models needs at least 3 models, got {sm.models}")
    vectors = _aligned_vectors(embeddings, sm)
    n = len(sm.doc_ids)
    ks = sorted({resolve_budget(b, n) for b in budgets})
    if not ks:
        raise ValueError("give at least one budget")
    res = kcenter_greedy(vectors, ks[-1], start=start, seed=seed, device=device)

    scores = sm.scores * scale
    full = scores.mean(axis=1)
    rng = np.random.default_rng(seed)
    draw_rows: list[dict[str, Any]] = []
    est_rows: list[pl.DataFrame] = []
    radius: dict[int, float] = {}
    for k in ks:
        picks = res.picks[:k]
        cells = res.cell_sizes if k == ks[-1] else assign_to_nearest(vectors, picks, device=device)[1]
        radius[k] = float(res.radii[k - 1])
        w_kc = {"kcenter": np.ones(k), "kcenter_weighted": cells.astype(np.float64)}
        for method, w in w_kc.items():
            est = scores[:, picks] @ w / w.sum()
            draw_rows.append({"k": k, "method": method, "draw": 0, **_subset_stats(full, est)})
            est_rows.append(pl.DataFrame({"k": k, "method": method, "model": sm.models,
                                          "full_points": full, "estimate_points": est}))
        for d, est in enumerate(_random_estimates(scores, k, n_random, rng)):
            draw_rows.append({"k": k, "method": "random", "draw": d, **_subset_stats(full, est)})
        if sm.categories is not None:
            for d, est in enumerate(_stratified_estimates(scores, sm.categories, k, n_random, rng)):
                draw_rows.append({"k": k, "method": "stratified", "draw": d, **_subset_stats(full, est)})

    draws = (pl.DataFrame(draw_rows)
             .with_columns((pl.col("k") / n).alias("budget"), pl.col(list(_STATS)).fill_nan(None))
             .select("k", "budget", "method", "draw", *_STATS))
    summary = _summarise(draws, radius)
    estimates = pl.concat(est_rows).with_columns(
        (pl.col("k") / n).alias("budget"),
        (pl.col("estimate_points") - pl.col("full_points")).alias("error_points"),
    ).select("k", "budget", "method", "model", "full_points", "estimate_points", "error_points")
    return LiteFidelity(task=sm.task, metric=sm.metric, models=sm.models, doc_ids=sm.doc_ids, summary=summary,
                        draws=draws, estimates=estimates, kcenter=res)


def _aligned_vectors(embeddings: TaskEmbeddings | tuple[Sequence[int], np.ndarray], sm: ScoreMatrix) -> np.ndarray:
    if isinstance(embeddings, TaskEmbeddings):
        emb = embeddings
    else:
        ids, vecs = embeddings
        emb = TaskEmbeddings(task=sm.task, doc_ids=np.asarray(ids), vectors=np.asarray(vecs, dtype=np.float32))
    return emb.vectors[emb.rows_of(sm.doc_ids)]


def _subset_stats(full: np.ndarray, est: np.ndarray) -> dict[str, float]:
    err = np.abs(est - full)
    with warnings.catch_warnings():
        # a subset on which every model scores the same has no ranking: its correlations are NaN (-> null)
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "spearman": float(stats.spearmanr(full, est).statistic),
            "kendall": float(stats.kendalltau(full, est).statistic),
            "pearson": float(stats.pearsonr(full, est).statistic) if np.ptp(est) > 0 else float("nan"),
            "mae_points": float(err.mean()),
            "max_abs_error_points": float(err.max()),
        }


def _random_estimates(scores: np.ndarray, k: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """(n_draws, models): plain means over uniform random k-subsets (without replacement)."""
    n = scores.shape[1]
    idx = np.argsort(rng.random((n_draws, n)), axis=1)[:, :k]
    return scores[:, idx].mean(axis=2).T


def _stratified_estimates(scores: np.ndarray, categories: np.ndarray, k: int, n_draws: int,
                          rng: np.random.Generator) -> np.ndarray:
    """(n_draws, models): stratified estimator over proportional-allocation random subsets."""
    labels, inverse, sizes = np.unique(categories, return_inverse=True, return_counts=True)
    alloc = _proportional_allocation(sizes, k)
    members = [np.nonzero(inverse == h)[0] for h in range(len(labels))]
    taken = [h for h in range(len(labels)) if alloc[h] > 0]
    share = sizes[taken] / sizes[taken].sum()  # strata left out (k < #categories) are renormalised away
    out = np.zeros((n_draws, scores.shape[0]))
    for h, s in zip(taken, share):
        pos = np.argsort(rng.random((n_draws, len(members[h]))), axis=1)[:, :alloc[h]]
        out += s * scores[:, members[h][pos]].mean(axis=2).T
    return out


def _proportional_allocation(sizes: np.ndarray, k: int) -> np.ndarray:
    """k split in proportion to `sizes` by largest remainders, >= 1 per stratum when k >= #strata.

    >>> _proportional_allocation(np.array([50, 30, 20]), 10).tolist()
    [5, 3, 2]
    >>> _proportional_allocation(np.array([97, 2, 1]), 3).tolist()
    [1, 1, 1]
    """
    quota = sizes * k / sizes.sum()
    alloc = np.floor(quota).astype(np.int64)
    order = np.lexsort((np.arange(len(sizes)), -(quota - alloc)))  # largest remainder first, ties to first
    alloc[order[: k - int(alloc.sum())]] += 1
    if k >= len(sizes):  # every category represented: the largest allocation gives one to each empty one
        for h in np.nonzero(alloc == 0)[0]:
            alloc[np.argmax(alloc)] -= 1
            alloc[h] += 1
    return alloc


def _summarise(draws: pl.DataFrame, radius: dict[int, float]) -> pl.DataFrame:
    agg = [pl.len().alias("n_draws")]
    for s in _STATS:
        agg += [pl.col(s).mean().alias(s), pl.col(s).std().alias(f"{s}_sd")]
    summary = draws.group_by("k", "budget", "method").agg(agg)
    rand = draws.filter(pl.col("method") == "random").select(
        "k", pl.col("spearman").fill_null(-2.0).alias("r_spearman"), pl.col("mae_points").alias("r_mae"))
    kc = draws.filter(pl.col("method").is_in(["kcenter", "kcenter_weighted"])).select(
        "k", "method", pl.col("spearman").fill_null(-2.0).alias("spearman"), "mae_points")
    beats = (kc.join(rand, on="k")
             .group_by("k", "method")
             .agg((pl.col("spearman") > pl.col("r_spearman")).mean().alias("beats_random_spearman"),
                  (pl.col("mae_points") < pl.col("r_mae")).mean().alias("beats_random_mae")))
    radii = pl.DataFrame({"k": list(radius), "method": ["kcenter"] * len(radius),
                          "radius": list(radius.values())})
    radii = pl.concat([radii, radii.with_columns(pl.lit("kcenter_weighted").alias("method"))])
    order = {m: i for i, m in enumerate(METHODS)}
    return (summary.join(beats, on=["k", "method"], how="left")
            .join(radii, on=["k", "method"], how="left")
            .with_columns(pl.col("method").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
            .sort("k", "_o").drop("_o"))


def plot_fidelity(fidelity: LiteFidelity, stat: str = "spearman", *, x: Literal["budget", "k"] = "budget",
                  goal: float | None = None):
    """Curves of `stat` over budgets: k-center (plain and weighted) vs random and stratified (mean +- sd band).

    `stat` is one of spearman, kendall, pearson, mae_points, max_abs_error_points; `goal` draws a dashed line.
    Returns a plotly Figure (plotly is imported here only).
    """
    import plotly.graph_objects as go

    if stat not in _STATS:
        raise ValueError(f"stat must be one of {list(_STATS)}, got {stat!r}")
    colors = {"kcenter": "#1f77b4", "kcenter_weighted": "#2ca02c", "random": "#7f7f7f", "stratified": "#ff7f0e"}
    names = {"kcenter": "k-center (plain mean)", "kcenter_weighted": "k-center (cell-weighted)",
             "random": "random (mean ± sd)", "stratified": "stratified (mean ± sd)"}
    fig = go.Figure()
    for method in METHODS:
        rows = fidelity.summary.filter(pl.col("method") == method).sort("k")
        if rows.height == 0:
            continue
        xs = rows[x].to_list()
        ys = rows[stat].to_list()
        if method in ("random", "stratified"):
            sd = rows[f"{stat}_sd"].fill_null(0.0).to_list()
            hi = [(y or 0) + s for y, s in zip(ys, sd)]
            lo = [(y or 0) - s for y, s in zip(ys, sd)]
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", line={"width": 0},
                                     fillcolor=colors[method], opacity=0.2, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=names[method],
                                 line={"color": colors[method], "dash": "dot" if method == "stratified" else None},
                                 hovertemplate=f"{x}=%{{x}}<br>{stat}=%{{y:.3f}}<extra>{names[method]}</extra>"))
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dash", line_color="#d62728", annotation_text=f"goal {goal}")
    fig.update_layout(
        title=f"Lite fidelity on {fidelity.task} ({fidelity.metric}, {len(fidelity.models)} models): {stat}",
        xaxis_title="budget (share of the full set)" if x == "budget" else "docs kept (k)",
        yaxis_title=stat, template="plotly_white", legend={"orientation": "h", "y": -0.2},
    )
    if x == "budget":
        fig.update_xaxes(tickformat=".0%")
    return fig
