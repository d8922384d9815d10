"""lmms-eval's `metric_list` semantics: built-in metrics (exact_match, anls, ...) and aggregations (mean, median).

These reproduce lmms-eval 0.7.3's numbers, which differ from `lmms_nb.metrics` in small documented ways:
its `exact_match` (Hugging Face `evaluate` semantics) does not strip the target; its ANLS divides by the
raw (not whitespace-normalised) lengths and takes its threshold as ``thresh_hold``; its `median` is the
middle element of the values in doc order (not sorted). Predictions are stripped first, as lmms-eval does.

Example:
    >>> exact_match_lmms("Paris", ["paris"], ignore_case=True)
    1.0
    >>> anls_lmms("helo", ["hello"])
    0.8
    >>> AGGREGATIONS["mean"]([1.0, 0.0, 1.0, 1.0], [])
    (0.75, 0.25)
"""

from __future__ import annotations

import argparse
import contextvars
import inspect
import math
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

Doc = dict[str, Any]

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)


def exact_match_lmms(
    prediction: str,
    references: Sequence[Any],
    *,
    regexes_to_ignore: Sequence[str] | None = None,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
) -> float:
    """lmms-eval's `exact_match` of one prediction against one reference (the mean over `references`).

    The same normalisation in the same order as lmms-eval (regexes, case, punctuation, numbers), applied to
    both sides, with no stripping. A non-text reference is compared as its ``str``.

    >>> exact_match_lmms("4", [4]), exact_match_lmms("a", ["a "])
    (1.0, 0.0)
    """

    def norm(text: Any) -> str:
        text = "" if text is None else str(text)
        for pattern in regexes_to_ignore or ():
            text = re.sub(pattern, "", text)
        if ignore_case:
            text = text.lower()
        if ignore_punctuation:
            text = text.translate(_PUNCTUATION)
        if ignore_numbers:
            text = text.translate(_DIGITS)
        return text

    if not references:
        return 0.0
    pred = norm(prediction)
    # lmms-eval compares the prediction with each reference and averages (one reference in practice)
    return sum(pred == norm(r) for r in references) / len(references)


def anls_lmms(prediction: str, references: Sequence[Any], *, thresh_hold: float = 0.5) -> float:
    """lmms-eval's ANLS: 1 - min over references of dist / max(raw lengths); 0 below `thresh_hold`.

    >>> anls_lmms("abc", ["xyz", "abd"]), anls_lmms("abc", ["xyz"])
    (0.6666666666666667, 0.0)
    """
    from lmms_nb.metrics import (
        levenshtein_distance,  # imported on use: lmms_nb.metrics loads scipy
    )

    pred = "" if prediction is None else str(prediction)
    values = []
    for ref in references:
        ref = "" if ref is None else str(ref)
        gold_norm = " ".join(ref.strip().lower().split())
        pred_norm = " ".join(pred.strip().lower().split())
        length = max(len(ref.upper()), len(pred.upper()))
        values.append(0.0 if length == 0 else levenshtein_distance(gold_norm, pred_norm) / length)
    if not values:
        return 0.0
    result = 1 - min(values)
    return 0.0 if result < thresh_hold else result


def _lmms_nb_metric(name: str) -> Callable[..., float]:
    def score(prediction: str, references: Sequence[Any], doc: Doc | None = None, **options: Any) -> float:
        from lmms_nb.metrics import METRICS

        scorer = METRICS[name]
        return float(any(scorer(prediction, r, doc, **options) for r in references))

    return score


#: metric name -> (scorer(prediction, references, **options) -> float, the option names it accepts,
#: default aggregation, default higher_is_better, whether it takes the doc)
BUILTIN_METRICS: dict[str, tuple[Callable[..., float], frozenset[str], str, bool, bool]] = {
    "exact_match": (exact_match_lmms, frozenset({"regexes_to_ignore", "ignore_case", "ignore_punctuation",
                                                 "ignore_numbers"}), "mean", True, False),
    "anls": (anls_lmms, frozenset({"thresh_hold"}), "mean", True, False),
    # lmms-nb's own scorers, usable by name in a YAML (not in lmms-eval's registry)
    "relaxed_accuracy": (_lmms_nb_metric("relaxed_accuracy"), frozenset({"tolerance"}), "mean", True, True),
    "yes_no_accuracy": (_lmms_nb_metric("yes_no_accuracy"), frozenset(), "mean", True, True),
    "choice_accuracy": (_lmms_nb_metric("choice_accuracy"), frozenset(), "mean", True, True),
}

#: lmms-eval's default aggregation and direction of metric names a process_results may return
DEFAULT_AGGREGATION = {name: spec[2] for name, spec in BUILTIN_METRICS.items()} | {"acc": "mean", "acc_norm": "mean"}
DEFAULT_HIGHER_IS_BETTER = {name: spec[3] for name, spec in BUILTIN_METRICS.items()} | {"acc": True, "acc_norm": True}


