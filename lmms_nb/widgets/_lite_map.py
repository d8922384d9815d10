"""`DocMap`: `LiteBuilder`'s map of a task's docs (PCA of their embeddings) and the hovered doc's preview.

Every doc is a grey point; the picked docs are drawn over them, coloured by cell size (how many docs each one
stands for). Hovering a point shows the doc's prompt in plotly's box and its image beside the map; a picked
doc's hover also says what it stands for (its cell, or in a difficulty subset the docs it stands for). The data
come from the public API (`pca_2d`, `doc_prompts`, `doc_prompt_and_images`, `pick_notes`); every text is HTML-escaped
here, since plotly renders hover text as markup.
"""

from __future__ import annotations

import textwrap
from typing import Any

import ipywidgets as widgets
import numpy as np

from lmms_nb.widgets._html import error_html, esc

__all__ = ["DocMap"]

#: Docs above which the map draws with WebGL (SVG markers slow the page down past a few thousand).
WEBGL_ABOVE = 3000
#: Characters of a doc's prompt shown on hover (a long OCR passage must not cover the whole map).
HOVER_CHARS = 300


class DocMap:
    """The map (`figure`, a plotly FigureWidget) and the hovered doc's image and prompt (`doc_preview`).

    State: `task` (whose docs are drawn; None when cleared), `coords` (the PCA map), `hover` (each doc's
    hover text, in row order).
    """

    def __init__(self) -> None:
        import plotly.graph_objects as go

        self.figure = go.FigureWidget(_empty_map())
        self.figure.add_class("lmms-nb-lite-map")
        #: the hovered doc's image and prompt, beside the map (plotly's own hover box cannot show an image)
        self.doc_preview = widgets.HTML(layout=widgets.Layout(width="220px"))
        self.doc_preview.add_class("lmms-nb-lite-preview")
        self.task: Any = None
        self.coords: np.ndarray | None = None
        self.hover: list[str] = []
        self._watch_hover()

    def clear(self) -> None:
        """No task: both layers emptied."""
        self.task = None
        with self.figure.batch_update():
            for trace in self.figure.data:
                trace.x, trace.y, trace.hovertext, trace.customdata = [], [], [], []

    def show_docs(self, task: Any, embeddings: Any) -> np.ndarray:
        """Draw every doc of `embeddings` (of `task`) at its PCA position; returns the positions."""
        from lmms_nb.lite_selection import doc_prompts, pca_2d

        self.coords = pca_2d(embeddings.vectors)
        prompts = doc_prompts(task, embeddings.doc_ids, max_chars=HOVER_CHARS)
        self.hover = [_hover_html(d, p) for d, p in zip(embeddings.doc_ids.tolist(), prompts, strict=True)]
        self.task = task
        n = len(embeddings)
        webgl = n > WEBGL_ABOVE
        if (self.figure.data[0].type == "scattergl") != webgl:
            self.figure.data = []
            self.figure.add_traces(_map_traces(webgl))
            self._watch_hover()
        with self.figure.batch_update():
            everyone = self.figure.data[0]
            everyone.x, everyone.y = self.coords[:, 0], self.coords[:, 1]
            everyone.customdata, everyone.hovertext = embeddings.doc_ids, self.hover
            self.figure.layout.title.text = esc(f"{task.name}: {n} docs, embeddings PCA")
        return self.coords

    def show_subset(self, subset: Any, rows: np.ndarray) -> None:
        """Draw the picked docs of `subset` (at embedding rows `rows`) over the others, coloured by how many docs each stands for;
        each one's hover says what it stands for (`pick_notes`: its cell, or the docs it stands for in a difficulty subset)."""
        from lmms_nb.lite_selection import pick_notes

        with self.figure.batch_update():
            picked = self.figure.data[1]
            picked.x, picked.y = self.coords[rows, 0], self.coords[rows, 1]
            picked.customdata = subset.doc_ids
            picked.marker.color = subset.cell_sizes
            picked.hovertext = [f"{self.hover[r]}<br><b>{esc(what)}</b> {esc(amount)}"
                                for r, (what, amount) in zip(rows, pick_notes(subset), strict=True)]

    def show_doc(self, doc_id: int) -> None:
        """Show doc `doc_id`'s image (a PNG thumbnail) and prompt beside the map, as hovering its point does."""
        from lmms_nb.lite_selection import doc_image_data_url, doc_prompt_and_images

        if self.task is None:
            return
        try:
            prompt, images = doc_prompt_and_images(self.task, doc_id)
        except Exception as e:  # noqa: BLE001 - one odd doc must not break the map
            self.doc_preview.value = error_html(f"doc {doc_id}", e)
            return
        pictures = "".join(f"<img src='{doc_image_data_url(im)}' style='width:200px;image-rendering:pixelated' "
                           f"alt='doc {int(doc_id)} image {i}'>" for i, im in enumerate(images[:2]))
        self.doc_preview.value = (f"<div><b>doc {int(doc_id)}</b></div>{pictures}"
                                  f"<div><small>{esc(prompt[:HOVER_CHARS])}</small></div>")

    def _watch_hover(self) -> None:
        for trace in self.figure.data:
            trace.on_hover(self._on_hover)

    def _on_hover(self, trace: Any, points: Any, _state: Any) -> None:
        if points.point_inds:
            self.show_doc(int(trace.customdata[points.point_inds[0]]))


def _map_traces(webgl: bool) -> list[Any]:
    """The map's two layers: every doc (grey) and the picked docs, coloured by how many docs each stands for
    (its k-center cell, or the docs it stands for in a difficulty subset: named the same way in both modes)."""
    import plotly.graph_objects as go

    kind = go.Scattergl if webgl else go.Scatter
    return [
        kind(x=[], y=[], mode="markers", name="all docs", hovertext=[],
             marker={"color": "#c7c7c7", "size": 6}, hovertemplate="%{hovertext}<extra>doc</extra>"),
        kind(x=[], y=[], mode="markers", name="picked (colour: docs it stands for)", hovertext=[],
             marker={"color": [], "colorscale": "Viridis", "size": 11, "showscale": True,
                     "line": {"color": "#222", "width": 1}, "colorbar": {"title": {"text": "docs it stands for"}}},
             hovertemplate="%{hovertext}<extra>picked</extra>"),
    ]


def _empty_map() -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(_map_traces(webgl=False))
    fig.update_layout(template="plotly_white", height=460, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      xaxis_title="PC 1", yaxis_title="PC 2", legend={"orientation": "h", "y": -0.12},
                      title={"text": "embed a task to see its docs"})
    return fig


def _hover_html(doc_id: int, prompt: str) -> str:
    """A doc's hover text: its id, then its prompt wrapped at 60 characters and HTML-escaped."""
    lines = [esc(line) for para in prompt.splitlines() for line in (textwrap.wrap(para, 60) or [""])]
    return f"<b>doc {doc_id}</b><br>" + "<br>".join(lines)
