"""Full-set scores estimated from a Lite subset: the plain mean (LMMs-Eval-Lite), the cell-size-weighted mean, and
that mean corrected by what other models' answers show (`_corrections.linear_correction`).

Input is a canonical sample table (`lmms_nb.logs.schema`): columns model, task, doc_id and a metric column,
one row per model and doc. Scores are reported in points: `scale` x the metric (100 for metrics in [0, 1]).

Example:
    >>> import polars as pl
    >>> samples = pl.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "task": "t", "doc_id": [0, 1, 2, 3] * 2,
    ...                         "acc": [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]})
    >>> est = lite_estimates(samples, doc_ids=[0, 3], weights=[0.75, 0.25])
    >>> est.select("model", "full_points", "lite_points", "lite_weighted_points").rows()
    [('a', 50.0, 100.0, 100.0), ('b', 50.0, 50.0, 75.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from lmms_nb.lite_selection._corrections import MIN_TRAINING_MODELS, linear_correction
from lmms_nb.lite_selection._subset import LiteSubset
from lmms_nb.logs.schema import metric_columns


@dataclass(frozen=True)
class ScoreMatrix:
    """Per-sample scores of several models on one task, aligned: `scores[i, j]` is model i on doc j."""

    task: str
    metric: str
    models: list[str]
    doc_ids: np.ndarray
    scores: np.ndarray
    categories: np.ndarray | None  # one label per doc, or None when the table has no category


def score_matrix(
    samples: pl.DataFrame,
    *,
    metric: str | None = None,
    task: str | None = None,
    filter: str | None = None,
    require_complete: bool = True,
) -> ScoreMatrix:
    """Pivot a canonical sample table into models x docs, checking that every model answered every doc.

    The table must hold one task (or name it with `task`), one filter (or name it) and one row per model and
    doc. With `require_complete`, a missing or null score is an error naming the model and docs (fill
    failed samples with 0 first if that is what they mean: ``pl.col(metric).fill_null(0)``).
    """
    if isinstance(samples, pl.LazyFrame):
        samples = samples.collect()
    missing = [c for c in ("model", "doc_id") if c not in samples.columns]
    if missing:
        raise ValueError(f"sample table has no column(s) {missing} (columns: {samples.columns})")
    df = samples
    if "task" in df.columns:
        tasks = df["task"].unique().drop_nulls().sort().to_list()
        if task is None:
            if len(tasks) > 1:
                raise ValueError(f"sample table holds several tasks {tasks}; pick one with task=")
            task = tasks[0] if tasks else ""
        elif task not in tasks:
            raise ValueError(f"task {task!r} is not in the sample table (tasks: {tasks})")
        df = df.filter(pl.col("task") == task)
    task = task or ""
    if "filter" in df.columns:
        filters = df["filter"].fill_null("none").unique().sort().to_list()
        if filter is None and len(filters) > 1:
            raise ValueError(f"task {task!r} has several filters {filters}; pick one with filter=")
        if filter is not None:
            if filter not in filters:
                raise ValueError(f"filter {filter!r} is not in the sample table for task {task!r} (filters: {filters})")
            df = df.filter(pl.col("filter").fill_null("none") == filter)
    metrics = [c for c in metric_columns(df) if c not in ("model", "task", "doc_id")
               and df.schema[c].is_numeric()]
    if metric is None:
        if len(metrics) != 1:
            raise ValueError(f"pick the metric with metric=; numeric metric columns: {metrics}")
        metric = metrics[0]
    elif metric not in df.columns:
        raise ValueError(f"metric {metric!r} is not a column of the sample table (metric columns: {metrics})")
    if df.height == 0:
        raise ValueError(f"no samples for task {task!r}")

    dup = df.group_by("model", "doc_id").len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0, named=True)
        raise ValueError(f"task {task!r}: {dup.height} (model, doc_id) pairs appear more than once, e.g. model "
                         f"{r['model']!r} doc {r['doc_id']} ({r['len']} rows; several runs? filter on run_id)")
    models = df["model"].unique().sort().to_list()
    wide = df.pivot(on="model", index="doc_id", values=metric).sort("doc_id")
    if require_complete:
        for m in models:
            bad = wide.filter(pl.col(m).is_null() | pl.col(m).is_nan())["doc_id"]
            if len(bad):
                raise ValueError(f"task {task!r}, metric {metric!r}: model {m!r} has no score for {len(bad)} "
                                 f"doc(s), e.g. doc_id {bad.head(5).to_list()}; Lite fidelity needs every model's "
                                 f"score on every doc (fill failures with 0 if they count as wrong)")
    doc_ids = wide["doc_id"].to_numpy().astype(np.int64)
    scores = wide.select(models).to_numpy().astype(np.float64).T
    categories = None
    if "category" in df.columns and df["category"].null_count() < df.height:
        cats = (df.group_by("doc_id").agg(pl.col("category").drop_nulls().first())
                .join(wide.select("doc_id"), on="doc_id", how="right").sort("doc_id"))
        categories = cats["category"].fill_null("(none)").to_numpy().astype(str)
    return ScoreMatrix(task=task, metric=metric, models=models, doc_ids=doc_ids, scores=scores,
                       categories=categories)


def lite_estimates(
    samples: pl.DataFrame,
    subset: LiteSubset | None = None,
    *,
    doc_ids: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    metric: str | None = None,
    task: str | None = None,
    filter: str | None = None,
    scale: float = 100.0,
) -> pl.DataFrame:
    """Per model: the full-set score, the subset's plain mean, its weighted mean, and the weighted mean with a
    linear correction learned on the *other* models that answered every doc (null with fewer than 5 of them), in
    points; a model with answers on the subset only gets every estimate but the full score.

    Give a `LiteSubset`, or `doc_ids` (and optionally `weights`, e.g. cell sizes; normalised here).
    ``full_points`` is the mean over every doc of the table; null where the model lacks docs.
    """
    if subset is not None:
        doc_ids, weights = subset.doc_ids, subset.weights
        task = task if task is not None else (subset.task if "task" in samples.columns else None)
    if doc_ids is None:
        raise ValueError("lite_estimates needs a subset or doc_ids")
    ids = np.asarray(doc_ids, dtype=np.int64)
    w = np.ones(len(ids)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != ids.shape:
        raise ValueError(f"{len(w)} weights for {len(ids)} doc_ids")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, >= 0 and not all 0")
    sm = score_matrix(samples, metric=metric, task=task, filter=filter, require_complete=False)
    pos = {int(d): j for j, d in enumerate(sm.doc_ids)}
    absent = [int(d) for d in ids if int(d) not in pos]
    if absent:
        raise ValueError(f"task {sm.task!r}: subset doc ids {absent[:10]} are not in the sample table")
    cols = np.asarray([pos[int(d)] for d in ids])
    sub = sm.scores[:, cols]
    with np.errstate(invalid="ignore"):
        full = np.where(np.isnan(sm.scores).any(axis=1), np.nan, np.nanmean(sm.scores, axis=1)) * scale
        lite = sub.mean(axis=1) * scale
        weighted = (sub @ w) / w.sum() * scale
    corrected = _corrected(sm.scores, cols, w) * scale
    out = pl.DataFrame({
        "model": sm.models,
        "n_full": np.full(len(sm.models), sm.scores.shape[1]),
        "n_subset": np.full(len(sm.models), len(ids)),
        "full_points": full,
        "lite_points": lite,
        "lite_weighted_points": weighted,
        "lite_corrected_points": corrected,
    }).with_columns(pl.col("full_points", "lite_points", "lite_weighted_points", "lite_corrected_points")
                    .fill_nan(None))
    return out.with_columns(
        (pl.col("lite_points") - pl.col("full_points")).alias("lite_error_points"),
        (pl.col("lite_weighted_points") - pl.col("full_points")).alias("lite_weighted_error_points"),
        (pl.col("lite_corrected_points") - pl.col("full_points")).alias("lite_corrected_error_points"),
    )


def _corrected(scores: np.ndarray, cols: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted mean plus the linear correction learned on the models that answered every doc, leaving out
    the model being estimated; NaN with fewer than `MIN_TRAINING_MODELS` such others or scores outside [0, 1].

    A model that answered only the subset (NaN elsewhere) is what this is for: its correction comes from all
    the complete models."""
    out = np.full(len(scores), np.nan)
    complete = ~np.isnan(scores).any(axis=1)
    finite = scores[complete]
    if complete.sum() < MIN_TRAINING_MODELS or finite.size == 0 or finite.min() < 0 or finite.max() > 1:
        return out
    for i in np.nonzero(~np.isnan(scores[:, cols]).any(axis=1))[0]:
        train = complete.copy()
        train[i] = False
        if train.sum() >= MIN_TRAINING_MODELS:
            out[i] = linear_correction(scores[train], cols, w, scores[i:i + 1, cols])[0]
    return out
