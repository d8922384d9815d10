"""`Comparison`, the result of `compare()`: its tables, the disagreement slices between models, and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any, Mapping

import polars as pl

from lmms_nb.analysis import _stats
from lmms_nb.analysis._alignment import KEY_COLUMNS, SAMPLE_COLUMNS, sort_by_display_order
from lmms_nb.analysis._comparison_html import comparison_html

if TYPE_CHECKING:  # plotly is imported only inside the figure functions
    import plotly.graph_objects as go

    from lmms_nb.analysis._flips import Flips

__all__ = ["Comparison"]


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
        extra = [c for c in self.by if c not in SAMPLE_COLUMNS]
        side = ["prediction", "value", "correct", "run_id", "error"]
        left = rows.filter((pl.col("model") == a) & pl.col("value").is_not_null()).select(
            *KEY_COLUMNS, *SAMPLE_COLUMNS, *extra, *side
        )
        right = rows.filter((pl.col("model") == b) & pl.col("value").is_not_null()).select(*KEY_COLUMNS, *side)
        both = left.join(right, on=KEY_COLUMNS, how="inner", suffix="_b")
        return sort_by_display_order(
            both.select(
                pl.lit(a).alias("model_a"),
                pl.lit(b).alias("model_b"),
                *KEY_COLUMNS,
                *SAMPLE_COLUMNS,
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
        rows = self.samples.join(keyed.select(KEY_COLUMNS), on=KEY_COLUMNS, how="semi")
        extra = [c for c in self.by if c not in SAMPLE_COLUMNS]
        info = rows.group_by(KEY_COLUMNS).agg(pl.col(c).drop_nulls().first() for c in [*SAMPLE_COLUMNS, *extra])
        preds = rows.select(*KEY_COLUMNS, "model", "prediction").pivot(
            on="model", on_columns=self.models, index=KEY_COLUMNS, values="prediction"
        )
        preds = preds.rename({m: f"prediction:{m}" for m in self.models})
        return keyed.join(info, on=KEY_COLUMNS, how="left").join(preds, on=KEY_COLUMNS, how="left")

    def all_fail(self, *, task: str | None = None) -> pl.DataFrame:
        """Samples that every model that was scored on them gets wrong (`n_models` says how many were)."""
        self._check_task(task)
        correct = [pl.col(f"correct_{i}") for i in range(len(self.models))]
        wide = self.wide if task is None else self.wide.filter(pl.col("task") == task)
        keyed = (
            wide.select(
                *KEY_COLUMNS,
                pl.sum_horizontal(c.is_not_null() for c in correct).cast(pl.Int64).alias("n_models"),
                pl.sum_horizontal(c.fill_null(0) for c in correct).cast(pl.Int64).alias("_right"),
            )
            .filter((pl.col("n_models") > 0) & (pl.col("_right") == 0))
            .drop("_right")
        )
        return sort_by_display_order(self._browse(keyed), {"task": self.tasks}, ["filter", "doc_id"])

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
                *KEY_COLUMNS,
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
        from lmms_nb.analysis._flips import flips  # flips() builds a Comparison itself

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
        return comparison_html(self)
