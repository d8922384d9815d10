"""`CompareDashboard`: choose models and tasks; scores with CIs, paired tests and the figures of `compare()`;
click a bar or a heatmap cell to open the `SampleBrowser` on the samples behind it.

Everything shown is `lmms_nb.compare()`'s: the dashboard only re-runs it when the selection changes and
turns its figures into `plotly.graph_objects.FigureWidget`s (plotly >= 6 builds them on anywidget). A click
in the browser reaches Python through the widget's comm (`trace.on_click`); each trace's `customdata` holds
the keys of the clicked bar or cell ([model, task, group] for bars and category cells, [model, task, doc_id,
filter] for per-sample cells), which become the browser's filter.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "B"] * 4, "task": ["t"] * 8, "doc_id": [0, 0, 1, 1, 2, 2, 3, 3],
    ...                    "acc": [1, 0, 1, 1, 0, 1, 1, 0]})
    >>> dash = CompareDashboard(df, n_resamples=200)
    >>> dash.comparison.scores["score"].to_list()
    [0.75, 0.5]
    >>> dash.show_samples(model="A", task="t")
    >>> dash.browser.layout.display, dash.browser.n_matches
    ('', 4)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.widgets._browser import NO_CATEGORY, SampleBrowser
from lmms_nb.widgets._html import esc, table_html
from lmms_nb.widgets._query import SampleIndex, as_sample_table

__all__ = ["CompareDashboard"]

#: The label `compare()`'s figures give a group whose value is null.
_NULL_GROUP = "(none)"


class CompareDashboard(widgets.VBox):
    """Scores, paired comparisons and figures of `lmms_nb.compare()`, linked to a `SampleBrowser`.

    Args:
        data: a canonical sample table (polars/pandas), a `Run`, a `Comparison` (its source table) or log path(s).
        metric, by, runs, confidence, n_resamples, seed: passed to `compare()` (runs defaults to "latest").
        page_size: of the sample browser.

    Controls: `model_select`, `task_select` (each change re-runs `compare`). Shown: `status_html`,
    `scores_html`, `pairwise_html`, `figures` ({"bar", "category", "samples": FigureWidget}), and `browser`
    (hidden until a click; `browser_title` says what was clicked). `comparison` is the current `Comparison`;
    `last_click` the keys of the last click.
    """

    def __init__(self, data: Any, *, metric: str | Mapping[str, str] | None = None,
                 by: str | Sequence[str] | None = None, runs: Mapping[str, str] | str | None = "latest",
                 confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0, page_size: int = 10,
                 **kwargs: Any):
        source = getattr(data, "source", None)  # a Comparison keeps the table it was built from
        self.source = source if isinstance(source, pl.DataFrame) else as_sample_table(data)
        self._options = {"metric": metric, "by": by, "runs": runs, "confidence": confidence,
                         "n_resamples": n_resamples, "seed": seed}
        self.index = SampleIndex(self.source, metric=metric, runs=runs)
        self.comparison: Any = None
        self.figures: dict[str, Any] = {}
        self.last_click: dict[str, Any] | None = None

        self.model_select = widgets.SelectMultiple(options=self.index.models, value=self.index.models,
                                                   description="models", rows=min(6, max(2, len(self.index.models))))
        self.task_select = widgets.SelectMultiple(options=self.index.tasks, value=self.index.tasks,
                                                  description="tasks", rows=min(6, max(2, len(self.index.tasks))))
        self.status_html = widgets.HTML()
        self.scores_html = widgets.HTML()
        self.pairwise_html = widgets.HTML()
        self.figures_box = widgets.VBox()
        self.browser_title = widgets.HTML()
        self.browser = SampleBrowser(self.index, page_size=page_size)
        self.browser.layout.display = "none"
        self.close_browser_button = widgets.Button(description="hide samples", layout=widgets.Layout(display="none"))
        self.close_browser_button.on_click(lambda _: self._hide_browser())
        self.model_select.observe(lambda _: self.refresh(), names="value")
        self.task_select.observe(lambda _: self.refresh(), names="value")

        super().__init__([
            widgets.HBox([self.model_select, self.task_select]),
            self.status_html,
            widgets.HTML("<b>Scores</b>"), self.scores_html,
            widgets.HTML("<b>Pairwise (paired tests, Holm-adjusted)</b>"), self.pairwise_html,
            self.figures_box,
            widgets.HBox([self.browser_title, self.close_browser_button]),
            self.browser,
        ], **kwargs)
        self.add_class("lmms-nb-compare-dashboard")
        for widget, name in ((self.model_select, "models"), (self.task_select, "tasks"), (self.status_html, "status"),
                             (self.scores_html, "scores"), (self.pairwise_html, "pairwise"),
                             (self.browser_title, "browser-title"), (self.close_browser_button, "hide-samples")):
            widget.add_class(f"lmms-nb-{name}")
        self.refresh()

    # ---- compare and draw ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-run `compare()` on the selected models and tasks and redraw tables and figures."""
        from lmms_nb.analysis import compare

        models, tasks = list(self.model_select.value), list(self.task_select.value)
        if not models or not tasks:
            self._fail("choose at least one model and one task")
            return
        options = dict(self._options)
        if isinstance(options["metric"], Mapping):
            options["metric"] = {t: m for t, m in options["metric"].items() if t in tasks}
        try:
            cmp = compare(self.source, models=models, tasks=tasks, **options)
        except ValueError as e:
            self._fail(str(e))
            return
        self.comparison = cmp
        several_filters = cmp.scores["filter"].n_unique() > 1
        keep = ["model", "task", *(["filter"] if several_filters else []), "metric", "n", "score", "ci_low", "ci_high"]
        self.scores_html.value = table_html(cmp.scores.select(keep))
        pair_cols = ["model_a", "model_b", "task", *(["filter"] if several_filters else []), "n_both",
                     "a_right_b_wrong", "b_right_a_wrong", "diff", "ci_low", "ci_high", "p_value", "p_holm", "test"]
        self.pairwise_html.value = (table_html(cmp.pairwise.select(pair_cols), digits=4) if cmp.pairwise.height
                                    else "<small>one model: no pairs</small>")
        level = round(cmp.confidence * 100)
        metrics = ", ".join(f"{t}: {m}" for t, m in cmp.metrics.items())
        self.status_html.value = (f"<small>{len(cmp.models)} models · {len(cmp.tasks)} tasks · metric {esc(metrics)} · "
                                  f"{level}% percentile-bootstrap CIs ({cmp.n_resamples} resamples) · "
                                  f"click a bar or a cell to see its samples</small>")
        self._draw_figures(cmp)

    def _draw_figures(self, cmp: Any) -> None:
        import plotly.graph_objects as go

        figures = {"bar": cmp.bar_figure()}
        if cmp.by:
            figures["category"] = cmp.category_heatmap()
        figures["samples"] = cmp.sample_heatmap()
        self.figures = {}
        for kind, fig in figures.items():
            fig.update_layout(height=380 if kind != "bar" else 420, margin={"l": 60, "r": 20, "t": 50, "b": 60})
            widget = go.FigureWidget(fig)
            widget.add_class(f"lmms-nb-figure-{kind}")
            for trace in widget.data:
                trace.on_click(functools.partial(self._on_click, kind))
            self.figures[kind] = widget
        self.figures_box.children = list(self.figures.values())

    def _fail(self, message: str) -> None:
        self.comparison = None
        self.status_html.value = f'<span style="color:#d62728">cannot compare: {esc(message)}</span>'
        self.scores_html.value = self.pairwise_html.value = ""
        self.figures, self.figures_box.children = {}, []

    def show_slices(self, model: str, baseline: str | None = None, embeddings: Any = None, **kwargs: Any) -> Any:
        """Run `lmms_nb.find_slices` on the selected tasks and list the slices above the samples (a click shows them).
        kwargs go to find_slices (by, min_size...)."""
        from lmms_nb.analysis import find_slices
        from lmms_nb.widgets._slices import SliceList

        found = find_slices(self.source, model, baseline, embeddings, tasks=list(self.task_select.value),
                            metric=self._options["metric"], runs=self._options["runs"], **kwargs)
        self.slice_list = SliceList(found, browser=self.browser)
        kept = [c for c in self.children if not isinstance(c, SliceList)]
        self.children = (*kept[:-2], self.slice_list, *kept[-2:])  # just above the browser
        return self.slice_list

    # ---- click-through -------------------------------------------------------------------------------------
    def _on_click(self, kind: str, trace: Any, points: Any, state: Any) -> None:
        if not points.point_inds:
            return  # plotly calls every trace's handlers; only the clicked trace has points
        where = points.point_inds[0]
        custom = trace.customdata
        if isinstance(where, (list, tuple)):  # heatmaps report [row, column]
            key = custom[where[0]][where[1]]
        else:
            key = custom[where]
        key = [None if v is None else (v.item() if hasattr(v, "item") else v) for v in key]
        if kind == "samples":
            model, task, doc_id, _filter = key
            self.show_samples(model=model, task=task, doc_id=int(doc_id))
        else:
            model, task, group = key
            self.show_samples(model=model, task=task, group=group)

    def show_samples(self, *, model: str, task: str, group: str | None = None, doc_id: int | None = None) -> None:
        """Open the browser on the samples behind a bar or cell: `task` (and `group`, or one `doc_id`), with
        `model` and the other selected models side by side."""
        category: Any = None
        if group is not None and self.comparison is not None and list(self.comparison.by) == ["category"]:
            category = NO_CATEGORY if group == _NULL_GROUP else group
        shown = list(dict.fromkeys([model, *self.model_select.value]))
        self.browser.set_filter(task=task, category=category, models=shown,
                                doc_ids=[doc_id] if doc_id is not None else ())
        self.last_click = {"model": model, "task": task, "group": group, "doc_id": doc_id}
        parts = [f"model {model}", f"task {task}"]
        if group is not None:
            parts.append(f"group {group}")
        if doc_id is not None:
            parts.append(f"doc {doc_id}")
        self.browser_title.value = f"<b>Samples behind</b> {esc(' · '.join(parts))}"
        self.browser.layout.display = ""
        self.close_browser_button.layout.display = ""

    def _hide_browser(self) -> None:
        self.browser.layout.display = "none"
        self.close_browser_button.layout.display = "none"
        self.browser_title.value = ""
