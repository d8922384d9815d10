"""Per-sample JSONL files (lmms-eval v0.4+, lmms-nb, lm-evaluation-harness) -> canonical rows.

Two readings of the same file, giving the same table:
- the fast path: the first lines are sniffed to learn the layout (which keys are metrics, whether
  `filtered_resps` is a bare string or a list, which field of a dict metric is its score), then polars reads
  the whole file natively with that explicit schema (`scan_ndjson`) and derives the canonical columns with
  expressions. Any surprise later in the file (a type that does not fit, a bad line, a missing or duplicate
  doc_id) makes polars fail or the checks trip, and the file is read again by
- the slow path: a Python `json.loads` per line through `_records.normalize_record`, which names the file
  and line of every problem, tolerates a truncated last line of our own format, and assigns filter names to
  lmms-eval files that logged several filters without saying which line is which.

One thing the fast path cannot notice: a key that first appears after the sniffed lines is not read.
lmms-eval writes the same keys on every line of a task, except `resps`, which is therefore always read.

Example:
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "20240101_120000_samples_demo.jsonl"
    >>> _ = p.write_text("".join(json.dumps({"doc_id": i, "target": "B", "filtered_resps": ["B"],
    ...                                      "exact_match": 1.0}) + "\\n" for i in range(3)))
    >>> from lmms_nb.logs._errors import Problems
    >>> df = read_jsonl_samples(FileMeta(p, "lmms_eval", model="m", task="demo"), Problems(strict=True))
    >>> df.select("doc_id", "prediction", "exact_match").rows()
    [(0, 'B', 1.0), (1, 'B', 1.0), (2, 'B', 1.0)]
"""

from __future__ import annotations

import json
import mmap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._records import (
    BASE64_MIN_LEN,
    NON_METRIC_KEYS,
    SCORE_FIELDS,
    COLLIDING_FIXED,
    COLLISION_PREFIX,
    BadLine,
    category_field,
    dict_extras,
    is_colliding_metric,
    normalize_record,
    score_field,
)
from lmms_nb.logs.schema import FIXED_COLUMNS

#: Lines a file is sniffed on before polars reads it whole.
SNIFF_LINES = 100
#: Bad lines listed one by one per file in a lenient read; the rest are counted in one more entry.
MAX_LISTED_BAD_LINES = 20

_EXPECT_LINE = "one JSON object per line (a per-sample log)"


@dataclass
class FileMeta:
    """Run-level defaults for the rows of one samples file, and how to read it."""

    path: Path
    source_format: str
    model: str | None = None
    task: str | None = None
    run_id: str | None = None
    split: str | None = None
    filters: list[str] = field(default_factory=list)  # filter names from the results JSON, in order
    harness: bool = False  # lm-evaluation-harness lines (loglikelihood choices, `arguments` dicts)

    @property
    def tolerates_truncated_tail(self) -> bool:
        # an interrupted lmms-nb run leaves a torn last line; its next run heals the file
        return self.source_format == "lmms_nb"

    @property
    def default_filter(self) -> str:
        return self.filters[0] if len(self.filters) == 1 else "none"


@dataclass
class Row:
    """One normalized record and where it came from (`line` for JSONL, `label` such as 'logs[3]' otherwise)."""

    fields: dict[str, Any]
    metrics: dict[str, float | None]
    line: int | None
    label: str


# --------------------------------------------------------------------------- slow path


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


# --------------------------------------------------------------------------- fast path


_TOKEN_COUNTS = pl.List(pl.Struct({"output_tokens": pl.Int64, "generation_seconds": pl.Float64}))
_RESPONSE_TYPES = {0: pl.String, 1: pl.List(pl.String), 2: pl.List(pl.List(pl.String))}
_TEXT_KEYS = ("target", "input", "filter", "filter_key",
              "run_id", "model", "task", "split", "category", "image_ref", "error", "raw_response", "judge")


@dataclass
class _Plan:
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


