"""The slice list in a real JupyterLab driven by headless Chromium: CompareDashboard.show_slices lists the
slices of model "a" against "b", a click on a slice shows exactly its samples, the embedding map is drawn,
and a category holding markup is shown as text. Model "a" fails on one embedding blob by construction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser import notebook_page, save_screenshot, wait_until
from test_widgets_browser import _label

pytestmark = pytest.mark.browser

SETUP = """
import numpy as np, polars as pl
from lmms_nb.lite_selection import TaskEmbeddings
from lmms_nb.widgets import CompareDashboard
N = 600
rng = np.random.default_rng(5)
blob = np.arange(N) % 6 == 0
vectors = (np.where(blob[:, None], 5.0, 0.0) + rng.normal(size=(N, 16))).astype(np.float32)
frames = []
for model, fail in (("a", np.where(blob, 0.9, 0.1)), ("b", np.full(N, 0.1))):
    wrong = rng.random(N) < fail
    frames.append(pl.DataFrame({"model": model, "task": "t", "doc_id": np.arange(N),
                                "input": [f"question {i}" for i in range(N)], "target": "y",
                                "prediction": np.where(wrong, "x", "y"), "acc": (~wrong).astype(float),
                                "category": np.where(blob, '<img src=x onerror="window.__xss = 1">', "plain")}))
df = pl.concat(frames)
dash = CompareDashboard(df, n_resamples=200)
panel = dash.show_slices("a", baseline="b", embeddings=TaskEmbeddings("t", np.arange(N), vectors))
top = panel.slices.significant.row(0, named=True)
print("TOP", top["slice_id"], top["size"])
dash
"""


@pytest.fixture(scope="module")
def page(jupyter_lab: Any, chromium_browser: Any) -> Iterator[Any]:  # noqa: F811 - the imported fixtures
    with notebook_page(jupyter_lab, chromium_browser, "slices.ipynb", [SETUP], ready=".lmms-nb-slice-list",
                       failure_shot="slices-notebook-failure") as pg:
        yield pg


def test_a_slice_click_shows_its_samples_and_the_map_is_drawn(page):
    dash = page.locator(".lmms-nb-compare-dashboard")
    slices = dash.locator(".lmms-nb-slice-list")
    out = page.locator(".jp-OutputArea-output", has_text="TOP").first.inner_text()
    slice_id, size = (int(v) for v in out.split("TOP")[1].split()[:2])
    assert 80 <= size <= 120  # the blob: every 6th of 600 docs
    text = slices.inner_text()
    assert "Where a vs baseline b fails" in text and '<img src=x onerror="window.__xss = 1">' in text
    assert slices.locator("img[src='x']").count() == 0
    # the map: plotly's legend lists the three outcomes and the outlined slice (points are WebGL, the outline SVG)
    slices.locator(".lmms-nb-slice-map").scroll_into_view_if_needed()
    legend = slices.locator(".lmms-nb-slice-map .legend .traces")
    assert wait_until(page, legend.count, 4, timeout_s=60) == 4
    legend_text = slices.locator(".lmms-nb-slice-map .legend").first.text_content()
    assert "loses to baseline" in legend_text and f"slice {slice_id}: category" in legend_text
    assert dash.locator(".lmms-nb-sample-browser").is_hidden()
    slices.locator(".lmms-nb-slice-button", has_text=f"show slice {slice_id}").click()
    inner = dash.locator(".lmms-nb-sample-browser")
    pages = -(-size // 10)
    expected = f"samples 1–10 of {size} · page 1 of {pages}"
    assert wait_until(page, lambda: _label(inner) if inner.is_visible() else "", expected) == expected
    assert page.evaluate("window.__xss") is None
    slices.scroll_into_view_if_needed()
    save_screenshot(page, "slice-list-and-map", locator=slices)
    inner.scroll_into_view_if_needed()
    save_screenshot(page, "slice-samples-after-click")
