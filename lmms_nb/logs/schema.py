"""The canonical sample table: one row per model x task x doc (x filter), the one table every layer shares.

Every reader (ours, lmms-eval, VLMEvalKit, lm-evaluation-harness) and the runner produce exactly these
columns, in this order, followed by one Float64 column per metric (named as the source wrote it, e.g.
``exact_match``, ``anls``, ``mme_percetion_score``). Image bytes never enter the table: ``image_ref`` points
at them (``dataset:<path>#<row>``, ``file:<path>``, or ``b64:<source_file>#<line>``).

Example:
    >>> from lmms_nb.logs.schema import empty_samples, FIXED_COLUMNS
    >>> list(empty_samples().columns) == list(FIXED_COLUMNS)
    True
"""

from __future__ import annotations

import polars as pl

#: Fixed columns of the canonical table, in order, with their polars dtypes.
FIXED_COLUMNS: dict[str, pl.DataType] = {
    "run_id": pl.Utf8,  # one id per evaluation run (model x set of tasks x time)
    "model": pl.Utf8,
    "task": pl.Utf8,
    "doc_id": pl.Int64,
    "filter": pl.Utf8,  # lmms-eval filter name; "none" when the task has a single unnamed filter
    "split": pl.Utf8,
    "input": pl.Utf8,  # the prompt text given to the model
    "target": pl.Utf8,
    "prediction": pl.Utf8,  # the filtered response that was scored
    "raw_response": pl.Utf8,  # the model's text before filters
    "category": pl.Utf8,
    "image_ref": pl.Utf8,
    "error": pl.Utf8,  # set when the model or scorer failed on this sample (its metrics are then null)
    "latency_s": pl.Float64,
    "output_tokens": pl.Int64,
    "judge": pl.Utf8,  # who gave the verdicts of this row when a judge did (an LLM, or VLMEvalKit's matching rules)
    "source_format": pl.Utf8,  # "lmms_nb", "lmms_eval", "vlmevalkit", "lm_eval_harness"
    "source_file": pl.Utf8,
    # the run's state from its results JSON: "finished", "partial" (stopped, killed, or docs missing from the
    # samples file) or "failed" (every sample errored); null when the log does not say (no results JSON)
    "run_status": pl.Utf8,
}

#: Columns that identify one sample; two rows with the same key describe the same answer.
SAMPLE_KEY = ("run_id", "model", "task", "doc_id", "filter")
#: Columns on which two models' answers to the same question are aligned.
ALIGN_KEY = ("task", "doc_id", "filter")


def metric_columns(df: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """Names of the metric columns of a canonical table: every column that is not a fixed one.

    >>> import polars as pl
    >>> metric_columns(pl.DataFrame({"model": ["a"], "exact_match": [1.0]}))
    ['exact_match']
    """
    names = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    return [c for c in names if c not in FIXED_COLUMNS]


def empty_samples(metrics: list[str] | tuple[str, ...] = ()) -> pl.DataFrame:
    """An empty canonical table with the given metric columns."""
    schema = dict(FIXED_COLUMNS)
    schema.update({m: pl.Float64 for m in metrics})
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Add missing fixed columns as nulls, cast them to their dtypes, fixed columns first, metrics as Float64.

    >>> import polars as pl
    >>> out = conform(pl.DataFrame({"model": ["m"], "task": ["t"], "doc_id": [3], "acc": [1]}))
    >>> out.columns[:3], out["acc"].dtype, out["filter"][0]
    (['run_id', 'model', 'task'], Float64, 'none')
    """
    exprs = []
    for name, dtype in FIXED_COLUMNS.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    metrics = [c for c in df.columns if c not in FIXED_COLUMNS]
    exprs += [pl.col(m).cast(pl.Float64, strict=False) for m in metrics]
    out = df.select(exprs)
    # a sample whose generation failed has no answer: lmms-eval 0.7.3's line format still needs a string there ("")
    no_answer = pl.col("error").is_not_null() & (pl.col("prediction") == "")
    return out.with_columns(pl.col("filter").fill_null("none"),
                            pl.when(no_answer).then(None).otherwise(pl.col("prediction")).alias("prediction"))
