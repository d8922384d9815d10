"""`SliceList`: the failure slices of `lmms_nb.find_slices` as a clickable list beside an embedding map; a click
shows that slice's samples in a `SampleBrowser`.

Everything shown comes from the `Slices` object (`table`, `members`, `map_figure()`); the widget only turns a
click into a browser filter. Labels and examples come from the logs and are HTML-escaped.
`SampleBrowser.show_slices(found)` and `CompareDashboard.show_slices(model, ...)` put one above their samples.

Example:
    >>> import polars as pl
    >>> from lmms_nb.analysis import find_slices
    >>> df = pl.DataFrame({"model": "m", "task": "t", "doc_id": range(400), "acc": [float(i % 5 > 0) for i in range(400)],
    ...                    "category": ["<b>x</b>" if i % 5 == 0 else "y" for i in range(400)]})
    >>> panel = SliceList(find_slices(df, "m"), data=df)
    >>> "&lt;b&gt;x&lt;/b&gt;" in panel.rows_html[0].value
    True
    >>> panel.slice_buttons[0].click()
    >>> panel.browser.n_matches
    80
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.widgets._browser import SampleBrowser
from lmms_nb.widgets._html import esc

__all__ = ["SliceList"]


def _rate_text(row: dict[str, Any], baseline: str | None) -> str:
    if baseline is None:
        return (f"fails {row['fail_rate']:.0%} [{row['ci_low']:.0%}, {row['ci_high']:.0%}] "
                f"vs {row['rest_fail_rate']:.0%} elsewhere")
    return (f"gap {row['gap']:+.0%} [{row['ci_low']:+.0%}, {row['ci_high']:+.0%}] "
            f"vs {row['rest_gap']:+.0%} elsewhere")


class SliceList(widgets.VBox):
    """The reported slices of a `Slices` (best first), each with a button that shows its samples.

    Args:
        slices: what `lmms_nb.find_slices` returned.
        browser: the `SampleBrowser` a click filters; or `data` (a sample table...) to make one here.
        top: how many slices to list. show_map: draw the embedding map (when the slices have one).
        on_select: called with the slice's table row after a click filtered the browser (the dashboard uses it
            to show its browser).

    Shown: `summary_html`, `slice_buttons` ({slice_id: Button}), `rows_html` (one HTML per slice), `map`
    (a plotly FigureWidget or None; clicking a slice outline selects it too). `selected` is the shown slice.
    """

    def __init__(self, slices: Any, *, browser: SampleBrowser | None = None, data: Any = None, top: int = 10,
                 show_map: bool = True, on_select: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any):
        self.slices = slices
        self.on_select = on_select
        own_browser = browser is None and data is not None
        self.browser = SampleBrowser(data) if own_browser else browser
        self.selected: int | None = None
        found = slices
        what = f"{found.model} vs baseline {found.baseline}" if found.baseline else found.model
        self.summary_html = widgets.HTML(
            f"<b>Where {esc(what)} fails</b> <small>· {found.significant.height} significant slices "
            f"(Holm, α={found.alpha}) of {found.n_tested} tested on the held-out half · {found.n_candidates} "
            f"candidates tried · {found.n_pruned} pruned as merges or repeats</small>")
        self.slice_buttons: dict[int, widgets.Button] = {}
        self.rows_html: list[widgets.HTML] = []
        rows = []
        for row in found.significant.head(top).iter_rows(named=True):
            button = widgets.Button(description=f"show slice {row['slice_id']}", layout=widgets.Layout(width="130px"))
            button.add_class("lmms-nb-slice-button")
            button.on_click(functools.partial(lambda slice_id, _: self.select(slice_id), row["slice_id"]))
            text = widgets.HTML(
                f"<b>{esc(row['label'])}</b> <small>({esc(row['kind'])}; {row['size']:,} samples; "
                f"{esc(_rate_text(row, found.baseline))}; p={row['p_adjusted']:.2g})</small>")
            self.slice_buttons[row["slice_id"]] = button
            self.rows_html.append(text)
            rows.append(widgets.HBox([button, text]))
        if not rows:
            rows = [widgets.HTML("<small>No significant slice: the failures show no group that the held-out half "
                                 "confirms.</small>")]
        self.map: Any = None
        children: list[widgets.Widget] = [self.summary_html, widgets.VBox(rows)]
        if show_map and "map_x" in found.samples.columns:
            import plotly.graph_objects as go

            self.map = go.FigureWidget(found.map_figure(top=top))
            self.map.add_class("lmms-nb-slice-map")
            for trace in self.map.data:
                trace.on_click(self._on_map_click)
            children.append(self.map)
        if own_browser:
            children.append(self.browser)
        super().__init__(children, **kwargs)
        self.add_class("lmms-nb-slice-list")

    def select(self, slice_id: int) -> None:
        """Show the samples of one slice in the browser (the model and its baseline side by side)."""
        members = self.slices.members.filter(pl.col("slice_id") == slice_id)
        if members.height == 0:
            raise ValueError(f"no slice {slice_id!r}; slices: {self.slices.table['slice_id'].to_list()}")
        self.selected = slice_id
        for sid, button in self.slice_buttons.items():
            button.button_style = "info" if sid == slice_id else ""
        if self.browser is None:
            return
        tasks = members["task"].unique().to_list()
        shown = [m for m in (self.slices.model, self.slices.baseline) if m in self.browser.index.models]
        # one task: the doc ids are that task's; several: every task's docs with those ids (a superset)
        self.browser.set_filter(task=tasks[0] if len(tasks) == 1 else None, models=shown or None,
                                doc_ids=members["doc_id"].unique().sort().to_list())
        self.browser.layout.display = ""
        if self.on_select is not None:
            self.on_select(self.slices.table.filter(pl.col("slice_id") == slice_id).row(0, named=True))

    def _on_map_click(self, trace: Any, points: Any, state: Any) -> None:
        if not points.point_inds:
            return  # plotly calls every trace's handlers; only the clicked trace has points
        key = trace.customdata[points.point_inds[0]]
        if isinstance(key, (int, float)) or hasattr(key, "item"):
            self.select(int(key))  # an outline: its slice_id
