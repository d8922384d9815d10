"""`compare()`: scores with bootstrap CIs, paired tests between models, disagreement slices and figures.

How the work is split, so that 10 models x 100k samples take well under a second (benchmarks/bench_compare.py):
- one polars group-by summarises the samples per model x run x task x filter (x category): the metric
  choice, the run checks and every score come from that small table;
- samples are aligned on (task, doc_id, filter) by polars joins on one integer key into a wide table
  (one value and one correct column per model; null = not scored for that model);
- every pairwise count (n_both, only_a, a_right_b_wrong, ...) of every model pair is an entry of a product
  of that wide table's presence / correctness matrices (one BLAS call per task);
- scipy sees only counts (exact McNemar, Wilson intervals) and, for continuous metrics,
  the paired differences (scipy.stats.bootstrap, ttest).

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({
    ...     "model": ["A"] * 6 + ["B"] * 6, "task": ["t"] * 12, "doc_id": list(range(6)) * 2,
    ...     "acc": [1, 1, 1, 0, 1, 0] + [0, 0, 0, 1, 1, 0]})
    >>> cmp = compare(df)
    >>> row = cmp.pairwise.row(0, named=True)
    >>> row["a_right_b_wrong"], row["b_right_a_wrong"], row["p_value"], row["test"]
    (3, 1, 0.625, 'mcnemar_exact')
    >>> cmp.a_right_b_wrong("A", "B")["doc_id"].to_list()
    [0, 1, 2]
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import polars as pl

from lmms_nb.analysis import _stats
from lmms_nb.analysis._prepare import ALIGN_KEY, Prepared, RunChoice, as_canonical, prepare

if TYPE_CHECKING:  # plotly is imported only inside the figure functions
    import plotly.graph_objects as go

_KEY = list(ALIGN_KEY)
#: Columns a browser widget needs to show a sample next to the answers.
_SAMPLE_COLUMNS = ["category", "input", "target", "image_ref"]


def _ordered(df: pl.DataFrame, orders: Mapping[str, Sequence[str]], then: Sequence[str] = ()) -> pl.DataFrame:
    """Sort by the position of each column's value in its display order (models, tasks), then by `then`."""
    if df.height == 0:
        return df
    ranks = [
        pl.col(col).replace_strict({v: i for i, v in enumerate(order)}, default=len(order), return_dtype=pl.Int64)
        for col, order in orders.items()
    ]
    return df.sort([*ranks, *then], nulls_last=True)


def _with_cis(
    table: pl.DataFrame, keys: list[str], info: Prepared, continuous: pl.DataFrame | None, *, confidence: float
) -> pl.DataFrame:
    """Add metric, binary, ci_low, ci_high, ci_method to a table of groups with n, n_unscored, score, _sum.

    0/1 metrics: the Wilson interval from (n, successes), which never collapses to a point. Continuous
    metrics: the bootstrap intervals `_continuous_intervals` computed (`continuous`, keyed like `table`); where
    every value was the same (the bootstrap gives a point) and the values lie in [0, 1], the Wilson interval
    of the mean instead (a [0, 1] variable has at most the variance of a 0/1 one with that mean).
    """
    table = table.with_columns(
        pl.col("task").replace_strict(info.metrics, return_dtype=pl.Utf8).alias("metric"),
        pl.col("task").replace_strict(info.binary, return_dtype=pl.Boolean).alias("binary"),
    )
    wilson_low, wilson_high = _stats.wilson_ci(table["_sum"].to_numpy(), table["n"].to_numpy(), confidence=confidence)
    table = table.with_columns(_wl=pl.Series(wilson_low), _wh=pl.Series(wilson_high))
    if continuous is not None and not table["binary"].all():
        table = table.join(continuous, on=keys, how="left", nulls_equal=True)
    else:
        table = table.with_columns(ci_low=pl.lit(None, pl.Float64), ci_high=pl.lit(None, pl.Float64))
    collapsed = (
        ~pl.col("binary")
        & (pl.col("ci_low").is_null() | (pl.col("ci_low") == pl.col("ci_high")))
        & pl.col("score").is_between(0.0, 1.0)
        & (pl.col("n") > 0)
    )
    wilson = pl.col("binary") | collapsed
    table = table.with_columns(
        pl.when(wilson).then(pl.col("_wl")).otherwise(pl.col("ci_low")).alias("ci_low"),
        pl.when(wilson).then(pl.col("_wh")).otherwise(pl.col("ci_high")).alias("ci_high"),
        pl.when(pl.col("binary")).then(pl.lit("wilson")).when(collapsed).then(pl.lit("wilson (constant values)"))
        .otherwise(pl.lit("bootstrap")).alias("ci_method"),
    )
    return table.select(
        *keys, "metric", "binary", "n", "n_unscored", "score", "ci_low", "ci_high", "ci_method"
    ).with_columns(pl.col("ci_low", "ci_high").fill_nan(None))


