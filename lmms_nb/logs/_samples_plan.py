"""The layout of a per-sample JSONL file, sniffed from its first lines, as an explicit polars schema (`FilePlan`).

The sniffed lines say which keys are metrics, whether `filtered_resps` is a bare string or a list, and which
field of a dict metric is its score. A file whose first lines are anything unusual gets no plan (None), which
sends it to the slow path (`_samples_slow`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.logs._records import (
    COLLIDING_FIXED,
    NON_METRIC_KEYS,
    SCORE_FIELDS,
    category_field,
    dict_extras,
    is_colliding_metric,
    score_field,
)

__all__ = ["SNIFF_LINES", "FilePlan", "plan_file", "sniff_records"]

#: Lines a file is sniffed on before polars reads it whole.
SNIFF_LINES = 100

_RESPONSE_TYPES = {0: pl.String, 1: pl.List(pl.String), 2: pl.List(pl.List(pl.String))}
_TEXT_KEYS = ("target", "input", "filter", "filter_key",
              "run_id", "model", "task", "split", "category", "image_ref", "error", "raw_response", "judge")


@dataclass
class FilePlan:
    """How polars reads a file: its schema, how its responses nest, and its metrics' kinds."""

    schema: dict[str, pl.DataType]
    filtered_depth: int  # 0: a bare string, 1: ["x"], 2: [["x"]]
    resps_depth: int
    metrics: dict[str, tuple[str, str | None, str | None]]  # name -> (kind, score field, category field)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, dict):
        return "dict"
    return "other"


def _depth(values: list[Any]) -> int | None:
    """How `filtered_resps`/`resps` values nest: 0 bare strings, 1 `[x]`, 2 `[[x]]`; -1 unknown (nulls, empty
    lists); None when the values disagree or hold something else (the slow path handles those)."""
    depths: set[int] = set()
    some_list = False
    for value in values:
        if value is None:
            continue
        if isinstance(value, str):
            depths.add(0)
        elif isinstance(value, list):
            some_list = True
            heads = [v for v in value if v is not None]
            if not heads:
                continue
            nested = all(isinstance(v, list) for v in heads)
            if nested and all(isinstance(x, str) or x is None for v in heads for x in v):
                depths.add(2)
            elif all(isinstance(v, str) for v in heads):
                depths.add(1)
            else:
                return None
        else:
            return None
    if len(depths) > 1 or (some_list and depths == {0}):
        return None
    return depths.pop() if depths else -1


def sniff_records(path: Path) -> list[dict[str, Any]] | None:
    """The first lines as dicts, or None when the file needs the slow path (bad, empty, torn tail)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            if size == 0:
                return None
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                return None  # no final newline: maybe a torn last line
            fh.seek(0)
            records = []
            for raw in fh:
                if not raw.strip():
                    continue
                rec = json.loads(raw.decode("utf-8"))
                if not isinstance(rec, dict):
                    return None
                records.append(rec)
                if len(records) >= SNIFF_LINES:
                    break
    except (OSError, ValueError, RecursionError):
        return None
    return records or None


def plan_file(records: list[dict[str, Any]]) -> FilePlan | None:
    """The explicit polars schema for a file whose first lines are `records`; None when only the slow path fits."""
    keys: dict[str, None] = {}
    for rec in records:
        if "arguments" in rec or "doc" in rec:
            return None  # lmms-eval up to v0.3 and forks: rare, older layouts, read in Python
        doc_id = rec.get("doc_id")
        if not isinstance(doc_id, int) or isinstance(doc_id, bool):
            return None
        for key in rec:
            keys.setdefault(key, None)
    filtered_depth = _depth([rec.get("filtered_resps") for rec in records])
    resps_depth = _depth([rec.get("resps") for rec in records])
    if filtered_depth is None or resps_depth is None or resps_depth == 0:
        return None
    if filtered_depth < 0:
        filtered_depth = 1  # only nulls and empty lists so far
    if resps_depth < 0:  # no `resps` in the first lines: lmms-eval nests them like filtered_resps, v0.7 flat
        resps_depth = 1 if filtered_depth == 0 else 2
    for rec in records:
        if not all(isinstance(rec.get(k), (str, int, float, type(None))) for k in ("target", "input")):
            return None  # lists or dicts there are stored as JSON text, which polars cannot write exactly
        counts = rec.get("token_counts")
        if counts is not None and not (isinstance(counts, list) and all(isinstance(c, dict) for c in counts)):
            return None
        media = rec.get("input_media")
        if media is not None and not (isinstance(media, list) and all(isinstance(m, str) for m in media)):
            return None

    # Only the keys the first lines have are read (each declared key costs a lookup per line), except `resps`,
    # which lmms-eval writes only on the lines where it differs from `filtered_resps`.
    # Responses are read with their exact list types: polars reads a list into a String column as text that
    # does not escape backslashes and control characters, so it cannot be decoded back exactly.
    # token_counts (numbers) and input_media (paths) are read as that text anyway and decoded afterwards:
    # polars builds nested List columns from NDJSON several times slower than strings; a media path with a
    # backslash or control character, the one case that text garbles, sends the file to the slow path.
    schema: dict[str, pl.DataType] = {"doc_id": pl.Int64}
    schema.update({key: pl.String for key in _TEXT_KEYS if key in keys})
    schema["filtered_resps"] = _RESPONSE_TYPES[filtered_depth]
    schema["resps"] = _RESPONSE_TYPES[resps_depth]
    for key, dtype in (("latency_s", pl.Float64), ("output_tokens", pl.Int64), ("token_counts", pl.String),
                       ("input_media", pl.String)):
        if key in keys:
            schema[key] = dtype
    metrics: dict[str, tuple[str, str | None, str | None]] = {}
    for key in keys:
        if key in COLLIDING_FIXED and any(is_colliding_metric(key, rec.get(key)) for rec in records):
            return None  # a metric named like a fixed column: renamed (with a warning) by the slow path
        if key in NON_METRIC_KEYS:
            continue
        values = [rec[key] for rec in records if key in rec]
        kinds = {_kind(v) for v in values} - {"null"}
        if kinds == {"other"}:
            continue  # text or lists: payload, not a metric
        if len(kinds) > 1:
            return None
        kind = kinds.pop() if kinds else "num"
        if kind == "dict":
            dicts = [v for v in values if isinstance(v, dict)]
            scores = {score_field(d, key) for d in dicts}
            cats = {category_field(d) for d in dicts}
            if len(scores) != 1 or len(cats) != 1:
                return None
            score, cat = scores.pop(), cats.pop()
            if any(dict_extras(key, d, score) for d in dicts):
                return None  # more numbers than its score: flattened into `<metric>.<field>` by the slow path
            if score is not None and score not in SCORE_FIELDS + (key,):
                return None  # a fallback choice that other lines may not share
            score_kinds = {_kind(d.get(score)) for d in dicts} - {"null"} if score else set()
            if score_kinds not in (set(), {"num"}, {"bool"}):
                return None
            struct: dict[str, pl.DataType] = {}
            if score:
                struct[score] = pl.Boolean if score_kinds == {"bool"} else pl.Float64
            if cat and cat != score:
                struct[cat] = pl.String
            if not struct:
                struct = {"__none__": pl.String}
            schema[key] = pl.Struct(struct)
            metrics[key] = ("dict", score, cat)
        else:
            schema[key] = pl.Boolean if kind == "bool" else pl.Float64
            metrics[key] = (kind, None, None)
    return FilePlan(schema=schema, filtered_depth=filtered_depth, resps_depth=resps_depth, metrics=metrics)
