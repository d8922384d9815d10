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
from collections.abc import Mapping
from typing import Any

import polars as pl

from lmms_nb._html_table import table_cells


__all__ = ["STYLE", "answer_html", "error_html", "esc", "sample_cards_html", "table_html"]

#: Colours of an answer by state; also what the browser tests look for.
STATES = ("right", "partial", "wrong", "unscored", "absent")

STYLE = """<style>
/* Theme-aware: JupyterLab's CSS variables (light and dark), with light fallbacks outside JupyterLab. */
.lmms-nb-cards{display:flex;flex-direction:column;gap:4px;font-size:13px;line-height:1.35}
.lmms-nb-card{display:flex;gap:8px;border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;padding:4px 6px;
  background:var(--jp-layout-color1,#fff);color:var(--jp-ui-font-color1,#222)}
.lmms-nb-media{flex:0 0 auto;display:flex;flex-direction:column;gap:4px;align-items:center}
.lmms-nb-thumb{cursor:zoom-in;display:block}
.lmms-nb-thumb img{display:block;border:1px solid var(--jp-border-color2,#eee);image-rendering:auto}
.lmms-nb-open,.lmms-nb-close,.lmms-nb-viewer-bar input{position:absolute;opacity:0;pointer-events:none;width:0;height:0}
.lmms-nb-viewer{display:none}
.lmms-nb-card:has(.lmms-nb-open:checked){flex-wrap:nowrap}
.lmms-nb-card:has(.lmms-nb-open:checked) .lmms-nb-viewer{display:flex;flex-direction:column;flex:1 1 auto;min-width:0;
  max-width:calc(100% - 380px)}
.lmms-nb-card:has(.lmms-nb-open:checked) .lmms-nb-body{flex:0 0 360px;min-width:0}
.lmms-nb-viewer-bar{display:flex;gap:6px;align-items:center;font-size:12px;margin-bottom:2px}
.lmms-nb-viewer-bar label{cursor:pointer;padding:0 6px;border:1px solid var(--jp-border-color2,#ccc);border-radius:3px}
.lmms-nb-viewer-bar label:has(input:checked){background:var(--jp-layout-color3,#ddd);font-weight:600}
.lmms-nb-viewport{overflow:auto;max-height:80vh;max-width:min(1100px,calc(100vw - 720px));
  border:1px solid var(--jp-border-color2,#ddd);
  background:var(--jp-layout-color0,#fff)}
.lmms-nb-full,.lmms-nb-size{display:none}
.lmms-nb-size{font-size:11px;color:var(--jp-ui-font-color2,#666)}
.lmms-nb-full{max-width:none;width:var(--w);height:auto}
.lmms-nb-card:has(.lmms-nb-z-fit:checked) .lmms-nb-full{width:auto;max-width:100%}
.lmms-nb-card:has(.lmms-nb-z-200:checked) .lmms-nb-full{width:calc(var(--w) * 2)}
.lmms-nb-card:has(.lmms-nb-open-0:checked) .lmms-nb-full-0,.lmms-nb-card:has(.lmms-nb-open-0:checked) .lmms-nb-size-0{display:block}
.lmms-nb-card:has(.lmms-nb-open-1:checked) .lmms-nb-full-1,.lmms-nb-card:has(.lmms-nb-open-1:checked) .lmms-nb-size-1{display:block}
.lmms-nb-card:has(.lmms-nb-open-2:checked) .lmms-nb-full-2,.lmms-nb-card:has(.lmms-nb-open-2:checked) .lmms-nb-size-2{display:block}
.lmms-nb-card:has(.lmms-nb-open-3:checked) .lmms-nb-full-3,.lmms-nb-card:has(.lmms-nb-open-3:checked) .lmms-nb-size-3{display:block}
.lmms-nb-card:has(.lmms-nb-open-4:checked) .lmms-nb-full-4,.lmms-nb-card:has(.lmms-nb-open-4:checked) .lmms-nb-size-4{display:block}
.lmms-nb-card:has(.lmms-nb-open-5:checked) .lmms-nb-full-5,.lmms-nb-card:has(.lmms-nb-open-5:checked) .lmms-nb-size-5{display:block}
.lmms-nb-card:has(.lmms-nb-open-6:checked) .lmms-nb-full-6,.lmms-nb-card:has(.lmms-nb-open-6:checked) .lmms-nb-size-6{display:block}
.lmms-nb-card:has(.lmms-nb-open-7:checked) .lmms-nb-full-7,.lmms-nb-card:has(.lmms-nb-open-7:checked) .lmms-nb-size-7{display:block}
.lmms-nb-noimg{width:96px;min-height:48px;display:flex;flex-direction:column;align-items:center;justify-content:center;
  text-align:center;background:var(--jp-layout-color2,#f3f3f3);color:var(--jp-ui-font-color2,#777);font-size:11px;
  border-radius:4px;padding:2px}
.lmms-nb-body{flex:1 1 auto;min-width:0}
.lmms-nb-meta{color:var(--jp-ui-font-color2,#666);font-size:11px}
.lmms-nb-question,.lmms-nb-target{white-space:pre-wrap;word-break:break-word;margin:1px 0}
.lmms-nb-answers{display:flex;flex-wrap:wrap;gap:3px;margin-top:2px}
.lmms-nb-answer{border-radius:3px;padding:1px 5px;white-space:pre-wrap;word-break:break-word;max-width:100%;
  border:1px solid;border-left:4px solid var(--lmms-nb-model,#888)}
.lmms-nb-answer .lmms-nb-model,.lmms-nb-samples-table th .lmms-nb-model{font-weight:600;margin-right:4px;
  color:var(--lmms-nb-model,inherit)}
.lmms-nb-samples-table th .lmms-nb-model{border-bottom:3px solid var(--lmms-nb-model,#888)}
.lmms-nb-icon{font-weight:700;margin-right:3px}
.lmms-nb-value{font-variant-numeric:tabular-nums;font-weight:600;margin-right:4px;padding:0 3px;border-radius:2px;
  background:var(--jp-layout-color2,#eee)}
.lmms-nb-right{background:rgba(0,114,178,.13);border-color:#0072B2}
.lmms-nb-right .lmms-nb-icon{color:#0072B2}
.lmms-nb-partial{background:rgba(230,159,0,.18);border-color:#E69F00}
.lmms-nb-partial .lmms-nb-icon{color:#B07800}
.lmms-nb-wrong{background:rgba(213,94,0,.14);border-color:#D55E00}
.lmms-nb-wrong .lmms-nb-icon{color:#D55E00}
.lmms-nb-unscored{background:rgba(204,121,167,.16);border-color:#CC79A7}
.lmms-nb-absent{background:transparent;border-style:dashed;border-color:#999;color:var(--jp-ui-font-color2,#777)}
.lmms-nb-clicked{outline:2px solid var(--jp-brand-color1,#1976d2);outline-offset:1px}
.lmms-nb-more{font-size:11px;margin-top:2px}
.lmms-nb-more summary{cursor:pointer;color:var(--jp-ui-font-color2,#666)}
.lmms-nb-more td,.lmms-nb-more th{text-align:left}
.lmms-nb-empty{color:var(--jp-ui-font-color2,#666);font-style:italic;padding:8px}
.lmms-nb-table{border-collapse:collapse;font-size:12px;color:var(--jp-ui-font-color1,#222)}
.lmms-nb-table th,.lmms-nb-table td{border:1px solid var(--jp-border-color2,#ddd);padding:1px 5px;text-align:right;
  vertical-align:top}
.lmms-nb-table th:first-child,.lmms-nb-table td:first-child{text-align:left}
.lmms-nb-samples-table td{text-align:left;white-space:nowrap;max-width:420px;overflow:hidden;text-overflow:ellipsis}
.lmms-nb-summary{margin:2px 0 4px 0;padding-left:18px}
.lmms-nb-warning{color:#B07800}
.lmms-nb-busy{opacity:.45;transition:opacity .1s}
</style>"""


