"""HTML of the widgets: sample cards and small tables. Every string that comes from data is escaped here.

Model output is untrusted text: a prediction such as ``<img src=x onerror=alert(1)>`` must show as those
characters and run nothing. Everything taken from a table (questions, targets, predictions, errors, model,
task and category names) goes through `esc`, and only this module writes markup.

Example:
    >>> esc("<script>alert('x')</script>")
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;'
    >>> "&lt;b&gt;" in answer_html("m", "<b>", "right")
    True
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import polars as pl

from lmms_nb.images import thumbnail_data_uri

__all__ = ["STYLE", "answer_html", "esc", "sample_cards_html", "table_html"]

#: Longest text shown per field; the rest is cut (with a note) so one runaway answer cannot swamp a page.
MAX_CHARS = 2000

#: Colours of an answer by state; also what the browser tests look for.
STATES = ("right", "wrong", "unscored", "absent")

STYLE = """<style>
.lmms-nb-cards{display:flex;flex-direction:column;gap:8px;font-size:13px}
.lmms-nb-card{display:flex;gap:10px;border:1px solid #ddd;border-radius:6px;padding:8px;background:#fff;color:#222}
.lmms-nb-thumb{flex:0 0 auto;width:100px;display:flex;align-items:flex-start;justify-content:center}
.lmms-nb-thumb img{max-width:96px;max-height:96px;border:1px solid #eee;image-rendering:pixelated}
.lmms-nb-noimg{width:96px;height:60px;display:flex;align-items:center;justify-content:center;text-align:center;
  background:#f3f3f3;color:#888;font-size:11px;border-radius:4px}
.lmms-nb-body{flex:1 1 auto;min-width:0}
.lmms-nb-meta{color:#666;font-size:11px;margin-bottom:2px}
.lmms-nb-question,.lmms-nb-target{white-space:pre-wrap;word-break:break-word;margin:2px 0}
.lmms-nb-answers{display:flex;flex-wrap:wrap;gap:4px;margin-top:4px}
.lmms-nb-answer{border-radius:4px;padding:2px 6px;white-space:pre-wrap;word-break:break-word;max-width:100%}
.lmms-nb-answer .lmms-nb-model{font-weight:600;margin-right:4px}
.lmms-nb-right{background:#d9f2dc;border:1px solid #2ca02c}
.lmms-nb-wrong{background:#fadbd8;border:1px solid #d62728}
.lmms-nb-unscored{background:#fff1cc;border:1px solid #e6a700}
.lmms-nb-absent{background:#eee;border:1px dashed #aaa;color:#777}
.lmms-nb-empty{color:#666;font-style:italic;padding:8px}
.lmms-nb-table{border-collapse:collapse;font-size:12px}
.lmms-nb-table th,.lmms-nb-table td{border:1px solid #ddd;padding:2px 6px;text-align:right}
.lmms-nb-table th:first-child,.lmms-nb-table td:first-child{text-align:left}
</style>"""


def esc(value: Any) -> str:
    """`value` as escaped HTML text (None -> empty); quotes are escaped too, so it is safe in attributes."""
    return "" if value is None else html.escape(str(value), quote=True)


def _cut(text: Any) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f" … [{len(text) - MAX_CHARS} more characters]"


def answer_html(model: str, prediction: Any, state: str, error: Any = None) -> str:
    """One model's answer, coloured by `state` (right, wrong, unscored, absent)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    if state == "absent":
        body = "not run on this sample"
    elif error is not None:
        body = f"error: {_cut(error)}"
    elif prediction is None:
        body = "(no prediction)"
    else:
        body = _cut(prediction)
    return (f'<div class="lmms-nb-answer lmms-nb-{state}" data-model="{esc(model)}" data-state="{state}">'
            f'<span class="lmms-nb-model">{esc(model)}</span><span class="lmms-nb-pred">{esc(body)}</span></div>')


def _state(row: dict[str, Any], i: int) -> str:
    if not row[f"has_{i}"]:
        return "absent"
    correct = row[f"correct_{i}"]
    if correct is None:
        return "unscored"
    return "right" if correct else "wrong"


def _thumbnail(ref: str | None, size: int) -> str:
    if not ref:
        return '<div class="lmms-nb-noimg">no image</div>'
    try:
        uri = thumbnail_data_uri(ref, size)
    except Exception as e:  # noqa: BLE001 - a broken image must not break the page; say why in the tooltip
        return f'<div class="lmms-nb-noimg" title="{esc(e)}">image unavailable</div>'
    # The URI is built by us from base64 output: only [A-Za-z0-9+/=] after the fixed prefix.
    return f'<img src="{uri}" alt="{esc(ref)}">'


def sample_cards_html(rows: pl.DataFrame, models: Sequence[tuple[int, str]], *, thumbnail_px: int = 96,
                      metrics: dict[str, str] | None = None) -> str:
    """Cards for the rows of a `SampleIndex` page: thumbnail, question, target, each model's answer.

    `models` lists (column index, name) of the models to show, in order.
    """
    if rows.height == 0:
        return STYLE + '<div class="lmms-nb-cards"><div class="lmms-nb-empty">No sample matches these filters.</div></div>'
    cards = []
    for row in rows.iter_rows(named=True):
        meta = [row["task"], f"#{row['doc_id']}"]
        if row.get("filter") not in (None, "none"):
            meta.append(f"filter {row['filter']}")
        if row.get("category") is not None:
            meta.append(f"category {row['category']}")
        if metrics and row["task"] in metrics:
            meta.append(f"scored by {metrics[row['task']]}")
        answers = "".join(
            answer_html(name, row[f"prediction_{i}"], _state(row, i), row[f"error_{i}"]) for i, name in models
        )
        cards.append(
            f'<div class="lmms-nb-card" data-task="{esc(row["task"])}" data-doc-id="{esc(row["doc_id"])}">'
            f'<div class="lmms-nb-thumb">{_thumbnail(row.get("image_ref"), thumbnail_px)}</div>'
            f'<div class="lmms-nb-body"><div class="lmms-nb-meta">{esc(" · ".join(meta))}</div>'
            f'<div class="lmms-nb-question"><b>Q</b> {esc(_cut(row["input"]))}</div>'
            f'<div class="lmms-nb-target"><b>target</b> {esc(_cut(row["target"]))}</div>'
            f'<div class="lmms-nb-answers">{answers}</div></div></div>'
        )
    return STYLE + '<div class="lmms-nb-cards">' + "".join(cards) + "</div>"


def table_html(frame: pl.DataFrame, *, digits: int = 3, max_rows: int = 200, css_class: str = "lmms-nb-table") -> str:
    """A polars frame as an escaped HTML table (floats rounded to `digits`)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for v in row:
            text = "" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
            cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<caption>first {max_rows} of {frame.height} rows</caption>" if frame.height > max_rows else ""
    return STYLE + f'<table class="{css_class}">{more}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