def _mean(values: Sequence[Any], docs: Sequence[Doc] = ()) -> tuple[float, float | None]:
    # lmms-eval's arithmetic, step for step, so both value and stderr agree to the last bit: sum / len in doc
    # order, stderr = sqrt(sum of squared deviations / (n - 1)) / sqrt(n); none below two values.
    values = [float(v) for v in values]
    if not values:
        return math.nan, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    sample_sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))
    return mean, sample_sd / math.sqrt(len(values))


def _median(values: Sequence[Any], docs: Sequence[Doc] = ()) -> tuple[float, float | None]:
    # lmms-eval 0.7.3's `median` is arr[len // 2] of the unsorted values; kept so scores agree. Its stderr
    # is a 100k-iteration bootstrap there; not computed here.
    if not values:
        return math.nan, None
    return float(values[len(values) // 2]), None


def _bypass(values: Sequence[Any], docs: Sequence[Doc] = ()) -> tuple[float, None]:
    # lmms-eval 0.7.3's `bypass`: the task's real score is computed elsewhere (a judge, a submission file);
    # its registered aggregation returns the constant 999, kept so that scores agree
    return 999.0, None


#: aggregation name -> (values, docs) -> (value, stderr)
AGGREGATIONS: dict[str, Callable[[Sequence[Any], Sequence[Doc]], tuple[float, float | None]]] = {
    "mean": _mean,
    "median": _median,
    "bypass": _bypass,
}


class EvalArgs(argparse.Namespace):
    """What lmms-eval passes as `args` to an aggregation that takes it: its CLI arguments.

    Task code reads ``args.output_path`` (where submission files go), ``args.model``,
    ``args.log_samples_suffix``...; an argument lmms-nb has no value for reads as None, as lmms-eval's own
    defaults mostly are.

    >>> a = EvalArgs(model="llava_hf", output_path="out")
    >>> a.output_path, a.log_samples_suffix, a.wandb_args
    ('out', 'model_outputs', None)
    """

    def __init__(self, **fields: Any) -> None:
        defaults = {"model": None, "model_args": "", "tasks": None, "output_path": None, "log_samples": True,
                    "log_samples_suffix": "model_outputs", "limit": None, "num_fewshot": None, "batch_size": 1,
                    "seed": [0, 1234, 1234, 1234], "include_path": None, "gen_kwargs": "", "verbosity": "INFO",
                    "apply_chat_template": False, "fewshot_as_multiturn": False, "predict_only": False}
        super().__init__(**{**defaults, **fields})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


#: the `args` the runner sets while it aggregates a run's scores (`EvalArgs()` outside a run)
AGGREGATION_ARGS: contextvars.ContextVar[EvalArgs | None] = contextvars.ContextVar("lmms_nb_aggregation_args",
                                                                                    default=None)


def _takes_args(fn: Callable[..., Any]) -> bool:
    try:
        return "args" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def custom_aggregation(fn: Callable[..., Any]) -> Callable[[Sequence[Any], Sequence[Doc]], tuple[Any, None]]:
    """Wrap an lmms-eval `aggregation: !function utils.fn` (``fn(items) -> score``) as (value, stderr=None).

    A function with an ``args`` parameter gets it as lmms-eval passes it (``fn(items, args=...)``): the
    run's `EvalArgs` (see `AGGREGATION_ARGS`).
    """
    takes_args = _takes_args(fn)

    def aggregate(values: Sequence[Any], docs: Sequence[Doc] = ()) -> tuple[Any, None]:
        if takes_args:
            return fn(list(values), args=AGGREGATION_ARGS.get() or EvalArgs()), None
        return fn(list(values)), None

    aggregate.__wrapped__ = fn  # type: ignore[attr-defined]
    aggregate.__name__ = getattr(fn, "__name__", "aggregate")
    return aggregate


#: keys tried, in order, for the number inside a dict-valued per-sample metric (after the task's score_key)
_NUMERIC_KEYS = ("score", "rating", "correct", "acc", "accuracy")


def metric_number(value: Any, score_key: str | None = None) -> float | None:
    """The number a per-sample metric value stands for, for the canonical table's float column.

    lmms-eval's process_results may return dicts (MME: {question_id, category, score}); the aggregation
    needs the dict, the table a number: `score_key` (the task's, default "score"), else "rating", "correct",
    "acc", "accuracy". None when there is no number.

    >>> metric_number(1), metric_number(True), metric_number({"question_id": "q1", "score": 0.5}), metric_number("x")
    (1.0, 1.0, 0.5, None)
    """
    if isinstance(value, (int, float)):  # bool included
        return float(value)
    if isinstance(value, dict):
        for key in ((score_key,) if score_key else ()) + _NUMERIC_KEYS:
            inner = value.get(key)
            if isinstance(inner, (int, float)):  # bool is an int: True -> 1.0
                return float(inner)
    return None

