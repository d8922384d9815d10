"""The widgets in a real JupyterLab driven by headless Chromium: filter, page, click a bar, run, and XSS.

One notebook is written into the session's JupyterLab and run once (module fixture); each test then works
on its own widget in that page and asserts the DOM. Expected values are set by construction of the data:
model "good" is right on every sample, "bad" only on even doc ids. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import (  # the jupyter_lab / chromium fixtures come from conftest's pytest_plugins
    notebook_page,
    save_screenshot,
    wait_until,
)

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parent

SETUP = f"""
import sys, datasets, polars as pl
from PIL import Image
sys.path.insert(0, {str(TESTS)!r})
from lmms_nb.widgets import SampleBrowser, CompareDashboard, EvalLauncher
from lmms_nb.models.baselines import FunctionModel
from _toy import toy_task, colour_of

colours = ["red", "green", "blue", "yellow"]
datasets.Dataset.from_dict({{"image": [Image.new("RGB", (24, 24), colours[i % 4]) for i in range(12)]}},
                           features=datasets.Features({{"image": datasets.Image()}})).save_to_disk("imgs")
from lmms_nb.images import allow_image_roots
allow_image_roots("imgs")  # a dataset saved here, not one evaluate ran on: allow its folder
XSS = {{1: "<script>window.__xss = 1; alert(1)</script>", 3: '<img src=x onerror="window.__xss = 2; alert(2)">'}}
rows = []
for task, n in (("shapes", 12), ("colours", 8)):
    for d in range(n):
        for model in ("good", "bad"):
            right = model == "good" or d % 2 == 0
            pred = "ok" if right else XSS.get(d, f"wrong {{d}}")
            rows.append(dict(model=model, task=task, doc_id=d, input=f"<b>question</b> {{d}} of {{task}}",
                             target="ok", prediction=pred, exact_match=float(right),
                             category="warm" if d % 4 < 2 else "cool", image_ref=f"dataset:imgs#{{d}}"))
df = pl.DataFrame(rows)
"""
BROWSER = "browser = SampleBrowser(df, page_size=4)\nbrowser"
DASHBOARD = "dash = CompareDashboard(df, n_resamples=200)\ndash"
LAUNCHER = """launcher = EvalLauncher(models=[FunctionModel(colour_of, name="perfect")], tasks=[toy_task(12)],
                        output_dir="outputs", batch_size=4)
