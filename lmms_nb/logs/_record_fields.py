"""The fields of a sample record, one at a time: which keys are metrics, a metric's score and category fields,
doc ids, texts, first responses and image references. `_records.normalize_record` reads a whole line with
them; the fast path plans its polars schema with them (`_samples_plan`).

Example:
    >>> score_field({"question_id": "a.png", "category": "OCR", "score": 1.0}, "mme_cognition_score")
    'score'
    >>> metric_value("acc", True), first_response([["B"]])
    ((True, 1.0, None), 'B')
"""

from __future__ import annotations

import json
import re
from typing import Any

from lmms_nb.logs.schema import FIXED_COLUMNS

__all__ = [
    "BASE64_MIN_LEN", "CATEGORY_FIELDS", "COLLIDING_FIXED", "COLLISION_PREFIX", "NON_METRIC_KEYS", "QUESTION_FIELDS",
    "SCORE_FIELDS", "BadLine", "as_number", "as_text", "category_field", "dict_extras", "doc_id_of", "first_response",
    "image_ref_of", "is_base64", "is_colliding_metric", "json_text", "metric_value", "score_field",
]

#: Keys of a sample line that are never metrics (lmms-eval, lm-evaluation-harness, forks, and ours).
NON_METRIC_KEYS = frozenset(FIXED_COLUMNS) | {
    "doc", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash", "target_hash", "filter_key",
    "metrics", "token_counts", "input_media", "success", "bypass", "id", "question_id", "sample_id", "index",
    "idx", "timestamp", "time", "messages",
    "cached", "truncated", "history", "failed_metrics",  # lmms-nb's flags and retry history: never scores
    "prompt_source", "raw_responses",  # which prompt the model got; the k answers of a `repeats` task
}

#: Fields of a dict metric value that hold its score, by preference (MME/POPE "score", motion bench
#: "correct", LiveBench "rating", VLMEvalKit-style "hit"...).
SCORE_FIELDS = ("score", "correct", "rating", "acc", "accuracy", "hit", "is_correct", "match", "value", "result")
#: Fields of a dict metric value (or of a doc) that hold its category, by preference.
CATEGORY_FIELDS = (
    "category", "question_type", "task_type", "subtask", "sub_task", "l2-category", "l2_category",
    "subcategory", "topic", "subject", "capability", "type",
)
#: Doc fields that hold the question when a line has no prompt of its own.
QUESTION_FIELDS = ("question", "prompt", "query", "text")

BASE64_MIN_LEN = 512
#: A metric whose name is a fixed column (a fork's per-sample `prediction` score) goes in under this prefix.
COLLISION_PREFIX = "metric_"
#: Fixed columns that no log writes as a number or an object: such a value there is a metric whose name collides.
COLLIDING_FIXED = frozenset(FIXED_COLUMNS) - {"doc_id", "target", "input", "latency_s", "output_tokens"}
_ID_FIELD = re.compile(r"(?:^|_)(?:id|idx|index)$", re.IGNORECASE)


class BadLine(Exception):
    """A line a reader cannot use; carries what was wrong and what was expected."""

    def __init__(self, problem: str, expected: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expected = expected


def json_text(value: Any) -> str:
    """A non-string value as JSON text (how lists and dicts are stored in text columns)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


def first_response(value: Any) -> str | None:
    """The first response of a `filtered_resps`/`resps` value: a bare string, `[x, ...]` or `[[x, ...], ...]`."""
    if isinstance(value, list):
        if not value:
            return None
        head = value[0]
        if isinstance(head, list):
            return as_text(head[0]) if head else None
        return as_text(head)
    return as_text(value)


def doc_id_of(value: Any) -> int:
    """An integer doc_id (JSON integers, integral floats and digit strings); BadLine otherwise."""
    if isinstance(value, bool) or value is None:
        raise BadLine(f"doc_id is {json_text(value)}", "an integer doc_id")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise BadLine(f"doc_id is {json_text(value)[:60]}", "an integer doc_id")


def as_number(value: Any) -> float | None:
    """A float from a number, a boolean or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def score_field(value: dict[str, Any], metric: str) -> str | None:
    """Which field of a dict metric value holds its score (see SCORE_FIELDS), or None."""
    for key in SCORE_FIELDS + (metric,):
        if key in value and as_number(value[key]) is not None:
            return key
    # a dict with no known score field: its first float or boolean (ints are usually ids)
    for key, v in value.items():
        if isinstance(v, (bool, float)):
            return key
    return None


def category_field(value: dict[str, Any]) -> str | None:
    for key in CATEGORY_FIELDS:
        if key in value and value[key] is not None and not isinstance(value[key], (dict, list)):
            return key
    return None


def dict_extras(name: str, value: dict[str, Any], score_key: str | None) -> dict[str, float]:
    """The other numbers of a dict metric, as `<metric>.<field>` columns (ids, such as `question_id`, excepted).

    >>> dict_extras("f1", {"f1": 0.5, "precision": 1, "ok": True, "question_id": 7, "note": "x"}, "f1")
    {'f1.precision': 1.0, 'f1.ok': 1.0}
    """
    out = {}
    for key, inner in value.items():
        if key == score_key or _ID_FIELD.search(str(key)) or not isinstance(inner, (bool, int, float)):
            continue
        out[f"{name}.{key}"] = float(inner)
    return out


def is_colliding_metric(key: str, value: Any) -> bool:
    """A key named like a fixed column that holds a number or an object: a metric, not that column's value."""
    return key in COLLIDING_FIXED and isinstance(value, (bool, int, float, dict))


def metric_value(name: str, value: Any) -> tuple[bool, float | None, str | None]:
    """(is a metric, its float value, a category it carries) for one key of a sample line."""
    if value is None:
        return True, None, None
    if isinstance(value, (bool, int, float)):
        return True, float(value), None
    if isinstance(value, dict):
        key = score_field(value, name)
        cat = category_field(value)
        return True, as_number(value[key]) if key else None, as_text(value[cat]) if cat else None
    return False, None, None  # strings and lists are payload, not scores


def image_ref_of(media: Any, source_file: str, line: int | None) -> str | None:
    """`file:<path>` for a media path, `b64:<source_file>#<line>` for inline base64 (kept out of the table)."""
    if isinstance(media, list):
        media = media[0] if media else None
    if isinstance(media, dict):
        path = media.get("path") or media.get("image_path") or media.get("url")
        if isinstance(path, str) and path:
            media = path
        else:
            return f"b64:{source_file}#{line}"
    if not isinstance(media, str) or not media:
        return None
    if is_base64(media):
        return f"b64:{source_file}#{line}"
    return f"file:{media}"


def is_base64(text: str) -> bool:
    """Inline image data rather than a path: a data URI, or BASE64_MIN_LEN bytes or more (no path is that long)."""
    return text.startswith("data:") or len(text.encode("utf-8")) >= BASE64_MIN_LEN
