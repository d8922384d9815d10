"""Which learned Lite estimator suits this population? Chosen by cross-validation over the earlier models only.

No one estimator is best on every population: `anchor_corrected` (anchor points plus a linear correction) is
ahead on the synthbench zoo when a held-out model's siblings (other checkpoints of its run) are among the
earlier models, and well behind on the scikit-learn digits classifiers, where the neighbour control variate on
difficulty strata (`difficulty_cv`), on residual strata (`residual_cv`, `_residual_design`) or on a spread sample
of the same aim (`spread_cv`, `_spread_design`) leads
(`bench_lite_fidelity.py`). `choose_estimator`
picks one for a population from its earlier models alone: each earlier model is held out in turn (leave-one-out;
10 folds above `LOO_MAX_MODELS` models), each candidate is fitted on the others (its subset chosen and its
estimator learned there, as it would be for a new model) and scores the held-out model from its answers on that
subset; the candidate with the lowest mean absolute error over the held-out models wins (ties: the earlier
candidate), unless it is not the first candidate (`spread_cv`) and beats it by no more than one standard error of
the paired per-model difference: the first is then kept (the "one-standard-error rule" of cross-validation,
Breiman et al. 1984; Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*, 7.10). Why the first:
its unbiasedness comes from the sampling design (each doc drawn with a known probability), whatever the
population, so where it loses it loses by little (0.04-0.43 points on the zoo's six seeds), while anchor points'
linear correction is a model fitted on the earlier models and misses by far where it does not fit (inner errors of
2.7-4.2 points against 1.3 on the digits classifiers). A near tie is noise in the inner folds, and following it fold by fold
can land further off than either candidate alone (`bench_lite_fidelity.py --population zoo`, seed 5, before
this rule: 1.52 points where spread_cv alone read 1.39 and anchor_corrected 1.19). The standard error treats the
held-out models' differences as independent, which they are not quite (leave-one-out's training sets overlap,
Bengio & Grandvalet 2004; with 10 folds, a fold's models share one fit): it is the usual rough yardstick of the
rule, likely on the small side, so the rule, if anything, keeps spread_cv too rarely.
Leave-one-out, not 5 folds: a learned estimator's error grows as its training models get fewer,
most for anchor points (a linear correction over the anchors' answers), so 5 inner folds, fitting on 4/5 of the
earlier models where the subset itself is built on all of them, judge anchor_corrected harsher than it fares
on new models (on the zoo, `bench_lite_fidelity.py --population zoo --folds 5` prints how many of the 5 outer
folds pick it, per seed). Holding out a model's training-run siblings with it (folding by run) was tried while
choosing this and is not in the repository: it simulates a new model from a new run, which the benchmark's
folds (random over models) rarely hold out.
Mean absolute error, not squared: it is the figure a user compares against (the goal's MAE), and squared
error lets a few large inner misses outweigh many small ones; a candidate that is far off on many models still
loses. In `lite_fidelity` this
runs inside each outer fold on that fold's training models (nested cross-validation), so the pick never sees the
models it is scored on.

`heldout_estimates` is the one place both candidates are fitted and applied: `lite_fidelity`'s rows, the inner
folds here and a `DifficultySubset` built for new models all go through it, so what is chosen is what runs.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> skill, hard = rng.normal(size=14), rng.normal(size=300)
    >>> scores = (rng.random((14, 300)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
    >>> choice = choose_estimator(scores, 30, n_draws=4)
    >>> choice.method in CANDIDATES, sorted(choice.inner_mae) == sorted(CANDIDATES), choice.folds
    (True, True, 14)
    >>> sorted(choice.inner_diff_se) == ["anchor_corrected"]  # its paired difference from spread_cv, in points
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from lmms_nb.lite_selection._heldout import FoldEstimators, model_folds

__all__ = ["CANDIDATES", "DEFAULT_ESTIMATOR", "ESTIMATORS", "EstimatorChoice", "choose_estimator", "design_of",
           "heldout_estimates", "one_se_pick"]

#: the learned estimators `heldout_estimates` fits (each with its own subset selection)
ESTIMATORS: tuple[str, ...] = ("difficulty_cv", "residual_cv", "spread_cv", "anchor_corrected")
#: the ones `choose_estimator` picks from: spread_cv is residual_cv's estimator on a spread (systematic PPS)
#: sample of the same inclusion aim (`_spread_design`), as residual_cv is difficulty_cv's on strata made for it;
#: each was closer than the one it replaces on both populations (`bench_lite_fidelity.py`, 10% budget), so
#: offering both would only add selection noise
CANDIDATES: tuple[str, ...] = ("spread_cv", "anchor_corrected")
#: used when there are too few earlier models to cross-validate (the better of the two on the digits population)
DEFAULT_ESTIMATOR = "difficulty_cv"
#: fewest earlier models to cross-validate over (each held out in turn, 5+ left to fit on)
MIN_MODELS_TO_CHOOSE = 6
#: inner folds over the earlier models: leave-one-out up to LOO_MAX_MODELS models (each candidate is then fitted
#: once per model), else INNER_FOLDS; random-subset draws per inner fold
LOO_MAX_MODELS, INNER_FOLDS, INNER_DRAWS = 40, 10, 16


@dataclass(frozen=True)
class EstimatorChoice:
    """The estimator picked for a population and why: each candidate's root mean squared error and mean absolute
    error (the criterion), in points, on the earlier models held out in turn by `folds` inner folds (empty when there
    were too few models to choose), and for each candidate but the first (the one kept on a near tie) the standard
    error, in points, of its mean absolute error's difference from the first's (per held-out model, paired)."""

    method: str
    inner_rmse: dict[str, float]
    inner_mae: dict[str, float]
    n_models: int
    folds: int
    inner_diff_se: dict[str, float] = field(default_factory=dict)

    @property
    def kept_on_a_near_tie(self) -> bool:
        """True when another candidate's inner error was lower and this one was kept all the same (the
        one-standard-error rule of `one_se_pick`: the lower one was ahead by no more than one standard error)."""
        return bool(self.inner_mae) and min(self.inner_mae.values()) < self.inner_mae[self.method]

    @property
    def reason(self) -> str:
        """One plain sentence saying which estimator and why."""
        if not self.inner_rmse:
            return (f"{self.method} (the default: {self.n_models} earlier models are too few to compare estimators "
                    f"on, at least {MIN_MODELS_TO_CHOOSE} are needed)")
        others = "; ".join(f"{m} {e:.2f} ({self.inner_rmse[m]:.2f})"
                           for m, e in sorted(self.inner_mae.items(), key=lambda x: x[1]) if m != self.method)
        held = ("held out in turn", "each held out in turn") if self.folds == self.n_models else (
            "held out", f"held out by {self.folds} folds")
        errors = (f"mean absolute error {self.inner_mae[self.method]:.2f} points (root mean squared "
                  f"{self.inner_rmse[self.method]:.2f})" + (f" vs {others}" if others else ""))
        if self.kept_on_a_near_tie:
            best = min(self.inner_mae, key=self.inner_mae.get)
            se = self.inner_diff_se.get(best)
            within = "" if se is None else f", within one standard error ({se:.2f}) of the paired difference"
            kind = "the design-based candidate" if self.method == "spread_cv" else "the first candidate"
            return (f"{self.method}: kept, {kind}: {best}'s error on earlier models {held[0]} ({self.n_models} "
                    f"models, {held[1]}) is lower by only {self.inner_mae[self.method] - self.inner_mae[best]:.2f} "
                    f"points{within}: {errors}")
        # the first candidate is the one inner_diff_se has no entry for (each other one's difference is from it)
        first = next((c for c in self.inner_mae if c not in self.inner_diff_se), None)
        margin = (f", ahead of {first} by more than one standard error of the paired difference "
                  f"({self.inner_diff_se[self.method]:.2f})" if first and self.method in self.inner_diff_se else "")
        return (f"{self.method}: the lowest error on earlier models {held[0]} ({self.n_models} models, {held[1]})"
                f"{margin}: {errors}")


def one_se_pick(mae: dict[str, float], diff_se: dict[str, float]) -> str:
    """The candidate with the lowest `mae` (ties: the earlier key), unless it leads the first key by no more than
    its `diff_se` (the standard error of its difference from the first key's): then the first key.

    Example:
        >>> one_se_pick({"spread_cv": 1.6, "anchor_corrected": 1.5}, {"anchor_corrected": 0.2})
        'spread_cv'
        >>> one_se_pick({"spread_cv": 1.6, "anchor_corrected": 1.3}, {"anchor_corrected": 0.2})
        'anchor_corrected'
    """
    names = list(mae)
    best = min(names, key=lambda c: (mae[c], names.index(c)))
    return names[0] if best != names[0] and mae[names[0]] - mae[best] <= diff_se[best] else best


def heldout_estimates(fold: FoldEstimators, method: str, k: int, answers: np.ndarray, *,
                      groups: np.ndarray | None = None, rng: np.random.Generator | None = None,
                      n_draws: int = 1, design_weights: np.ndarray | None = None) -> np.ndarray:
    """Full-score estimates in [0, 1], draws x rows of `answers` (models x every doc; only the docs of the
    method's subset are read), by `method` fitted on `fold`'s training models at budget `k`.

    ``anchor_corrected`` has one subset (every draw is the same); ``difficulty_cv``, ``residual_cv`` (the same
    estimate on the strata of `_residual_design`) and ``spread_cv`` (on the spread sample of `_spread_design`)
    draw `n_draws` subsets from `rng` (`design_of`), or use the rows of
    `design_weights` (draws x docs, `DifficultyDesign.doc_weights`) when given.
    """
    y = np.atleast_2d(np.asarray(answers, dtype=np.float64))
    if method == "anchor_corrected":
        docs, w = fold.selected_anchors(k)
        est = fold.corrected(docs, w, y[:, docs])
        return np.broadcast_to(est, (n_draws if design_weights is None else len(design_weights), len(y))).copy()
    if method not in ("difficulty_cv", "residual_cv", "spread_cv"):
        raise ValueError(f"unknown estimator {method!r}; estimators: {list(ESTIMATORS)}")
    if design_weights is None:
        design = design_of(fold, method, k, groups)
        rng = rng if rng is not None else np.random.default_rng([fold.seed, k, 2])
        design_weights = np.stack([design.doc_weights(design.draw(rng)) for _ in range(n_draws)])
    prior = fold.group_prior(k, groups)
    dw = np.asarray(design_weights, dtype=np.float64)
    out = np.zeros((len(dw), len(y)))
    for i, row in enumerate(y):
        out[:, i] = fold.control_variate(np.broadcast_to(row, dw.shape), dw > 0, dw, design_weights=True,
                                         groups=groups, group_prior=prior)
    return out


def design_of(fold: FoldEstimators, method: str, k: int, groups: np.ndarray | None) -> Any:
    """The sampling design `method` (difficulty_cv, residual_cv or spread_cv) draws its subsets from: anything with
    ``draw(rng)`` (doc indices) and ``doc_weights(docs)`` (each doc's share of the full set over its inclusion)."""
    if method == "difficulty_cv":
        return fold.cv_design(k, groups)
    return fold.residual_design(k, groups) if method == "residual_cv" else fold.spread_design(k, groups)


def choose_estimator(train: np.ndarray, k: int, groups: np.ndarray | None = None, *,
                     candidates: Sequence[str] = CANDIDATES, folds: int | Literal["loo"] | None = None,
                     n_draws: int = INNER_DRAWS, seed: int = 0) -> EstimatorChoice:
    """The candidate with the lowest mean absolute error on `train`'s models (models x docs, in [0, 1]) held out by
    `folds` (default: "loo" up to `LOO_MAX_MODELS` models, else `INNER_FOLDS`), each estimated by the candidate
    fitted on the other models at budget `k`; ties go to the earlier candidate, and the first candidate is kept
    when the lowest beats it by no more than one standard error of the paired per-model difference. With fewer than
    `MIN_MODELS_TO_CHOOSE` models: `DEFAULT_ESTIMATOR`, no errors."""
    t = np.asarray(train, dtype=np.float64)
    unknown = [c for c in candidates if c not in ESTIMATORS]
    if unknown or not candidates:
        raise ValueError(f"unknown estimator(s) {unknown or list(candidates)}; estimators: {list(ESTIMATORS)}")
    if len(set(candidates)) < len(candidates):
        raise ValueError(f"candidates listed twice: {list(candidates)}")
    if len(t) < MIN_MODELS_TO_CHOOSE:
        return EstimatorChoice(method=DEFAULT_ESTIMATOR, inner_rmse={}, inner_mae={}, n_models=len(t), folds=0)
    if folds is None:
        folds = "loo" if len(t) <= LOO_MAX_MODELS else INNER_FOLDS
    tests = model_folds(len(t), folds, seed=seed)
    # per held-out model, each candidate's squared and absolute error (mean over draws)
    sq, ab = {c: np.zeros(len(t)) for c in candidates}, {c: np.zeros(len(t)) for c in candidates}
    for f, test in enumerate(tests):
        fold = FoldEstimators(np.delete(t, test, axis=0), seed=seed)
        full = t[test].mean(axis=1)
        for c in candidates:
            est = heldout_estimates(fold, c, k, t[test], groups=groups, n_draws=n_draws,
                                    rng=np.random.default_rng([seed, k, f]))
            sq[c][test] = ((est - full) ** 2).mean(axis=0)
            ab[c][test] = np.abs(est - full).mean(axis=0)
    mae = {c: 100 * float(e.mean()) for c, e in ab.items()}
    diff_se = {c: 100 * float(stats.sem(ab[candidates[0]] - ab[c])) for c in candidates[1:]}
    return EstimatorChoice(method=one_se_pick(mae, diff_se), inner_rmse={c: 100 * float(np.sqrt(e.mean())) for c, e in sq.items()},
                           inner_mae=mae, n_models=len(t), folds=len(tests), inner_diff_se=diff_se)
