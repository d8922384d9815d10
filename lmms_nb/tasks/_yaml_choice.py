"""lmms-eval's `output_type: multiple_choice`: one loglikelihood request per choice, scored by the lowest loss.

lmms-eval 0.7.3 builds, for every doc, one request per choice: context = the prompt, continuation =
``target_delimiter + choice`` (with the doc's images). Its transformers backends answer each with
``(loss, is_greedy)``: the mean negative log-likelihood of the continuation's tokens and whether greedy
decoding would give exactly them. The predicted choice is ``argmin(loss)`` (``acc``), or ``argmin(loss /
len(choice))`` (``acc_norm``; lmms-eval divides by the choice's length in characters); ``exact_match`` is
whether the gold continuation is the greedy one.

In lmms-nb the backend's answers travel to scoring as the response text, JSON ``[[loss, is_greedy], ...]``
(`encode_results`), so the runner logs and resumes them like any answer.

Example:
    >>> results = [[2.0, False], [0.5, True], [0.3, False]]   # losses / lengths: 2.0, 0.25, 0.3
    >>> score_choices(results, ["a", "bb", "c"], gold=1, metrics=["acc", "acc_norm", "exact_match"])
    {'acc': 0.0, 'acc_norm': 1.0, 'exact_match': 1}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CHOICE_METRICS", "choice_requests", "decode_results", "encode_results", "score_choices"]

#: the metrics lmms-eval computes itself for multiple_choice (its default: acc and acc_norm)
CHOICE_METRICS = ("acc", "acc_norm", "exact_match")
DEFAULT_CHOICE_METRICS = ("acc", "acc_norm")


def choice_requests(context: str, choices: Sequence[str], target_delimiter: str = " ") -> list[tuple[str, str]]:
    """(context, continuation) for every choice, in order, as lmms-eval builds them."""
    return [(context, f"{target_delimiter}{choice}") for choice in choices]


def encode_results(results: Sequence[tuple[float, bool]]) -> str:
    """The response text that carries a doc's loglikelihood results to scoring and the log."""
    return json.dumps([[float(loss), bool(greedy)] for loss, greedy in results])


def decode_results(text: str) -> list[tuple[float, bool]]:
    try:
        value = json.loads(text)
        return [(float(loss), bool(greedy)) for loss, greedy in value]
    except (TypeError, ValueError) as e:
        raise ValueError(f"a multiple_choice answer must be JSON [[loss, is_greedy], ...], got {text[:80]!r}") from e


def _argmin(values: Sequence[float]) -> int:
    # numpy's argmin: the first of equal minima
    best = 0
    for i, v in enumerate(values):
        if v < values[best]:
            best = i
    return best


def score_choices(results: Sequence[Sequence[Any]], choices: Sequence[str], gold: Any,
                  metrics: Sequence[str]) -> dict[str, Any]:
    """lmms-eval 0.7.3's multiple_choice `process_results` for the metrics asked (see the module docstring).

    `gold` is an index, a choice's text, or a list of indices (several right choices).
    """
    losses = [float(r[0]) for r in results]
    greedy = [bool(r[1]) for r in results]
    if len(losses) != len(choices):
        raise ValueError(f"{len(losses)} loglikelihood results for {len(choices)} choices")
    lengths = [float(len(c)) for c in choices]
    pred = _argmin(losses)
    pred_norm = _argmin([loss / n if n else float("inf") for loss, n in zip(losses, lengths)])
    if isinstance(gold, list):
        golds = [g if g < len(choices) else -100 for g in gold]
        acc = 1.0 if pred in golds else 0.0
        acc_norm = 1.0 if pred_norm in golds else 0.0
        exact = int(any(greedy[g] if g != -100 else 0 for g in golds))
    else:
        if isinstance(gold, str):
            gold = list(choices).index(gold) if gold in choices else -100
        elif isinstance(gold, int):
            gold = gold if gold < len(choices) else -100
        acc = 1.0 if pred == gold else 0.0
        acc_norm = 1.0 if pred_norm == gold else 0.0
        exact = int(greedy[gold]) if gold != -100 else 0
    values = {"acc": acc, "acc_norm": acc_norm, "exact_match": exact}
    return {m: values[m] for m in metrics if m in values}


def choice_process_results(custom: Callable | None, doc_to_choice: Callable, doc_to_target: Callable,
                           metrics: Sequence[str], where: str) -> Callable[[dict, str], dict[str, Any]]:
    """A Task.process_results for a multiple_choice task: the task's own one, or lmms-eval's built-in scoring."""

    def process_results(doc: dict, prediction: str) -> dict[str, Any]:
        results = decode_results(prediction)
        if custom is not None:
            out = custom(doc, results)
            if not isinstance(out, dict):
                raise TypeError(f"{where}: process_results returned {type(out).__name__}, not a dict")
            return out
        return score_choices(results, doc_to_choice(doc), doc_to_target(doc), metrics)

    return process_results
