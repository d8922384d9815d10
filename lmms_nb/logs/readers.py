"""`load_logs` / `scan_logs` / `load_scores`: every evaluation log format into the canonical sample table.

Readers, chosen automatically per file (see `lmms_nb.logs._detect`):
- lmms-nb's own runs (lmms-eval v0.7 layout plus our keys; a results JSON with an `lmms_nb` block);
- lmms-eval, every layout: v0.1 and v0.2.0-0.2.3 `<task>.json` logs, v0.2.4+ `<date>_samples_<task>.jsonl`
  with every line variant (`resps` nested, flat or absent, `filtered_resps` a list or a bare string, `doc`,
  `arguments`, dict-valued metrics, several filters, `token_counts`, `input_media`, predict-only `bypass`);
- VLMEvalKit prediction tables (`<model>_<dataset>.xlsx|tsv|csv`);
- lm-evaluation-harness `samples_<task>_<date>.jsonl` with `results_<date>.json`;
- inspect_ai logs, `.eval` archives and `.json` files (one row per sample and epoch).

Per-model score tables (results JSONs, VLMEvalKit `*_score.csv`) are aggregates, not samples: `load_scores`
reads them into a long table of (run_id, model, task, metric, filter, value, stderr).

Example:
    >>> import json, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "org__model"
    >>> out.mkdir()
    >>> lines = [{"doc_id": i, "target": "4", "filtered_resps": [a], "exact_match": float(a == "4")}
    ...          for i, a in enumerate(["4", "5", "4"])]
    >>> _ = (out / "20240101_120000_samples_count.jsonl").write_text(
    ...     "".join(json.dumps(line) + "\\n" for line in lines))
    >>> df = load_logs(out.parent)
    >>> df.select("model", "task", "doc_id", "prediction", "exact_match").rows()[1]
    ('org__model', 'count', 1, '5', 0.0)
    >>> df["source_format"][0], df["exact_match"].mean()
    ('lmms_eval', 0.6666666666666666)
    >>> (out / "20240101_120000_samples_bad.jsonl").write_text('{"doc_id": "x"}\\n')
    16
    >>> df, errors = load_logs(out.parent, strict=False)
    >>> df.height, [e.line for e in errors]
    (3, [1])
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal, Sequence, overload

import polars as pl

from lmms_nb.logs._cache import LogCache, default_cache
from lmms_nb.logs._detect import KNOWN_FORMATS, Found, classify_name, discover, expand_results
from lmms_nb.logs._errors import LogFormatError, Problems
from lmms_nb.logs._inspect import read_inspect_log
from lmms_nb.logs._lmms_eval_legacy import read_legacy_json
from lmms_nb.logs._model_names import unify_model_names
# _RunContext is imported from here by the tests
from lmms_nb.logs._run_context import RunContext as _RunContext
from lmms_nb.logs._scores import SCORE_COLUMNS, load_scores
from lmms_nb.logs._samples import read_jsonl_samples, scan_jsonl_samples
from lmms_nb.logs._vlmevalkit import read_predictions
from lmms_nb.logs.schema import FIXED_COLUMNS, conform, empty_samples

__all__ = ["LogFormatError", "load_logs", "scan_logs", "load_scores", "SCORE_COLUMNS"]

PathLike = str | os.PathLike
Paths = PathLike | Sequence[PathLike]

# --------------------------------------------------------------------------- samples


def _read_one(item: Found, context: _RunContext, problems: Problems, *, fast: bool = True) -> pl.DataFrame | None:
    if item.kind in ("samples", "harness"):
        frame = read_jsonl_samples(context.meta(item), problems, fast=fast)
        return _with_run_status(frame, item.path, context) if frame is not None else None
    if item.kind == "legacy":
        return read_legacy_json(item.path, problems)
    if item.kind == "vlmevalkit":
        return read_predictions(item.path, problems, item.judged)
    if item.kind == "inspect":
        return read_inspect_log(item.path, problems)
    if item.kind == "vlmevalkit_score":
        if item.explicit:
            problems.error(
                item.path, None, "a per-model score table, not per-sample logs (read it with load_scores)",
                "per-sample logs",
            )
        return None
    return None


def _with_run_status(frame: pl.DataFrame, path: Path, context: _RunContext) -> pl.DataFrame:
    """The run's status on every row; a samples file holding fewer docs than its results JSON counts is
    "partial", with a warning (its run was cut short, or the file was truncated since)."""
    status, expected = context.status.get(path, (None, None))
    if expected and frame.height:
        found = frame["doc_id"].n_unique()
        if found < expected:
            warnings.warn(f"{path}: holds {found} of the {expected} docs its results JSON counts; read as a "
                          "partial run", UserWarning, stacklevel=3)
            status = "partial"
    return frame.with_columns(run_status=pl.lit(status, pl.String))


def _depends_on(item: Found) -> tuple[Path, ...]:
    """The files whose content goes into `item`'s rows besides itself (for the cache key)."""
    if item.kind in ("samples", "harness"):
        return tuple(sorted(p for p in item.path.parent.glob("*.json") if classify_name(p) == "results"))
    if item.kind == "legacy":
        return (item.path.parent / "results.json",)
    return item.judged


