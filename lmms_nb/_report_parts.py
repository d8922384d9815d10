"""Display helpers for the report notebook as a document: title, table of contents, summary, per-task sections,
labelled answers and run metadata. They only format what the public API computed (`compare`, `summary`).

Every string that reaches HTML is escaped here: report parameters (the title) are untrusted text, like
model output. Headings carry stable ids (`anchor`), so the table of contents links work in the HTML file.

Example:
    >>> anchor("task: synthbench_ocr / <b>")
    'task-synthbench_ocr-b'
"""

from __future__ import annotations

import html
import platform
import re
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["REPORT_STYLE", "anchor", "show_heading", "show_metadata", "show_summary", "show_task_section",
           "show_title", "show_toc"]

#: Page styling: tables fit the page (wrapping text, scrolling sideways only if they must), compact type.
REPORT_STYLE = """<style>
.jp-RenderedHTMLCommon table.lmms-nb-table{font-size:12px;max-width:100%;table-layout:auto}
.lmms-nb-wrap{max-width:100%;overflow-x:auto}
.lmms-nb-table td,.lmms-nb-table th{white-space:normal;word-break:break-word;padding:2px 6px}
.lmms-nb-summary li{margin:2px 0}
.lmms-nb-warning{color:#B07800}
.lmms-nb-toc{columns:2;font-size:13px}
.lmms-nb-chip{display:inline-block;border-radius:3px;padding:1px 5px;margin:1px;border:1px solid #999;
  border-left:4px solid var(--m,#888)}
.lmms-nb-chip.right{background:rgba(0,114,178,.13);border-color:#0072B2}
.lmms-nb-chip.partial{background:rgba(230,159,0,.18);border-color:#E69F00}
.lmms-nb-chip.wrong{background:rgba(213,94,0,.14);border-color:#D55E00}
</style>"""


def anchor(text: str) -> str:
    """A stable HTML id for a heading."""
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9_]+", "-", text.replace(":", ""))).strip("-").lower() or "section"


def _html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def show_title(title: Any, subtitle: str = "") -> None:
    """The report's <h1> (escaped: a title such as "<script>..." shows as text) and the page styling."""
    sub = f"<p>{html.escape(subtitle)}</p>" if subtitle else ""
    _html(f"{REPORT_STYLE}<h1 id='top'>{html.escape(str(title))}</h1>{sub}")


def show_heading(text: str, level: int = 2, *, ident: str | None = None) -> None:
    """A section heading with a stable id (for the table of contents)."""
    _html(f"<h{level} id='{anchor(ident or text)}'>{html.escape(text)}</h{level}>")


def show_toc(entries: Sequence[tuple[str, int]]) -> None:
    """A table of contents: (heading text, level) in order; links use `anchor(text)`."""
    items = "".join(
        f"<li style='margin-left:{(level - 2) * 16}px'><a href='#{anchor(text)}'>{html.escape(text)}</a></li>"
        for text, level in entries
    )
    _html(f"<nav><b>Contents</b><ul class='lmms-nb-toc'>{items}</ul></nav>")


def _table(rows: list[list[str]], head: list[str], caption: str = "") -> str:
    cap = f"<caption style='text-align:left'><small>{html.escape(caption)}</small></caption>" if caption else ""
    body = "".join("<tr>" + "".join(rows_i) + "</tr>" for rows_i in rows)
    heads = "".join(f"<th>{h}</th>" for h in head)
    return f"<div class='lmms-nb-wrap'><table class='lmms-nb-table'>{cap}<thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></div>"


def _model_cell(model: str, colors: dict[str, str]) -> str:
    return (f"<th style='text-align:left'><span style='border-left:4px solid {html.escape(colors.get(model, '#888'))};"
            f"padding-left:4px'>{html.escape(model)}</span></th>")


def show_summary(cmp: Any, summary: Any) -> None:
    """Who is best, where, how sure: the sentences, the warnings and the models x tasks grid (score [CI])."""
    e = html.escape
    items = "".join(f"<li>{e(s)}</li>" for s in summary.sentences)
    items += "".join(f"<li class='lmms-nb-warning'>⚠ {e(w)}</li>" for w in summary.warnings)
    colors = cmp.model_colors()
    cells = {(r["model"], r["task"]): r for r in summary.cells.iter_rows(named=True)}
    rows = []
    for g in summary.grid.iter_rows(named=True):
        tds = [f"<td>{e(str(g['rank']))}</td>", _model_cell(g["model"], colors),
               f"<td>{'–' if g['mean'] is None else format(g['mean'], '.3f')}</td>"]
        for t in cmp.tasks:
            c = cells.get((g["model"], t))
            if c is None or c["score"] is None:
                tds.append("<td>–</td>")
                continue
            ci = "" if c["ci_low"] is None else f"<br><small>[{c['ci_low']:.2f}, {c['ci_high']:.2f}]</small>"
            bold = " style='font-weight:700'" if c["rank_in_task"] == 1 else ""
            tds.append(f"<td{bold}>{c['score']:.3f}{ci}</td>")
        rows.append(tds)
    head = ["rank", "model", "mean"] + [f"{e(t)}<br><small>{e(cmp.metrics[t])}</small>" for t in cmp.tasks]
    level = round(cmp.confidence * 100)
    methods = ", ".join(sorted(set(summary.cells["ci_method"].drop_nulls().to_list())))
    grid = _table(rows, head, f"score [{level}% CI: {methods}] per task; best per task in bold; rank by mean")
    _html(f"<ul class='lmms-nb-summary'>{items}</ul>{grid}")


