"""The sample browser's table and its filter, in polars: what `SampleBrowser` shows is computed here.

`SampleIndex` turns the canonical long table (one row per model x task x doc x filter) into one row per
sample (task, doc_id, filter) with every model's answer side by side: `prediction_<i>`, `correct_<i>`,
`error_<i>`, `has_<i>`, `value_<i>` (the metric value), `raw_<i>` (the response before filters),
`latency_<i>` and `tokens_<i>` for model i. Correctness comes from `lmms_nb.analysis` (the same metric choice
and the same binary view as `compare()`: 0/1 metric == 1, continuous metric >= 0.5), so the colours in the
browser agree with the numbers in the comparison.

A `SampleQuery` (tasks, models, categories, a right/wrong pattern over models, free text, doc ids) becomes
one polars boolean expression; `SampleIndex.page` evaluates it, keeps the row numbers that match and gathers
only the rows of the requested page. Lower-cased copies of the searchable text are made once, so a text
search is a literal substring scan.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "B", "A", "B"], "task": ["t"] * 4, "doc_id": [0, 0, 1, 1],
    ...                    "input": ["2+2?", "2+2?", "Red?", "Red?"], "target": ["4", "4", "yes", "yes"],
    ...                    "prediction": ["4", "5", "no", "yes"], "exact_match": [1.0, 0.0, 0.0, 1.0]})
    >>> index = SampleIndex(df)
    >>> page, total = index.page(SampleQuery(pattern={"A": True, "B": False}))
    >>> total, page["doc_id"].to_list(), page["prediction_1"].to_list()
    (1, [0], ['5'])
    >>> index.page(SampleQuery(text="RED"))[0]["doc_id"].to_list()
    [1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from lmms_nb.logs.schema import ALIGN_KEY, metric_columns

__all__ = ["SampleIndex", "SampleQuery", "as_sample_table"]

_KEY = list(ALIGN_KEY)
#: Per-sample columns shown next to the answers (the first non-null value across models).
_INFO = ["category", "input", "target", "image_ref"]
#: Per-model columns of the wide table (suffixed _<i>).
_PER_MODEL = ("prediction", "correct", "error", "has", "value", "raw", "latency", "tokens")


@dataclass
class SampleQuery:
    """Which samples to show. Empty tuples mean "all"; `pattern` maps a model to right (True) or wrong (False).

    A sample matches the pattern when every named model has a score on it with that correctness (a model
    that errored or was not run on the sample matches neither). `text` is a case-insensitive substring of
    the question, the target or the prediction of any shown model. `models` also restricts the rows to
    samples that at least one shown model answered.
    """

    tasks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    categories: tuple[str | None, ...] = ()
    pattern: Mapping[str, bool] = field(default_factory=dict)
    text: str = ""
    doc_ids: tuple[int, ...] = ()
    #: (column of `SampleIndex.table`, descending) to order the matches by, e.g. ("value_0", True); None keeps
    #: the display order (task, filter, doc_id)
    sort: tuple[str, bool] | None = None


def as_sample_table(data: Any) -> pl.DataFrame:
    """A polars canonical sample table from what the widgets accept.

    `data` is a polars/pandas DataFrame, a LazyFrame, a `Run` (its `.samples`), a `Comparison` (its
    `.samples`, already scored), or one or several log paths (read with `lmms_nb.load_logs`).
    """
    from pathlib import Path

    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, (str, Path)) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, Path)) for p in data)
    ):
        from lmms_nb.logs import load_logs

        loaded = load_logs(data)
        return loaded[0] if isinstance(loaded, tuple) else loaded
    samples = getattr(data, "samples", None)  # Run, Comparison
    if isinstance(samples, pl.DataFrame):
        return samples
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pl.from_pandas(data)
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    raise TypeError(
        "expected a sample table (polars or pandas DataFrame), a Run, a Comparison or log path(s); "
        f"got {type(data).__name__}"
    )


class SampleIndex:
    """One row per sample with every model's answer side by side, and fast filtering (see the module doc).

    Args:
        data: anything `as_sample_table` accepts.
        metric: the metric column deciding right/wrong (a name, or {task: name}); by default the only metric
            column with values per task, as in `compare()`.
        runs: which run to keep when a model has several on one task ("latest", {model: run_id}, or None to
            refuse); see `lmms_nb.analysis.compare`.
        models: the models in display order (default: order of `compare()`, i.e. sorted).

    Attributes: `models`, `tasks`, `categories` (display order), `metrics` ({task: metric column}), `binary`
    ({task: whether its metric is 0/1}),
    `table` (the wide table), `n_rows` (rows of the long table it was built from).
    """

    def __init__(self, data: Any, *, metric: str | Mapping[str, str] | None = None,
                 runs: Mapping[str, str] | str | None = "latest", models: Sequence[str] | None = None):
        scored, self.models, self.tasks, self.metrics, self.binary = _score(data, metric=metric, runs=runs, models=models)
        self.n_rows = scored.height
        self.table, self._texts = _widen(scored, self.models, self.tasks)
        cats = self.table["category"].unique().to_list()
        self.categories: list[str | None] = sorted(c for c in cats if c is not None) + ([None] if None in cats else [])
        self._position = {m: i for i, m in enumerate(self.models)}

    def __len__(self) -> int:
        return self.table.height

    def model_index(self, model: str) -> int:
        """The column suffix i of `model` (prediction_<i>, correct_<i>...)."""
        try:
            return self._position[model]
        except KeyError:
            raise ValueError(f"unknown model {model!r}; models in this table: {self.models}") from None

    def mask(self, query: SampleQuery) -> pl.Expr:
        """The polars expression selecting the rows of `query`."""
        shown = [self.model_index(m) for m in query.models] or list(range(len(self.models)))
        terms: list[pl.Expr] = []
        if query.tasks:
            unknown = sorted(set(query.tasks) - set(self.tasks))
            if unknown:
                raise ValueError(f"unknown task(s) {unknown}; tasks in this table: {self.tasks}")
            terms.append(pl.col("task").is_in(list(query.tasks)))
        if query.categories:
            named = [c for c in query.categories if c is not None]
            cat = pl.col("category").is_in(named) if named else pl.lit(False)
            terms.append(cat | pl.col("category").is_null() if None in query.categories else cat)
        if query.doc_ids:
            terms.append(pl.col("doc_id").is_in([int(d) for d in query.doc_ids]))
        if query.models:
            terms.append(pl.any_horizontal(pl.col(f"has_{i}") for i in shown))
        for model, right in query.pattern.items():
            if right is None:
                continue
            col = pl.col(f"correct_{self.model_index(model)}")
            terms.append(col if right else ~col)
        needle = query.text.strip().lower()
        if needle:
            # Search each distinct text once, then select rows by code: answers repeat a lot, so this scans
            # far fewer strings than there are rows.
            hay = ["_search"] + [f"_search_{i}" for i in shown]
            terms.append(pl.any_horizontal(
                pl.lit(self._texts[h].str.contains(needle, literal=True)).gather(pl.col(h)) for h in hay
            ))
        if not terms:
            return pl.repeat(True, pl.len())
        return pl.all_horizontal(t.fill_null(False) for t in terms)

    def matching_rows(self, query: SampleQuery) -> pl.Series:
        """Row numbers (in display order) of the samples that match `query`."""
        return self.table.select(self.mask(query).alias("m"))["m"].arg_true()

    def page(self, query: SampleQuery, page: int = 0, page_size: int = 10) -> tuple[pl.DataFrame, int]:
        """(the rows of page `page` of `query`'s matches, the number of matches). Pages count from 0."""
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        rows = self.matching_rows(query)
        start = max(0, page) * page_size
        if query.sort is not None:
            column, descending = query.sort
            if column not in self.table.columns:
                raise ValueError(f"cannot sort by {column!r}: not a column of the sample table")
            order = self.table.select(pl.col(column).gather(rows)).to_series().arg_sort(
                descending=descending, nulls_last=True
            )
            rows = rows.gather(order)
        return self.table[rows[start:start + page_size]], rows.len()

    def rows(self, query: SampleQuery) -> pl.DataFrame:
        """Every sample matching `query` (in its sort order), with readable column names: the sample columns,
        then `<field>:<model>` for each model's prediction, value, correct, raw response, latency, tokens and
        error (the models of `query.models`, or all). What the browser exports as CSV / Parquet."""
        shown = list(query.models) or self.models
        page, total = self.page(query, 0, max(1, len(self)))
        fields = {"prediction": "prediction", "value": "value", "correct": "correct", "raw": "raw_response",
                  "latency": "latency_s", "tokens": "output_tokens", "error": "error"}
        return page.select(
            *_KEY, *_INFO,
            *[pl.col(f"{c}_{self.model_index(m)}").alias(f"{name}:{m}") for m in shown for c, name in fields.items()],
        )


def _score(data: Any, *, metric: Any, runs: Any, models: Sequence[str] | None
           ) -> tuple[pl.DataFrame, list[str], list[str], dict[str, str], dict[str, bool]]:
    """The scored long table (with `correct` and `value`), model and task order, metric per task, binary per task."""
    cmp_models = getattr(data, "models", None)
    table = as_sample_table(data)
    if "correct" in table.columns and isinstance(cmp_models, list):  # a Comparison: already scored
        order = list(models) if models is not None else list(cmp_models)
        tasks = list(getattr(data, "tasks", []) or sorted(table["task"].unique().to_list()))
        return (table.filter(pl.col("model").is_in(order)), order, tasks, dict(getattr(data, "metrics", {})),
                dict(getattr(data, "binary", {})))
    if not metric_columns(table):  # predictions only: browse them, with no right/wrong
        from lmms_nb.logs.schema import conform

        table = conform(table).with_columns(pl.lit(None, dtype=pl.Boolean).alias("correct"),
                                            pl.lit(None, dtype=pl.Float64).alias("value"))
        order = list(models) if models is not None else sorted(table["model"].drop_nulls().unique().to_list())
        tasks = sorted(table["task"].drop_nulls().unique().to_list())
        return table.filter(pl.col("model").is_in(order)), order, tasks, {}, {}
    # The same metric choice, run choice and binary view as compare(), so colours agree with its numbers.
    from lmms_nb.analysis import as_canonical, prepare

    scored, info = prepare(as_canonical(table), models=models, metric=metric, runs=runs, by=[])
    return scored, list(info.models), list(info.tasks), dict(info.metrics), dict(info.binary)


def _widen(scored: pl.DataFrame, models: list[str], tasks: list[str]) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    """One row per (task, doc_id, filter): sample info, prediction/correct/error/has per model, search codes.

    Search text (question + target, and each model's prediction), lower-cased, is dictionary-encoded: the
    `_search*` columns hold row numbers into the returned {column: distinct texts} series.
    """
    k = len(models)
    extra = {"raw": ("raw_response", pl.Utf8), "latency": ("latency_s", pl.Float64), "tokens": ("output_tokens", pl.Int64)}
    slim = scored.select(
        *_KEY,
        pl.col("model").replace_strict({m: i for i, m in enumerate(models)}, return_dtype=pl.UInt32).alias("_m"),
        "prediction",
        "correct",
        "error",
        pl.lit(True).alias("has"),
        pl.col("value").cast(pl.Float64) if "value" in scored.columns else pl.lit(None, pl.Float64).alias("value"),
        *[(pl.col(c) if c in scored.columns else pl.lit(None)).cast(t).alias(name) for name, (c, t) in extra.items()],
    )
    try:
        wide = slim.pivot(on="_m", on_columns=list(range(k)), index=_KEY, values=list(_PER_MODEL))
    except pl.exceptions.ComputeError:
        dup = scored.group_by("model", *_KEY).agg(pl.len().alias("rows")).filter(pl.col("rows") > 1)
        if dup.height == 0:
            raise
        first = dup.row(0, named=True)
        raise ValueError(
            f"model {first['model']!r} has {first['rows']} rows for the same sample (task={first['task']!r}, "
            f"doc_id={first['doc_id']}, filter={first['filter']!r}); each model needs one row per "
            f"(task, doc_id, filter): pick one run per model (runs=...)"
        ) from None
    if k == 1:  # polars names the columns after the values alone when there is a single pivot column
        wide = wide.rename({c: f"{c}_0" for c in _PER_MODEL if c in wide.columns})
    info = scored.group_by(_KEY).agg(pl.col(c).drop_nulls().first() for c in _INFO)
    wide = wide.join(info, on=_KEY, how="left").with_columns(
        pl.col(f"has_{i}").fill_null(False) for i in range(k)
    )
    task_rank = pl.col("task").replace_strict({t: i for i, t in enumerate(tasks)}, default=len(tasks), return_dtype=pl.Int64)
    wide = wide.sort([task_rank, pl.col("filter"), pl.col("doc_id")])
    search = [
        pl.concat_str([pl.col("input").fill_null(""), pl.col("target").fill_null("")], separator="\n")
        .str.to_lowercase().alias("_search")
    ] + [pl.col(f"prediction_{i}").fill_null("").str.to_lowercase().alias(f"_search_{i}") for i in range(k)]
    wide = wide.with_columns(search)
    texts: dict[str, pl.Series] = {}
    for name in ["_search", *[f"_search_{i}" for i in range(k)]]:
        distinct = wide[name].unique()
        texts[name] = distinct
        codes = distinct.to_frame(name).with_row_index("_code")
        wide = wide.join(codes, on=name, how="left", maintain_order="left").drop(name).rename({"_code": name})
    return wide.select(
        *_KEY, *_INFO, *[f"{c}_{i}" for i in range(k) for c in _PER_MODEL],
        "_search", *[f"_search_{i}" for i in range(k)],
    ), texts
