"""What `LiteBuilder` draws: the map's two scatter layers, a doc's hover text, the verdict and error lines.

Every text from a task or a log is HTML-escaped here (plotly renders hover text as markup).
"""

from __future__ import annotations

import textwrap
from typing import Any

import polars as pl

from lmms_nb.widgets._html import esc

__all__ = ["empty_map", "error_html", "hover_html", "map_traces", "verdict_html"]


def map_traces(webgl: bool) -> list[Any]:
    """The map's two layers: every doc (grey) and the picked docs (coloured by cell size)."""
    import plotly.graph_objects as go

    kind = go.Scattergl if webgl else go.Scatter
    return [
        kind(x=[], y=[], mode="markers", name="all docs", hovertext=[],
             marker={"color": "#c7c7c7", "size": 6}, hovertemplate="%{hovertext}<extra>doc</extra>"),
        kind(x=[], y=[], mode="markers", name="picked (colour: cell size)", hovertext=[],
             marker={"color": [], "colorscale": "Viridis", "size": 11, "showscale": True,
                     "line": {"color": "#222", "width": 1}, "colorbar": {"title": {"text": "cell size"}}},
             hovertemplate="%{hovertext}<extra>picked</extra>"),
    ]


def empty_map() -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(map_traces(webgl=False))
    fig.update_layout(template="plotly_white", height=460, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      xaxis_title="PC 1", yaxis_title="PC 2", legend={"orientation": "h", "y": -0.12},
                      title={"text": "embed a task to see its docs"})
    return fig


def hover_html(doc_id: int, prompt: str) -> str:
    """A doc's hover text: its id, then its prompt wrapped at 60 characters and HTML-escaped."""
    lines = [esc(line) for para in prompt.splitlines() for line in (textwrap.wrap(para, 60) or [""])]
    return f"<b>doc {doc_id}</b><br>" + "<br>".join(lines)


def error_html(what: str, error: BaseException) -> str:
    return f'<span style="color:#d62728">{esc(what)}: {esc(type(error).__name__)}: {esc(error)}</span>'


def verdict_html(verdict: pl.DataFrame | None) -> str:
    """One plain sentence per estimator of the current subset: better, no better, or worse than random."""
    if verdict is None or verdict.height == 0:
        return ""
    colors = {"better than random": "#2ca02c", "no better than random": "#d62728", "worse than random": "#d62728"}
    lines = []
    for r in verdict.iter_rows(named=True):
        color = colors.get(r["verdict"], "#555")
        lines.append(f"<div class='lmms-nb-lite-verdict'>This subset's {esc(r['estimator'])} is "
                     f"<b style='color:{color}'>{esc(r['verdict'])}</b>: {r['mae_points']:.2f} points off on "
                     f"average across {r['n_models']} models; random subsets of {r['k']} docs are "
                     f"{r['random_mae_points']:.2f} off, and it beats them in {r['beats_random_mae']:.0%} of "
                     f"draws.</div>")
    return "<div style='margin:4px 0'>" + "".join(lines) + "</div>"
