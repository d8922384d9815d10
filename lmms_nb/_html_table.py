"""A polars frame's header and rows as escaped HTML table cells: the one formatting of numbers that the widgets'
tables (`lmms_nb.widgets._html.table_html`) and the reports' (`lmms_nb.reporting.show_table`) share.

Floats are rounded to `digits`; p-value columns are written by `lmms_nb.analysis.format_p` (scientific below
0.001, never "0.000"); None is an empty cell; every text is escaped (model output never becomes markup).

Example:
    >>> import polars as pl
    >>> table_cells(pl.DataFrame({"model": ["<b>"], "acc": [0.5], "p_value": [1e-5]}), p_columns={"p_value"})
    ('<th>model</th><th>acc</th><th>p_value</th>', '<tr><td>&lt;b&gt;</td><td>0.500</td><td>1.0e-05</td></tr>')
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["table_cells"]


def table_cells(frame: Any, *, digits: int = 3, max_rows: int = 200, p_columns: Collection[str] = (),
                labels: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the ``<th>`` cells of the header, the ``<tr>`` rows of the first `max_rows` rows) of a polars frame;
    `labels` renames headers."""
    from lmms_nb.analysis import format_p

    labels = labels or {}
    head = "".join(f"<th>{html.escape(str(labels.get(c, c)))}</th>" for c in frame.columns)
    is_p = [c in p_columns for c in frame.columns]
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for v, p in zip(row, is_p, strict=True):
            if p and isinstance(v, float):
                text = format_p(v)
            else:
                text = "" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return head, "".join(body)
