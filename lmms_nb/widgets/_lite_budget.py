"""`BudgetControls`: `LiteBuilder`'s budget slider, subset method and the one-line summary of the subset.

The subset at a budget comes from the public API: `build_lite_subset` (the first k of the k-center picks made
once at the largest budget, so a slider move costs no new k-center run) or `build_difficulty_subset` (drawn
within difficulty strata of the earlier models in the logs); `subset_summary` says what it is.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import polars as pl

from lmms_nb.widgets._html import error_html, esc

__all__ = ["SUBSET_METHODS", "BudgetControls"]

#: the subset methods of `method_select`: label -> value
SUBSET_METHODS = {"k-center (embeddings)": "kcenter", "difficulty (earlier models)": "difficulty"}


class BudgetControls:
    """Widgets: `budget_slider` (docs), `method_select` (one of `SUBSET_METHODS`, enabled with logs), `summary_html`."""

    def __init__(self, method: str, has_logs: bool) -> None:
        self.budget_slider = widgets.IntSlider(value=1, min=1, max=1, description="budget (docs)", disabled=True,
                                               continuous_update=False, layout=widgets.Layout(width="480px"))
        self.method_select = widgets.ToggleButtons(options=list(SUBSET_METHODS.items()), value=method,
                                                   description="subset", disabled=not has_logs,
                                                   tooltips=["k-center greedy over the embeddings",
                                                             "drawn by earlier models' answers (spread sample or anchor points, picked on them)"])
        self.summary_html = widgets.HTML()

    def set_range(self, kmax: int, k: int) -> None:
        """Budgets 1..`kmax`, at `k` (max first, so a value above the old max is not clipped)."""
        self.budget_slider.max = kmax
        self.budget_slider.value = k

    def subset_at(self, k: int, embeddings: Any, kcenter: Any, rows: pl.DataFrame | None, *, task: str,
                  metric: str | None, filter: str | None) -> tuple[Any, Exception | None]:
        """The subset of `k` docs by the chosen method, summarised in `summary_html`; (None, error) when the logs
        cannot give a difficulty subset (a slider move has no caller to raise to: the error is shown here)."""
        from lmms_nb.lite_selection import build_difficulty_subset, build_lite_subset, subset_summary

        if self.method_select.value == "difficulty":
            try:
                sub = build_difficulty_subset(rows, int(k), task=task, metric=metric or None, filter=filter,
                                              doc_ids=embeddings.doc_ids)
            except (ValueError, TypeError) as e:
                self.summary_html.value = error_html("no difficulty subset", e)
                return None, e
        else:
            sub = build_lite_subset(embeddings, int(k), kcenter=kcenter)
        self.summary_html.value = f"<small>{esc(subset_summary(sub))}</small>"
        return sub, None
