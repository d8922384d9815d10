"""`ExportPanel`: `LiteBuilder`'s export controls: the folder, the formats, the button and what was written.

The files come from the public API (`export_lite_files`: `save_lite_subset`, `save_lite_dataset`,
`write_lmms_eval_yaml`); the panel keeps what was written and lists it, escaped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from lmms_nb.widgets._html import esc

__all__ = ["ExportPanel"]


class ExportPanel:
    """Widgets: `dir_text` (the folder), `format_checks` ({format: Checkbox}), `button`, `html` (what was written).
    State: `exported` ({format: path}), `exported_task` (the `lite_task` of the last export)."""

    def __init__(self, export_dir: str | os.PathLike, on_export: Callable[[Any], None] | None) -> None:
        self.dir_text = widgets.Text(value=str(export_dir), description="export to")
        self.format_checks = {
            "json": widgets.Checkbox(value=True, description="doc ids + weights (JSON)", indent=False),
            "dataset": widgets.Checkbox(value=True, description="datasets folder", indent=False),
            "yaml": widgets.Checkbox(value=True, description="lmms-eval task YAML (+ folder)", indent=False),
        }
        self.button = widgets.Button(description="Export", button_style="success", icon="download", disabled=True)
        self.html = widgets.HTML()
        self.exported: dict[str, Path] = {}
        self.exported_task: Any = None
        self.callbacks: list[Callable[[Any], None]] = [on_export] if on_export else []

    def export(self, task: Any, subset: Any, folder: str | os.PathLike | None, formats: Sequence[str] | None,
               progress: AbstractContextManager[Any]) -> dict[str, Path]:
        """Write `subset` of `task` (see `LiteBuilder.export`); `progress` shows the datasets' progress bars."""
        from lmms_nb.lite_selection import export_lite_files, lite_task

        if subset is None:
            raise ValueError("nothing to export yet: press Embed & pick first")
        folder = Path(folder if folder is not None else self.dir_text.value.strip() or ".")
        formats = [f for f, box in self.format_checks.items() if box.value] if formats is None else list(formats)
        written = export_lite_files(task, subset, folder, formats, dataset_progress=progress)
        self.exported = written
        self.exported_task = lite_task(task, subset)
        items = "".join(f"<li>{esc(kind)}: <code>{esc(path)}</code></li>" for kind, path in written.items())
        self.html.value = f"<b>Exported {len(subset)} of {subset.n_full} docs of {esc(task.name)}</b><ul>{items}</ul>"
        for callback in self.callbacks:
            callback(subset)
        return written
