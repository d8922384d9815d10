"""Lite subsets built from earlier models' answers, and estimates of new models' full scores from them.

`build_difficulty_subset` picks the subset and its estimator from the earlier models' answers: by default
(``estimator="auto"``) whichever of `spread_cv` (a systematic sample spread over category and difficulty, each
doc drawn in proportion to the neighbour predictions' error, `_spread_design`) and `anchor_corrected` (anchor
points plus a linear correction) has the lower error on the earlier models held out in turn, spread_cv kept unless
anchor_corrected is lower by more than one standard error (`_nested.choose_estimator`), or one asked for, `difficulty_cv`
included (random within difficulty strata: docs all earlier models got right, all got wrong, and quantile bins
between, the budget split as `difficulty_cv` does in `lite_fidelity`) and `residual_cv` (random within strata of
category and that error, `_residual_design`). The `DifficultySubset` it returns keeps
the earlier models' scores, so a new model's full score is estimated from its answers on the subset alone
(`DifficultySubset.estimate`, `difficulty_estimates`; `_difficulty_subset_file` keeps all of it in one ``.npz``
for a later session): for difficulty_cv, residual_cv and spread_cv the mean over every doc of what the earlier
models most like it scored, plus its prediction error on the subset weighted by its design weight (share of the
full set over inclusion probability); for anchor_corrected the anchor-weighted mean plus the correction learned on
the earlier models.
`lite_fidelity` measures each on held-out models (`bench_lite_fidelity.py`).

Example:
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> skill, hard = rng.normal(size=12), rng.normal(size=200)
    >>> correct = (rng.random((12, 200)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
    >>> logs = pl.DataFrame({"model": np.repeat([f"m{i:02d}" for i in range(12)], 200), "task": "t",
    ...                      "doc_id": np.tile(np.arange(200), 12), "acc": correct.ravel()})
    >>> sub = build_difficulty_subset(logs.filter(pl.col("model") != "m11"), 20)
    >>> len(sub), sub.meta["method"], "m11" in sub.train_models
    (20, 'spread_cv', False)
    >>> answers = correct[11, np.searchsorted(np.arange(200), sub.doc_ids)]  # m11 on the subset only
    >>> bool(abs(sub.estimate(answers) - correct[11].mean()) < 0.1)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from lmms_nb.lite_selection._corrections import linear_correction, neighbour_control_variate
from lmms_nb.lite_selection._estimates import score_matrix
from lmms_nb.lite_selection._heldout import FoldEstimators
from lmms_nb.lite_selection._nested import ESTIMATORS, choose_estimator, design_of
from lmms_nb.lite_selection._subset import LiteSubset, resolve_budget

__all__ = ["DifficultySubset", "build_difficulty_subset", "difficulty_estimates"]

#: fewest earlier models a difficulty subset is built from (strata and neighbours need a population)
MIN_EARLIER_MODELS = 3


@dataclass(frozen=True)
class DifficultySubset(LiteSubset):
    """A `LiteSubset` drawn within difficulty strata, with what its estimator needs.

    `doc_ids` are the drawn docs; `design_weights` each one's share of the full set (for strata: its stratum's
    share over the docs drawn from it, summing to the share of the docs the drawn strata cover; for `spread_cv`'s
    systematic PPS draw: ``1 / (n * pi)``, whose sum varies from draw to draw around 1); `cell_sizes` are those
    shares apportioned to whole docs (strata no doc was drawn from spread over all picks), so `weights` give a
    stratified mean for tools that only know `LiteSubset`. `train` holds the earlier models' scores (rows of
    `train_models`) on every doc of `all_doc_ids`, `groups` the docs' categories (or None) and `group_prior` the
    per-category neighbour shrinkage chosen for this budget.
    """

    design_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    all_doc_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    train: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    train_models: tuple[str, ...] = ()
    groups: np.ndarray | None = None
    group_prior: float = float("inf")

    def __post_init__(self) -> None:
        super().__post_init__()
        # a subset read back from a file is checked here too: a broken one fails now, naming the field, not later
        # as a wrong estimate
        for name, dtype in (("design_weights", np.float64), ("all_doc_ids", np.int64), ("train", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        what = f"difficulty subset of {self.task!r}"
        ids = self.all_doc_ids
        if ids.ndim != 1 or (np.diff(ids) <= 0).any():
            raise ValueError(f"{what}: field 'all_doc_ids' must be sorted and unique")
        outside = self.doc_ids[~np.isin(self.doc_ids, ids)]
        if len(outside):
            raise ValueError(f"{what}: field 'doc_ids' has ids not in 'all_doc_ids': {outside[:10].tolist()}")
        if self.design_weights.shape != self.doc_ids.shape:
            raise ValueError(f"{what}: field 'design_weights' has {self.design_weights.size} values for "
                             f"{len(self.doc_ids)} doc_ids")
        if not (np.isfinite(self.design_weights) & (self.design_weights >= 0)).all():
            raise ValueError(f"{what}: field 'design_weights' must be finite and >= 0")
        if self.train.ndim != 2 or self.train.shape[1] != len(ids):
            raise ValueError(f"{what}: field 'train' has shape {self.train.shape}, not (models, {len(ids)})")
        if len(self.train_models) != len(self.train):
            raise ValueError(f"{what}: field 'train_models' names {len(self.train_models)} models for "
                             f"{len(self.train)} rows of 'train'")
        if not (np.isfinite(self.train) & (self.train >= 0) & (self.train <= 1)).all():
            raise ValueError(f"{what}: field 'train' must hold finite scores in [0, 1]")
        if self.groups is not None and len(self.groups) != len(ids):
            raise ValueError(f"{what}: field 'groups' has {len(self.groups)} labels for {len(ids)} docs")

    def estimate(self, answers: np.ndarray | Sequence[float], *, leave_out: str | None = None) -> np.ndarray | float:
        """Full-set score estimates (in the metric's units) from answers on the subset only: one row per model,
        one column per doc of `doc_ids` (in that order); a 1-D input gives a float. `leave_out` names an
        earlier model to drop from the neighbours (to estimate one of them without its own answers)."""
        y = np.asarray(answers, dtype=np.float64)
        one = y.ndim == 1
        y = np.atleast_2d(y)
        if y.shape[1] != len(self.doc_ids):
            raise ValueError(f"Lite subset of {self.task!r}: answers have {y.shape[1]} columns for "
                             f"{len(self.doc_ids)} subset doc_ids")
        bad = ~np.isfinite(y)
        if bad.any():
            raise ValueError(f"Lite subset of {self.task!r}: no score for doc_id "
                             f"{self.doc_ids[bad.any(axis=0)][:10].tolist()} (every subset doc needs one)")
        _check_unit_range(y, self.task, self.meta.get("metric"))
        train = self.train
        if leave_out is not None:
            if leave_out not in self.train_models:
                raise ValueError(f"Lite subset of {self.task!r}: leave_out {leave_out!r} is not an earlier model "
                                 f"of this subset ({list(self.train_models)})")
            train = self.train[[m != leave_out for m in self.train_models]]
        cols = np.searchsorted(self.all_doc_ids, self.doc_ids)
        full = np.zeros((len(y), len(self.all_doc_ids)))
        full[:, cols] = y
        w = np.zeros(len(self.all_doc_ids))
        w[cols] = self.design_weights
        if self.meta.get("method") == "anchor_corrected":
            est = linear_correction(train, cols, self.design_weights, y)
        else:
            est = neighbour_control_variate(train, w > 0, full, w, design_weights=True, groups=self.groups,
                                            group_prior=self.group_prior)
        return float(est[0]) if one else est


def build_difficulty_subset(
    logs: pl.DataFrame,
    budget: int | float,
    *,
    task: str | None = None,
    metric: str | None = None,
    filter: str | None = None,
    doc_ids: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    seed: int = 0,
    estimator: str = "auto",
) -> DifficultySubset:
    """Draw a Lite subset of `budget` docs (a count, or a fraction of the task) within difficulty strata learned
    from earlier models' per-sample results `logs` (the table `load_logs` returns; one task, or name it).

    `doc_ids` are the task's docs (default: the docs of the logs); every one needs a score from every earlier
    model. `models` picks the earlier models (default: all in the logs); a model left out never influences
    the subset. Scores must be in [0, 1] (e.g. accuracy). Estimate a new model with `DifficultySubset.estimate`
    or `difficulty_estimates`.

    `estimator` is "difficulty_cv", "residual_cv" (strata of category and prediction error, `_residual_design`;
    the same estimate), "spread_cv" (a systematic sample spread with probability in proportion to the prediction
    error, `_spread_design`; the same estimate), "anchor_corrected" (anchor points of the earlier models' answers, weighted
    mean plus a linear correction; `_anchors`, `_corrections`) or "auto" (default): the one of spread_cv and
    anchor_corrected with the lower error on the earlier models held out in turn, spread_cv kept unless
    anchor_corrected is lower by more than one standard error (`_nested.choose_estimator`); ``meta["estimator_reason"]`` says
    which and why, and `subset_summary` repeats it.
    """
    if estimator != "auto" and estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be 'auto' or one of {list(ESTIMATORS)}, got {estimator!r}")
    if isinstance(logs, pl.LazyFrame):
        logs = logs.collect()
    if models is not None:
        known = set(logs["model"].unique().to_list()) if "model" in logs.columns else set()
        absent = [m for m in models if m not in known]
        if absent:
            raise ValueError(f"models {absent} are not in the logs (models there: {sorted(known)})")
        logs = logs.filter(pl.col("model").is_in(list(models)))
    sm = score_matrix(logs, metric=metric, task=task, filter=filter)
    if len(sm.models) < MIN_EARLIER_MODELS:
        raise ValueError(f"task {sm.task!r}: a difficulty subset needs logs of at least {MIN_EARLIER_MODELS} "
                         f"earlier models, got {sm.models}")
    if sm.scores.min() < 0 or sm.scores.max() > 1:
        raise ValueError(f"task {sm.task!r}: metric {sm.metric!r} has scores outside [0, 1] "
                         f"({sm.scores.min():g} .. {sm.scores.max():g}); difficulty strata need scores in [0, 1]")
    keep = np.arange(len(sm.doc_ids))
    if doc_ids is not None:
        wanted = np.unique(np.asarray(doc_ids, dtype=np.int64))
        pos = np.searchsorted(sm.doc_ids, wanted)
        found = (pos < len(sm.doc_ids)) & (sm.doc_ids[np.minimum(pos, len(sm.doc_ids) - 1)] == wanted)
        if not found.all():
            raise ValueError(f"task {sm.task!r}: doc_ids {wanted[~found][:10].tolist()} "
                             f"({int((~found).sum())} of {len(wanted)}) have no scores in the logs")
        keep = pos
    all_ids, train = sm.doc_ids[keep], sm.scores[:, keep]
    groups = None if sm.categories is None else sm.categories[keep]
    k = resolve_budget(budget, len(all_ids))
    choice = choose_estimator(train, k, groups, seed=seed) if estimator == "auto" else None
    method = choice.method if choice is not None else estimator
    reason = choice.reason if choice is not None else f"{method} (asked for)"
    fold = FoldEstimators(train, seed=seed)
    # estimator_picked: chosen by comparing errors on these models (a verdict measured on them is optimistic)
    meta = {"method": method, "estimator_reason": reason, "estimator_picked": bool(choice and choice.inner_rmse),
            "metric": sm.metric, "filter": filter, "seed": seed}
    if method == "anchor_corrected":
        picks, design_w = fold.selected_anchors(k)
        prior = float("inf")
    else:
        design = design_of(fold, method, k, groups)
        prior = fold.group_prior(k, groups)
        picks = design.draw(np.random.default_rng([seed, k]))
        design_w = design.doc_weights(picks)[picks]
        if hasattr(design, "alloc"):  # strata (spread_cv's systematic sample has none)
            meta.update(n_strata=int(len(design.sizes)), stratum_sizes=design.sizes.tolist(),
                        stratum_alloc=design.alloc.tolist())
    return DifficultySubset(
        task=sm.task, doc_ids=all_ids[picks], cell_sizes=_whole_docs(design_w, len(all_ids)), n_full=len(all_ids),
        meta=meta,
        design_weights=design_w, all_doc_ids=all_ids, train=train, train_models=tuple(sm.models), groups=groups,
        group_prior=prior,
    )


def difficulty_estimates(
    samples: pl.DataFrame,
    subset: DifficultySubset,
    *,
    metric: str | None = None,
    filter: str | None = None,
    scale: float = 100.0,
) -> pl.DataFrame:
    """Per model of `samples` that answered every subset doc: the subset's plain mean, the estimate of the
    subset's estimator (``subset.meta["method"]``: difficulty_cv, residual_cv, spread_cv or anchor_corrected;
    `DifficultySubset.estimate`) from its subset answers only, and, where it answered every doc, its full-set
    score and the errors, in points (`scale` x metric). An earlier model the subset was built from is
    estimated with itself left out of the earlier models, but its error columns are null (``in_training``: its
    own answers chose the subset and the estimator, so its error is not a held-out measure; `lite_fidelity`'s
    rows of that method are, and its ``chosen`` row measures the automatic pick itself)."""
    if not isinstance(subset, DifficultySubset):
        raise TypeError(f"difficulty_estimates needs a DifficultySubset, got {type(subset).__name__}")
    sm = score_matrix(samples, metric=metric or subset.meta.get("metric"),
                      filter=filter if filter is not None else subset.meta.get("filter"),
                      task=subset.task if "task" in samples.columns else None, require_complete=False)
    _check_unit_range(sm.scores[np.isfinite(sm.scores)], sm.task, sm.metric)
    pos = {int(d): j for j, d in enumerate(sm.doc_ids)}
    absent = [int(d) for d in subset.doc_ids if int(d) not in pos]
    if absent:
        raise ValueError(f"task {sm.task!r}: subset doc_ids {absent[:10]} are not in the sample table")
    sub = sm.scores[:, [pos[int(d)] for d in subset.doc_ids]]
    answered = np.isfinite(sub).all(axis=1)
    if not answered.any():
        raise ValueError(f"task {sm.task!r}: no model has a score on every subset doc_id")
    trained = set(subset.train_models)
    all_cols = [pos.get(int(d)) for d in subset.all_doc_ids]
    full_scores = (sm.scores[:, all_cols] if None not in all_cols
                   else np.full((len(sm.models), 1), np.nan))  # the table lacks some of the task's docs
    rows = []
    for i in np.nonzero(answered)[0]:
        model = sm.models[i]
        complete = bool(np.isfinite(full_scores[i]).all())
        rows.append({"model": model, "in_training": model in trained, "n_subset": len(subset),
                     "full_points": float(full_scores[i].mean() * scale) if complete else None,
                     "lite_points": float(sub[i].mean() * scale),
                     "lite_difficulty_points": subset.estimate(sub[i], leave_out=model if model in trained else None)
                     * scale})
    held_out = ~pl.col("in_training")
    return pl.DataFrame(rows, schema_overrides={"full_points": pl.Float64}).with_columns(
        pl.when(held_out).then(pl.col("lite_points") - pl.col("full_points")).alias("lite_error_points"),
        pl.when(held_out).then(pl.col("lite_difficulty_points") - pl.col("full_points"))
        .alias("lite_difficulty_error_points"),
    )


def _check_unit_range(scores: np.ndarray, task: str, metric: str | None) -> None:
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(f"task {task!r}: metric {metric!r} has scores outside [0, 1] ({scores.min():g} .. "
                         f"{scores.max():g}); a difficulty subset estimates scores in [0, 1]")


def _whole_docs(share: np.ndarray, n: int) -> np.ndarray:
    """`share` (per pick) scaled to sum to `n` and rounded to whole docs by largest remainders."""
    quota = share / share.sum() * n
    out = np.floor(quota).astype(np.int64)
    out[np.argsort(-(quota - out), kind="stable")[: n - int(out.sum())]] += 1
    return out
