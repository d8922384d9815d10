"""A judge's reply read into a rating (`parse_judge_reply`, `Judgement`), and ratings into a task score.

A reply without a usable 0-10 rating is a *failed* judgement: its rating is None; it is excluded from the score
and counted (`judge_score`, `judge_aggregation`), never scored 0. `lmms_nb.judge` re-exports all of it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from lmms_nb._reply_json import extract_json, quote_reply
from lmms_nb.tasks.task import Doc

__all__ = ["JudgeParseError", "Judgement", "has_rating", "judge_aggregation", "judge_score", "judgement_from_reply",
           "parse_judge_reply"]

# the judge's logger: what a notebook user configures for lmms_nb.judge
log = logging.getLogger("lmms_nb.judge")


class JudgeParseError(ValueError):
    """A judge reply without a usable rating; the message says what was wrong and quotes the reply."""


@dataclass
class Judgement:
    """One judgement: `rating` in [0, 10], or None when the judgement failed (then `error` says why)."""

    rating: float | None
    explanation: str | None = None
    error: str | None = None
    raw: str | None = None  # the judge's reply text, as received

    @property
    def ok(self) -> bool:
        return self.rating is not None

    @property
    def score(self) -> float:
        """rating / 10, or NaN for a failed judgement (missing, never 0)."""
        return self.rating / 10.0 if self.rating is not None else math.nan


def has_rating(text: str) -> bool:
    """Whether a judge reply holds a usable 0-10 rating (only such replies are cached)."""
    try:
        parse_judge_reply(text)
    except JudgeParseError:
        return False
    return True


def judgement_from_reply(text: str | None, error: str | None) -> Judgement:
    """The `Judgement` of one reply (its text, or the request's error)."""
    if error is not None:
        return Judgement(rating=None, error=f"judge request failed: {error}", raw=text)
    try:
        rating, explanation = parse_judge_reply(text or "")
    except JudgeParseError as e:
        return Judgement(rating=None, error=str(e), raw=text)
    return Judgement(rating=rating, explanation=explanation, raw=text)


def parse_judge_reply(text: str) -> tuple[float, str | None]:
    """(rating, explanation) from a judge reply: a JSON object with a "Rating" key (any case), possibly in a
    code fence or surrounded by other text; the rating may be a number or a numeric string, within 0-10.

    >>> parse_judge_reply('Sure! ```json\\n{"Explanation": "right", "Rating": "8"}\\n``` Bye')
    (8.0, 'right')
    >>> parse_judge_reply('{"rating": 11}')
    Traceback (most recent call last):
    ...
    lmms_nb._judge_reply.JudgeParseError: judge rating 11 is outside 0-10 in reply: '{"rating": 11}'
    """
    obj = extract_json(text, objects_only=True)
    quoted = quote_reply(text, 200)
    if obj is None:
        raise JudgeParseError(f"no JSON object in judge reply: {quoted}")
    keys = {k.lower(): k for k in obj}
    if "rating" not in keys:
        raise JudgeParseError(f"judge JSON has no 'Rating' key (keys: {sorted(obj)}) in reply: {quoted}")
    value = obj[keys["rating"]]
    rating: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rating = float(value)
    elif isinstance(value, str):
        try:
            rating = float(value.strip())
        except ValueError:
            pass
    if rating is None or math.isnan(rating):
        raise JudgeParseError(f"judge rating {value!r} is not a number in reply: {quoted}")
    if not 0.0 <= rating <= 10.0:
        raise JudgeParseError(f"judge rating {value!r} is outside 0-10 in reply: {quoted}")
    explanation = obj.get(keys["explanation"]) if "explanation" in keys else None
    return rating, (str(explanation) if explanation is not None else None)


def judge_score(ratings: Iterable[Judgement | float | None]) -> tuple[float, int, int]:
    """(score 0-100, n_ok, n_failed): ``mean(rating / 10) * 100`` over successful judgements.

    Failed judgements (None, NaN, or a `Judgement` without a rating) are excluded and counted, never 0.
    With no successful judgement the score is NaN.

    >>> judge_score([10, 5, None, float("nan")])
    (75.0, 2, 2)
    """
    values = [j.rating if isinstance(j, Judgement) else j for j in ratings]
    ok = np.array([float(v) for v in values if v is not None and not math.isnan(float(v))], dtype=float)
    n_failed = len(values) - ok.size
    if n_failed:
        log.warning("%d judgement(s) failed and were excluded from the score", n_failed)
    score = float(np.mean(ok / 10.0) * 100.0) if ok.size else math.nan
    return score, int(ok.size), int(n_failed)


def judge_aggregation(values: Sequence[float], docs: Sequence[Doc] = ()) -> tuple[float, float | None]:
    """Aggregate per-sample rating/10 values (NaN = failed, skipped) into (score 0-100, stderr 0-100).

    >>> judge_aggregation([1.0, 0.5, float("nan")])
    (75.0, 25.0)
    """
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan, None
    stderr = float(stats.sem(arr, ddof=1) * 100.0) if arr.size > 1 else None
    return float(arr.mean() * 100.0), stderr
