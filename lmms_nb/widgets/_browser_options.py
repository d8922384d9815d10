"""`SampleBrowser`'s choices: the task / category dropdowns' special values, the right/wrong toggles' options,
and the options each dropdown offers for a `SampleIndex` (the categories of a task, the sort keys of the shown
models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

__all__ = ["ALL", "NO_CATEGORY", "PATTERN_LABEL", "PATTERN_OPTIONS", "PATTERN_VALUE", "Choice", "category_options",
           "sort_options"]


class Choice:
    """A dropdown value that no task or category name can equal (ipywidgets shows a None value as blank)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The task / category dropdowns' value for "every task" / "every category".
ALL = Choice("ALL")
#: The category dropdown's value for samples without a category.
NO_CATEGORY = Choice("NO_CATEGORY")
PATTERN_OPTIONS = ["any", "right", "wrong"]
PATTERN_VALUE = {"any": None, "right": True, "wrong": False}
PATTERN_LABEL = {None: "any", True: "right", False: "wrong"}


def category_options(index: Any, task: Any) -> list[tuple[str, Any]]:
    """(label, value) of the category dropdown for `task` (or `ALL`): every category of its samples, and
    "(no category)" when some samples have one and some do not."""
    table = index.table if task is ALL else index.table.filter(pl.col("task") == task)
    present = set(table["category"].unique().to_list())
    options: list[tuple[str, Any]] = [("all categories", ALL)]
    options += [(c, c) for c in index.categories if c is not None and c in present]
    if None in present and len(present) > 1:
        options.append(("(no category)", NO_CATEGORY))
    return options


def sort_options(index: Any, models: Sequence[str]) -> list[tuple[str, Any]]:
    """(label, value) of the sort dropdown: display order, then each shown model's score and latency."""
    options: list[tuple[str, Any]] = [("display order", "")]
    for m in models:
        i = index.model_index(m)
        options += [(f"{m}: score, low first", (f"value_{i}", False)), (f"{m}: score, high first", (f"value_{i}", True)),
                    (f"{m}: latency, slow first", (f"latency_{i}", True))]
    return options
