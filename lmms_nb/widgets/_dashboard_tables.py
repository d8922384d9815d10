"""What `CompareDashboard` writes in its HTML panes, from a `Comparison` and its `Summary`: the status line,
the summary (sentences, warnings and the models x tasks grid) and the three collapsed tables. Every value from
the logs is escaped.

Example:
    >>> import polars as pl
    >>> from lmms_nb.analysis import compare
    >>> df = pl.DataFrame({"model": ["A", "B"] * 4, "task": ["t"] * 8, "doc_id": [0, 0, 1, 1, 2, 2, 3, 3],
    ...                    "acc": [1, 0, 1, 1, 0, 1, 1, 0]})
    >>> cmp = compare(df, n_resamples=200)
    >>> status_line(cmp).split(" · ")[:3]
    ['<small>2 models', '1 tasks', 'metric t: acc']
    >>> 'data-model="A"' in summary_html(cmp, cmp.summary(), {"A": "#0072B2"})
    True
    >>> sorted(tables_html(cmp, cmp.summary()))
    ['answers', 'pairwise', 'scores']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmms_nb.widgets._html import esc, table_html

__all__ = ["TABLE_TITLES", "grid_html", "status_line", "summary_html", "tables_html"]

#: The title of each collapsed table. Collapsed <details> in the HTML, not an ipywidgets Accordion: with an
#: Accordion below them, plotly FigureWidgets above were sometimes never drawn in JupyterLab (the browser tests
#: caught it).
TABLE_TITLES = {"scores": "Scores per model x task x filter (with CIs)",
                "pairwise": "Pairwise tests (McNemar exact / paired t, Holm-adjusted per task)",
                "answers": "Answer distributions (most frequent answer per model and task)"}


def status_line(cmp: Any) -> str:
    """One line: how many models and tasks, the metric of each task, how the CIs are computed."""
    level = round(cmp.confidence * 100)
    metrics = ", ".join(f"{t}: {m}" for t, m in cmp.metrics.items())
    return (f"<small>{len(cmp.models)} models · {len(cmp.tasks)} tasks · metric {esc(metrics)} · "
            f"{level}% CIs: Wilson for 0/1 metrics, bootstrap ({cmp.n_resamples} resamples) for "
            f"continuous ones · click a bar or a cell to see its samples</small>")


def summary_html(cmp: Any, summary: Any, colors: Mapping[str, str]) -> str:
    """The summary's sentences and warnings as a list, then the models x tasks grid."""
    items = "".join(f"<li>{esc(s)}</li>" for s in summary.sentences)
    items += "".join(f'<li class="lmms-nb-warning">⚠ {esc(w)}</li>' for w in summary.warnings)
    return f'<ul class="lmms-nb-summary">{items}</ul>{grid_html(cmp, summary, colors)}'


def tables_html(cmp: Any, summary: Any) -> dict[str, str]:
    """{"scores" | "pairwise" | "answers": a collapsed table}; the filter column only when a task has several."""
    level = round(cmp.confidence * 100)
    several_filters = cmp.scores["filter"].n_unique() > 1
    keep = ["model", "task", *(["filter"] if several_filters else []), "metric", "n", "score", "ci_low",
            "ci_high", "ci_method"]
    scores = _details("scores", table_html(cmp.scores.select(keep), labels={
        "ci_low": f"{level}% CI low", "ci_high": f"{level}% CI high", "ci_method": "CI method"}))
    pair_cols = ["model_a", "model_b", "task", *(["filter"] if several_filters else []), "n_both",
                 "a_right_b_wrong", "b_right_a_wrong", "diff", "ci_low", "ci_high", "p_value", "p_holm", "test"]
    pairwise = _details("pairwise", table_html(cmp.pairwise.select(pair_cols), digits=3, labels={
        "ci_low": f"diff {level}% CI low", "ci_high": f"diff {level}% CI high", "p_holm": "p (Holm)"})
        if cmp.pairwise.height else "<small>one model: no pairs</small>")
    answers = _details("answers", table_html(summary.answers.select(
        "model", "task", "n", "n_distinct", "top_answer", "top_share", "target_top_share"), labels={
        "n_distinct": "distinct answers", "top_answer": "most frequent answer", "top_share": "its share",
        "target_top_share": "most frequent target's share"}))
    return {"scores": scores, "pairwise": pairwise, "answers": answers}


def _details(kind: str, body: str) -> str:
    return f"<details><summary><b>{esc(TABLE_TITLES[kind])}</b></summary>{body}</details>"


def grid_html(cmp: Any, summary: Any, colors: Mapping[str, str]) -> str:
    """Models x tasks: score [CI] per cell, mean and rank; each model's name in its colour."""
    cells = {(r["model"], r["task"]): r for r in summary.cells.iter_rows(named=True)}
    head = "".join(f"<th>{esc(t)}<br><small>{esc(cmp.metrics[t])}</small></th>" for t in cmp.tasks)
    rows = []
    for g in summary.grid.iter_rows(named=True):
        m = g["model"]
        tds = []
        for t in cmp.tasks:
            c = cells.get((m, t))
            if c is None or c["score"] is None:
                tds.append("<td>–</td>")
                continue
            best = ' style="font-weight:700"' if c["rank_in_task"] == 1 else ""
            ci = "" if c["ci_low"] is None else f' <small>[{c["ci_low"]:.2f}, {c["ci_high"]:.2f}]</small>'
            tds.append(f"<td{best}>{c['score']:.3f}{ci}</td>")
        mean = "–" if g["mean"] is None else f"{g['mean']:.3f}"
        rows.append(f'<tr data-model="{esc(m)}"><td>{esc(g["rank"])}</td><th style="text-align:left">'
                    f'<span class="lmms-nb-model" style="--lmms-nb-model:{esc(colors.get(m, ""))};'
                    f'border-left:4px solid {esc(colors.get(m, "#888"))};padding-left:4px">{esc(m)}</span></th>'
                    f"<td>{mean}</td>{''.join(tds)}</tr>")
    level = round(cmp.confidence * 100)
    return (f'<table class="lmms-nb-table lmms-nb-grid"><caption style="text-align:left"><small>score '
            f"[{level}% CI] per task; best per task in bold</small></caption><thead><tr><th>rank</th>"
            f"<th>model</th><th>mean</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
