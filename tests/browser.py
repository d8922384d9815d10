"""Real-browser test helpers: one JupyterLab server per test session and headless Debian Chromium via playwright.

Importable helpers (`start_jupyter_lab`, `launch_chromium`, `write_notebook`, `open_notebook`,
`run_all_cells`, `save_screenshot`) and pytest fixtures built on them:

- `jupyter_lab` (session): `jupyter lab` on a free 127.0.0.1 port, no token, its config, data and runtime dirs
  and its notebook folder (`jupyter_lab.root`) in a temporary folder, and a kernelspec "lmms-nb" that runs
  this interpreter (so notebooks import the checkout's lmms_nb with the same packages).
- `chromium_browser` (session) and `chromium` (a fresh playwright `Page` per test, 1400x1000).

Register them for every test module with ``pytest_plugins = ["browser"]`` in tests/conftest.py (or import
the fixtures into a test module). Tests that use them should be marked ``@pytest.mark.browser``; they skip
when /usr/bin/chromium or playwright is missing (``apt-get install -y chromium``; never ``playwright install``).
Screenshots go to ``test-artifacts/`` at the repository root (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
KERNEL_NAME = "lmms-nb"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterLab:
    """A running JupyterLab: `url` (with a trailing slash), `root` (its notebook folder), the process, its log."""

    url: str
    root: Path
    home: Path
    process: subprocess.Popen
    log_path: Path
    _log: Any = field(default=None, repr=False)

    def notebook_url(self, name: str) -> str:
        # ?reset: a clean workspace, so tabs restored from an earlier test (another notebook and its kernel)
        # never take the focus, the status bar or the "Run All" of this one
        return f"{self.url}lab/tree/{name}?reset"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log is not None:
            self._log.close()


def start_jupyter_lab(home: Path | None = None, *, timeout: float = 120.0, env: dict[str, str] | None = None) -> JupyterLab:
    """Start `jupyter lab` in `home` (a temp folder by default) and wait until it answers on /api/status."""
    home = Path(home or tempfile.mkdtemp(prefix="lmms_nb_lab_"))
    root, config, data, runtime = (home / d for d in ("notebooks", "config", "data", "runtime"))
    for d in (root, config, data, runtime):
        d.mkdir(parents=True, exist_ok=True)
    # A kernelspec for this interpreter: notebooks run with the same packages as the tests.
    kernel_dir = data / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lmms-nb (tests)", "language": "python",
    }))
    # No news or update checks: the page must not reach for the network, and no toast may cover widgets.
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Render every cell (no windowing): outputs far down the page exist in the DOM and get their real size.
    notebook_settings = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True, exist_ok=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = free_port()
    run_env = dict(os.environ)
    run_env.update({
        "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data), "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    })
    run_env.update(env or {})
    log_path = home / "jupyter_lab.log"
    log = open(log_path, "w")  # noqa: SIM115 - the server writes to it until `stop()` closes it
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.token=",
         "--ServerApp.password=", "--ip", "127.0.0.1", "--port", str(port), "--notebook-dir", str(root),
         "--ServerApp.port_retries=0", "--LabApp.news_url=", "--ServerApp.open_browser=False"],
        cwd=root, env=run_env, stdout=log, stderr=subprocess.STDOUT,
    )
    lab = JupyterLab(url=f"http://127.0.0.1:{port}/", root=root, home=home, process=process, log_path=log_path, _log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{lab.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}api/status", timeout=2) as response:
                if response.status == 200:
                    return lab
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    lab.stop()
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{lab.log()[-3000:]}")


def write_notebook(path: Path, cells: Sequence[str], *, kernel: str = KERNEL_NAME) -> Path:
    """Write a notebook of code cells that runs on `kernel`."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path.write_text(nbformat.writes(nb))
    return path


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, driven by playwright (never a downloaded browser build)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def open_notebook(page: Any, lab: JupyterLab, name: str, *, timeout_ms: int = 90_000) -> None:
    """Open notebook `name` (relative to `lab.root`) and wait until its kernel is connected and idle."""
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        accept_kernel_dialog(page)
        # the status bar names the kernel and its state once the session is connected ("lmms-nb (tests) | Idle")
        status = page.locator(".jp-StatusBar-Widget", has_text="| Idle")
        if status.count() and "Idle" in status.first.inner_text():
            wait_kernel_idle(page, timeout_ms=timeout_ms)
            return
        page.wait_for_timeout(250)
    raise TimeoutError(f"the kernel of {name} did not become idle within {timeout_ms / 1000:.0f} s")


