"""`flips()`: the samples whose correctness changed between two runs (e.g. two checkpoints of one model)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import polars as pl

from lmms_nb.analysis import _stats
from lmms_nb.analysis._compare import compare
from lmms_nb.analysis._comparison_html import table_html
from lmms_nb.analysis._prepare import as_canonical

__all__ = ["Flips", "flips"]


@dataclass
class Flips:
    """What changed between run_a (before) and run_b (after): `fixed` (wrong -> right), `broken` (right -> wrong).

    summary: per task x filter: n_both, only_a, only_b, fixed, broken, net (= fixed - broken), score_a,
    score_b, p_value (McNemar exact on fixed vs broken). missing: samples scored in one run only.
    """

    run_a: str
    run_b: str
    model_a: str | None
    model_b: str | None
    summary: pl.DataFrame
    fixed: pl.DataFrame
    broken: pl.DataFrame
    missing: pl.DataFrame

    def __repr__(self) -> str:
        return (
            f"Flips({self.run_a!r} -> {self.run_b!r}: {self.fixed.height} fixed, {self.broken.height} broken, "
            f"{self.missing.height} missing on one side)"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        head = (
            f"<b>Flips</b> {e(str(self.model_a))} run {e(self.run_a)} &rarr; {e(str(self.model_b))} run "
            f"{e(self.run_b)}: {self.fixed.height} fixed, {self.broken.height} broken, "
            f"{self.missing.height} missing on one side"
        )
        return f"<div>{head}{table_html(self.summary)}</div>"


def flips(
    df: Any,
    run_a: str,
    run_b: str,
    *,
    tasks: Sequence[str] | None = None,
    metric: str | Mapping[str, str] | None = None,
    n_resamples: int = _stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Flips:
    """Samples whose correctness changed between two runs (run_a before, run_b after), aligned on
    (task, doc_id, filter); typically two checkpoints of one model.

    >>> import polars as pl
    >>> df = pl.DataFrame({"run_id": ["r1"] * 3 + ["r2"] * 3, "model": ["m"] * 6, "task": ["t"] * 6,
    ...                    "doc_id": [0, 1, 2] * 2, "acc": [0, 1, 1, 1, 0, 1]})
    >>> f = flips(df, "r1", "r2")
    >>> f.fixed["doc_id"].to_list(), f.broken["doc_id"].to_list()
    ([0], [1])
    """
    table = as_canonical(df)
    known = table["run_id"].drop_nulls().unique().sort().to_list()
    absent = [r for r in (run_a, run_b) if r not in known]
    if absent:
        raise ValueError(f"run id(s) {absent} not in the sample table; run ids present: {known}")
    if run_a == run_b:
        raise ValueError("flips() needs two different run ids")
    runs = table.filter(pl.col("run_id").is_in([run_a, run_b]))
    model_of = dict(runs.group_by("run_id").agg(pl.col("model").first()).iter_rows())
    # Treat each run as a "model" so the comparison machinery aligns them on (task, doc_id, filter).
    runs = runs.with_columns(pl.col("run_id").alias("model"))
    cmp = compare(runs, models=[run_a, run_b], tasks=tasks, metric=metric, by=[], n_resamples=n_resamples, seed=seed)
    summary = cmp.pairwise.select(
        "task",
        "filter",
        "metric",
        "n_both",
        "only_a",
        "only_b",
        pl.col("b_right_a_wrong").alias("fixed"),
        pl.col("a_right_b_wrong").alias("broken"),
        (pl.col("b_right_a_wrong") - pl.col("a_right_b_wrong")).alias("net"),
        "score_a",
        "score_b",
        "p_value",
    )

    def as_runs(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.drop("model_a", "model_b", "run_id_a", "run_id_b").select(
            pl.lit(run_a).alias("run_a"), pl.lit(run_b).alias("run_b"), pl.all()
        )

    missing = cmp.missing.rename({"model": "run_id"})
    return Flips(
        run_a=run_a,
        run_b=run_b,
        model_a=model_of.get(run_a),
        model_b=model_of.get(run_b),
        summary=summary,
        fixed=as_runs(cmp.b_right_a_wrong(run_a, run_b)),
        broken=as_runs(cmp.a_right_b_wrong(run_a, run_b)),
        missing=missing,
    )
