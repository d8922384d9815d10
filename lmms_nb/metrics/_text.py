"""Per-sample text scorers: exact match, ANLS, ChartQA relaxed accuracy, MME yes/no.

Every scorer has the signature ``(prediction, target, doc=None, **options) -> float`` so it can be used as a
`lmms_nb.tasks.Metric` scorer directly. Model output is untrusted: ``None`` or non-string predictions are
scored as text (``None`` -> ``""``) instead of raising mid-run.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any, Iterable, Sequence

Doc = dict[str, Any]

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_DIGITS_TABLE = str.maketrans("", "", string.digits)


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _targets(target: str | Sequence[str]) -> list[str]:
    """A target or a list of acceptable targets, as a list of strings."""
    if isinstance(target, (list, tuple)):
        return [_as_text(t) for t in target]
    return [_as_text(target)]


def _normalize_exact(
    text: str,
    *,
    ignore_case: bool,
    ignore_punctuation: bool,
    ignore_numbers: bool,
    regexes_to_ignore: Iterable[str],
) -> str:
    # Same order as Hugging Face `evaluate`'s exact_match (which lmms-eval reuses): regexes, case,
    # punctuation, numbers. Whitespace is stripped last so " B " == "B" as lmms-eval's filters leave it.
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text)
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION_TABLE)
    if ignore_numbers:
        text = text.translate(_DIGITS_TABLE)
    return text.strip()


def exact_match(
    prediction: str,
    target: str | Sequence[str],
    doc: Doc | None = None,
    *,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
    regexes_to_ignore: Sequence[str] = (),
) -> float:
    """1.0 when the prediction equals the target (any of them, for a list) after normalisation, else 0.0.

    >>> exact_match(" Paris ", "Paris")
    1.0
    >>> exact_match("paris.", ["London", "Paris"], ignore_case=True, ignore_punctuation=True)
    1.0
    >>> exact_match("The answer: 4", "4", regexes_to_ignore=[r"^The answer:"])
    1.0
    """
    options = dict(
        ignore_case=ignore_case,
        ignore_punctuation=ignore_punctuation,
        ignore_numbers=ignore_numbers,
        regexes_to_ignore=tuple(regexes_to_ignore),
    )
    pred = _normalize_exact(_as_text(prediction), **options)
    return float(any(pred == _normalize_exact(t, **options) for t in _targets(target)))


def levenshtein_distance(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each).

    A two-row dynamic programme: no Levenshtein library (rapidfuzz, python-Levenshtein) is a dependency
    of lmms-nb, answers are short, and lmms-eval's own ANLS uses the same plain DP.

    >>> levenshtein_distance("kitten", "sitting")
    3
    """
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _normalize_anls(text: str) -> str:
    # lmms-eval (DocVQA/TextVQA/InfoVQA): lower-case, strip, collapse inner whitespace.
    return " ".join(text.strip().lower().split())


def anls(
    prediction: str,
    target: str | Sequence[str],
    doc: Doc | None = None,
    *,
    threshold: float = 0.5,
) -> float:
    """Average Normalised Levenshtein Similarity of one answer: max over targets of 1 - dist/max_len, 0 below threshold.

    Lengths are those of the normalised strings (lmms-eval measures the raw ones, which only differs when
    the strings differ in surrounding whitespace). Two empty strings are identical (1.0).

    >>> anls("helo", "hello")
    0.8
    >>> anls("HELLO ", ["world", "hello"])
    1.0
    >>> anls("abc", "xyz")
    0.0
    """
    pred = _normalize_anls(_as_text(prediction))
    best = 0.0
    for t in _targets(target):
        gold = _normalize_anls(t)
        length = max(len(pred), len(gold))
        similarity = 1.0 if length == 0 else 1.0 - levenshtein_distance(pred, gold) / length
        best = max(best, similarity)
    return best if best >= threshold else 0.0


def _to_number(text: str) -> float | None:
    """Parse "1,234.5", "12%" (-> 0.12), "$3"; None when the text is not a number."""
    text = text.strip().replace(",", "").lstrip("$").rstrip(".")
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        number = float(text) * scale
    except ValueError:
        return None
    # "inf"/"nan" parse as floats but are words here; compare them as text
    return number if math.isfinite(number) else None


def relaxed_accuracy(
    prediction: str,
    target: str | Sequence[str],
    doc: Doc | None = None,
    *,
    tolerance: float = 0.05,
) -> float:
    """ChartQA relaxed accuracy: numbers within `tolerance` relative error of the target, else exact text match.

    As lmms-eval's ``relaxed_correctness``: a percentage is divided by 100 on both sides, and a zero
    target falls back to text comparison (a relative error is undefined there). Case-insensitive.

    >>> relaxed_accuracy("104", "100"), relaxed_accuracy("106", "100")
    (1.0, 0.0)
    >>> relaxed_accuracy("1,000", "1000"), relaxed_accuracy("Yes", "yes")
    (1.0, 1.0)
    """
    pred_text = _as_text(prediction).strip()
    pred_number = _to_number(pred_text)
    for t in _targets(target):
        gold_text = t.strip()
        gold_number = _to_number(gold_text)
        if pred_number is not None and gold_number:  # `gold_number` falsy for None and 0
            if abs(pred_number - gold_number) / abs(gold_number) <= tolerance:
                return 1.0
        elif pred_text.lower() == gold_text.lower():
            return 1.0
    return 0.0


def normalize_yes_no(response: str) -> str:
    """"yes", "no" or "other", parsed as MME does (whole answer, single letter, then the first 4 characters).

    >>> [normalize_yes_no(r) for r in ["Yes.", "no", "N", "Yes, there is a cat.", "Not really", "a cat"]]
    ['yes', 'no', 'no', 'yes', 'no', 'other']
    """
    text = _as_text(response).lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    if len(text) == 1:
        return {"y": "yes", "n": "no"}.get(text, "other")
    prefix = text[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def yes_no_accuracy(prediction: str, target: str | Sequence[str], doc: Doc | None = None) -> float:
    """1.0 when the parsed yes/no of the prediction equals the target's (MME per-question accuracy).

    >>> yes_no_accuracy("Yes, it is.", "Yes"), yes_no_accuracy("maybe", "No")
    (1.0, 0.0)
    """
    parsed = normalize_yes_no(prediction)
    return float(parsed != "other" and any(parsed == normalize_yes_no(t) for t in _targets(target)))