def accept_kernel_dialog(page: Any) -> bool:
    """Press "Select" in JupyterLab's "Select Kernel" dialog when it is open (it keeps the notebook's kernel)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.locator("button", has_text="Select").last.click()
        return True
    return False


def wait_kernel_idle(page: Any, *, timeout_ms: int = 90_000) -> None:
    """Wait until the notebook's execution indicator says the kernel is idle."""
    page.wait_for_function(
        """() => {
            const ind = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
            return ind && ind.getAttribute('data-status') === 'idle';
        }""",
        timeout=timeout_ms,
    )


def run_all_cells(page: Any, *, timeout_ms: int = 180_000) -> None:
    """Run > Run All Cells, then wait until every cell has an execution count and the kernel is idle."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        accept_kernel_dialog(page)
        done = page.evaluate(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }"""
        )
        if done:
            wait_kernel_idle(page, timeout_ms=timeout_ms)
            return
        page.wait_for_timeout(500)
    raise TimeoutError(f"the notebook's cells did not all run within {timeout_ms / 1000:.0f} s")


def notebook_errors(page: Any) -> list[str]:
    """Text of every error output in the open notebook (a traceback in a cell should fail the test)."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def wait_until(page: Any, read: Any, expected: Any, timeout_s: float = 30.0) -> Any:
    """Poll `read()` until it returns `expected` or time runs out; return the last value read (widget updates reach
    the DOM asynchronously, so a test asserts on what this returns)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != expected and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        value = read()
    return value


def save_screenshot(page: Any, name: str, *, locator: Any = None) -> Path:
    """Save a PNG under test-artifacts/ (the whole page, or one element)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (locator or page).screenshot(path=str(path), **({} if locator is not None else {"full_page": True}))
    return path


# ---- fixtures ---------------------------------------------------------------------------------------------
_shared: dict[str, Any] = {}


def _require_browser() -> None:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install -y chromium; scripts/test.sh does it)"
        if os.environ.get("CI"):  # CI must run the browser tests, never skip them
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """One JupyterLab for the whole session (shared even if several modules import this fixture)."""
    if "lab" not in _shared:
        cache = os.environ.get("LMMS_NB_CACHE") or str(tmp_path_factory.mktemp("lab_cache"))
        _shared["lab"] = start_jupyter_lab(tmp_path_factory.mktemp("jupyter_lab"), env={"LMMS_NB_CACHE": cache})
        _shared["lab_users"] = 0
    _shared["lab_users"] += 1
    try:
        yield _shared["lab"]
    finally:
        _shared["lab_users"] -= 1
        if _shared["lab_users"] == 0:
            _shared.pop("lab").stop()


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """Headless Chromium for the session."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    if "browser" not in _shared:
        _shared["playwright"] = sync_playwright().start()
        _shared["browser"] = launch_chromium(_shared["playwright"])
        _shared["browser_users"] = 0
    _shared["browser_users"] += 1
    try:
        yield _shared["browser"]
    finally:
        _shared["browser_users"] -= 1
        if _shared["browser_users"] == 0:
            _shared.pop("browser").close()
            _shared.pop("playwright").stop()


@pytest.fixture
def chromium(chromium_browser: Any) -> Iterator[Any]:
    """A fresh page (its own context) in the session's Chromium; JS dialogs are recorded in `page.dialogs`."""
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.dialogs = []  # an alert() from injected markup would land here

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        context.close()


def copy_into_lab(lab: JupyterLab, source: Path, name: str | None = None) -> Path:
    """Copy a notebook (or any file) into the lab's notebook folder."""
    target = lab.root / (name or source.name)
    shutil.copy(source, target)
    return target


@contextlib.contextmanager
def notebook_page(lab: JupyterLab, browser: Any, name: str, cells: list[str], *, ready: str,
                  failure_shot: str) -> Iterator[Any]:
    """Write notebook `name`, open it in a fresh browser context, run all cells, wait for `ready` (a CSS
    selector) and check no cell printed an error; on failure save a screenshot named `failure_shot`.
    JS dialogs (an alert() from injected markup) are recorded in `page.dialogs`."""
    write_notebook(lab.root / name, cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    try:
        open_notebook(pg, lab, name)
        run_all_cells(pg)
        pg.wait_for_selector(ready, timeout=60_000)
        assert notebook_errors(pg) == []
        yield pg
    except Exception:
        save_screenshot(pg, failure_shot)
        raise
    finally:
        context.close()
