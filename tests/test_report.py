"""Reports: papermill executes the template with parameters; the HTML renders offline in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.reporting import ReportError, report

from _toy import colour_of, toy_task

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
XSS = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"


@pytest.fixture(scope="module")
def toy_logs(tmp_path_factory) -> Path:
    """Three models on a real on-disk toy task; one answers with markup that must never execute."""
    root = tmp_path_factory.mktemp("report")
    task = toy_task(30, path=root / "ds")
    out = root / "logs"

    def weak(images, prompt):
        i = int(prompt[1:prompt.index(":")])
        return colour_of(images, prompt) if i % 3 == 0 else "blue"

    def hostile(images, prompt):
        i = int(prompt[1:prompt.index(":")])
        return colour_of(images, prompt) if i % 2 else XSS

    for fn, name in [(colour_of, "perfect"), (weak, "weak"), (hostile, "hostile")]:
        lmms_nb.evaluate(FunctionModel(fn, name=name), task, output_dir=out, progress=False)
    return out


def _open_offline(browser, html_path: Path, screenshot: Path):
    """Load the page in the session's headless Chromium with every network request blocked; return what it shows."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def block(route):
        requests.append(route.request.url)
        route.abort()

    page.route("http://**/*", block)
    page.route("https://**/*", block)
    try:
        page.goto(html_path.as_uri())
        page.wait_for_selector(".js-plotly-plot", timeout=30000)
        page.wait_for_timeout(500)
        n_plots = page.locator(".js-plotly-plot").count()
        n_svg = page.locator(".js-plotly-plot .main-svg").count()
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        text = page.inner_text("body")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    finally:
        context.close()
    return n_plots, n_svg, errors, requests, pwned, text


@pytest.mark.browser
def test_report_on_our_logs_renders_offline_and_escapes_model_output(toy_logs, tmp_path, chromium_browser):
    out = report("compare_models", {"logs": str(toy_logs), "title": "Toy review"}, tmp_path / "toy.html")
    html_text = out.read_text()
    assert "Toy review" in html_text
    assert "window.__pwned = 1</script>" not in html_text  # escaped, never raw markup
    assert "&lt;script&gt;" in html_text
    assert 'class="highlight hl-ipython3"' not in html_text  # code cells hidden (test_show_code_... shows it can fail)
    n_plots, n_svg, errors, requests, pwned, text = _open_offline(
        chromium_browser, out, ARTIFACTS / "report_toy.png")
    assert n_plots >= 3 and n_svg >= n_plots  # the bars, then per task its category and per-sample heatmaps
    assert errors == []
    assert requests == [], f"the report fetched from the network: {requests[:3]}"
    assert pwned is None
    assert "<script>window.__pwned" in text  # shown as text
    assert "perfect" in text and "hostile" in text


def test_show_code_keeps_the_code_cells_the_default_hides(toy_logs, tmp_path):
    """What proves the hidden-code check above can fail: the same report with show_code has the input areas."""
    out = report("compare_models", {"logs": str(toy_logs), "title": "Toy review"}, tmp_path / "code.html",
                 show_code=True)
    html_text = out.read_text()
    assert 'class="highlight hl-ipython3"' in html_text and "load_logs" in html_text


