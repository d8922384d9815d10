"""The live review widget in a real JupyterLab, driven by headless Chromium with the real keyboard.

What only a browser can show: letters typed into the key box reach the widget and *not* JupyterLab's
command-mode shortcuts (``a`` would insert a cell, ``r`` would make it raw), the screenshot is displayed,
Edit puts the cursor in the question, untrusted text runs nothing, and Save writes the dataset on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from browser import (  # the jupyter_lab / chromium fixtures come from conftest's pytest_plugins
    notebook_page,
    save_screenshot,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

SETUP = """
import dataclasses
from PIL import Image
from lmms_nb.live import Candidate
from lmms_nb.widgets._live_review import LiveReviewWidget

XSS = '<img src=x onerror="window.__xss = 1; alert(1)">'
colours = [(250, 0, 0), (0, 200, 0), (0, 0, 250)]
cands = []
for i, colour in enumerate(colours):
    Image.new("RGB", (300, 500), colour).save(f"shot{i}.png")
    cands.append(Candidate(id=f"c{i}", subtask="Basic Understanding", question=f"Question {i}? {XSS}",
                           answer=f"Answer {i}", criteria="10 if right", image_path=f"shot{i}.png",
                           url=f"http://127.0.0.1/{XSS}", captured_at="2026-11-05T10:00:00+00:00",
                           png_sha256="0" * 64, html_sha256="", drafted_by="drafter",
                           draft_template="livebench-draft@1", review_notes=f"notes {XSS}"))
review = LiveReviewWidget(cands, save_path="live_saved")
review
"""


@pytest.fixture(scope="module")
def page(jupyter_lab: Any, chromium_browser: Any) -> Iterator[Any]:
    with notebook_page(jupyter_lab, chromium_browser, "live_review.ipynb", [SETUP],
                       ready=".lmms-nb-live-review .lmms-nb-live-keys input", failure_shot="live-review-failure") as pg:
        yield pg


def test_review_with_the_keyboard_in_jupyterlab(page, jupyter_lab):
    widget = page.locator(".lmms-nb-live-review")
    counts = widget.locator(".lmms-nb-live-counts")
    n_cells = page.locator(".jp-NotebookPanel .jp-Cell").count()
    # the screenshot is shown beside the candidate
    img = widget.locator(".lmms-nb-live-screenshot")
    page.wait_for_function("el => el.naturalWidth === 300 && el.naturalHeight === 500", arg=img.element_handle(),
                           timeout=30_000)
    assert counts.inner_text() == "0 / 3 decided · 0 accepted · 0 edited · 0 rejected"

    keys = widget.locator(".lmms-nb-live-keys input")
    keys.click()
    page.keyboard.type("a")
    assert wait_until(page, counts.inner_text, "1 / 3 decided · 1 accepted · 0 edited · 0 rejected") == \
        "1 / 3 decided · 1 accepted · 0 edited · 0 rejected"
    question = widget.locator(".lmms-nb-live-question textarea")
    assert wait_until(page, question.input_value, 'Question 1? <img src=x onerror="window.__xss = 1; alert(1)">') \
        .startswith("Question 1?")

    page.keyboard.type("e")  # Edit: the fields unlock and the cursor goes to the question
    page.wait_for_function("el => !el.disabled && document.activeElement === el", arg=question.element_handle(),
                           timeout=30_000)
    question.fill("Which colour fills the page?")
    keys.click()
    page.keyboard.type("a")
    assert wait_until(page, counts.inner_text, "2 / 3 decided · 1 accepted · 1 edited · 0 rejected") == \
        "2 / 3 decided · 1 accepted · 1 edited · 0 rejected"
    page.keyboard.type("r")
    assert wait_until(page, counts.inner_text, "3 / 3 decided · 1 accepted · 1 edited · 1 rejected") == \
        "3 / 3 decided · 1 accepted · 1 edited · 1 rejected"
    # the letters went to the widget, not to JupyterLab's shortcuts (no cell inserted, none turned raw)
    assert page.locator(".jp-NotebookPanel .jp-Cell").count() == n_cells
    assert page.locator(".jp-NotebookPanel .jp-RawCell").count() == 0

    # untrusted text is shown as text and runs nothing
    meta = widget.locator(".lmms-nb-live-meta")
    assert "notes <img src=x" in meta.inner_text()
    assert widget.locator(".lmms-nb-live-meta img, .lmms-nb-live-status img").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None and page.dialogs == []

    widget.locator("button.lmms-nb-live-save").click()
    status = widget.locator(".lmms-nb-live-status")
    page.wait_for_function("el => el.innerText.includes('saved')", arg=status.element_handle(), timeout=60_000)
    assert "saved 2 question(s), month 2026-11" in status.inner_text()
    save_screenshot(page, "live-review-widget", locator=widget)

    from lmms_nb.live import load_live_dataset

    ds = load_live_dataset(Path(jupyter_lab.root) / "live_saved")
    assert ds["id"] == ["c0", "c1"] and ds["question"][1] == "Which colour fills the page?"
    assert ds["review_status"] == ["accepted", "edited"]
