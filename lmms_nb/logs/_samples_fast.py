"""The fast path of reading a per-sample JSONL file: sniff the first lines, then let polars read it all.

The sniffed lines say the layout (`_samples_plan`: which keys are metrics, whether `filtered_resps` is a bare
string or a list, which field of a dict metric is its score); polars then reads the whole file natively with
that explicit schema (`scan_ndjson`) and derives the canonical columns with expressions. `_samples` checks the
result and falls back to the slow path on any surprise.
"""

from __future__ import annotations

import polars as pl

from lmms_nb.logs._records import BASE64_MIN_LEN
from lmms_nb.logs._sample_file_meta import FileMeta
from lmms_nb.logs._samples_plan import FilePlan, plan_file, sniff_records
from lmms_nb.logs.schema import FIXED_COLUMNS

# The fast path's one tunable, SNIFF_LINES, lives in _samples_plan (which reads it).
__all__ = ["scan_fast"]

_TOKEN_COUNTS = pl.List(pl.Struct({"output_tokens": pl.Int64, "generation_seconds": pl.Float64}))


def _first_response(col: pl.Expr, depth: int) -> pl.Expr:
    if depth == 0:
        return col
    if depth == 1:
        return col.list.first()
    return col.list.first().list.first()


def _expressions(plan: FilePlan, meta: FileMeta) -> list[pl.Expr]:
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


def _staged(plan: FilePlan) -> list[pl.Expr]:
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
    records = sniff_records(meta.path)
    plan = plan_file(records) if records else None
    if plan is None:
        return None
    lazy = pl.scan_ndjson(meta.path, schema=plan.schema, row_index_name="__row")
    return lazy.with_columns(_staged(plan)).select(_expressions(plan, meta)).sort("doc_id", maintain_order=True)
