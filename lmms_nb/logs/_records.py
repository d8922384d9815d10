"""One sample record (a parsed JSON line of any lmms-eval / harness / lmms-nb version) -> canonical fields.

This is the reference reading of a line: the slow path uses it for every line of odd files, the fast
polars path (`_samples`) must give the same table for the files it accepts (a test checks both agree).

What it understands, across versions:
- `filtered_resps` as a list (`["B"]`), a nested list (`[["B"]]`) or a bare string (lmms-eval v0.7);
  `resps` as `[[...]]`, `[...]` or absent when equal to `filtered_resps` (raw_response = prediction then);
- the prompt from `input` (v0.4+), from `arguments` (`[context, gen_kwargs, ...]` to v0.3, or only generation
  kwargs, then there is none) or lm-evaluation-harness's `{"gen_args_0": {"arg_0": context}}`;
- metric values that are numbers, booleans, null, or dicts (MME `{question_id, category, score}`, LiveBench
  `{rating, explanation, ...}`, `{correct: bool, question_type}`): a dict gives its score-like field and its
  category-like field;
- `token_counts` (output tokens, generation seconds), `input_media` (paths, or base64 that stays on disk).

Example:
    >>> fields, metrics = normalize_record(
    ...     {"doc_id": 3, "target": "Yes", "filtered_resps": "Yes",
    ...      "mme_cognition_score": {"question_id": "a.png", "category": "OCR", "score": 1.0}},
    ...     source_file="s.jsonl", line=4)
    >>> fields["doc_id"], fields["prediction"], fields["category"], metrics
    (3, 'Yes', 'OCR', {'mme_cognition_score': 1.0})
"""

from __future__ import annotations

import math
from typing import Any

from lmms_nb.logs._record_fields import (
    BASE64_MIN_LEN,
    CATEGORY_FIELDS,
    COLLIDING_FIXED,
    COLLISION_PREFIX,
    NON_METRIC_KEYS,
    QUESTION_FIELDS,
    SCORE_FIELDS,
    BadLine,
    as_number,
    as_text,
    category_field,
    dict_extras,
    doc_id_of,
    first_response,
    image_ref_of,
    is_colliding_metric,
    json_text,
    metric_value,
    score_field,
)

# The field helpers live in _record_fields; the readers import the ones they use from here.
__all__ = [
    "BASE64_MIN_LEN", "CATEGORY_FIELDS", "COLLIDING_FIXED", "COLLISION_PREFIX", "NON_METRIC_KEYS", "SCORE_FIELDS",
    "BadLine", "category_field", "dict_extras", "is_colliding_metric", "normalize_record", "score_field",
]

def _prompt_from_arguments(arguments: Any) -> str | None:
    if isinstance(arguments, dict):  # lm-evaluation-harness: {"gen_args_0": {"arg_0": context, "arg_1": kwargs}}
        first = next(iter(arguments.values()), None)
        if isinstance(first, dict):
            arguments = first.get("arg_0")
        else:
            return None  # generation kwargs only (lmms-eval v0.2.4-0.3)
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, list) and arguments:
        head = arguments[0]
        if isinstance(head, list) and head:
            head = head[0]
        if isinstance(head, str):
            return head
    return None