def _sniff(path: Path) -> list[dict[str, Any]] | None:
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


def _plan(records: list[dict[str, Any]]) -> _Plan | None:
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
    return _Plan(schema=schema, filtered_depth=filtered_depth, resps_depth=resps_depth, metrics=metrics)


def _first_response(col: pl.Expr, depth: int) -> pl.Expr:
    if depth == 0:
        return col
    if depth == 1:
        return col.list.first()
    return col.list.first().list.first()


def _expressions(plan: _Plan, meta: FileMeta) -> list[pl.Expr]:
    source_file = str(meta.path)

    def col(name: str, dtype: pl.DataType = pl.String) -> pl.Expr:
        return pl.col(name) if name in plan.schema else pl.lit(None, dtype)

    filtered = pl.col("filtered_resps")
    prediction = _first_response(filtered, plan.filtered_depth)
    raw_response = pl.coalesce(col("raw_response"), _first_response(pl.col("resps"), plan.resps_depth), prediction)

    metric_exprs: list[pl.Expr] = []
    categories: list[pl.Expr] = [col("category")]
    for name, (kind, score, cat) in plan.metrics.items():
        if kind == "dict":
            value = pl.col(name).struct.field(score).cast(pl.Float64) if score else pl.lit(None, pl.Float64)
            if cat:
                categories.append(pl.col(name).struct.field(cat).cast(pl.String))
        else:
            value = pl.col(name).cast(pl.Float64)
        metric_exprs.append(value.alias(name))

    media = pl.col("__media")
    looks_base64 = media.str.starts_with("data:") | (media.str.len_bytes() >= BASE64_MIN_LEN)
    media_ref = (
        pl.when(media.is_null() | (media.str.len_bytes() == 0) | pl.col("__unsafe"))
        .then(pl.lit(None, pl.String))
        .when(looks_base64)
        .then(pl.format("b64:{}#{}", pl.lit(source_file), pl.col("__row") + 1))
        .otherwise(pl.format("file:{}", media))
    )
    first_count = pl.col("__first_count").struct

    def run_level(name: str, default: str | None) -> pl.Expr:
        return pl.coalesce(col(name), pl.lit(default, pl.String)).alias(name)

    fixed = {
        "run_id": run_level("run_id", meta.run_id),
        "model": run_level("model", meta.model),
        "task": run_level("task", meta.task),
        "doc_id": pl.col("doc_id"),
        "filter": pl.coalesce(col("filter"), col("filter_key"), pl.lit(meta.default_filter)).alias("filter"),
        "split": run_level("split", meta.split),
        "input": col("input").alias("input"),
        "target": col("target").alias("target"),
        "prediction": prediction.alias("prediction"),
        "raw_response": raw_response.alias("raw_response"),
        "category": pl.coalesce(categories).alias("category"),
        "image_ref": pl.coalesce(col("image_ref"), media_ref).alias("image_ref"),
        "error": col("error").alias("error"),
        "judge": col("judge").alias("judge"),
        "latency_s": pl.coalesce(col("latency_s", pl.Float64), first_count.field("generation_seconds")).alias(
            "latency_s"
        ),
        "output_tokens": pl.coalesce(col("output_tokens", pl.Int64), first_count.field("output_tokens")).alias(
            "output_tokens"
        ),
        "source_format": pl.lit(meta.source_format, pl.String).alias("source_format"),
        "source_file": pl.lit(source_file, pl.String).alias("source_file"),
    }
    missing = {name: pl.lit(None, dtype).alias(name) for name, dtype in FIXED_COLUMNS.items() if name not in fixed}
    return [fixed.get(name, missing.get(name)) for name in FIXED_COLUMNS] + metric_exprs + [pl.col("__unsafe")]