def _structure(browser, html_path: Path, screenshot: Path) -> dict:
    """What a reader sees, read from the rendered page: <title>, headings in order, figure titles, tables' widths."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.route("http://**/*", lambda r: r.abort())
    page.route("https://**/*", lambda r: r.abort())
    try:
        page.goto(html_path.as_uri())
        page.wait_for_selector(".js-plotly-plot .gtitle", timeout=30000)
        page.wait_for_timeout(500)
        out = page.evaluate("""() => ({
            title: document.title,
            headings: [...document.querySelectorAll('h1, h2, h3')].map(h => [h.tagName, h.innerText.trim(), h.id]),
            figures: [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(t => t.textContent),
            toc: [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href')),
            pageWidth: document.documentElement.clientWidth,
            tableRights: [...document.querySelectorAll('table.lmms-nb-table')].map(t => t.getBoundingClientRect().right),
            firstText: document.body.innerText.slice(0, 1500),
            summaryText: document.querySelector('.lmms-nb-summary').innerText,
            summaryTop: document.querySelector('.lmms-nb-summary').getBoundingClientRect().top,
            firstTaskTop: document.querySelector('h3').getBoundingClientRect().top,
            firstFigureTop: document.querySelector('.js-plotly-plot').getBoundingClientRect().top,
            pwned: window.__pwned === undefined ? null : window.__pwned,
        })""")
        page.screenshot(path=str(screenshot), full_page=False)
        page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-full.png")), full_page=True)
    finally:
        context.close()
    return out


@pytest.mark.browser
def test_report_is_a_document_with_an_escaped_title(toy_logs, tmp_path, chromium_browser):
    """Title and summary first, a table of contents that links, one section per task with figures titled by
    task and metric (no two alike), tables within the page, p-values never "0.000", the page title is the
    report's title, and a title holding markup shows as text and runs nothing."""
    title = "<script>window.__pwned = 3</script>Review <b>x</b>"
    out = report("compare_models", {"logs": str(toy_logs), "title": title}, tmp_path / "doc.html")
    text = out.read_text()
    assert "<script>window.__pwned = 3" not in text
    seen = _structure(chromium_browser, out, ARTIFACTS / "report_document.png")
    assert seen["pwned"] is None
    assert seen["title"] == title  # <title> shows the title as text
    kinds = [h[0] for h in seen["headings"]]
    assert seen["headings"][0][:2] == ["H1", title] and kinds.count("H1") == 1
    h2 = [h[1] for h in seen["headings"] if h[0] == "H2"]
    assert h2[0] == "Summary" and h2[-1] == "Run metadata", h2
    assert [h[1] for h in seen["headings"] if h[0] == "H3"] == ["Task: toy_colour"]
    ids = {h[2] for h in seen["headings"]}
    assert seen["toc"] and all(href[1:] in ids for href in seen["toc"])  # every contents link has its heading
    # the summary comes first: who is best, and that perfect beats the others
    assert seen["summaryTop"] < seen["firstFigureTop"] < seen["firstTaskTop"]
    assert seen["summaryText"].startswith("Best overall: perfect")
    assert "perfect beats weak on 1 of 1 task" in seen["summaryText"]
    figures = seen["figures"]
    assert len(figures) == len(set(figures)) >= 2, figures
    assert figures[0].startswith("Score per task (exact_match) with 95% CIs (Wilson)")  # the overview, in the summary
    assert all(f.startswith("toy_colour: ") for f in figures[1:]), figures  # per task: named by task and metric
    assert all(right <= seen["pageWidth"] + 1 for right in seen["tableRights"])
    assert "0.000</td>" not in text.replace("1.000</td>", "")  # p-values: scientific notation, not 0.000
    assert "perfect" in text and "Run metadata" in text and "lmms-nb 0." in text


@pytest.mark.browser
def test_report_on_realworld_lmms_eval_logs(realworld, tmp_path, chromium_browser):
    logs = realworld / "lmms_eval" / "shaydamoezzi__lmms-eval" / "output"
    out = report("compare_models", {"logs": [str(logs / "smoke_test"), str(logs / "smoke_test_qwen")],
                                    "title": "InternVL2-2B vs Qwen2-VL-7B"}, tmp_path / "real.html")
    n_plots, _, errors, requests, pwned, text = _open_offline(chromium_browser, out, ARTIFACTS / "report_real.png")
    assert n_plots >= 3 and errors == [] and requests == [] and pwned is None
    assert "InternVL2-2B" in text and "Qwen2-VL-7B" in text


def test_failing_cell_exits_non_zero_and_shows_the_cell(tmp_path):
    with pytest.raises(ReportError, match="report cell .* failed") as info:
        report("compare_models", {"logs": str(tmp_path / "no-such-logs")}, tmp_path / "bad.html")
    assert "load_logs" in info.value.cell
    cli = subprocess.run([sys.executable, "-m", "lmms_nb", "report", "compare_models", "-p",
                          f"logs={tmp_path / 'missing'}", "-o", str(tmp_path / "bad2.html")],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1
    assert "failed" in cli.stderr and "load_logs" in cli.stderr


def test_report_lite_section_on_synthbench_runs(tmp_path):
    """With lite_budget, the report embeds the task's docs offline and shows k-center vs random fidelity."""
    import re

    out = tmp_path / "logs"
    for name, answer in [("says-1", "1"), ("says-2", "2"), ("says-3", "3"), ("says-4", "4")]:
        lmms_nb.evaluate(FunctionModel(lambda images, prompt, a=answer: a, name=name), "synthbench_count",
                         limit=60, output_dir=out, progress=False)
    html_path = report("compare_models", {"logs": str(out), "lite_budget": 0.1}, tmp_path / "lite.html")
    text = html_path.read_text()
    assert "Lite fidelity across 4 models" in text
    assert "kcenter" in text and "random" in text
    # the comparison's figures (overview bars, the task's category and per-sample heatmaps), then the Lite
    # section's two fidelity curves (Spearman, MAE) after its heading
    assert len(re.findall(r'class="plotly-graph-div"', text)) >= 5
    assert len(re.findall(r'class="plotly-graph-div"', text[text.index("Lite fidelity across 4 models"):])) == 2
