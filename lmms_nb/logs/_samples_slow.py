"""The slow path of reading a per-sample JSONL file: `json.loads` per line, every problem named with its line.

It goes through `_records.normalize_record`, tolerates a truncated last line of our own format, and assigns
filter names to lmms-eval files that logged several filters without saying which line is which.
`_lmms_eval_legacy` builds its (non-JSONL) tables through the same `normalize_rows` -> `rows_to_frame`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._records import COLLIDING_FIXED, COLLISION_PREFIX, BadLine, normalize_record
from lmms_nb.logs._sample_file_meta import FileMeta
from lmms_nb.logs.schema import FIXED_COLUMNS

__all__ = ["Row", "normalize_rows", "read_jsonl_slow", "resolve_filters", "rows_to_frame"]

#: Bad lines listed one by one per file in a lenient read; the rest are counted in one more entry.
MAX_LISTED_BAD_LINES = 20

_EXPECT_LINE = "one JSON object per line (a per-sample log)"


@dataclass
class Row:
    """One normalized record and where it came from (`line` for JSONL, `label` such as 'logs[3]' otherwise)."""

    fields: dict[str, Any]
    metrics: dict[str, float | None]
    line: int | None
    label: str


def _iter_json_lines(meta: FileMeta, problems: Problems) -> Iterator[tuple[int, Any]]:
    path = meta.path
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.error(path, None, f"cannot read the file ({e.strerror or e})", "a readable file")
        return
    data = data.removeprefix(b"\xef\xbb\xbf")  # tolerate a UTF-8 byte order mark
    if not data.strip():
        problems.error(path, None, "empty file", _EXPECT_LINE)
        return
    pieces = data.split(b"\n")
    ends_with_newline = data.endswith(b"\n")
    if ends_with_newline:
        pieces.pop()
    last_nonblank = max((i for i, p in enumerate(pieces, 1) if p.strip()), default=0)
    bad = 0
    for number, raw in enumerate(pieces, 1):
        if not raw.strip():
            continue
        problem = None
        try:
            yield number, json.loads(raw.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except RecursionError:
            problem = "JSON nested too deeply"
        except ValueError as e:  # JSONDecodeError, or an integer too long to convert
            problem = f"invalid JSON ({e.msg if isinstance(e, json.JSONDecodeError) else e})"
        if number == last_nonblank and (not ends_with_newline or meta.tolerates_truncated_tail):
            if meta.tolerates_truncated_tail:
                problems.warning(path, number, "truncated last line skipped (an interrupted run)", _EXPECT_LINE)
                continue
            problem = "truncated last line: the file ends in the middle of a record"
        bad += 1
        if bad <= MAX_LISTED_BAD_LINES:
            problems.error(path, number, problem, _EXPECT_LINE)
    if bad > MAX_LISTED_BAD_LINES:
        problems.error(path, None, f"{bad - MAX_LISTED_BAD_LINES} more bad lines not listed", _EXPECT_LINE)


def normalize_rows(
    records: Iterable[tuple[int | None, str, Any]], meta: FileMeta, problems: Problems
) -> list[Row]:
    """Normalize (line, label, record) triples; bad records are reported and skipped."""
    rows: list[Row] = []
    source_file = str(meta.path)
    bad = 0
    for line, label, rec in records:
        try:
            fields, metrics = normalize_record(rec, source_file=source_file, line=line)
        except BadLine as e:
            bad += 1
            if bad <= MAX_LISTED_BAD_LINES:
                problem = e.problem if line is not None else f"{label}: {e.problem}"
                problems.error(meta.path, line, problem, e.expected)
            continue
        rows.append(Row(fields, metrics, line, label))
    if bad > MAX_LISTED_BAD_LINES:
        problems.error(meta.path, None, f"{bad - MAX_LISTED_BAD_LINES} more bad records not listed", "valid records")
    renamed = sorted({name for row in rows for name in row.metrics
                      if name.startswith(COLLISION_PREFIX) and name[len(COLLISION_PREFIX):] in COLLIDING_FIXED})
    for name in renamed:
        problems.warning(meta.path, None, f"a per-sample metric is named {name[len(COLLISION_PREFIX):]!r}, like a "
                         f"column of the canonical table: it is kept as {name!r}", "metric names that are not columns")
    return rows


def resolve_filters(rows: list[Row], meta: FileMeta, problems: Problems) -> list[Row]:
    """Name each row's filter and drop duplicate (doc_id, filter) rows, reporting them.

    lmms-eval up to v0.3 wrote one line per doc and filter without naming the filter, in the order of the
    task's `filter_list` (its results JSON has the names): the n-th line of a doc gets the n-th name.
    """
    explicit = any(r.fields["filter"] is not None for r in rows)
    by_occurrence = not explicit and len(meta.filters) > 1
    occurrences: Counter[int] = Counter()
    seen: dict[tuple[int, str], Row] = {}
    kept: list[Row] = []
    for row in rows:
        doc_id = row.fields["doc_id"]
        if by_occurrence:
            n = occurrences[doc_id]
            occurrences[doc_id] += 1
            row.fields["filter"] = meta.filters[n] if n < len(meta.filters) else meta.filters[-1]
        elif row.fields["filter"] is None:
            row.fields["filter"] = meta.default_filter
        key = (doc_id, row.fields["filter"])
        first = seen.get(key)
        if first is not None:
            where = f"line {first.line}" if first.line is not None else first.label
            problem = f"duplicate doc_id {doc_id} (filter {key[1]!r}), first at {where}"
            if row.line is None:
                problem = f"{row.label}: {problem}"
            problems.error(meta.path, row.line, problem, "one record per doc_id and filter")
            continue
        seen[key] = row
        kept.append(row)
    return kept


def rows_to_frame(rows: list[Row], meta: FileMeta) -> pl.DataFrame:
    """A canonical-ordered frame (fixed columns, then metrics in order of appearance) from normalized rows."""
    columns: dict[str, list[Any]] = {name: [] for name in FIXED_COLUMNS}
    metric_names: dict[str, None] = {}
    for row in rows:
        for name in row.metrics:
            metric_names.setdefault(name, None)
    metric_columns: dict[str, list[Any]] = {name: [] for name in metric_names}
    defaults = {
        "run_id": meta.run_id,
        "model": meta.model,
        "task": meta.task,
        "split": meta.split,
        "source_format": meta.source_format,
        "source_file": str(meta.path),
    }
    for row in rows:
        f = row.fields
        for name in FIXED_COLUMNS:
            value = f.get(name)
            columns[name].append(defaults.get(name) if value is None else value)
        for name, values in metric_columns.items():
            values.append(row.metrics.get(name))
    schema = dict(FIXED_COLUMNS)
    schema.update({name: pl.Float64 for name in metric_names})
    frame = pl.DataFrame({**columns, **metric_columns}, schema=schema, strict=False)
    return frame.sort("doc_id", maintain_order=True)


def read_jsonl_slow(meta: FileMeta, problems: Problems) -> pl.DataFrame:
    """Read a samples file line by line in Python (reports every problem with its line)."""
    records = ((number, f"line {number}", rec) for number, rec in _iter_json_lines(meta, problems))
    rows = resolve_filters(normalize_rows(records, meta, problems), meta, problems)
    return rows_to_frame(rows, meta)
