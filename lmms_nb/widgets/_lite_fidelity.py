"""`FidelityPanel`: `LiteBuilder`'s fidelity curves and the current subset's estimates with their verdict.

The numbers come from the public API (`lite_fidelity`, `plot_fidelity`, `lite_estimates`,
`subset_vs_random`); the panel keeps the results and shows them as tables and a figure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.widgets._html import error_html, esc, table_html

__all__ = ["FidelityPanel"]

STATS = ("spearman", "kendall", "pearson", "mae_points", "max_abs_error_points")


class FidelityPanel:
    """Widgets: `metric_select` and `filter_select` (the scores everything is measured on; the filter shows when
    the logs have several), `stat_select` (the curves' statistic), `box` (holds `figure`), `html` (the fidelity
    table), `estimates_html`. State: `fidelity`, `estimates`, `verdict` (the subset against random subsets of
    its size).
    """

    def __init__(self, fidelity_budgets: Sequence[int | float], n_random: int) -> None:
        self._budgets, self._n_random = tuple(fidelity_budgets), n_random
        self.metric_select = widgets.Dropdown(options=[], description="metric")
        self.filter_select = widgets.Dropdown(options=[], description="filter", layout=widgets.Layout(display="none"))
        self.stat_select = widgets.Dropdown(options=STATS, value="spearman", description="statistic")
        self.box = widgets.VBox()
        self.html = widgets.HTML()
        self.estimates_html = widgets.HTML()
        self.figure: Any = None
        self.fidelity: Any = None
        self.estimates: pl.DataFrame | None = None
        self.verdict: pl.DataFrame | None = None
        self._base_shapes: tuple = ()

    def offer_metrics(self, rows: pl.DataFrame | None, preferred: Sequence[str | None]) -> None:
        """The metrics and filters of a task's log rows, the first of `preferred` found chosen (else the first)."""
        from lmms_nb.lite_selection import default_filter, default_metric, metric_and_filter_choices

        metrics, filters = metric_and_filter_choices(rows)
        self.metric_select.options = metrics
        self.metric_select.value = default_metric(metrics, list(preferred))
        self.filter_select.options = filters
        self.filter_select.value = default_filter(filters)
        self.filter_select.layout.display = "" if len(filters) > 1 else "none"

    def clear(self) -> None:
        self.fidelity = self.estimates = self.verdict = None
        self.estimates_html.value = self.html.value = ""
        self.figure, self.box.children = None, []

    def compute(self, logs: pl.DataFrame | None, rows: pl.DataFrame | None, embeddings: Any, *, task: str,
                metric: str | None, filter: str | None) -> None:
        """`lite_fidelity` over a task's log rows (`rows`, from all `logs`), and its table."""
        from lmms_nb.lite_selection import lite_fidelity

        self.fidelity = None
        if logs is None:
            self.html.value = "<small>give logs of 3 or more models (logs=) to see fidelity curves</small>"
        elif rows is None or rows.height == 0:
            tasks = logs["task"].unique().sort().to_list() if "task" in logs.columns else []
            self.html.value = error_html("no fidelity curves", ValueError(
                f"the logs have no samples of task {task!r} (their tasks: {tasks})"))
        else:
            try:
                self.fidelity = lite_fidelity(rows, embeddings, self._budgets, metric=metric or None, task=task,
                                              filter=filter, n_random=self._n_random)
            except ValueError as e:
                self.html.value = error_html("no fidelity curves", e)
        if self.fidelity is not None:
            keep = ["k", "budget", "method", "spearman", "mae_points", "mae_points_lo", "mae_points_hi",
                    "beats_random_mae", "verdict", "radius"]
            self.html.value = table_html(self.fidelity.summary.select(keep), digits=3)

    def draw(self, subset: Any) -> None:
        """The curves of the chosen statistic (`plot_fidelity`), with `subset`'s budget marked."""
        import plotly.graph_objects as go

        from lmms_nb.lite_selection import plot_fidelity

        if self.fidelity is None:
            self.figure, self.box.children = None, []
            return
        fig = go.FigureWidget(plot_fidelity(self.fidelity, self.stat_select.value))
        fig.add_class("lmms-nb-lite-fidelity")
        self._base_shapes = tuple(fig.layout.shapes)
        self.figure = fig
        self.box.children = [fig]
        self.mark_budget(subset)

    def mark_budget(self, subset: Any) -> None:
        """A dashed vertical line on the fidelity curves at `subset`'s budget."""
        if self.figure is None or subset is None:
            return
        x = len(subset) / subset.n_full
        line = {"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "yref": "paper", "xref": "x",
                "line": {"color": "#9467bd", "dash": "dash", "width": 1.5}}
        self.figure.layout.shapes = (*self._base_shapes, line)

    def estimate(self, rows: pl.DataFrame | None, subset: Any, *, task: str | None, metric: str | None,
                 filter: str | None) -> None:
        """`lite_estimates` of `subset` per model, under the verdict of `subset_vs_random`; for a
        `DifficultySubset`, its `difficulty_estimates` under the verdict of `lite_fidelity`'s held-out
        rows of the subset's estimator (difficulty_cv, residual_cv, spread_cv or anchor_corrected) at the nearest budget
        (`subset_fidelity_verdicts`, which says so when the estimator was picked on these models): its strata already came from these models'
        answers, so their errors on it are not held out and are not shown."""
        from lmms_nb.lite_selection import (DifficultySubset, difficulty_estimates, lite_estimates,
                                            subset_fidelity_verdicts, subset_vs_random)

        self.estimates = self.verdict = None
        if rows is None or subset is None or not metric:
            self.estimates_html.value = ""
            return
        if isinstance(subset, DifficultySubset):
            try:
                self.estimates = difficulty_estimates(rows, subset, metric=metric, filter=filter)
            except ValueError as e:
                self.estimates_html.value = error_html("no estimates for this subset", e)
                return
            lines: list[str] = []
            if self.fidelity is not None:
                with contextlib.suppress(ValueError):  # too few models for difficulty_cv: no held-out verdict
                    # the verdict of the estimator the subset uses, with a caveat when it was picked on these models
                    lines = subset_fidelity_verdicts(self.fidelity, subset)
            verdict = "".join(f"<div class='lmms-nb-lite-verdict'>{esc(line)}</div>" for line in lines)
            self.estimates_html.value = (
                verdict + "<b>Scores (points): full set vs this subset's plain mean and its difficulty estimate</b> "
                "<small>(models the subset was built from (in_training) are estimated with themselves left out of "
                "the neighbours, but their answers chose the subset: no error is shown for them; the verdict above "
                "is measured on held-out models)</small>" + table_html(self.estimates, digits=1))
            return
        try:
            self.estimates = lite_estimates(rows, subset, metric=metric, task=task, filter=filter)
        except ValueError as e:
            self.estimates_html.value = error_html("no estimates for this subset", e)
            return
        self.verdict = None
        with contextlib.suppress(ValueError):  # fewer than 2 complete models: no comparison, estimates still shown
            self.verdict = subset_vs_random(rows, subset, metric=metric, task=task, filter=filter,
                                            n_random=max(self._n_random, 100))
        self.estimates_html.value = (_verdict_html(self.verdict) + "<b>Scores (points): full set vs this subset</b>"
                                     + table_html(self.estimates, digits=1))


def _verdict_html(verdict: pl.DataFrame | None) -> str:
    """One plain sentence per estimator of the current subset: better, no better, or worse than random."""
    if verdict is None or verdict.height == 0:
        return ""
    colors = {"better than random": "#2ca02c", "no better than random": "#d62728", "worse than random": "#d62728"}
    lines = []
    for r in verdict.iter_rows(named=True):
        color = colors.get(r["verdict"], "#555")
        lines.append(f"<div class='lmms-nb-lite-verdict'>This subset's {esc(r['estimator'])} is "
                     f"<b style='color:{color}'>{esc(r['verdict'])}</b>: {r['mae_points']:.2f} points off on "
                     f"average across {r['n_models']} models; random subsets of {r['k']} docs are "
                     f"{r['random_mae_points']:.2f} off, and it beats them in {r['beats_random_mae']:.0%} of "
                     f"draws.</div>")
    return "<div style='margin:4px 0'>" + "".join(lines) + "</div>"
