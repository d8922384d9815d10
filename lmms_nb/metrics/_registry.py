"""`METRICS`: the per-sample scorers by name, for YAML task configs and `rescore`."""

from __future__ import annotations

from typing import Any, Callable

from lmms_nb.metrics._choice import choice_accuracy
from lmms_nb.metrics._text import anls, exact_match, relaxed_accuracy, yes_no_accuracy

#: (prediction, target, doc) -> float; the same alias as `lmms_nb.tasks.task.Scorer`.
Scorer = Callable[[str, Any, "dict[str, Any] | None"], float]

METRICS: dict[str, Scorer] = {
    "exact_match": exact_match,
    "anls": anls,
    "relaxed_accuracy": relaxed_accuracy,
    "yes_no_accuracy": yes_no_accuracy,
    "choice_accuracy": choice_accuracy,
}