def _block_scores(
    info: Prepared, keys: list[str], continuous: pl.DataFrame | None, *, confidence: float
) -> pl.DataFrame:
    """Scores per group of `keys`, summed from the block summary (no second pass over the samples)."""
    table = info.blocks.group_by(keys).agg(
        pl.col("n").sum().cast(pl.Int64),
        (pl.col("rows") - pl.col("n")).sum().cast(pl.Int64).alias("n_unscored"),
        pl.col("sum").sum().alias("_sum"),
    )
    table = table.with_columns((pl.col("_sum") / pl.col("n")).fill_nan(None).alias("score"))
    table = _with_cis(table, keys, info, continuous, confidence=confidence)
    return _ordered(table, {"model": info.models, "task": info.tasks}, keys[2:])


def _continuous_intervals(
    wide: pl.DataFrame, scored: pl.DataFrame, info: Prepared, *, confidence: float, n_resamples: int, seed: int
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, dict[tuple[int, int, int], tuple[float, float, float]]]:
    """Bootstrap CIs for the continuous-metric tasks: per model x task, per model x task x group, per pair.

    Per (task, filter) one set of resamples of the aligned samples serves every model's mean, every pair's
    mean difference and every model's mean per group (`shared_bootstrap_ci`; a group's size then varies
    between resamples, as it would between draws of the benchmark). Pairs also get their paired t-test
    p-value here, from the same aligned matrices. Returns (task CIs, group CIs, {(block, i, j):
    (ci_low, ci_high, p_value)}).
    """
    k = len(info.models)
    names = {b: tf for tf, b in info.block_index.items()}
    blocks = [b for b, (t, _) in names.items() if not info.binary[t]]
    if not blocks:
        return None, None, {}
    stats = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    sub = wide.filter(pl.col("_block").is_in(blocks))
    if info.by:
        # a sample's group (e.g. its category) is a property of the doc: take it from any model's row
        continuous_tasks = sorted({names[b][0] for b in blocks})
        groups = (
            scored.filter(pl.col("task").is_in(continuous_tasks)).select("_key", *info.by).unique("_key", keep="first")
        )
        sub = sub.join(groups, on="_key", how="left").sort("_key")
    pairs = list(combinations(range(k), 2))
    ia, ib = [i for i, _ in pairs], [j for _, j in pairs]
    task_rows: list[tuple] = []
    group_rows: list[tuple] = []
    pair_cis: dict[tuple[int, int, int], tuple[float, float, float]] = {}

    def matrices(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = frame.select(f"value_{i}" for i in range(k)).to_numpy().astype(np.float64)
        present = ~np.isnan(values)
        return np.where(present, values, 0.0), present.astype(np.float64)

    for block in blocks:
        task, filter_ = names[block]
        part = sub.filter(pl.col("_block") == block)
        segments: list[slice] = []
        group_keys: list[tuple] = []
        if info.by:
            # rows sorted by group, so each group is one slice of rows for the shared bootstrap
            part = part.sort(info.by, nulls_last=True, maintain_order=True)
            keys = part.select(info.by).rows()
            bounds = [0] + [r for r in range(1, len(keys)) if keys[r] != keys[r - 1]] + [len(keys)]
            segments = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            group_keys = [keys[a] for a in bounds[:-1]]
        x, p = matrices(part)
        n_pairs = len(pairs)
        both = p[:, ia] * p[:, ib]
        diffs = (x[:, ia] - x[:, ib]) * both
        # Columns of one shared bootstrap: the k model means; then the pairs' mean differences, as contrasts
        # of the means when every model has every sample, else as their own columns over the shared samples;
        # then each model's mean per group (row segments).
        if p.all():
            contrasts = np.zeros((k, n_pairs))
            contrasts[ia, np.arange(n_pairs)], contrasts[ib, np.arange(n_pairs)] = 1.0, -1.0
            low, high = _stats.shared_bootstrap_ci(
                x, contrasts=contrasts if n_pairs else None, segments=segments, segment_columns=k, **stats
            )
        else:
            low, high = _stats.shared_bootstrap_ci(
                np.hstack([x, diffs]), np.hstack([p, both]), segments=segments, segment_columns=k, **stats
            )
        # either way the output columns are: k models, n_pairs pairs, then k per group
        pair_at, group_at = k, k + n_pairs
        task_rows += [(m, task, filter_, low[i], high[i]) for i, m in enumerate(info.models)]
        for c, (i, j) in enumerate(pairs):
            p_value = _stats.paired_t_pvalue(diffs[both[:, c] > 0, c])
            pair_cis[(block, i, j)] = (low[pair_at + c], high[pair_at + c], p_value)
        for g, key in enumerate(group_keys):
            for i, m in enumerate(info.models):
                col = group_at + g * k + i
                group_rows.append((m, task, filter_, *key, low[col], high[col]))
    task_cis = pl.DataFrame(task_rows, schema=["model", "task", "filter", "ci_low", "ci_high"], orient="row")
    group_cis = None
    if info.by:
        group_schema = {
            "model": pl.Utf8,
            "task": pl.Utf8,
            "filter": pl.Utf8,
            **{c: scored.schema[c] for c in info.by},
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
        }
        group_cis = pl.DataFrame(group_rows, schema=group_schema, orient="row")
    return task_cis, group_cis, pair_cis


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


def _wide(scored: pl.DataFrame, info: Prepared) -> pl.DataFrame:
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


def _pair_counts(wide: pl.DataFrame, k: int) -> dict[int, dict[str, np.ndarray]]:
    """Per block (task, filter): k x k matrices of n_both, only_a, a_right_b_wrong, sum_a over shared samples.

    Every pairwise count is an entry of a product of the aligned matrices: with P the presence (samples x
    models, 0/1), R = correct & present, W = wrong & present and X the values (0 where absent),
    n_both = P'P, only_a = P'(1-P), a_right_b_wrong = R'W, sum of a's values on shared samples = X'P.
    One BLAS product per block replaces 7 x k(k-1)/2 column expressions (about 4x faster at 10 models).
    """
    values = wide.select(f"value_{i}" for i in range(k)).to_numpy().astype(np.float64)
    correct = wide.select(pl.col(f"correct_{i}").cast(pl.Float64) for i in range(k)).to_numpy()
    block = wide["_block"].to_numpy()
    # wide is sorted by _key, so each block is one contiguous run of rows.
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    ends = np.r_[starts[1:], len(block)]
    out = {}
    for s, e in zip(starts, ends, strict=True):
        present = ~np.isnan(values[s:e])
        p = present.astype(np.float64)
        x = np.where(present, values[s:e], 0.0)
        right = np.where(present, correct[s:e], 0.0)
        wrong = p - right
        out[int(block[s])] = {
            "n_both": p.T @ p,
            "only_a": p.T @ (1.0 - p),
            "a_right_b_wrong": right.T @ wrong,
            "sum_a": x.T @ p,
        }
    return out


def _pairwise(
    wide: pl.DataFrame,
    info: Prepared,
    continuous: Mapping[tuple[int, int, int], tuple[float, float, float]],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> pl.DataFrame:
    """All model pairs x (task, filter): aligned counts, diff with paired bootstrap CI, p-value, Holm p-value.

    `continuous` holds (ci_low, ci_high, p_value) of the continuous-metric pairs, by (block, i, j).
    """
    k = len(info.models)
    pairs = list(combinations(range(k), 2))
    schema = {
        "model_a": pl.Utf8, "model_b": pl.Utf8, "task": pl.Utf8, "filter": pl.Utf8, "metric": pl.Utf8,
        "n_both": pl.Int64, "only_a": pl.Int64, "only_b": pl.Int64, "a_right_b_wrong": pl.Int64,
        "b_right_a_wrong": pl.Int64, "score_a": pl.Float64, "score_b": pl.Float64, "diff": pl.Float64,
        "ci_low": pl.Float64, "ci_high": pl.Float64, "p_value": pl.Float64, "p_holm": pl.Float64, "test": pl.Utf8,
    }  # fmt: skip
    if not pairs or wide.height == 0:
        return pl.DataFrame(schema=schema)
    counts = _pair_counts(wide, k)
    names = {b: tf for tf, b in info.block_index.items()}
    ia, ib = np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])
    columns: dict[str, list] = {c: [] for c in ("model_a", "model_b", "task", "filter", "_block", "_i", "_j")}
    numbers: dict[str, list[np.ndarray]] = {c: [] for c in ("n_both", "only_a", "only_b", "a_right_b_wrong",
                                                             "b_right_a_wrong", "sum_a", "sum_b")}  # fmt: skip
    for block in sorted(counts, key=lambda b: (info.tasks.index(names[b][0]), names[b][1])):
        m = counts[block]
        task, filter_ = names[block]
        columns["model_a"] += [info.models[i] for i in ia]
        columns["model_b"] += [info.models[j] for j in ib]
        columns["task"] += [task] * len(pairs)
        columns["filter"] += [filter_] * len(pairs)
        columns["_block"] += [block] * len(pairs)
        columns["_i"] += ia.tolist()
        columns["_j"] += ib.tolist()
        numbers["n_both"].append(m["n_both"][ia, ib])
        numbers["only_a"].append(m["only_a"][ia, ib])
        numbers["only_b"].append(m["only_a"][ib, ia])
        numbers["a_right_b_wrong"].append(m["a_right_b_wrong"][ia, ib])
        numbers["b_right_a_wrong"].append(m["a_right_b_wrong"][ib, ia])
        numbers["sum_a"].append(m["sum_a"][ia, ib])
        numbers["sum_b"].append(m["sum_a"][ib, ia])
    num = {c: np.concatenate(v) for c, v in numbers.items()}
    n_both = np.rint(num["n_both"]).astype(np.int64)
    b = np.rint(num["a_right_b_wrong"]).astype(np.int64)
    c = np.rint(num["b_right_a_wrong"]).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        score_a = np.where(n_both > 0, num["sum_a"] / n_both, np.nan)
        score_b = np.where(n_both > 0, num["sum_b"] / n_both, np.nan)
    binary = np.array([info.binary[t] for t in columns["task"]], dtype=bool)
    n = len(n_both)
    low, high, p_value = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    tested = n_both > 0  # nothing aligned: no test, no interval
    sel = binary & tested
    if sel.any():
        p_value[sel] = _stats.mcnemar_exact(b[sel], c[sel])
        low[sel], high[sel] = _stats.paired_binary_diff_ci(
            b[sel], c[sel], n_both[sel], n_resamples=n_resamples, confidence=confidence, seed=seed
        )
    for r in np.flatnonzero(~binary & tested):
        low[r], high[r], p_value[r] = continuous[(columns["_block"][r], columns["_i"][r], columns["_j"][r])]
    # Holm family: all model pairs on one (task, filter), i.e. "which models differ on this benchmark".
    p_holm = np.full(n, np.nan)
    blocks = np.array(columns["_block"])
    for g in np.unique(blocks):
        members = blocks == g
        p_holm[members] = _stats.holm_adjust(p_value[members])
    return pl.DataFrame(
        {
            "model_a": columns["model_a"],
            "model_b": columns["model_b"],
            "task": columns["task"],
            "filter": columns["filter"],
            "metric": [info.metrics[t] for t in columns["task"]],
            "n_both": n_both,
            "only_a": np.rint(num["only_a"]).astype(np.int64),
            "only_b": np.rint(num["only_b"]).astype(np.int64),
            "a_right_b_wrong": b,
            "b_right_a_wrong": c,
            "score_a": score_a,
            "score_b": score_b,
            "diff": score_a - score_b,
            "ci_low": low,
            "ci_high": high,
            "p_value": p_value,
            "p_holm": p_holm,
            "test": np.where(binary, "mcnemar_exact", "paired_t").tolist(),
        },
        schema=schema,  # type: ignore[arg-type]
        nan_to_null=True,
    )


