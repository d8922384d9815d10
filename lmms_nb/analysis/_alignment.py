"""Aligning the scored samples of several models: the wide table, the samples missing on one side, display order.

Samples are aligned on (task, doc_id, filter) by polars joins on one integer key (`_key`, from `prepare`) into a
wide table with one value and one correct column per model; null = not scored for that model.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import polars as pl

from lmms_nb.analysis._prepare import ALIGN_KEY, Prepared

__all__ = ["KEY_COLUMNS", "SAMPLE_COLUMNS", "missing_samples", "sort_by_display_order", "wide_table"]

KEY_COLUMNS = list(ALIGN_KEY)
#: Columns a browser widget needs to show a sample next to the answers.
SAMPLE_COLUMNS = ["category", "input", "target", "image_ref"]


def sort_by_display_order(df: pl.DataFrame, orders: Mapping[str, Sequence[str]], then: Sequence[str] = ()) -> pl.DataFrame:
    """Sort by the position of each column's value in its display order (models, tasks), then by `then`."""
    if df.height == 0:
        return df
    ranks = [
        pl.col(col).replace_strict({v: i for i, v in enumerate(order)}, default=len(order), return_dtype=pl.Int64)
        for col, order in orders.items()
    ]
    return df.sort([*ranks, *then], nulls_last=True)


def _duplicate_error(model: str, part: pl.DataFrame, info: Prepared) -> ValueError:
    counts = part.group_by("_key").len().filter(pl.col("len") > 1).sort("_key")
    key, rows = counts.row(0)
    task, filter_ = {b: tf for tf, b in info.block_index.items()}[key // info.key_stride]
    return ValueError(
        f"model {model!r} has {rows} rows for the same sample (task={task!r}, "
        f"doc_id={key % info.key_stride + info.min_doc_id}, filter={filter_!r}); {counts.height} samples are "
        "duplicated. Each model needs one row per (task, doc_id, filter): drop the duplicates, or pass runs= "
        "if they come from different runs."
    )


def wide_table(scored: pl.DataFrame, info: Prepared) -> pl.DataFrame:
    """One row per aligned sample: task, doc_id, filter, _key, _block, then value_<i>, correct_<i> per model i.

    Null value_<i> means model i has no scored row for the sample. Built by full joins on the integer key,
    after checking that each model has one row per sample (so the joins are 1:1, never a silent blow-up).
    """
    parts = scored.select("model", "_key", "value", pl.col("correct").cast(pl.Int8)).partition_by(
        "model", as_dict=True, include_key=False
    )
    wide: pl.DataFrame | None = None
    for i, model in enumerate(info.models):
        part = parts[(model,)]
        if part["_key"].n_unique() < part.height:
            raise _duplicate_error(model, part, info)
        part = part.rename({"value": f"value_{i}", "correct": f"correct_{i}"})
        wide = part if wide is None else wide.join(part, on="_key", how="full", coalesce=True)
    assert wide is not None
    blocks = {b: tf for tf, b in info.block_index.items()}
    block = pl.col("_key") // info.key_stride
    return wide.sort("_key").select(
        block.replace_strict({b: t for b, (t, _) in blocks.items()}, return_dtype=pl.Utf8).alias("task"),
        (pl.col("_key") % info.key_stride + info.min_doc_id).alias("doc_id"),
        block.replace_strict({b: f for b, (_, f) in blocks.items()}, return_dtype=pl.Utf8).alias("filter"),
        "_key",
        block.alias("_block"),
        pl.exclude("_key"),
    )

def missing_samples(wide: pl.DataFrame, scored: pl.DataFrame, models: list[str]) -> pl.DataFrame:
    """Samples scored for some compared models but not for others: one row per (sample, model lacking it)."""
    present = [pl.col(f"value_{i}").is_not_null() for i in range(len(models))]
    flags = wide.filter(pl.sum_horizontal(present).is_between(1, len(models) - 1)).select(
        *KEY_COLUMNS,
        "_key",
        pl.sum_horizontal(present).cast(pl.Int64).alias("present_for"),
        *[(~p).alias(str(i)) for i, p in enumerate(present)],
    )
    long = flags.unpivot(index=[*KEY_COLUMNS, "_key", "present_for"], variable_name="_m", value_name="_missing").filter(
        "_missing"
    )
    long = long.with_columns(
        pl.col("_m").replace_strict({str(i): m for i, m in enumerate(models)}, return_dtype=pl.Utf8).alias("model")
    )
    # A row that exists with a null metric was not scored (a model or scorer error); no row at all is "absent".
    unscored = scored.filter(pl.col("value").is_null()).select("model", "_key", "error", pl.lit(True).alias("_row"))
    out = long.join(unscored, on=["model", "_key"], how="left").with_columns(
        pl.when(pl.col("_row")).then(pl.lit("unscored")).otherwise(pl.lit("absent")).alias("reason")
    )
    out = out.select("task", "doc_id", "filter", "model", "reason", "error", "present_for")
    return sort_by_display_order(out, {"model": models}, ["task", "filter", "doc_id"])
