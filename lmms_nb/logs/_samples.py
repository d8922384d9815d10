"""Per-sample JSONL files (lmms-eval v0.4+, lmms-nb, lm-evaluation-harness) -> canonical rows.

Two readings of the same file, giving the same table (`_samples_fast`, `_samples_slow`):
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

import mmap

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._sample_file_meta import FileMeta
from lmms_nb.logs._samples_fast import scan_fast
from lmms_nb.logs._samples_slow import normalize_rows, read_jsonl_slow, resolve_filters, rows_to_frame

# FileMeta, normalize_rows, resolve_filters, rows_to_frame and scan_fast are imported from here by the
# readers, the legacy lmms-eval reader and the tests.
__all__ = [
    "FileMeta",
    "normalize_rows",
    "read_jsonl_samples",
    "resolve_filters",
    "rows_to_frame",
    "scan_fast",
    "scan_jsonl_samples",
]


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