def _missing(wide: pl.DataFrame, scored: pl.DataFrame, models: list[str]) -> pl.DataFrame:
    """Samples scored for some compared models but not for others: one row per (sample, model lacking it)."""
    present = [pl.col(f"value_{i}").is_not_null() for i in range(len(models))]
    flags = wide.filter(pl.sum_horizontal(present).is_between(1, len(models) - 1)).select(
        *_KEY,
        "_key",
        pl.sum_horizontal(present).cast(pl.Int64).alias("present_for"),
        *[(~p).alias(str(i)) for i, p in enumerate(present)],
    )
    long = flags.unpivot(index=[*_KEY, "_key", "present_for"], variable_name="_m", value_name="_missing").filter(
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
    return _ordered(out, {"model": models}, ["task", "filter", "doc_id"])


@dataclass
class Comparison:
    """The result of `compare()`: tables, disagreement slices and figures. See `compare` for the columns.

    Attributes:
        models, tasks: in display order. metrics: the metric used per task. binary: whether it is 0/1.
        by: the grouping columns of `scores_by_group` (["category"] by default when the table has one).
        scores: model x task x filter; n, n_unscored, score, ci_low, ci_high, ci_method (Wilson or bootstrap).
        scores_by_group: the same per `by` group (empty when `by` is empty).
        pairwise: one row per model pair x task x filter (see `compare`).
        missing: samples scored for some models but not others, with reason "absent" or "unscored".
        samples: the scored long table: the canonical columns plus value (the task's chosen metric), correct
            (the binary view) and _key (an integer standing for task, filter, doc_id).
        wide: one row per aligned sample, value_<i> / correct_<i> per model i (models[i]); null = not scored.
        source: the canonical input table (all runs), for `flips`.
    """

    models: list[str]
    tasks: list[str]
    metrics: dict[str, str]
    binary: dict[str, bool]
    by: list[str]
    scores: pl.DataFrame
    scores_by_group: pl.DataFrame
    pairwise: pl.DataFrame
    missing: pl.DataFrame
    samples: pl.DataFrame
    wide: pl.DataFrame = field(repr=False)
    confidence: float = 0.95
    n_resamples: int = _stats.DEFAULT_RESAMPLES
    seed: int = 0
    source: pl.DataFrame | None = field(default=None, repr=False)
    #: {model: colour} overriding the default palette (e.g. colours fixed over a larger set of models)
    colors: dict[str, str] = field(default_factory=dict, repr=False)

    def model_colors(self) -> dict[str, str]:
        """{model: colour} used by every figure: `colors` where set, else the palette by model position."""
        from lmms_nb.analysis._palette import model_colors

        return model_colors(self.models, self.colors)

    def summary(self, *, alpha: float = 0.05) -> Any:
        """A `Summary`: models x tasks grid with mean and rank, significant wins in sentences, answer
        distributions and warnings for (near-)constant answers (see `lmms_nb.analysis.summarize`)."""
        from lmms_nb.analysis._summary import summarize

        return summarize(self, alpha=alpha)

    # ---- disagreement slices -------------------------------------------------------------------------------
    def _check_models(self, *names: str) -> None:
        unknown = [m for m in names if m not in self.models]
        if unknown:
            raise ValueError(f"model(s) {unknown} are not in this comparison; models: {self.models}")

    def _check_task(self, task: str | None) -> None:
        if task is not None and task not in self.tasks:
            raise ValueError(f"task {task!r} is not in this comparison; tasks: {self.tasks}")

    def aligned(self, a: str, b: str, *, task: str | None = None) -> pl.DataFrame:
        """Every sample scored for both `a` and `b`, side by side (input, target, both predictions and scores)."""
        self._check_models(a, b)
        self._check_task(task)
        rows = self.samples if task is None else self.samples.filter(pl.col("task") == task)
        extra = [c for c in self.by if c not in _SAMPLE_COLUMNS]
        side = ["prediction", "value", "correct", "run_id", "error"]
        left = rows.filter((pl.col("model") == a) & pl.col("value").is_not_null()).select(
            *_KEY, *_SAMPLE_COLUMNS, *extra, *side
        )
        right = rows.filter((pl.col("model") == b) & pl.col("value").is_not_null()).select(*_KEY, *side)
        both = left.join(right, on=_KEY, how="inner", suffix="_b")
        return _ordered(
            both.select(
                pl.lit(a).alias("model_a"),
                pl.lit(b).alias("model_b"),
                *_KEY,
                *_SAMPLE_COLUMNS,
                *extra,
                pl.col("prediction").alias("prediction_a"),
                "prediction_b",
                pl.col("value").alias("score_a"),
                pl.col("value_b").alias("score_b"),
                pl.col("correct").alias("correct_a"),
                "correct_b",
                pl.col("run_id").alias("run_id_a"),
                "run_id_b",
            ),
            {"task": self.tasks},
            ["filter", "doc_id"],
        )

    def a_right_b_wrong(self, a: str, b: str, *, task: str | None = None) -> pl.DataFrame:
        """Samples `a` gets right and `b` wrong (binary view: 0/1 metric == 1, continuous >= 0.5)."""
        return self.aligned(a, b, task=task).filter(pl.col("correct_a") & ~pl.col("correct_b"))

    def b_right_a_wrong(self, a: str, b: str, *, task: str | None = None) -> pl.DataFrame:
        """Samples `b` gets right and `a` wrong."""
        return self.aligned(a, b, task=task).filter(~pl.col("correct_a") & pl.col("correct_b"))

    def both_wrong(self, a: str, b: str, *, task: str | None = None) -> pl.DataFrame:
        """Samples both `a` and `b` get wrong."""
        return self.aligned(a, b, task=task).filter(~pl.col("correct_a") & ~pl.col("correct_b"))

    def _browse(self, keyed: pl.DataFrame) -> pl.DataFrame:
        """Add the sample's input/target/image_ref and one `prediction:<model>` column per model to `keyed`."""
        rows = self.samples.join(keyed.select(_KEY), on=_KEY, how="semi")
        extra = [c for c in self.by if c not in _SAMPLE_COLUMNS]
        info = rows.group_by(_KEY).agg(pl.col(c).drop_nulls().first() for c in [*_SAMPLE_COLUMNS, *extra])
        preds = rows.select(*_KEY, "model", "prediction").pivot(
            on="model", on_columns=self.models, index=_KEY, values="prediction"
        )
        preds = preds.rename({m: f"prediction:{m}" for m in self.models})
        return keyed.join(info, on=_KEY, how="left").join(preds, on=_KEY, how="left")

    def all_fail(self, *, task: str | None = None) -> pl.DataFrame:
        """Samples that every model that was scored on them gets wrong (`n_models` says how many were)."""
        self._check_task(task)
        correct = [pl.col(f"correct_{i}") for i in range(len(self.models))]
        wide = self.wide if task is None else self.wide.filter(pl.col("task") == task)
        keyed = (
            wide.select(
                *_KEY,
                pl.sum_horizontal(c.is_not_null() for c in correct).cast(pl.Int64).alias("n_models"),
                pl.sum_horizontal(c.fill_null(0) for c in correct).cast(pl.Int64).alias("_right"),
            )
            .filter((pl.col("n_models") > 0) & (pl.col("_right") == 0))
            .drop("_right")
        )
        return _ordered(self._browse(keyed), {"task": self.tasks}, ["filter", "doc_id"])

    def most_separating(self, n: int = 20, *, task: str | None = None) -> pl.DataFrame:
        """The `n` samples that best separate strong from weak models.

        separation = mean task score of the models right on the sample - mean task score of those wrong on it
        (the classic item discrimination index, with models as test takers). Only samples some models get
        right and others wrong qualify; ties go to the most even split.
        """
        self._check_task(task)
        k = len(self.models)
        wide = self.wide if task is None else self.wide.filter(pl.col("task") == task)
        # Each model's score on the sample's task (its "ability"), as columns s_<i> next to correct_<i>.
        strength = self.scores.select(
            "task", "filter", pl.col("model").replace_strict({m: f"s_{i}" for i, m in enumerate(self.models)}), "score"
        ).pivot(on="model", index=["task", "filter"], values="score")
        strength = strength.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(f"s_{i}") for i in range(k) if f"s_{i}" not in strength.columns
        )
        right = [pl.col(f"correct_{i}").cast(pl.Float64) for i in range(k)]
        wrong = [1.0 - r for r in right]
        ability = [pl.col(f"s_{i}") for i in range(k)]
        keyed = (
            wide.join(strength, on=["task", "filter"], how="left")
            .select(
                *_KEY,
                pl.sum_horizontal(r.is_not_null() for r in right).cast(pl.Int64).alias("n_models"),
                pl.sum_horizontal(right).cast(pl.Int64).alias("n_right"),
                (
                    pl.sum_horizontal(r * a for r, a in zip(right, ability, strict=True)) / pl.sum_horizontal(right)
                    - pl.sum_horizontal(w * a for w, a in zip(wrong, ability, strict=True)) / pl.sum_horizontal(wrong)
                ).alias("separation"),
                *[pl.col(f"correct_{i}") for i in range(k)],
            )
            .filter((pl.col("n_right") > 0) & (pl.col("n_right") < pl.col("n_models")))
            .with_columns((pl.col("n_right") / pl.col("n_models") - 0.5).abs().alias("_balance"))
            .sort(["separation", "_balance", "task", "filter", "doc_id"], descending=[True, False, False, False, False])
            .head(n)
            .with_columns(  # who got it right / wrong, for the top rows only
                pl.concat_list(pl.when(r == 1).then(pl.lit(m)) for r, m in zip(right, self.models, strict=True))
                .list.drop_nulls()
                .alias("right"),
                pl.concat_list(pl.when(r == 0).then(pl.lit(m)) for r, m in zip(right, self.models, strict=True))
                .list.drop_nulls()
                .alias("wrong"),
            )
            .drop("_balance", *[f"correct_{i}" for i in range(k)])
        )
        return self._browse(keyed)

    def agreement(self) -> pl.DataFrame:
        """Per model pair, pooled over tasks: samples scored for both and the share with the same correctness."""
        exprs = []
        for i, j in combinations(range(len(self.models)), 2):
            ci, cj = pl.col(f"correct_{i}"), pl.col(f"correct_{j}")
            exprs += [
                (ci.is_not_null() & cj.is_not_null()).sum().cast(pl.Int64).alias(f"{i}:{j}:n"),
                (ci == cj).mean().alias(f"{i}:{j}:agree"),
            ]
        stats = self.wide.select(exprs).row(0, named=True) if exprs else {}
        rows = [
            {
                "model_a": self.models[i],
                "model_b": self.models[j],
                "n_both": stats[f"{i}:{j}:n"],
                "agreement": stats[f"{i}:{j}:agree"],
            }
            for i, j in combinations(range(len(self.models)), 2)
        ]
        return pl.DataFrame(
            rows, schema={"model_a": pl.Utf8, "model_b": pl.Utf8, "n_both": pl.Int64, "agreement": pl.Float64}
        )

    def flips(self, run_a: str, run_b: str, *, task: str | None = None) -> "Flips":
        """What changed between two runs (e.g. two checkpoints) in the table this comparison was built from."""
        if self.source is None:
            raise ValueError("this Comparison keeps no source table; call lmms_nb.analysis.flips(df, run_a, run_b)")
        return flips(
            self.source,
            run_a,
            run_b,
            tasks=[task] if task else None,
            metric=self.metrics if task is None else {task: self.metrics[task]},
            n_resamples=self.n_resamples,
            seed=self.seed,
        )

    # ---- figures (plotly imported lazily) -------------------------------------------------------------------
    def bar_figure(self, *, groups: bool = False, chance: Mapping[str, float] | bool = True) -> "go.Figure":
        """Grouped bars of the score per task (or per task x group), one trace per model in its fixed colour,
        CI error bars and a dotted chance line per task (`chance=False` to leave it out)."""
        from lmms_nb.analysis._figures import bar_figure

        return bar_figure(self, groups=groups, chance=chance)

    def category_heatmap(self, *, task: str | None = None) -> "go.Figure":
        """Models x categories (the `by` groups) heatmap of scores."""
        from lmms_nb.analysis._figures import category_heatmap

        self._check_task(task)
        return category_heatmap(self, task=task)

    def sample_heatmap(self, *, task: str | None = None, max_samples: int = 300) -> "go.Figure":
        """Per-sample correctness, samples sorted from easiest to hardest (x) by models (y)."""
        from lmms_nb.analysis._figures import sample_heatmap

        self._check_task(task)
        return sample_heatmap(self, task=task, max_samples=max_samples)

    def scatter(self, a: str, b: str) -> "go.Figure":
        """Score of `a` (x) against `b` (y) per task x group, with the diagonal."""
        from lmms_nb.analysis._figures import scatter

        self._check_models(a, b)
        return scatter(self, a, b)

    def agreement_figure(self) -> "go.Figure":
        """Models x models matrix of the share of samples on which both are right or both wrong."""
        from lmms_nb.analysis._figures import agreement_figure

        return agreement_figure(self)

    # ---- notebook display -----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"Comparison(models={self.models}, tasks={self.tasks}, metrics={self.metrics}, by={self.by}, "
            f"pairwise={self.pairwise.height} rows, missing={self.missing.height})"
        )

    def _repr_html_(self) -> str:
        return _comparison_html(self)


