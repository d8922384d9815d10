"""`CompareDashboard`: choose models and tasks; a summary (who wins, where, how sure), the figures, the tables;
click a bar or a heatmap cell to open the `SampleBrowser` on the samples behind it, right under that figure.

Everything shown is `lmms_nb.compare()`'s and `Comparison.summary()`'s: the dashboard only re-runs them when
the selection changes. The figures are `plotly.graph_objects.FigureWidget`s created once and updated in
place (their traces and layout replaced), so they change in step with the tables; a busy sign shows while
the kernel works. Each model keeps one colour (its position among all the table's models), whatever is
selected. A click reaches Python through the widget's comm (`trace.on_click`); each trace's `customdata`
holds the keys of the clicked bar or cell ([model, task, group] for bars and category cells, [model, task,
doc_id, filter] for per-sample cells), which become the browser's filter, with the clicked model outlined
and, for a bar or category cell, "clicked model wrong" preselected.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "B"] * 4, "task": ["t"] * 8, "doc_id": [0, 0, 1, 1, 2, 2, 3, 3],
    ...                    "acc": [1, 0, 1, 1, 0, 1, 1, 0]})
    >>> dash = CompareDashboard(df, n_resamples=200)
    >>> dash.comparison.scores["score"].to_list()
    [0.75, 0.5]
    >>> dash.show_samples(model="A", task="t")
    >>> dash.browser.layout.display, dash.browser.n_matches, dash.browser.highlight
    ('', 1, 'A')
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.analysis import model_colors
from lmms_nb.widgets._browser import NO_CATEGORY, SampleBrowser
from lmms_nb.widgets._dashboard_tables import status_line, summary_html, tables_html
from lmms_nb.widgets._html import STYLE, esc
from lmms_nb.widgets._query import SampleIndex, as_sample_table

__all__ = ["CompareDashboard"]

#: The label `compare()`'s figures give a group whose value is null.
_NULL_GROUP = "(none)"
_HEIGHTS = {"bar": 420, "category": 380, "samples": 360}


class CompareDashboard(widgets.VBox):
    """Summary, figures and tables of `lmms_nb.compare()`, linked to a `SampleBrowser`.

    Args:
        data: a canonical sample table (polars/pandas), a `Run`, a `Comparison` (its source table) or log path(s).
        metric, by, runs, confidence, n_resamples, seed: passed to `compare()` (runs defaults to "latest").
        page_size: of the sample browser. theme: the figures' plotly template: "auto" (transparent, reads on
            JupyterLab's light and dark themes), "light" or "dark". colors: {model: colour} overrides.

    Controls: `model_select`, `task_select` (each change re-runs `compare`). Shown: `busy_html`, `status_html`,
    `summary_html` (sentences, warnings and the models x tasks grid), `figures` ({"bar", "category",
    "samples": FigureWidget}), `scores_html`, `pairwise_html`, `answers_html`, and `browser` (hidden until a
    click; `browser_title` says what was clicked). `comparison` is the current `Comparison`, `summary` its
    `Summary`; `last_click` the keys of the last click.
    """

    def __init__(self, data: Any, *, metric: str | Mapping[str, str] | None = None,
                 by: str | Sequence[str] | None = None, runs: Mapping[str, str] | str | None = "latest",
                 confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0, page_size: int = 10,
                 theme: str = "auto", colors: Mapping[str, str] | None = None, **kwargs: Any):
        from lmms_nb.analysis import plotly_template

        source = getattr(data, "source", None)  # a Comparison keeps the table it was built from
        self.source = source if isinstance(source, pl.DataFrame) else as_sample_table(data)
        self._options = {"metric": metric, "by": by, "runs": runs, "confidence": confidence,
                         "n_resamples": n_resamples, "seed": seed}
        self.index = SampleIndex(self.source, metric=metric, runs=runs)
        self.colors = model_colors(self.index.models, colors)  # fixed over the full model list
        self._template = plotly_template(theme)
        self.comparison: Any = None
        self.summary: Any = None
        self.figures: dict[str, Any] = {}
        self._figure_widgets: dict[str, Any] = {}
        self.last_click: dict[str, Any] | None = None

        label = {"description_width": "initial"}
        self.model_select = widgets.SelectMultiple(options=self.index.models, value=self.index.models,
                                                   description="models", rows=min(7, max(2, len(self.index.models))),
                                                   style=label)
        self.task_select = widgets.SelectMultiple(options=self.index.tasks, value=self.index.tasks,
                                                  description="tasks", rows=min(7, max(2, len(self.index.tasks))),
                                                  style=label)
        self.busy_html = widgets.HTML()
        self.status_html = widgets.HTML()
        self.summary_html = widgets.HTML()
        self.scores_html = widgets.HTML()
        self.pairwise_html = widgets.HTML()
        self.answers_html = widgets.HTML()
        self.figures_box = widgets.VBox()
        self.browser_title = widgets.HTML()
        self.browser = SampleBrowser(self.index, page_size=page_size, colors=self.colors)
        self.browser.layout.display = "none"
        self.close_browser_button = widgets.Button(description="hide samples", layout=widgets.Layout(display="none"))
        self.close_browser_button.on_click(lambda _: self._hide_browser())
        self.browser_box = widgets.VBox([widgets.HBox([self.browser_title, self.close_browser_button]), self.browser])
        self._browser_after: str | None = None
        self.model_select.observe(lambda _: self.refresh(), names="value")
        self.task_select.observe(lambda _: self.refresh(), names="value")
        tables = widgets.VBox([self.scores_html, self.pairwise_html, self.answers_html])
        self.tables = tables

        super().__init__([
            widgets.HBox([self.model_select, self.task_select, self.busy_html]),
            self.status_html,
            self.summary_html,
            self.figures_box,
            tables,
        ], **kwargs)
        self.add_class("lmms-nb-compare-dashboard")
        for widget, name in ((self.model_select, "models"), (self.task_select, "tasks"), (self.status_html, "status"),
                             (self.summary_html, "summary"), (self.scores_html, "scores"),
                             (self.pairwise_html, "pairwise"), (self.answers_html, "answers"),
                             (self.busy_html, "busy"), (self.browser_title, "browser-title"),
                             (self.close_browser_button, "hide-samples"), (self.browser_box, "browser-box")):
            widget.add_class(f"lmms-nb-{name}")
        self.refresh()

    # ---- compare and draw ----------------------------------------------------------------------------------
    def _busy(self, on: bool) -> None:
        """A visible sign while the kernel works: a spinner and dimmed figures and tables."""
        self.busy_html.value = ('<span class="lmms-nb-busy-sign" style="font-size:13px">⏳ updating…</span>'
                                if on else "")
        # (only the summary is dimmed: restyling the figures' box while plotly draws them left a figure blank)
        (self.summary_html.add_class if on else self.summary_html.remove_class)("lmms-nb-busy")

    def refresh(self) -> None:
        """Re-run `compare()` on the selected models and tasks; update figures, then summary and tables."""
        from lmms_nb.analysis import compare

        models, tasks = list(self.model_select.value), list(self.task_select.value)
        if not models or not tasks:
            self._fail("choose at least one model and one task")
            return
        options = dict(self._options)
        if isinstance(options["metric"], Mapping):
            options["metric"] = {t: m for t, m in options["metric"].items() if t in tasks}
        self._busy(True)
        try:
            try:
                cmp = compare(self.source, models=models, tasks=tasks, **options)
            except ValueError as e:
                self._fail(str(e))
                return
            cmp.colors = {m: self.colors[m] for m in cmp.models if m in self.colors}
            self.comparison, self.summary = cmp, cmp.summary()
            self._draw_figures(cmp)
            self._draw_tables(cmp)
        finally:
            self._busy(False)

    def _draw_tables(self, cmp: Any) -> None:
        self.status_html.value = status_line(cmp)
        self.summary_html.value = f"{STYLE}{summary_html(cmp, self.summary, self.colors)}"
        tables = tables_html(cmp, self.summary)
        self.scores_html.value, self.pairwise_html.value, self.answers_html.value = (
            tables["scores"], tables["pairwise"], tables["answers"])




    def _draw_figures(self, cmp: Any) -> None:
        import plotly.graph_objects as go

        new = {"bar": cmp.bar_figure()}
        if cmp.by:
            new["category"] = cmp.category_heatmap()
        new["samples"] = cmp.sample_heatmap()
        for kind, fig in new.items():
            fig.update_layout(template=self._template, height=_HEIGHTS[kind],
                              margin={"l": 60, "r": 20, "t": 50, "b": 60})
            widget = self._figure_widgets.get(kind)
            if widget is None:
                widget = go.FigureWidget(fig)
                widget.add_class(f"lmms-nb-figure-{kind}")
                self._figure_widgets[kind] = widget
            else:  # in place: the same widget (no new view to build in the browser), new traces and layout
                self._replace(widget, fig)
            for trace in widget.data:
                trace.on_click(functools.partial(self._on_click, kind))
        self.figures = {kind: self._figure_widgets[kind] for kind in new}
        self._layout_figures()

    @staticmethod
    def _replace(widget: Any, fig: Any) -> None:
        widget.data = ()
        widget.add_traces(list(fig.data))
        widget.update_layout(fig.layout.to_plotly_json(), overwrite=True)

    def _layout_figures(self) -> None:
        children: list[Any] = []
        for kind, widget in self.figures.items():
            children.append(widget)
            if kind == self._browser_after:
                children.append(self.browser_box)
        if self._browser_after is not None and self.browser_box not in children:
            children.append(self.browser_box)
        self.figures_box.children = children

    def _fail(self, message: str) -> None:
        self.comparison = self.summary = None
        self.status_html.value = f'<span style="color:#D55E00">⚠ cannot compare: {esc(message)}</span>'
        self.scores_html.value = self.pairwise_html.value = self.answers_html.value = self.summary_html.value = ""
        self.figures, self.figures_box.children = {}, []

    def show_slices(self, model: str, baseline: str | None = None, embeddings: Any = None, **kwargs: Any) -> Any:
        """Run `lmms_nb.find_slices` on the selected tasks and list its slices under the figures; a click on a
        slice opens the samples browser on it. kwargs go to find_slices (by, min_size...)."""
        from lmms_nb.analysis import find_slices
        from lmms_nb.widgets._slices import SliceList

        found = find_slices(self.source, model, baseline, embeddings, tasks=list(self.task_select.value),
                            metric=self._options["metric"], runs=self._options["runs"], **kwargs)
        self.slice_list = SliceList(found, browser=self.browser, on_select=self._show_slice_samples)
        kept = [c for c in self.children if not isinstance(c, SliceList)]
        at = kept.index(self.figures_box) + 1
        self.children = (*kept[:at], self.slice_list, *kept[at:])
        return self.slice_list

    def _show_slice_samples(self, row: dict[str, Any]) -> None:
        self.browser_title.value = f"<b>Samples of slice {row['slice_id']}</b> {esc(row['label'])}"
        self.close_browser_button.layout.display = ""
        self._browser_after = "slices"  # no figure of that name: the browser goes under the figures
        self._layout_figures()

    # ---- click-through -------------------------------------------------------------------------------------
    def _on_click(self, kind: str, trace: Any, points: Any, state: Any) -> None:
        if not points.point_inds or trace.customdata is None:
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
            self.show_samples(model=model, task=task, doc_id=int(doc_id), after=kind)
        else:
            model, task, group = key
            self.show_samples(model=model, task=task, group=group, after=kind)

    def show_samples(self, *, model: str, task: str, group: str | None = None, doc_id: int | None = None,
                     wrong_only: bool | None = None, after: str = "bar") -> None:
        """Open the browser, right under figure `after`, on the samples behind a bar or cell: `task` (and
        `group`, or one `doc_id`), with `model` outlined beside the other selected models. `wrong_only`
        (default: True for a bar or group, False for one doc) preselects "`model` wrong"."""
        category: Any = None
        if group is not None and self.comparison is not None and list(self.comparison.by) == ["category"]:
            category = NO_CATEGORY if group == _NULL_GROUP else group
        if wrong_only is None:
            wrong_only = doc_id is None and bool(self.index.metrics)
        shown = list(dict.fromkeys([model, *self.model_select.value]))
        self.browser.set_filter(task=task, category=category, models=shown,
                                doc_ids=[doc_id] if doc_id is not None else (),
                                pattern={model: False} if wrong_only else None, highlight=model)
        self.last_click = {"model": model, "task": task, "group": group, "doc_id": doc_id}
        parts = [f"model {model}", f"task {task}"]
        if group is not None:
            parts.append(f"group {group}")
        if doc_id is not None:
            parts.append(f"doc {doc_id}")
        where = " (preselected: the clicked model wrong; set its filter to any for all)" if wrong_only else ""
        self.browser_title.value = f"<b>Samples behind</b> {esc(' · '.join(parts))}<small>{esc(where)}</small>"
        self.browser.layout.display = ""
        self.close_browser_button.layout.display = ""
        self._browser_after = after if after in self.figures else next(iter(self.figures), None)
        self._layout_figures()

    def _hide_browser(self) -> None:
        self.browser.layout.display = "none"
        self.close_browser_button.layout.display = "none"
        self.browser_title.value = ""
        self._browser_after = None
        self._layout_figures()