def _read_cached(item: Found, context: _RunContext, problems: Problems, cache: LogCache | None) -> pl.DataFrame | None:
    """`_read_one` through the Parquet cache. The run status (and its short-run warning) is applied after the
    cache, so a cached file warns again."""
    if cache is None or item.kind == "vlmevalkit_score":
        return _read_one(item, context, problems)
    before = len(problems.items)
    if item.kind in ("samples", "harness"):
        meta = context.meta(item)
        frame = cache.get_or_read(item.path, _depends_on(item), item.kind, lambda: read_jsonl_samples(meta, problems),
                                  cacheable=lambda: len(problems.items) == before)
        return _with_run_status(frame, item.path, context) if frame is not None else None
    return cache.get_or_read(item.path, _depends_on(item), item.kind, lambda: _read_one(item, context, problems),
                             cacheable=lambda: len(problems.items) == before)


def _sample_files(paths: Paths, problems: Problems) -> list[Found]:
    found = discover(paths, problems)
    files = expand_results(found, problems)
    from lmms_nb.images import allow_image_roots

    allow_image_roots(*{f.path.parent for f in files})  # a log's images may be read from its own folder
    if not files and not problems.items:
        problems.error(
            ", ".join(os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)) or "[]",
            None, "no log files found", KNOWN_FORMATS,
        )
    return files


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f is not None and f.height]
    if not frames:
        return empty_samples()
    # no rechunk: copying a million rows' strings into one buffer would cost more than reading them did
    return conform(pl.concat(frames, how="diagonal_relaxed", rechunk=False))


@overload
def load_logs(paths: Paths, *, strict: Literal[True] = ..., cache: bool = ...) -> pl.DataFrame: ...
@overload
def load_logs(
    paths: Paths, *, strict: Literal[False], cache: bool = ...
) -> tuple[pl.DataFrame, list[LogFormatError]]: ...
def load_logs(
    paths: Paths, *, strict: bool = True, cache: bool = True
) -> pl.DataFrame | tuple[pl.DataFrame, list[LogFormatError]]:
    """Every per-sample log under `paths` (files, folders searched recursively, globs) as one canonical table.

    Rows: one per model x task x doc (x filter), with the fixed columns of `lmms_nb.logs.schema` then one
    Float64 column per metric, named as the source wrote it. `source_format` says which reader read the row
    ("lmms_nb", "lmms_eval", "lm_eval_harness", "vlmevalkit") and `source_file` from which file.

    strict=True raises `LogFormatError` ("path:line: what was wrong (expected ...)") at the first problem;
    strict=False skips what it cannot read and returns `(df, errors)`, a list of `LogFormatError` (including
    warning-level entries for what it tolerated, such as the truncated last line of an interrupted lmms-nb run).

    cache=True keeps each file's parsed rows as Parquet under `$LMMS_NB_CACHE/logs`, keyed by path, size and
    modification time (see `lmms_nb.logs._cache`): loading the same logs again reads only what changed.
    """
    problems = Problems(strict)
    context = _RunContext(problems)
    store = default_cache() if cache else None
    frames = [_read_cached(item, context, problems, store) for item in _sample_files(paths, problems)]
    df = unify_model_names(_concat(frames))  # one name per model across tools (org/name, org__name, paths)
    return df if strict else (df, problems.items)


