"""Metrics: per-sample scorers, answer extraction and aggregations, with lmms-eval semantics.

Example:
    >>> from lmms_nb.metrics import METRICS, anls, extract_choice_letter, mean_stderr
    >>> anls("helo", "hello")
    0.8
    >>> extract_choice_letter("The answer is (c).")
    'C'
    >>> METRICS["exact_match"]("4", "4", None)
    1.0
    >>> mean_stderr([1, 0])
    (0.5, 0.5)
"""

from lmms_nb.metrics._aggregate import mean_stderr, mme_acc_plus
from lmms_nb.metrics._choice import choice_accuracy, extract_choice_letter
from lmms_nb.metrics._registry import METRICS, Scorer
from lmms_nb.metrics._text import (
    anls,
    exact_match,
    levenshtein_distance,
    normalize_yes_no,
    relaxed_accuracy,
    yes_no_accuracy,
)

__all__ = [
    "METRICS",
    "Scorer",
    "anls",
    "choice_accuracy",
    "exact_match",
    "extract_choice_letter",
    "levenshtein_distance",
    "mean_stderr",
    "mme_acc_plus",
    "normalize_yes_no",
    "relaxed_accuracy",
    "yes_no_accuracy",
]