def esc(value: Any) -> str:
    """`value` as escaped HTML text (None -> empty); quotes are escaped too, so it is safe in attributes."""
    return "" if value is None else html.escape(str(value), quote=True)


def error_html(what: str, error: BaseException) -> str:
    """A red line saying what failed and the error's type and message, all escaped.

    >>> error_html("export failed", ValueError("<b>"))
    '<span style="color:#d62728">export failed: ValueError: &lt;b&gt;</span>'
    """
    return f'<span style="color:#d62728">{esc(what)}: {esc(type(error).__name__)}: {esc(error)}</span>'


def answer_html(model: str, prediction: Any, state: str, error: Any = None, *, value: float | None = None) -> str:
    """One model's answer chip, coloured by `state` (right, partial, wrong, unscored, absent), with an icon."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    from lmms_nb.widgets._cards import chip_html

    return chip_html(model, prediction, state, value=value, error=error)


def sample_cards_html(*args: Any, **kwargs: Any) -> str:
    """See `lmms_nb.widgets._cards.sample_cards_html` (kept here for existing imports)."""
    from lmms_nb.widgets._cards import sample_cards_html as cards

    return cards(*args, **kwargs)


def table_html(frame: pl.DataFrame, *, digits: int = 3, max_rows: int = 200, css_class: str = "lmms-nb-table",
               labels: Mapping[str, str] | None = None) -> str:
    """A polars frame as an escaped HTML table: floats rounded to `digits`, p-value columns (p_*) in scientific
    notation below 0.001 (never "0.000"), column headers renamed by `labels`."""
    head, body = table_cells(frame, digits=digits, max_rows=max_rows, labels=labels,
                             p_columns=[c for c in frame.columns if c.startswith("p_") or c == "p"])
    more = f"<caption>first {max_rows} of {frame.height} rows</caption>" if frame.height > max_rows else ""
    return STYLE + f'<table class="{css_class}">{more}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
