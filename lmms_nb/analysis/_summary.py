"""`summarize(cmp)`: what a researcher reads first: who is best, where, how sure, and which model only looks good.

- `grid`: models x tasks (score per task, the mean over tasks and the rank), `cells` the same in long form
  with each score's CI;
- `wins` / `sentences`: significant differences in plain words ("zoo-large beats zoo-base on 3 of 5 tasks
  (Holm p < 0.05)"), from `Comparison.pairwise` (McNemar / paired t, Holm-adjusted per task);
- `answers` / `warnings`: each model's answer distribution per task, and a warning for a model that gives
  (nearly) the same answer everywhere: answering "B" to every multiple-choice question scores like a weak
  model but says nothing about understanding;
- `chance`: per 0/1-metric task, the score of always giving the most frequent target (the line drawn on the
  bar charts).

Example:
    >>> import polars as pl
    >>> from lmms_nb.analysis import compare
    >>> df = pl.DataFrame({"model": ["A"] * 20 + ["B"] * 20, "task": ["t"] * 40, "doc_id": list(range(20)) * 2,
    ...                    "target": ["x", "y"] * 20, "prediction": ["x", "y"] * 10 + ["x"] * 20,
    ...                    "acc": [1.0] * 20 + [1.0, 0.0] * 10})
    >>> s = summarize(compare(df))
    >>> s.grid.rows()
    [('A', 1, 1.0, 1.0), ('B', 2, 0.5, 0.5)]
    >>> s.sentences[:2]
    ['Best overall: A (mean score 1.000 over 1 task; first on 1 of 1).', 'A beats B on 1 of 1 task (Holm p < 0.05): t.']
    >>> s.warnings
    ['B gives the same answer "x" to 100% of t samples (the most frequent target is 50%): its score says little.']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from lmms_nb.analysis._comparison import Comparison

__all__ = ["Summary", "chance_levels", "format_p", "summarize"]

#: A model whose most frequent answer covers at least this share of a task's samples gets a warning.
NEAR_CONSTANT_SHARE = 0.9
_MAX_PAIR_SENTENCES = 8


def format_p(p: float | None) -> str:
    """A p-value for people: scientific below 0.001 (never "0.000"), three decimals otherwise.

    >>> format_p(3.2e-7), format_p(0.0123), format_p(None)
    ('3.2e-07', '0.012', '–')
    """
    if p is None or p != p:
        return "–"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


@dataclass
class Summary:
    """See the module doc. `alpha` is the Holm-adjusted level of "significant"."""

    grid: pl.DataFrame
    cells: pl.DataFrame
    wins: pl.DataFrame
    sentences: list[str]
    answers: pl.DataFrame
    warnings: list[str]
    chance: dict[str, float] = field(default_factory=dict)
    alpha: float = 0.05

    def _repr_html_(self) -> str:
        import html

        items = "".join(f"<li>{html.escape(s)}</li>" for s in self.sentences + self.warnings)
        return f"<ul class='lmms-nb-summary'>{items}</ul>"


def _primary(scores: pl.DataFrame) -> pl.DataFrame:
    """One filter per task (the first alphabetically; every filter stays in `Comparison.scores`)."""
    return scores.filter(pl.col("filter") == pl.col("filter").min().over("task"))


def _cells(cmp: "Comparison") -> pl.DataFrame:
    cells = _primary(cmp.scores).select(
        "model", "task", "filter", "metric", "n", "score", "ci_low", "ci_high", "ci_method"
    )
    return cells.with_columns(
        pl.col("score").rank("min", descending=True).over("task").cast(pl.Int64).alias("rank_in_task")
    )


def _grid(cmp: "Comparison", cells: pl.DataFrame) -> pl.DataFrame:
    means = cells.group_by("model").agg(pl.col("score").mean().alias("mean"))
    wide = cells.pivot(on="task", index="model", values="score", on_columns=cmp.tasks)
    grid = means.join(wide, on="model", how="left").with_columns(
        pl.col("mean").rank("min", descending=True).cast(pl.Int64).alias("rank")
    )
    return grid.sort(["rank", "model"], nulls_last=True).select("model", "rank", "mean", *cmp.tasks)


def _wins(cmp: "Comparison", alpha: float) -> pl.DataFrame:
    pw = cmp.pairwise.filter(pl.col("n_both") > 0)
    primary = _primary(cmp.scores).select("task", "filter").unique()
    pw = pw.join(primary, on=["task", "filter"], how="semi")
    sig = pl.col("p_holm") < alpha
    return (
        pw.group_by("model_a", "model_b", maintain_order=True)
        .agg(
            pl.len().alias("n_tasks"),
            (sig & (pl.col("diff") > 0)).sum().cast(pl.Int64).alias("wins_a"),
            (sig & (pl.col("diff") < 0)).sum().cast(pl.Int64).alias("wins_b"),
            pl.col("task").filter(sig & (pl.col("diff") > 0)).alias("tasks_a"),
            pl.col("task").filter(sig & (pl.col("diff") < 0)).alias("tasks_b"),
        )
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _sentences(cmp: "Comparison", grid: pl.DataFrame, cells: pl.DataFrame, wins: pl.DataFrame, alpha: float) -> list[str]:
    out = []
    if grid.height and grid["mean"][0] is not None:
        best = grid.row(0, named=True)
        n_tasks = cells.filter(pl.col("model") == best["model"])["score"].drop_nulls().len()
        firsts = cells.filter((pl.col("model") == best["model"]) & (pl.col("rank_in_task") == 1)).height
        tie = grid.filter(pl.col("rank") == 1).height > 1
        lead = "Best overall (tied)" if tie else "Best overall"
        out.append(f"{lead}: {best['model']} (mean score {best['mean']:.3f} over {_plural(n_tasks, 'task')}; "
                   f"first on {firsts} of {len(cmp.tasks)}).")
    rows = []
    for r in wins.iter_rows(named=True):
        for winner, loser, k, tasks in ((r["model_a"], r["model_b"], r["wins_a"], r["tasks_a"]),
                                        (r["model_b"], r["model_a"], r["wins_b"], r["tasks_b"])):
            if k:
                rows.append((k, winner, loser, r["n_tasks"], tasks))
    rank = dict(zip(grid["model"], grid["rank"], strict=True))
    rows.sort(key=lambda x: (-x[0], rank.get(x[1]) or 0, rank.get(x[2]) or 0))
    for k, winner, loser, n, tasks in rows[:_MAX_PAIR_SENTENCES]:
        listed = ": " + ", ".join(tasks) if len(tasks) <= 4 else ""
        out.append(f"{winner} beats {loser} on {k} of {_plural(n, 'task')} (Holm p < {alpha:g}){listed}.")
    if len(rows) > _MAX_PAIR_SENTENCES:
        out.append(f"{len(rows) - _MAX_PAIR_SENTENCES} more model pairs differ significantly on at least one task "
                   "(see the pairwise table).")
    if len(cmp.models) > 1 and not rows:
        out.append(f"No difference between models is significant at Holm p < {alpha:g}: more samples are needed "
                   "to tell them apart.")
    return out


def _norm(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Utf8).str.strip_chars().str.to_lowercase().str.slice(0, 60)


def _answers(cmp: "Comparison") -> tuple[pl.DataFrame, dict[str, float]]:
    rows = cmp.samples.filter(pl.col("prediction").is_not_null())
    counts = rows.group_by("model", "task", _norm("prediction").alias("answer")).agg(pl.len().alias("count"))
    answers = (
        counts.sort(["count", "answer"], descending=[True, False])
        .group_by("model", "task", maintain_order=True)
        .agg(
            pl.col("count").sum().alias("n"),
            pl.len().alias("n_distinct"),
            pl.col("answer").first().alias("top_answer"),
            pl.col("count").first().alias("top_count"),
        )
        .with_columns((pl.col("top_count") / pl.col("n")).alias("top_share"))
        .drop("top_count")
    )
    # The targets' own distribution, one row per sample (targets are the same for every model).
    docs = cmp.samples.filter(pl.col("target").is_not_null()).unique(["task", "filter", "doc_id"], keep="first")
    targets = (
        docs.group_by("task", _norm("target").alias("t"))
        .agg(pl.len().alias("c"))
        .group_by("task")
        .agg((pl.col("c").max() / pl.col("c").sum()).alias("target_top_share"), pl.len().alias("n_targets"))
    )
    answers = answers.join(targets, on="task", how="left")
    chance = {
        r["task"]: r["target_top_share"]
        for r in targets.iter_rows(named=True)
        if cmp.binary.get(r["task"]) and r["n_targets"] > 1
    }
    order = {m: i for i, m in enumerate(cmp.models)}, {t: i for i, t in enumerate(cmp.tasks)}
    answers = answers.sort(
        pl.col("model").replace_strict(order[0], default=len(order[0]), return_dtype=pl.Int64),
        pl.col("task").replace_strict(order[1], default=len(order[1]), return_dtype=pl.Int64),
    )
    return answers, chance


def chance_levels(cmp: "Comparison") -> dict[str, float]:
    """{task: the score of always giving the task's most frequent target} for 0/1-metric tasks with more
    than one distinct target: the "chance" line of the bar charts (a model at that line may know nothing)."""
    return _answers(cmp)[1]


def _warnings(answers: pl.DataFrame) -> list[str]:
    out = []
    suspicious = answers.filter(
        (pl.col("top_share") >= NEAR_CONSTANT_SHARE) & (pl.col("n") >= 5) & (pl.col("n_targets") > 1)
        & (pl.col("top_share") > pl.col("target_top_share").fill_null(0.0) + 0.05)
    )
    for r in suspicious.iter_rows(named=True):
        target = "" if r["target_top_share"] is None else f" (the most frequent target is {r['target_top_share']:.0%})"
        out.append(f'{r["model"]} gives the same answer "{r["top_answer"]}" to {r["top_share"]:.0%} of {r["task"]} '
                   f"samples{target}: its score says little.")
    return out


def summarize(cmp: "Comparison", *, alpha: float = 0.05) -> Summary:
    """The `Summary` of a `Comparison` (also `Comparison.summary()`); see the module doc."""
    cells = _cells(cmp)
    grid = _grid(cmp, cells)
    wins = _wins(cmp, alpha)
    answers, chance = _answers(cmp)
    return Summary(
        grid=grid,
        cells=cells,
        wins=wins,
        sentences=_sentences(cmp, grid, cells, wins, alpha),
        answers=answers,
        warnings=_warnings(answers),
        chance=chance,
        alpha=alpha,
    )
