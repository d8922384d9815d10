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
    assert n_plots >= 5 and n_svg >= n_plots
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
    assert len(re.findall(r'class="plotly-graph-div"', text)) >= 7
