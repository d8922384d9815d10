"""`TaskChoices`: the tasks `LiteBuilder`'s dropdown offers, by name, each built only when first chosen.

A choice is a `Task`, a registered task name (built with `lmms_nb.get_task` on first use) or the tasks of an
lmms-eval YAML file or folder (`task_choices` in the public API resolves all three).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["TaskChoices", "registered_tasks"]


class TaskChoices:
    """{name: task or registered name} in the order they were added; `names()` is the dropdown's options."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._choices: dict[str, Any] = {}
        for item in items:
            self.add(item)

    def add(self, item: Any) -> str:
        """Add the task(s) `item` stands for; returns the name of the first."""
        from lmms_nb.lite_selection import task_choices

        found = task_choices(item)
        for t in found:
            self._choices[t if isinstance(t, str) else t.name] = t
        return found[0] if isinstance(found[0], str) else found[0].name

    def names(self) -> list[str]:
        return list(self._choices)

    def task(self, name: str) -> Any:
        """The `Task` called `name`, built (once) when it was given by its registered name."""
        import lmms_nb

        choice = self._choices[name]
        if isinstance(choice, str):
            choice = self._choices[name] = lmms_nb.get_task(choice)
        return choice


def registered_tasks() -> list[str]:
    """Every registered task name (the dropdown's default choices)."""
    import lmms_nb

    return lmms_nb.list_tasks()