def _ci(row: dict[str, Any]) -> str:
    return "–" if row["ci_low"] is None else f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def show_task_section(cmp: Any, summary: Any, task: str) -> None:
    """One task: its scores with CIs (ranked), its significant pairs (p in scientific notation), figures
    titled by the task and metric (category heatmap on the shared 0-1 scale, per-sample correctness)."""
    from lmms_nb.analysis import format_p
    from lmms_nb.reporting import show_figure

    import polars as pl

    e = html.escape
    colors = cmp.model_colors()
    level = round(cmp.confidence * 100)
    cells = summary.cells.filter(pl.col("task") == task).sort("rank_in_task")
    rows = [[f"<td>{r['rank_in_task']}</td>", _model_cell(r["model"], colors), f"<td>{r['n']}</td>",
             f"<td>{'–' if r['score'] is None else format(r['score'], '.3f')}</td>", f"<td>{_ci(r)}</td>"]
            for r in cells.iter_rows(named=True)]
    method = ", ".join(sorted(set(cells["ci_method"].drop_nulls().to_list())))
    parts = [_table(rows, ["rank", "model", "n", e(cmp.metrics[task]), f"{level}% CI ({e(method)})"])]
    pw = cmp.pairwise.filter((pl.col("task") == task) & (pl.col("n_both") > 0))
    sig = pw.filter(pl.col("p_holm") < summary.alpha).sort("p_holm")
    if pw.height:
        lines = []
        for r in sig.iter_rows(named=True):
            winner, loser = (r["model_a"], r["model_b"]) if r["diff"] > 0 else (r["model_b"], r["model_a"])
            lines.append([_model_cell(winner, colors), _model_cell(loser, colors), f"<td>{abs(r['diff']):.3f}</td>",
                          f"<td>{_ci(r)}</td>", f"<td>{e(format_p(r['p_value']))}</td>",
                          f"<td>{e(format_p(r['p_holm']))}</td>", f"<td>{e(r['test'])}</td>"])
        note = f"{sig.height} of {pw.height} model pairs differ at Holm p < {summary.alpha:g}"
        parts.append(f"<p><small>{e(note)}.</small></p>")
        if lines:
            parts.append(_table(lines, ["better", "worse", "difference", f"{level}% CI (a − b)", "p", "p (Holm)",
                                        "test"]))
    _html("".join(parts))
    if cmp.by:
        show_figure(cmp.category_heatmap(task=task))
    show_figure(cmp.sample_heatmap(task=task))


def show_metadata(df: Any, cmp: Any, logs: Any) -> None:
    """Run metadata: models, tasks and metrics, samples, log files and formats, run ids, log dates, versions."""
    import os

    import polars as pl

    import lmms_nb

    e = html.escape
    files = df["source_file"].drop_nulls().unique().sort().to_list()
    dates = sorted(time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(f))) for f in files if os.path.exists(f))
    runs = df.select("model", "run_id").unique().sort("model", "run_id")
    items = [
        ("models", ", ".join(cmp.models)),
        ("tasks (metric)", ", ".join(f"{t} ({cmp.metrics[t]})" for t in cmp.tasks)),
        ("samples", f"{df.height:,} rows; {cmp.samples.height:,} compared"),
        ("log files", f"{len(files)} ({', '.join(sorted(set(df['source_format'].drop_nulls().to_list())))})"),
        ("logs given", str(logs)),
        ("runs", "; ".join(f"{m}: {r}" for m, r in runs.iter_rows())),
        ("log dates (UTC, file times)", f"{dates[0]} to {dates[-1]}" if dates else "unknown"),
        ("CIs", f"{round(cmp.confidence * 100)}%: Wilson (0/1 metrics), percentile bootstrap with "
                f"{cmp.n_resamples} resamples, seed {cmp.seed} (continuous)"),
        ("versions", f"lmms-nb {getattr(lmms_nb, '__version__', '?')}, Python {platform.python_version()}, "
                     f"polars {pl.__version__}"),
        ("report written", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
    ]
    rows = [[f"<th style='text-align:left'>{e(k)}</th>", f"<td style='text-align:left'>{e(v)}</td>"] for k, v in items]
    _html(_table(rows, ["", ""]))
