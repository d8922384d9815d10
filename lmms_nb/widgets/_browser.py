"""`SampleBrowser`: page through every model's answers with filters, images and right/wrong colours.

The widget is state and callbacks only: the table and the filtering are `SampleIndex` (polars), the
correctness is `lmms_nb.analysis`'s, the markup is `_html`. Each control change builds a `SampleQuery`,
asks the index for one page and renders it.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "B"] * 3, "task": ["t"] * 6, "doc_id": [0, 0, 1, 1, 2, 2],
    ...                    "input": ["q0", "q0", "q1", "q1", "q2", "q2"], "target": ["x"] * 6,
    ...                    "prediction": ["x", "y", "x", "x", "<b>", "x"],
    ...                    "exact_match": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]})
    >>> browser = SampleBrowser(df, page_size=2)
    >>> browser.n_matches, browser.page_label.value
    (3, 'samples 1–2 of 3 · page 1 of 2')
    >>> browser.pattern_buttons["A"].value = "wrong"
    >>> browser.page_rows["doc_id"].to_list(), "&lt;b&gt;" in browser.samples_html.value
    ([2], True)
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.analysis import PARTIAL_THRESHOLD, model_colors
from lmms_nb.widgets._browser_filters import SampleFilters
from lmms_nb.widgets._browser_options import ALL, NO_CATEGORY
from lmms_nb.widgets._cards import sample_cards_html, sample_table_html
from lmms_nb.widgets._html import esc
from lmms_nb.widgets._query import SampleIndex

# ALL and NO_CATEGORY (of _browser_options) are public in lmms_nb.widgets, imported from here
__all__ = ["ALL", "NO_CATEGORY", "SampleBrowser"]


#: Descriptions as wide as their text: labels are never cut off.
_LABEL = {"description_width": "initial"}


class SampleBrowser(SampleFilters, widgets.VBox):
    """Browse samples: filter by task, models, category, a right/wrong pattern and text; one page at a time.

    Args:
        data: a canonical sample table (polars or pandas), a `Run`, a `Comparison`, log path(s), or a
            prebuilt `SampleIndex`.
        metric, runs, models: passed to `SampleIndex` (which metric decides right/wrong, which run to keep
            when a model has several, model order).
        page_size: samples per page. thumbnail_px: the longest side of the thumbnails in px, or {task: px};
            default: large (320) for document / chart / OCR tasks and images of 600 px or more, else 128.
            A click on a thumbnail opens the full image (with zoom) beside the question and answers.
        view: "cards" (one card per sample) or "table" (one row per sample: many per screen).
        colors: {model: colour}; default one fixed colour per model of the table (`model_colors`).

    Controls (public attributes, so code and tests can drive them): `task_select`, `category_select`,
    `model_select`, `pattern_buttons` ({model: ToggleButtons any/right/wrong}), `search_box` (filters as
    you type), `sort_select`, `view_buttons`, `page_size_select`, `prev_button`, `next_button`,
    `csv_button` / `parquet_button` (write the filtered rows under `export_dir`). What is shown:
    `page_label`, `samples_html`, `page_rows` (the page as a polars frame), `n_matches`, `page_number` (from
    0); `to_frame()` returns every filtered row.
    """

    def __init__(self, data: Any, *, metric: str | Mapping[str, str] | None = None,
                 runs: Mapping[str, str] | str | None = "latest", models: Sequence[str] | None = None,
                 page_size: int = 10, thumbnail_px: int | Mapping[str, int] | None = None, view: str = "cards",
                 colors: Mapping[str, str] | None = None, export_dir: str = "exports", **kwargs: Any):
        self.index = data if isinstance(data, SampleIndex) else SampleIndex(data, metric=metric, runs=runs, models=models)
        self.thumbnail_px = thumbnail_px
        self.colors = model_colors(self.index.models, colors)
        self.export_dir = export_dir
        #: a model whose answers are outlined (the dashboard sets the clicked one)
        self.highlight: str | None = None
        self.page_number = 0
        self.n_matches = 0
        self.page_rows: pl.DataFrame = self.index.table.clear()
        self.doc_ids: tuple[int, ...] = ()
        self._held = False

        ix = self.index
        self.task_select = widgets.Dropdown(options=[("all tasks", ALL)] + [(t, t) for t in ix.tasks],
                                            value=ALL, description="task", style=_LABEL)
        self.category_select = widgets.Dropdown(options=[("all categories", ALL)], value=ALL, description="category",
                                                style=_LABEL)
        self._set_category_options(ALL)
        self.search_box = widgets.Text(value="", placeholder="text in question, target or answers",
                                       description="search", continuous_update=True, style=_LABEL)
        self.view_buttons = widgets.ToggleButtons(options=["cards", "table"], value=view,
                                                  style={"button_width": "64px"}, tooltips=["one card per sample",
                                                                                            "one row per sample"])
        self.sort_select = widgets.Dropdown(options=[("display order", "")], value="", description="sort",
                                            style=_LABEL, layout=widgets.Layout(width="260px"))
        self.csv_button = widgets.Button(description="CSV", icon="download", tooltip="write the filtered rows as CSV",
                                         layout=widgets.Layout(width="80px"))
        self.parquet_button = widgets.Button(description="Parquet", icon="download",
                                             tooltip="write the filtered rows as Parquet", layout=widgets.Layout(width="100px"))
        self.export_label = widgets.HTML()
        self.model_select = widgets.SelectMultiple(options=list(ix.models), value=list(ix.models),
                                                   description="models", rows=min(6, max(2, len(ix.models))),
                                                   style=_LABEL)
        self.pattern_buttons: dict[str, widgets.ToggleButtons] = {}
        self.pattern_box = widgets.VBox(layout=widgets.Layout(margin="0 0 0 12px"))
        self._rebuild_pattern()
        sizes = sorted({5, 10, 20, 50, int(page_size)})
        self.page_size_select = widgets.Dropdown(options=sizes, value=int(page_size), description="per page",
                                                 layout=widgets.Layout(width="160px"), style=_LABEL)
        self.prev_button = widgets.Button(description="◀ previous", layout=widgets.Layout(width="110px"))
        self.next_button = widgets.Button(description="next ▶", layout=widgets.Layout(width="110px"))
        self.page_label = widgets.Label()
        self.clear_doc_ids_button = widgets.Button(description="show all docs", layout=widgets.Layout(display="none"))
        self.info_html = widgets.HTML()
        self.samples_html = widgets.HTML()

        for control in (self.task_select, self.category_select, self.search_box, self.page_size_select,
                        self.sort_select):
            control.observe(self._on_filter_change, names="value")
        self.view_buttons.observe(lambda _: self.refresh(), names="value")
        self.csv_button.on_click(lambda _: self._export("csv"))
        self.parquet_button.on_click(lambda _: self._export("parquet"))
        self.task_select.observe(self._on_task_change, names="value")
        self.model_select.observe(self._on_models_change, names="value")
        self.prev_button.on_click(lambda _: self.prev_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.clear_doc_ids_button.on_click(lambda _: self._clear_doc_ids())

        metrics = ", ".join(f"{t}: {m}" for t, m in ix.metrics.items()) or "none (no metric column: no right/wrong)"
        partial = (f" · continuous metrics: ✓ right = 1, ◐ partial ≥ {PARTIAL_THRESHOLD:g}, ✗ wrong below "
                   f"(the right/wrong filter counts ≥ {PARTIAL_THRESHOLD:g} as right)"
                   if not all(ix.binary.values()) else "")
        self.info_html.value = (f"<small>{len(ix):,} samples · {len(ix.models)} models · scored by "
                                f"{esc(metrics)}{esc(partial)} · click an image for full size</small>")
        controls = widgets.VBox([
            widgets.HBox([self.task_select, self.category_select, self.search_box]),
            widgets.HBox([self.model_select, self.pattern_box]),
            widgets.HBox([self.prev_button, self.next_button, self.page_size_select, self.page_label,
                          self.clear_doc_ids_button]),
            widgets.HBox([self.view_buttons, self.sort_select, self.csv_button, self.parquet_button,
                          self.export_label]),
            self.info_html,
        ])
        super().__init__([controls, self.samples_html], **kwargs)
        self.add_class("lmms-nb-sample-browser")
        # stable class names for styling and for the browser tests (never built from data)
        for widget, name in ((self.task_select, "task"), (self.category_select, "category"),
                             (self.search_box, "search"), (self.model_select, "models"),
                             (self.page_size_select, "page-size"), (self.prev_button, "prev"),
                             (self.next_button, "next"), (self.page_label, "page-label"),
                             (self.samples_html, "samples"), (self.clear_doc_ids_button, "clear-docs"),
                             (self.view_buttons, "view"), (self.sort_select, "sort"), (self.csv_button, "csv"),
                             (self.parquet_button, "parquet"), (self.export_label, "export-label")):
            widget.add_class(f"lmms-nb-{name}")
        self.refresh()

    def show_slices(self, slices: Any, **kwargs: Any) -> Any:
        """Put a `SliceList` of `lmms_nb.find_slices`'s result above the samples; a click on a slice filters them."""
        from lmms_nb.widgets._slices import SliceList

        panel = SliceList(slices, browser=self, **kwargs)
        self.children = (panel, *[c for c in self.children if not isinstance(c, SliceList)])
        return panel

    # ---- paging --------------------------------------------------------------------------------------------
    @property
    def page_size(self) -> int:
        return int(self.page_size_select.value)

    @property
    def n_pages(self) -> int:
        return max(1, -(-self.n_matches // self.page_size))

    def next_page(self) -> None:
        if self.page_number + 1 < self.n_pages:
            self.page_number += 1
            self.refresh()

    def prev_page(self) -> None:
        if self.page_number > 0:
            self.page_number -= 1
            self.refresh()

    def refresh(self) -> None:
        """Run the query for the current page and redraw."""
        if self._held:
            return
        rows, total = self.index.page(self.query, self.page_number, self.page_size)
        if rows.height == 0 and total > 0 and self.page_number > 0:  # e.g. the page size grew
            self.page_number = (total - 1) // self.page_size
            rows, total = self.index.page(self.query, self.page_number, self.page_size)
        self.page_rows, self.n_matches = rows, total
        self.prev_button.disabled = self.page_number == 0
        self.next_button.disabled = self.page_number + 1 >= self.n_pages
        self.clear_doc_ids_button.layout.display = "" if self.doc_ids else "none"
        shown = [(self.index.model_index(m), m) for m in (self.model_select.value or self.index.models)]
        if self.view_buttons.value == "table":
            self.samples_html.value = sample_table_html(rows, shown, binary=self.index.binary, colors=self.colors,
                                                        clicked=self.highlight)
        else:
            self.samples_html.value = sample_cards_html(rows, shown, thumbnail_px=self.thumbnail_px,
                                                        metrics=self.index.metrics, binary=self.index.binary,
                                                        colors=self.colors, clicked=self.highlight)
        # the label changes last: when it shows the new page, the cards above already do
        first = self.page_number * self.page_size
        self.page_label.value = (f"samples {first + 1}–{first + rows.height} of {total:,} · "
                                 f"page {self.page_number + 1} of {self.n_pages}" if total else "no sample matches")

    # ---- the filtered rows ---------------------------------------------------------------------------------
    def to_frame(self) -> pl.DataFrame:
        """Every sample the filters select (all pages, in the shown order), with `<field>:<model>` columns for
        the shown models: prediction, value, correct, raw_response, latency_s, output_tokens, error."""
        return self.index.rows(self.query)

    def to_csv(self, path: str | Path) -> Path:
        """Write `to_frame()` as CSV; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().write_csv(path)
        return path

    def to_parquet(self, path: str | Path) -> Path:
        """Write `to_frame()` as Parquet; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().write_parquet(path)
        return path

    def _export(self, kind: str) -> None:
        import time

        path = Path(self.export_dir) / f"samples-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
        try:
            written = self.to_csv(path) if kind == "csv" else self.to_parquet(path)
        except OSError as e:
            self.export_label.value = f'<small class="lmms-nb-warning">export failed: {esc(e)}</small>'
            return
        self.export_label.value = f"<small>{self.n_matches:,} samples written to <code>{esc(written)}</code></small>"