def _conform_lazy(lazy: pl.LazyFrame) -> pl.LazyFrame:
    # `schema.conform` for a LazyFrame: fixed columns first with their dtypes, metrics as Float64
    names = lazy.collect_schema().names()
    exprs = [
        pl.col(name).cast(dtype, strict=False) if name in names else pl.lit(None, dtype).alias(name)
        for name, dtype in FIXED_COLUMNS.items()
    ]
    exprs += [pl.col(m).cast(pl.Float64, strict=False) for m in names if m not in FIXED_COLUMNS]
    return lazy.select(exprs).with_columns(pl.col("filter").fill_null("none"))


def scan_logs(paths: Paths, *, cache: bool = True) -> pl.LazyFrame:
    """`load_logs` as a polars LazyFrame, for folders too large to load whole before filtering.

    Regular JSONL files become lazy `scan_ndjson` plans (nothing is read until `.collect()`); the others
    (older layouts, spreadsheets, files whose first lines look odd) are read eagerly. File-level problems
    (unknown format, empty file) raise `LogFormatError` here; a lazily scanned file that turns out to be
    malformed further down fails at collect time with a polars error; `load_logs` checks every line. Two more
    things only `load_logs` does: reject duplicate doc_ids, and give the image_ref of an `input_media` path that
    holds a backslash (null in a lazy scan, because polars cannot hand such a path back exactly); and in a file
    with blank lines, the line numbers of `b64:` image refs count rows, not lines, in a lazy scan.
    With cache=True (the default) each file is parsed once into the Parquet cache (see `load_logs`) and scanned
    from there, so a scan over many files holds one file's rows at a time; cache=False scans JSONL lazily.

    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "m"
    >>> d.mkdir()
    >>> _ = (d / "20240101_000000_samples_t.jsonl").write_text(
    ...     "".join(json.dumps({"doc_id": i, "filtered_resps": ["a"], "acc": i % 2}) + "\\n" for i in range(4)))
    >>> scan_logs(d).filter(pl.col("acc") == 1).select("doc_id").collect()["doc_id"].to_list()
    [1, 3]
    """
    problems = Problems(strict=True)
    context = _RunContext(problems)
    store = default_cache() if cache else None
    lazies: list[pl.LazyFrame] = []
    for item in _sample_files(paths, problems):
        entry = store.entry(item.path, _depends_on(item), item.kind) if store is not None else None
        if store is not None and entry is None and item.kind != "vlmevalkit_score":
            # parse the file once (every line checked, as load_logs does), keep its rows as Parquet, and let
            # them go: memory stays that of one file, however many files the scan covers
            frame = _read_cached(item, context, problems, store)
            entry = store.entry(item.path, _depends_on(item), item.kind)
            if entry is None:  # not cacheable (a tolerated problem): keep the rows read
                if frame is not None and frame.height:
                    lazies.append(frame.lazy())
                continue
            del frame
        if item.kind in ("samples", "harness"):
            # a lazy scan of its Parquet entry; without the cache, a lazy JSONL plan
            lazy = pl.scan_parquet(entry) if entry is not None else scan_jsonl_samples(context.meta(item), problems)
            if entry is not None:
                context.meta(item)  # the run's status
            status = context.status.get(item.path, (None, None))[0]  # (doc counts are load_logs' check)
            lazies.append(lazy.with_columns(run_status=pl.lit(status, pl.String)))
        elif entry is not None:
            lazies.append(pl.scan_parquet(entry))
        else:
            frame = _read_cached(item, context, problems, store)
            if frame is not None and frame.height:
                lazies.append(frame.lazy())
    if not lazies:
        return empty_samples().lazy()
    return _conform_lazy(pl.concat(lazies, how="diagonal_relaxed"))
