"""`ActionBox`: a VBox whose buttons run actions that may fail, with a status line and a progress area.

A button click has no caller to raise to: the error is kept (`error`) and shown, escaped, in `status_html`
instead of being lost in the kernel's log.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets

from lmms_nb.widgets._html import error_html, esc

__all__ = ["ActionBox"]


class ActionBox(widgets.VBox):
    """A subclass sets `progress_output` (an Output: progress bars of what runs), `status_html` (an HTML) and
    `error` (None; then the error of the last press) before wiring its buttons with `_pressed`."""

    progress_output: widgets.Output
    status_html: widgets.HTML
    error: BaseException | None

    @contextlib.contextmanager
    def _progress_then_cleared(self) -> Iterator[None]:
        """Show what runs inside (e.g. datasets' own progress bars) in the widget, then clear it."""
        with self.progress_output:
            yield
        self.progress_output.clear_output()

    def _pressed(self, action: Callable[..., Any]) -> Callable[[Any], None]:
        """A button handler: run `action`; show its error (escaped) in the widget instead of losing it."""

        @functools.wraps(action)
        def handler(_button: Any) -> None:
            self.error = None
            try:
                action()
            except Exception as e:  # noqa: BLE001 - a click has no caller to raise to: say it in the widget
                self.error = e
                self.status_html.value = error_html(f"{action.__name__.replace('_', ' ')} failed", e)

        return handler

    def _status(self, text: str, *, raw: bool = False) -> None:
        self.status_html.value = f"<small>{text if raw else esc(text)}</small>"