launcher"""


@pytest.fixture(scope="module")
def page(jupyter_lab: Any, chromium_browser: Any) -> Iterator[Any]:  # noqa: F811 - the imported fixtures
    """The widgets notebook, opened and run once in JupyterLab."""
    with notebook_page(jupyter_lab, chromium_browser, "widgets.ipynb", [SETUP, BROWSER, DASHBOARD, LAUNCHER],
                       ready=".lmms-nb-sample-browser .lmms-nb-card", failure_shot="widgets-notebook-failure") as pg:
        yield pg


def _doc_ids(browser: Any) -> list[int]:
    return [int(x) for x in browser.locator(".lmms-nb-card").evaluate_all("cs => cs.map(c => c.dataset.docId)")]


def _label(browser: Any) -> str:
    return browser.locator(".lmms-nb-page-label").inner_text().strip()


def test_sample_browser_filters_and_turns_pages(page):
    browser = page.locator(".lmms-nb-sample-browser").first
    assert _label(browser) == "samples 1–4 of 20 · page 1 of 5"
    # ipywidgets writes option labels with non-breaking spaces
    selected = "s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text.replace(/\\u00a0/g, ' ') : ''"
    assert browser.locator(".lmms-nb-task select").evaluate(selected) == "all tasks"
    assert browser.locator(".lmms-nb-category select").evaluate(selected) == "all categories"
    assert browser.locator(".lmms-nb-card .lmms-nb-thumb img[src^='data:image/png;base64,']").count() == 4

    browser.locator(".lmms-nb-task select").select_option(label="shapes")
    # models are in sorted order: pattern row 0 is "bad", row 1 is "good"
    browser.locator(".lmms-nb-pattern-1 button", has_text="right").click()
    browser.locator(".lmms-nb-pattern-0 button", has_text="wrong").click()
    assert wait_until(page, lambda: _label(browser), "samples 1–4 of 6 · page 1 of 2") == "samples 1–4 of 6 · page 1 of 2"
    assert wait_until(page, lambda: _doc_ids(browser), [1, 3, 5, 7]) == [1, 3, 5, 7]
    assert browser.locator(".lmms-nb-answer[data-model='bad']").evaluate_all("a => a.map(x => x.dataset.state)") == ["wrong"] * 4
    assert browser.locator(".lmms-nb-answer[data-model='good']").evaluate_all("a => a.map(x => x.dataset.state)") == ["right"] * 4
    save_screenshot(page, "sample-browser-filtered", locator=browser)

    browser.locator("button.lmms-nb-next").click()
    assert wait_until(page, lambda: _label(browser), "samples 5–6 of 6 · page 2 of 2") == "samples 5–6 of 6 · page 2 of 2"
    assert wait_until(page, lambda: _doc_ids(browser), [9, 11]) == [9, 11]
    assert browser.locator("button.lmms-nb-next").is_disabled()

    search = browser.locator(".lmms-nb-search input")
    search.fill("WRONG 9")
    search.press("Enter")
    assert wait_until(page, lambda: _doc_ids(browser), [9]) == [9]
    assert _label(browser) == "samples 1–1 of 1 · page 1 of 1"


def test_untrusted_text_is_shown_as_text_and_runs_nothing(page):
    browser = page.locator(".lmms-nb-sample-browser").first
    search = browser.locator(".lmms-nb-search input")
    search.fill("")
    search.press("Enter")
    browser.locator(".lmms-nb-task select").select_option(label="shapes")
    browser.locator(".lmms-nb-pattern-0 button", has_text="wrong").click()
    wait_until(page, lambda: _doc_ids(browser), [1, 3, 5, 7])
    preds = browser.locator(".lmms-nb-answer[data-model='bad'] .lmms-nb-pred").all_inner_texts()
    assert preds[:2] == ["<script>window.__xss = 1; alert(1)</script>", '<img src=x onerror="window.__xss = 2; alert(2)">']
    assert browser.locator(".lmms-nb-question").first.inner_text().startswith("Q <b>question</b> 1")
    assert browser.locator(".lmms-nb-samples img[src='x'], .lmms-nb-samples script").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    save_screenshot(page, "sample-browser-untrusted-text", locator=browser)


def test_dashboard_bar_click_opens_the_browser_on_those_samples(page):
    dash = page.locator(".lmms-nb-compare-dashboard")
    dash.locator(".lmms-nb-figure-bar").scroll_into_view_if_needed()
    dash.locator(".lmms-nb-figure-bar .barlayer .trace").nth(0).wait_for(timeout=60_000)
    dash.locator(".lmms-nb-scores summary").click()  # the long scores table is collapsed under the summary
    scores = dash.locator(".lmms-nb-scores").inner_text()
    assert re.search(r"bad\s+colours\s+exact_match\s+8\s+0\.500", scores), scores
    assert dash.locator(".lmms-nb-sample-browser").is_hidden()
    # trace 0 is "bad" (models sorted); its first bar is task "colours" (tasks sorted); plotly turns a click on
    # the plot area over the bar into plotly_click, which the FigureWidget sends to the kernel
    bar = dash.locator(".lmms-nb-figure-bar .barlayer .trace").nth(0).locator(".point path").first
    bar.scroll_into_view_if_needed()
    save_screenshot(page, "compare-dashboard-bars", locator=dash.locator(".lmms-nb-figure-bar"))
    box = bar.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75)
    title = dash.locator(".lmms-nb-browser-title")
    page.wait_for_function("el => el.innerText.includes('Samples behind')", arg=title.element_handle(), timeout=30_000)
    assert title.inner_text().strip().startswith("Samples behind model bad · task colours")
    inner = dash.locator(".lmms-nb-sample-browser")
    assert inner.is_visible()
    # "bad wrong" is preselected: bad is wrong on the 4 odd docs of colours' 8
    assert wait_until(page, lambda: _label(inner), "samples 1–4 of 4 · page 1 of 1") == "samples 1–4 of 4 · page 1 of 1"
    assert set(inner.locator(".lmms-nb-card").evaluate_all("cs => cs.map(c => c.dataset.task)")) == {"colours"}
    inner.scroll_into_view_if_needed()
    save_screenshot(page, "compare-dashboard-samples-after-bar-click")

    heat = dash.locator(".lmms-nb-figure-category .nsewdrag").first
    heat.scroll_into_view_if_needed()
    box = heat.bounding_box()  # 2 models (rows: "bad" at the bottom, "good" on top) x 4 columns (task / group)
    page.mouse.move(box["x"] + box["width"] * 0.125, box["y"] + box["height"] * 0.75)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] * 0.125, box["y"] + box["height"] * 0.75)
    page.wait_for_function("el => el.innerText.includes('group')", arg=title.element_handle(), timeout=30_000)
    match = re.match(r"Samples behind model (\w+) · task (\w+) · group (\w+)", title.inner_text().strip())
    assert match and match.group(1) == "bad", title.inner_text()
    cards = inner.locator(".lmms-nb-card")
    assert set(cards.evaluate_all("cs => cs.map(c => c.dataset.task)")) == {match.group(2)}
    assert inner.locator(".lmms-nb-category select").evaluate("s => s.options[s.selectedIndex].text") == match.group(3)
    assert "bad" in inner.locator(".lmms-nb-answer").evaluate_all("a => a.map(x => x.dataset.model)")


def test_launcher_runs_with_a_progress_bar(page):
    launcher = page.locator(".lmms-nb-eval-launcher")
    launcher.scroll_into_view_if_needed()
    launcher.locator(".lmms-nb-tasks select").select_option(label="toy_colour")
    launcher.locator(".lmms-nb-batch-size input").fill("4")
    launcher.locator(".lmms-nb-batch-size input").press("Enter")
    launcher.locator("button.lmms-nb-run").click()
    status = launcher.locator(".lmms-nb-status")
    page.wait_for_function("el => el.innerText.includes('complete')", arg=status.element_handle(), timeout=60_000)
    assert launcher.locator(".lmms-nb-progress").count() == 1
    assert launcher.locator(".lmms-nb-partial-scores").inner_text().strip() == "12 samples · exact_match 1.000"
    assert "perfect: complete — 12 rows, 0 errors" in status.inner_text()
    assert launcher.locator("button.lmms-nb-run").is_enabled()
    save_screenshot(page, "eval-launcher-finished", locator=launcher)


