"""The embedding map of `find_slices`: samples at their 2-D PCA position, coloured by outcome, slices outlined.

plotly is imported inside the function, never at module import. Points carry [task, doc_id, filter] in
`customdata`; each outline carries its slice_id. Labels come from data (prompt words, categories) and are
HTML-escaped, since plotly renders a subset of HTML in names and hover text.

Example:
    >>> import numpy as np, polars as pl
    >>> from lmms_nb.analysis import find_slices
    >>> from lmms_nb.lite_selection import TaskEmbeddings
    >>> rng = np.random.default_rng(0)
    >>> vectors = np.concatenate([rng.normal(0, 1, (300, 8)), rng.normal(6, 1, (100, 8))]).astype("float32")
    >>> df = pl.DataFrame({"model": "m", "task": "t", "doc_id": range(400),
    ...                    "acc": [float(i < 300 or i % 5 == 0) for i in range(400)]})
    >>> found = find_slices(df, "m", embeddings=TaskEmbeddings("t", np.arange(400), vectors))
    >>> fig = found.map_figure()
    >>> [t.name for t in fig.data][:2], fig.data[-1].customdata[0]
    (['right', 'wrong'], 0)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from lmms_nb.analysis._slices import Slices

_MAX_POINTS = 20_000  # more points make the browser slow and say nothing more
_OUTCOMES = {None: [(0.0, "right", "#2ca02c"), (1.0, "wrong", "#d62728")],
             "baseline": [(-1.0, "wins over baseline", "#2ca02c"), (0.0, "same as baseline", "#bbbbbb"),
                          (1.0, "loses to baseline", "#d62728")]}
_OUTLINE_COLOURS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def _hull(points: np.ndarray) -> np.ndarray | None:
    """The closed convex hull of 2-D points (None for fewer than 3 distinct points)."""
    from scipy.spatial import ConvexHull, QhullError

    if len(np.unique(points, axis=0)) < 3:
        return None
    try:
        hull = ConvexHull(points)
    except QhullError:  # all points on a line
        return None
    ring = points[hull.vertices]
    return np.vstack([ring, ring[:1]])


def slice_map_figure(found: Slices, *, top: int = 5) -> go.Figure:
    """Scatter of the samples (map_x, map_y), one trace per outcome; the `top` significant slices outlined
    by the convex hull of their samples' central 90% (the densest part, so a stray member does not stretch
    the outline over the whole map)."""
    import plotly.graph_objects as go

    samples = found.samples
    if "map_x" not in samples.columns:
        raise ValueError("this Slices has no map: call find_slices(..., embeddings=...) to place the samples")
    shown = samples.with_row_index("_row")
    if shown.height > _MAX_POINTS:
        shown = shown.sample(_MAX_POINTS, seed=0)
    fig = go.Figure()
    for value, name, colour in _OUTCOMES["baseline" if found.baseline else None]:
        part = shown.filter(pl.col("outcome") == value)
        hover = [html.escape(str(t)[:80], quote=False) for t in part["input"].fill_null("").to_list()]
        fig.add_trace(go.Scattergl(
            x=part["map_x"].to_numpy(), y=part["map_y"].to_numpy(), mode="markers", name=name,
            marker={"size": 5, "color": colour, "opacity": 0.6}, text=hover,
            customdata=part.select("task", "doc_id", "filter").rows(),
            hovertemplate="%{customdata[0]} doc %{customdata[1]}<br>%{text}<extra>" + name + "</extra>",
        ))
    keys = samples.select("task", "doc_id", "filter").with_row_index("_row")
    for n, row in enumerate(found.significant.head(top).iter_rows(named=True)):
        rows = keys.join(found.members.filter(pl.col("slice_id") == row["slice_id"]),
                         on=["task", "doc_id", "filter"], how="semi")["_row"].to_numpy()
        xy = samples.select("map_x", "map_y").to_numpy()[rows]
        centre = np.median(xy, axis=0)
        dist = np.linalg.norm(xy - centre, axis=1)
        ring = _hull(xy[dist <= np.quantile(dist, 0.9)]) if len(xy) else None
        if ring is None:
            continue
        label = html.escape(f"slice {row['slice_id']}: {row['label']}"[:90], quote=False)  # plotly shows &quot; as is
        fig.add_trace(go.Scatter(
            x=ring[:, 0], y=ring[:, 1], mode="lines", name=label, customdata=[row["slice_id"]] * len(ring),
            line={"color": _OUTLINE_COLOURS[n % len(_OUTLINE_COLOURS)], "width": 2}, hoverinfo="name",
        ))
    what = f"{found.model} vs {found.baseline}" if found.baseline else found.model
    fig.update_layout(title=html.escape(f"Where {what} fails: samples by embedding (PCA), top slices outlined", quote=False),
                      xaxis_title="PC 1", yaxis_title="PC 2", height=520,
                      legend={"itemsizing": "constant", "orientation": "h", "y": -0.15})
    return fig


__all__ = ["slice_map_figure"]
