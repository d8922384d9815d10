"""The slice list in the widgets: SampleBrowser.show_slices, CompareDashboard.show_slices and the embedding map.
A click on a slice must show exactly that slice's samples; labels from data are escaped."""

from __future__ import annotations

import numpy as np
import polars as pl

from lmms_nb.analysis import find_slices
from lmms_nb.lite_selection import TaskEmbeddings
from lmms_nb.widgets import CompareDashboard, SampleBrowser, SliceList

N = 1200


def _two_models() -> tuple[pl.DataFrame, TaskEmbeddings]:
    """Model a fails on the docs of one embedding blob (group "<i>blob</i>"), model b nowhere more than 10%."""
    rng = np.random.default_rng(5)
    blob = np.arange(N) % 6 == 0
    vectors = np.where(blob[:, None], 5.0, 0.0) + rng.normal(size=(N, 16))
    rows = []
    for model, fail in (("a", np.where(blob, 0.8, 0.1)), ("b", np.full(N, 0.1))):
        wrong = rng.random(N) < fail
        rows.append(pl.DataFrame({"model": model, "task": "t", "doc_id": np.arange(N),
                                  "input": [f"question {i}" for i in range(N)], "prediction": np.where(wrong, "x", "y"),
                                  "category": np.where(blob, "<i>blob</i>", "plain"), "acc": (~wrong).astype(float)}))
    return pl.concat(rows), TaskEmbeddings("t", np.arange(N), vectors.astype(np.float32))


def test_a_click_in_the_dashboard_shows_the_slice_samples():
    df, emb = _two_models()
    dash = CompareDashboard(df, n_resamples=200)
    panel = dash.show_slices("a", baseline="b", embeddings=emb)
    assert isinstance(panel, SliceList) and panel in dash.children
    assert dash.children.index(panel) == dash.children.index(dash.figures_box) + 1  # under the figures
    top = panel.slices.significant.row(0, named=True)
    assert "&lt;i&gt;blob&lt;/i&gt;" in panel.rows_html[0].value and "<i>blob" not in panel.rows_html[0].value
    panel.slice_buttons[top["slice_id"]].click()
    assert panel.selected == top["slice_id"] and dash.browser.layout.display == ""
    assert dash.browser_box in dash.figures_box.children and "Samples of slice" in dash.browser_title.value
    members = set(panel.slices.members.filter(pl.col("slice_id") == top["slice_id"])["doc_id"].to_list())
    assert dash.browser.n_matches == len(members) == top["size"]
    assert set(dash.browser.page_rows["doc_id"].to_list()) <= members
    # the map: samples coloured by outcome, the slice outlined; an outline click selects its slice
    names = [t.name for t in panel.map.data]
    assert names[:3] == ["wins over baseline", "same as baseline", "loses to baseline"]
    outline = panel.map.data[3]
    assert outline.mode == "lines" and "&lt;i&gt;" in outline.name
    panel.select(int(outline.customdata[0]))
    assert panel.selected == int(outline.customdata[0])


def test_the_browser_gets_a_slice_list_from_a_result():
    df, emb = _two_models()
    browser = SampleBrowser(df)
    found = find_slices(df, "a", embeddings=emb)
    panel = browser.show_slices(found, show_map=False)
    assert browser.children[0] is panel and panel.map is None
    assert browser.show_slices(found, show_map=False) is not panel and \
        sum(isinstance(c, SliceList) for c in browser.children) == 1
    sid = found.significant["slice_id"][0]
    browser.children[0].slice_buttons[sid].click()
    assert browser.n_matches == found.significant["size"][0]


def test_nothing_to_show_says_so():
    rng = np.random.default_rng(0)
    df = pl.DataFrame({"model": "m", "task": "t", "doc_id": np.arange(600), "acc": (rng.random(600) > 0.3).astype(float),
                       "category": np.where(np.arange(600) % 2 == 0, "p", "q")})
    panel = SliceList(find_slices(df, "m"), data=df)
    assert panel.slice_buttons == {} and "No significant slice" in panel.children[1].children[0].value
