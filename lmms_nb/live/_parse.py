"""Parsing the drafting and reviewing models' JSON replies, tolerant of how models actually answer.

Models wrap JSON in ```json fences, put a sentence before or after it, give a list where an object was
asked for, or spell keys with another case. What is tolerated: fences, text around the JSON, key case and
spaces (``"Reference Answer"`` = ``reference_answer``), a few synonyms (``ground_truth`` for ``answer``),
criteria given as a list of lines, numbers where text was asked for. What is not: no JSON at all, a missing
or empty field, a category that is not one of the subtasks. Each of those is a `ReplyParseError` whose
message names the screenshot (`source`), the item and the field, and quotes the start of the reply.

Example:
    >>> items, problems = parse_draft_reply('''Sure!
    ... ```json
    ... {"questions": [{"Subtask": "basic understanding", "Question": "Top headline?",
    ...                 "Answer": "Rain", "Criteria": ["10: says rain", "0: otherwise"]}]}
    ... ```''', source="page.png")
    >>> items[0]["subtask"], items[0]["criteria"], problems
    ('Basic Understanding', '10: says rain\\n0: otherwise', [])
"""

from __future__ import annotations

import re
from typing import Any

from lmms_nb._reply_json import extract_json, quote_reply
from lmms_nb.live._prompts import SUBTASKS, normalize_subtask

# extract_json (of lmms_nb._reply_json, which the LLM judge reads replies with too) is public in lmms_nb.live
__all__ = ["ReplyParseError", "extract_json", "parse_draft_reply", "parse_review_reply"]

FIELDS = ("subtask", "question", "answer", "criteria")
#: accepted spellings of each field, after lower-casing and turning spaces and dashes into underscores
SYNONYMS: dict[str, tuple[str, ...]] = {
    "subtask": ("subtask", "category", "sub_task"),
    "question": ("question",),
    "answer": ("answer", "reference_answer", "ground_truth", "reference"),
    "criteria": ("criteria", "grading_criteria", "criterion", "rubric", "scoring_criteria"),
    "notes": ("notes", "note", "changes", "comment", "comments"),
}

class ReplyParseError(ValueError):
    """A model reply that does not hold what was asked for; the message says which screenshot and what."""


def _quote(text: str) -> str:
    return quote_reply(text, 160)


def _key(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _field(obj: dict[str, Any], name: str) -> Any:
    keys = {_key(k): k for k in obj}
    for alias in SYNONYMS[name]:
        if alias in keys:
            return obj[keys[alias]]
    return None


def _text(value: Any) -> str | None:
    """A field value as text: strings stripped, numbers as written, lists of lines joined; None if empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        joined = "\n".join(str(v).strip() for v in value if str(v).strip())
        return joined or None
    if isinstance(value, dict) and value and all(isinstance(v, (str, int, float)) for v in value.values()):
        # criteria as {"10": "...", "5": "...", "0": "..."}: one line per score
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return None


def _item(obj: Any, where: str, subtasks: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise ReplyParseError(f"{where} is a {type(obj).__name__}, not a JSON object with {', '.join(FIELDS)}")
    out: dict[str, str] = {}
    missing = []
    for name in FIELDS:
        value = _text(_field(obj, name))
        if value is None:
            missing.append(name)
        else:
            out[name] = value
    if missing:
        raise ReplyParseError(f"{where} lacks {missing} (keys given: {sorted(obj)})")
    subtask = normalize_subtask(out["subtask"], subtasks)
    if subtask is None:
        raise ReplyParseError(f"{where} has subtask {out['subtask']!r}, not one of {list(subtasks)}")
    out["subtask"] = subtask
    notes = _text(_field(obj, "notes"))
    if notes is not None:
        out["notes"] = notes
    return out


def parse_draft_reply(
    text: str | None, *, source: str, subtasks: tuple[str, ...] = SUBTASKS
) -> tuple[list[dict[str, str]], list[str]]:
    """(items, problems) from a drafting reply: items have subtask, question, answer, criteria.

    The reply is ``{"questions": [...]}``, a bare list, or one question object. A reply with no usable JSON
    or no question list raises `ReplyParseError`; a bad item is reported in `problems` (a message naming the
    screenshot and the item) while the good items of the same reply are kept.
    """
    if text is None or not text.strip():
        raise ReplyParseError(f"{source}: empty reply from the drafting model")
    data = extract_json(text)
    if data is None:
        raise ReplyParseError(f"{source}: no JSON object or list in the drafting reply: {_quote(text)}")
    if isinstance(data, dict):
        keys = {_key(k): k for k in data}
        listed = next((data[keys[k]] for k in ("questions", "items", "qa", "qas") if k in keys), None)
        if listed is None:
            if _field(data, "question") is None:
                raise ReplyParseError(
                    f"{source}: the drafting reply's JSON has no 'questions' list (keys: {sorted(data)}): "
                    f"{_quote(text)}"
                )
            listed = [data]
        data = listed
    if not isinstance(data, list) or not data:
        raise ReplyParseError(f"{source}: the drafting reply's 'questions' is empty or not a list: {_quote(text)}")
    items: list[dict[str, str]] = []
    problems: list[str] = []
    for i, obj in enumerate(data):
        try:
            items.append(_item(obj, f"{source}: question {i}", subtasks))
        except ReplyParseError as e:
            problems.append(str(e))
    return items, problems


def parse_review_reply(text: str | None, *, source: str, subtasks: tuple[str, ...] = SUBTASKS) -> dict[str, str]:
    """The revised candidate from a reviewing reply: subtask, question, answer, criteria (and notes if given).

    >>> parse_review_reply('{"subtask": "Further Insights", "question": "Q?", "answer": "A", '
    ...                    '"criteria": "C", "notes": "clearer"}', source="x.png")["notes"]
    'clearer'
    """
    if text is None or not text.strip():
        raise ReplyParseError(f"{source}: empty reply from the reviewing model")
    data = extract_json(text)
    if data is None:
        raise ReplyParseError(f"{source}: no JSON object in the reviewing reply: {_quote(text)}")
    if isinstance(data, list):
        if len(data) != 1:
            raise ReplyParseError(f"{source}: the reviewing reply is a list of {len(data)} items, expected one object")
        data = data[0]
    if isinstance(data, dict) and _field(data, "question") is None:
        keys = {_key(k): k for k in data}
        for wrapper in ("revised", "revision", "result", "candidate"):
            if wrapper in keys and isinstance(data[keys[wrapper]], dict):
                data = data[keys[wrapper]]
                break
    return _item(data, f"{source}: review", subtasks)