def _first_user_message(messages: Any) -> str | None:
    """The text of the first user turn of a chat-format doc (`[{"role": "user", "content": ...}, ...]`)."""
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
                texts = [c.get("text") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
                return "\n".join(texts) if texts else None
            return None
    return None


def _loglikelihood_choice(filtered: Any) -> tuple[str, str] | None:
    """Multiple choice (lm-evaluation-harness, lmms-eval): [[loglik, is_greedy], ...] -> (argmax index, logliks
    as JSON). The index is numpy's argmax, which both tools take: the first NaN when there is one."""
    if not (isinstance(filtered, list) and len(filtered) > 1):
        return None
    logliks: list[float] = []
    for item in filtered:
        if isinstance(item, list) and len(item) == 1 and isinstance(item[0], list):
            item = item[0]
        if not (isinstance(item, list) and len(item) == 2):
            return None
        number = as_number(item[0])
        if number is None or isinstance(item[0], bool):
            return None
        logliks.append(number)
    nan = next((i for i, x in enumerate(logliks) if x != x), None)
    best = nan if nan is not None else max(range(len(logliks)), key=lambda i: logliks[i])
    return str(best), json_text(logliks)


def normalize_record(
    rec: Any,
    *,
    source_file: str,
    line: int | None,
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """Canonical fields (without run-level defaults) and metric values of one sample record; BadLine if unusable."""
    if not isinstance(rec, dict):
        raise BadLine(f"a JSON {type(rec).__name__} instead of an object", "one JSON object per line")
    if "doc_id" not in rec:
        raise BadLine("no doc_id", "an integer doc_id")
    fields: dict[str, Any] = {"doc_id": doc_id_of(rec["doc_id"])}

    filt = rec.get("filter") if rec.get("filter") is not None else rec.get("filter_key")
    fields["filter"] = None if is_colliding_metric("filter", filt) else as_text(filt)

    filtered = rec.get("filtered_resps")
    choice = _loglikelihood_choice(filtered)
    if choice is not None:
        fields["prediction"], loglik_text = choice
        raw = loglik_text
    else:
        fields["prediction"] = first_response(filtered)
        raw = None
    own_raw = rec.get("raw_response")
    if isinstance(own_raw, str):
        raw = own_raw
    elif raw is None and rec.get("resps") is not None:
        raw = first_response(rec["resps"])
    fields["raw_response"] = raw if raw is not None else fields["prediction"]

    prompt = rec.get("input")
    if not isinstance(prompt, str):
        prompt = _prompt_from_arguments(rec.get("arguments"))
    doc = rec.get("doc") if isinstance(rec.get("doc"), dict) else None
    if prompt is None and doc is not None:
        prompt = next((doc[k] for k in QUESTION_FIELDS if isinstance(doc.get(k), str)), None)
        if prompt is None:
            prompt = _first_user_message(doc.get("messages"))
    fields["input"] = prompt
    fields["target"] = as_text(rec.get("target"))

    metrics: dict[str, float | None] = {}
    metric_category: str | None = None
    for key, value in rec.items():
        name = key
        if is_colliding_metric(key, value):
            name = COLLISION_PREFIX + key  # readers warn once per file (see _samples.normalize_rows)
        elif key in NON_METRIC_KEYS:
            continue
        is_metric, number, cat = metric_value(name, value)
        if is_metric:
            metrics[name] = number
            if isinstance(value, dict):
                metrics.update(dict_extras(name, value, score_field(value, key)))
            if metric_category is None and cat is not None:
                metric_category = cat

    category = None if is_colliding_metric("category", rec.get("category")) else as_text(rec.get("category"))
    if category is None:
        category = metric_category
    if category is None and doc is not None:
        cat_key = category_field(doc)
        category = as_text(doc[cat_key]) if cat_key else None
    fields["category"] = category

    image_ref = rec.get("image_ref")
    if not isinstance(image_ref, str):
        image_ref = image_ref_of(rec.get("input_media"), source_file, line)
    fields["image_ref"] = image_ref

    counts = rec.get("token_counts")
    first_count = counts[0] if isinstance(counts, list) and counts and isinstance(counts[0], dict) else {}
    tokens = rec.get("output_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        tokens = first_count.get("output_tokens")
    fields["output_tokens"] = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
    latency = rec.get("latency_s")
    if as_number(latency) is None or isinstance(latency, (bool, str)):
        latency = first_count.get("generation_seconds")
    latency = as_number(latency) if not isinstance(latency, (bool, str)) else None
    fields["latency_s"] = latency if latency is None or math.isfinite(latency) else None

    fields["error"] = None if is_colliding_metric("error", rec.get("error")) else as_text(rec.get("error"))
    fields["judge"] = rec.get("judge") if isinstance(rec.get("judge"), str) else None
    for key in ("run_id", "model", "task", "split"):
        value = rec.get(key)
        fields[key] = value if isinstance(value, str) else None

    return fields, metrics
