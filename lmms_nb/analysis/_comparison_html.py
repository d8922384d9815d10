"""The notebook HTML of a `Comparison` and its tables; every value from the logs is escaped."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from lmms_nb.analysis._comparison import Comparison

__all__ = ["comparison_html", "table_html"]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table_html(frame: pl.DataFrame, max_rows: int = 30) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in frame.head(max_rows).iter_rows()
    )
    more = f"<p>&hellip; {frame.height - max_rows} more rows</p>" if frame.height > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def comparison_html(cmp: Comparison) -> str:
    e = html.escape
    tasks = cmp.tasks
    header = "<tr><th>model</th>" + "".join(f"<th>{e(t)}<br><small>{e(cmp.metrics[t])}</small></th>" for t in tasks)
    # one cell per model x task: the task's first filter (alphabetically); all filters are in `.scores`
    first_filter = cmp.scores.filter(pl.col("filter") == pl.col("filter").min().over("task"))
    cells = {(r["model"], r["task"]): r for r in first_filter.iter_rows(named=True)}
    rows = []
    for m in cmp.models:
        tds = []
        for t in tasks:
            r = cells.get((m, t))
            if r is None or r["score"] is None:
                tds.append("<td>&ndash;</td>")
            else:
                tds.append(
                    f"<td>{r['score']:.3f} <small>[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] n={r['n']}</small></td>"
                )
        rows.append(f"<tr><th>{e(m)}</th>{''.join(tds)}</tr>")
    pw = cmp.pairwise.select(
        "model_a",
        "model_b",
        "task",
        "n_both",
        "a_right_b_wrong",
        "b_right_a_wrong",
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "test",
    )
    groups = ""
    if cmp.by and cmp.scores_by_group.height:
        table = cmp.scores_by_group.select("model", "task", *cmp.by, "n", "score", "ci_low", "ci_high")
        groups = f"<details><summary>scores by {e(' / '.join(cmp.by))}</summary>{table_html(table, 60)}</details>"
    n_missing = cmp.missing.height
    level = int(round(cmp.confidence * 100))
    return (
        f"<div class='lmms-nb-comparison'><p><b>Comparison</b> of {len(cmp.models)} models on {len(tasks)} tasks "
        f"({level}% CIs: Wilson for 0/1 metrics, bootstrap otherwise)</p>"
        f"<table><thead>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{groups}"
        f"<p><b>Pairwise</b> (aligned on task, doc_id, filter; Holm over the pairs of each task)</p>{table_html(pw)}"
        f"<p>{n_missing} (sample, model) pairs missing on one side"
        + (" &mdash; see <code>.missing</code>" if n_missing else "")
        + "</p></div>"
    )