def compare(
    df: Any,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    metric: str | Mapping[str, str] | None = None,
    by: str | Sequence[str] | None = None,
    runs: RunChoice = None,
    confidence: float = 0.95,
    n_resamples: int = _stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Compare models on a canonical sample table (polars or pandas).

    Args:
        df: the canonical sample table (`lmms_nb.load_logs(...)` or `Run.samples`).
        models, tasks: the models (in display order) and tasks to compare; default all (sorted).
        metric: a metric column for every task, or {task: column}. Default: per task, the only metric column
            with values on that task's rows; with several, an error lists them.
        by: column(s) for `scores_by_group` and the category figures; default "category" when it has values.
        runs: which run of a model to use when several runs cover one task: {model: run_id} or "latest"
            (the run id that sorts last); otherwise that case raises.
        confidence, n_resamples, seed: of the percentile bootstrap CIs (fixed seed: reproducible numbers).

    `scores` / `scores_by_group`: n (scored samples), n_unscored (rows whose metric is null, e.g. a model
    error), score (mean of the metric) and a CI named by `ci_method`: the Wilson score interval for 0/1
    metrics (never a point: 5 of 5 right is [0.57, 1]), a percentile bootstrap for continuous ones (Wilson
    of the mean when all values are equal and in [0, 1], where the bootstrap would give a point).

    "Correct" (slices, flips, agreement, the sample heatmap) is value == 1 for 0/1 metrics and value >= 0.5
    (`CONTINUOUS_CORRECT_THRESHOLD`) for continuous ones such as ANLS.

    `pairwise` has one row per model pair (a before b in model order) x task x filter: n_both, only_a/only_b
    (samples scored for one side only: counted here, listed in `missing`), a_right_b_wrong, b_right_a_wrong,
    score_a/score_b on the shared samples, diff = score_a - score_b with its paired bootstrap CI (pairs
    resampled; n_resamples draws seeded by seed and the pair's counts), and p_value from McNemar's exact test
    (0/1 metrics: binomial test on the discordant pairs) or a paired t-test (continuous metrics), p_holm
    adjusted (Holm) over all model pairs of the same task and filter, and `test` naming the test.

    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "A", "B"], "task": ["t"] * 3, "doc_id": [0, 1, 0], "acc": [1, 0, 1]})
    >>> cmp = compare(df)
    >>> cmp.scores.select("model", "n", "score").rows()
    [('A', 2, 0.5), ('B', 1, 1.0)]
    >>> cmp.missing.select("model", "doc_id", "reason").rows()
    [('B', 1, 'absent')]
    """
    source = as_canonical(df, keep=[by] if isinstance(by, str) else list(by or []))
    scored, info = prepare(source, models=models, tasks=tasks, metric=metric, by=by, runs=runs)
    stats: dict[str, Any] = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    wide = _wide(scored, info)
    task_cis, group_cis, pair_cis = _continuous_intervals(wide, scored, info, **stats)
    scores = _block_scores(info, ["model", "task", "filter"], task_cis, confidence=confidence)
    if info.by:
        by_scores = _block_scores(info, ["model", "task", "filter", *info.by], group_cis, confidence=confidence)
    else:
        by_scores = pl.DataFrame(schema=scores.schema)
    return Comparison(
        models=info.models,
        tasks=info.tasks,
        metrics=info.metrics,
        binary=info.binary,
        by=info.by,
        scores=scores,
        scores_by_group=by_scores,
        pairwise=_pairwise(wide, info, pair_cis, **stats),
        missing=_missing(wide, scored, info.models),
        samples=scored,
        wide=wide,
        source=source,
        **stats,
    )


# ---- flips between two runs ---------------------------------------------------------------------------------
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
        return f"<div>{head}{_table_html(self.summary)}</div>"


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


# ---- HTML summary -------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table_html(frame: pl.DataFrame, max_rows: int = 30) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in frame.head(max_rows).iter_rows()
    )
    more = f"<p>&hellip; {frame.height - max_rows} more rows</p>" if frame.height > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _comparison_html(cmp: Comparison) -> str:
    e = html.escape
    tasks = cmp.tasks
    header = "<tr><th>model</th>" + "".join(f"<th>{e(t)}<br><small>{e(cmp.metrics[t])}</small></th>" for t in tasks)
    # one cell per model x task: the task's first filter (alphabetically); all filters are in `.scores`
    first_filter = cmp.scores.filter(pl.col("filter") == pl.col("filter").min().over("task"))
    cells = {(r["model"], r["task"]): r for r in first_filter.iter_rows(named=True)}
    rows = []
    for m in cmp.models:
        tds = []
        for t in tasks:
            r = cells.get((m, t))
            if r is None or r["score"] is None:
                tds.append("<td>&ndash;</td>")
            else:
                tds.append(
                    f"<td>{r['score']:.3f} <small>[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] n={r['n']}</small></td>"
                )
        rows.append(f"<tr><th>{e(m)}</th>{''.join(tds)}</tr>")
    pw = cmp.pairwise.select(
        "model_a",
        "model_b",
        "task",
        "n_both",
        "a_right_b_wrong",
        "b_right_a_wrong",
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "test",
    )
    groups = ""
    if cmp.by and cmp.scores_by_group.height:
        table = cmp.scores_by_group.select("model", "task", *cmp.by, "n", "score", "ci_low", "ci_high")
        groups = f"<details><summary>scores by {e(' / '.join(cmp.by))}</summary>{_table_html(table, 60)}</details>"
    n_missing = cmp.missing.height
    level = int(round(cmp.confidence * 100))
    return (
        f"<div class='lmms-nb-comparison'><p><b>Comparison</b> of {len(cmp.models)} models on {len(tasks)} tasks "
        f"({level}% CIs: Wilson for 0/1 metrics, bootstrap otherwise)</p>"
        f"<table><thead>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{groups}"
        f"<p><b>Pairwise</b> (aligned on task, doc_id, filter; Holm over the pairs of each task)</p>{_table_html(pw)}"
        f"<p>{n_missing} (sample, model) pairs missing on one side"
        + (" &mdash; see <code>.missing</code>" if n_missing else "")
        + "</p></div>"
    )
