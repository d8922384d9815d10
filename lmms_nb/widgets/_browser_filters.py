"""`SampleFilters`: the filter half of `SampleBrowser`: its controls, read as a `SampleQuery` and set from one.

The task and category dropdowns, the model list with one any/right/wrong toggle per shown model, the search
box, the sort dropdown and the doc ids of a click become `query`; `set_filter` sets them all at once (one
refresh). The browser creates the controls (`task_select`, `category_select`, `model_select`, `pattern_box`,
`search_box`, `sort_select`) and the state (`index`, `colors`, `doc_ids`, `highlight`, `page_number`, `_held`)
and draws the page (`refresh`); the options each control offers come from `_browser_options`.

Example:
    >>> import polars as pl
    >>> from lmms_nb.widgets import SampleBrowser
    >>> df = pl.DataFrame({"model": ["A", "B"] * 2, "task": ["t"] * 4, "doc_id": [0, 0, 1, 1],
    ...                    "prediction": ["x", "y", "x", "x"], "target": ["x"] * 4, "exact_match": [1.0, 0.0, 1.0, 1.0]})
    >>> browser = SampleBrowser(df)
    >>> browser.set_filter(pattern={"B": False}, text="y")
    >>> browser.query.pattern, browser.query.text, browser.n_matches
    ({'B': False}, 'y', 1)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from lmms_nb.widgets._browser_options import (
    ALL,
    NO_CATEGORY,
    PATTERN_LABEL,
    PATTERN_OPTIONS,
    PATTERN_VALUE,
    Choice,
    category_options,
    sort_options,
)
from lmms_nb.widgets._html import esc
from lmms_nb.widgets._query import SampleQuery

__all__ = ["SampleFilters"]


class SampleFilters:
    """`SampleBrowser`'s filter controls as a `SampleQuery` (`query`) and back (`set_filter`); see the module doc."""

    @property
    def query(self) -> SampleQuery:
        """The `SampleQuery` the controls describe."""
        category = self.category_select.value
        shown = tuple(self.model_select.value)
        return SampleQuery(
            tasks=() if self.task_select.value is ALL else (self.task_select.value,),
            models=shown if len(shown) < len(self.index.models) else (),
            categories=() if category is ALL else ((None,) if category is NO_CATEGORY else (category,)),
            pattern={m: PATTERN_VALUE[b.value] for m, b in self.pattern_buttons.items() if b.value != "any"},
            text=self.search_box.value,
            doc_ids=self.doc_ids,
            sort=self.sort_select.value or None,  # "" is "display order" (a None value shows as blank)
        )

    def set_filter(self, *, task: str | None = None, models: Sequence[str] | None = None,
                   category: str | None | Choice = None, pattern: Mapping[str, bool | None] | None = None,
                   text: str = "", doc_ids: Sequence[int] = (), highlight: str | None = None) -> None:
        """Reset every filter, apply the given ones and show page 1 (one refresh, whatever changes).

        None means every task / category; `category=NO_CATEGORY` selects samples without a category.
        `highlight` names a model whose answers are outlined. Unknown names raise ValueError.
        """
        ix = self.index
        if task is not None and task not in ix.tasks:
            raise ValueError(f"unknown task {task!r}; tasks: {ix.tasks}")
        chosen = list(models) if models is not None else list(ix.models)
        for m in [*chosen, *(pattern or {})]:
            ix.model_index(m)  # raises naming the model
        with self._hold():
            self.task_select.value = ALL if task is None else task
            self._set_category_options(self.task_select.value)
            category = ALL if category is None else category
            if category not in [v for _, v in self.category_select.options]:
                raise ValueError(f"unknown category {category!r} for task {task!r}")
            self.category_select.value = category
            self.model_select.value = [m for m in ix.models if m in chosen]
            self._rebuild_pattern()
            for m, b in self.pattern_buttons.items():
                b.value = PATTERN_LABEL[(pattern or {}).get(m)]
            self.search_box.value = text
            self.doc_ids = tuple(int(d) for d in doc_ids)
            self.highlight = highlight
        self.page_number = 0
        self.refresh()

    @contextlib.contextmanager
    def _hold(self) -> Iterator[None]:
        """Apply several control changes with one refresh at the end (by the caller)."""
        held, self._held = self._held, True
        try:
            yield
        finally:
            self._held = held

    def _on_filter_change(self, change: dict[str, Any]) -> None:
        self.page_number = 0
        self.refresh()

    def _on_task_change(self, change: dict[str, Any]) -> None:
        with self._hold():
            self._set_category_options(change["new"])
        self.page_number = 0
        self.refresh()

    def _on_models_change(self, change: dict[str, Any]) -> None:
        with self._hold():
            self._rebuild_pattern()
        self.page_number = 0
        self.refresh()

    def _set_sort_options(self) -> None:
        options = sort_options(self.index, self.model_select.value)
        keep = self.sort_select.value if self.sort_select.value in [v for _, v in options] else ""
        self.sort_select.options = options
        self.sort_select.value = keep

    def _clear_doc_ids(self) -> None:
        self.doc_ids = ()
        self.page_number = 0
        self.refresh()

    def _set_category_options(self, task: Any) -> None:
        options = category_options(self.index, task)
        keep = self.category_select.value if self.category_select.value in [v for _, v in options] else ALL
        self.category_select.options = options
        self.category_select.value = keep
        self.category_select.disabled = len(options) == 1

    def _rebuild_pattern(self) -> None:
        """One any/right/wrong toggle per shown model; a model that stays shown keeps its setting."""
        if hasattr(self, "sort_select"):
            self._set_sort_options()
        old = {m: b.value for m, b in self.pattern_buttons.items()}
        self.pattern_buttons = {}
        rows = []
        scored = bool(self.index.metrics)
        for m in self.model_select.value:
            b = widgets.ToggleButtons(options=PATTERN_OPTIONS, value=old.get(m, "any"), disabled=not scored,
                                      style={"button_width": "64px"}, tooltips=[f"{m}: any", f"{m}: right", f"{m}: wrong"])
            b.observe(self._on_filter_change, names="value")
            self.pattern_buttons[m] = b
            name = widgets.HTML(f'<span style="border-left:4px solid {esc(self.colors.get(m, "#888"))};'
                                f'padding-left:4px" title="{esc(m)}">{esc(m)}</span>',
                                layout=widgets.Layout(width="180px", overflow="hidden"))
            row = widgets.HBox([name, b])
            row.add_class(f"lmms-nb-pattern-{self.index.model_index(m)}")
            rows.append(row)
        self.pattern_box.children = rows