def _staged(plan: _Plan) -> list[pl.Expr]:
    # decoded once in a first stage, because the final expressions use them in several branches
    if "input_media" in plan.schema:
        # polars writes a list into a String column with `"` and newlines escaped but backslashes and other
        # control characters raw: without a backslash, the first path is exactly what lies between `["` and
        # the next quote (a regex is twice as fast as json_path_match here); with one, the row is unsafe
        text = pl.col("input_media")
        media = pl.when(text.str.starts_with("[")).then(text.str.extract(r'^\["([^"\\]*)"')).otherwise(text)
        unsafe = text.str.contains("\\", literal=True).fill_null(False)
    else:
        media, unsafe = pl.lit(None, pl.String), pl.lit(False)
    if "token_counts" in plan.schema:
        first_count = pl.col("token_counts").str.json_decode(_TOKEN_COUNTS).list.first()
    else:
        first_count = pl.lit(None, _TOKEN_COUNTS.inner)
    return [media.alias("__media"), unsafe.alias("__unsafe"), first_count.alias("__first_count")]


def scan_fast(meta: FileMeta) -> pl.LazyFrame | None:
    """A lazy polars read of the whole file with a sniffed schema; None when the file needs the slow path.

    The frame has one extra Boolean column, `__unsafe`: rows whose media path polars could not give back
    exactly (their image_ref is null); `read_jsonl_samples` rereads such files on the slow path.
    """
    if meta.harness:
        return None
    records = _sniff(meta.path)
    plan = _plan(records) if records else None
    if plan is None:
        return None
    lazy = pl.scan_ndjson(meta.path, schema=plan.schema, row_index_name="__row")
    return lazy.with_columns(_staged(plan)).select(_expressions(plan, meta)).sort("doc_id", maintain_order=True)


def _is_clean(frame: pl.DataFrame) -> bool:
    """No missing doc_id and no duplicate (doc_id, filter): otherwise the slow path names the lines.

    Also sends back to the slow path a file whose target or input holds a list or dict further down than
    the sniffed lines (polars would have turned it into text without JSON escaping); a plain text target
    that starts with "[" or "{" costs a slow read but reads the same.
    """
    if frame.height == 0 or frame["doc_id"].null_count():
        return False
    for name in ("target", "input"):
        text = frame[name]
        if (text.str.starts_with("[") | text.str.starts_with("{")).any():
            return False
    if frame["filter"].n_unique() == 1:
        return not frame["doc_id"].is_duplicated().any()
    return not frame.select(pl.struct("doc_id", "filter").is_duplicated().any()).item()


def _lines_match(frame: pl.DataFrame, meta: FileMeta) -> bool:
    """`b64:<file>#<line>` refs count rows as lines: true only when the file has no blank line (checked only
    when there are such refs, by counting newlines)."""
    if not frame["image_ref"].str.starts_with("b64:").any():
        return True
    with open(meta.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        newlines = 0
        for start in range(0, len(data), 1 << 24):
            newlines += data[start : start + (1 << 24)].count(b"\n")
    return newlines == frame.height


def read_jsonl_samples(meta: FileMeta, problems: Problems, *, fast: bool = True) -> pl.DataFrame:
    """Read one samples file: polars fast path when the file is regular, the Python slow path otherwise."""
    if fast:
        lazy = scan_fast(meta)
        if lazy is not None:
            try:
                frame = lazy.collect()
            except BaseException as e:  # polars errors, and its Rust panics (a BaseException)
                if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                    raise
                frame = None
            if frame is not None and not frame["__unsafe"].any() and _is_clean(frame) and _lines_match(frame, meta):
                return frame.drop("__unsafe")
    return read_jsonl_slow(meta, problems)


def scan_jsonl_samples(meta: FileMeta, problems: Problems) -> pl.LazyFrame:
    """Lazy version for `scan_logs`: unchecked polars scan when the head looks regular, else an eager slow read."""
    lazy = scan_fast(meta)
    if lazy is not None:
        return lazy.drop("__unsafe")
    return read_jsonl_slow(meta, problems).lazy()
