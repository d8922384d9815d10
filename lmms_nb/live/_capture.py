"""Capture: full-page screenshots of a list of URLs with headless Chromium (playwright's Python API).

Each URL gets a fresh browser context (no cookies or storage leak from one page to the next), a navigation
bounded by `timeout_s`, optional removal of elements matching CSS selectors (ads, cookie banners) before the
shot, and up to `retries` further attempts when the failure may be transient (a timeout, a refused
connection, HTTP 408/409/429/5xx: `lmms_nb._http_retry`, the OpenAI backend's rule too). A page answering
another 4xx is not retried: it would answer the same again.

What is kept per page: the PNG, the HTML of the page as shot (after removals) and a `Screenshot` record with
the URL, the UTC time, and the sha256 of both files. Every URL ends up either in `result.screenshots` or in
`result.failures` with the reason and the number of attempts: nothing is dropped silently. The record of the
whole capture is written to ``<out_dir>/manifest.json`` (paths relative to it) and read back by
`load_capture`.

The browser is Debian's Chromium (``/usr/bin/chromium``), never a browser downloaded by
``playwright install``; the flags keep it from calling home (no component updates, sync or QUIC). Pages are
arbitrary web content, so Chromium keeps its sandbox unless the caller opts out with ``sandbox=False`` (needed
when running as root, where Chromium cannot start its sandbox: tests in a root container say so).

Example (a page served by a local server; see tests/test_live_capture.py):
    >>> import http.server, tempfile, threading, functools
    >>> site = tempfile.mkdtemp(); _ = open(f"{site}/index.html", "w").write("<h1>Hello</h1>")
    >>> handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site)
    >>> srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    >>> threading.Thread(target=srv.serve_forever, daemon=True).start()
    >>> result = capture_pages([f"http://127.0.0.1:{srv.server_port}/index.html"], tempfile.mkdtemp(),
    ...                        progress=False, sandbox=os.geteuid() != 0)  # root: no sandbox, by choice
    >>> srv.shutdown()
    >>> len(result.screenshots), result.failures, len(result.screenshots[0].png_sha256)
    (1, [], 64)
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar
from urllib.parse import urlsplit

from lmms_nb.live._capture_browser import CHROMIUM_ARGS, DEFAULT_CHROMIUM, CaptureJob
from lmms_nb.live._capture_records import MANIFEST, CaptureFailure, CaptureResult, Screenshot, load_capture, write_manifest

# the records (_capture_records) and the browser flags (_capture_browser) are imported from here by lmms_nb.live
__all__ = [
    "CHROMIUM_ARGS",
    "CaptureFailure",
    "CaptureResult",
    "Screenshot",
    "capture_pages",
    "load_capture",
]

T = TypeVar("T")


def capture_pages(
    urls: Iterable[str],
    out_dir: str | os.PathLike | None = None,
    *,
    remove_selectors: Sequence[str] = (),
    timeout_s: float = 30.0,
    retries: int = 2,
    retry_wait_s: float = 1.0,
    viewport: tuple[int, int] = (1280, 800),
    full_page: bool = True,
    max_height_px: int | None = None,
    wait_until: str = "load",
    settle_ms: int = 0,
    executable_path: str = DEFAULT_CHROMIUM,
    browser_args: Sequence[str] = CHROMIUM_ARGS,
    progress: bool = True,
    sandbox: bool = True,
) -> CaptureResult:
    """Screenshot every URL into `out_dir` (see the module docstring); failures are listed, never raised.

    Args:
        urls: http(s) or file URLs.
        out_dir: where PNGs, HTML and ``manifest.json`` go (default: a new folder under
            ``lmms_nb.config.cache_dir("live", "captures")`` named by the UTC time).
        remove_selectors: CSS selectors; matching elements are removed from the page before the shot.
        timeout_s: the time allowed for one attempt at one page (navigation and screenshot together).
        retries: further attempts after a transient failure (so at most ``retries + 1`` attempts per URL).
        retry_wait_s: the pause before each retry, doubled each time.
        viewport: the browser window (width, height) in CSS pixels; a full-page shot keeps the width.
        max_height_px: cut full-page shots to this height (the top of the page): some front pages scroll for
            tens of thousands of pixels, which models downscale into illegibility anyway.
        wait_until: playwright's navigation milestone: "load", "domcontentloaded", "networkidle" or "commit".
        settle_ms: extra milliseconds to wait after loading (late images, animations).
        executable_path, browser_args: the Chromium to launch and its flags.
        sandbox: False runs Chromium without its sandbox (required as root); only for pages you trust.

    Raises ValueError for a bad argument (a URL that is not http/https/file, a selector the browser cannot
    parse) before any page is captured, and RuntimeError when Chromium cannot be launched.
    """
    url_list = list(urls)
    for i, url in enumerate(url_list):
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https", "file"):
            raise ValueError(f"urls[{i}] = {url!r} is not an http(s) or file URL")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if max_height_px is not None and max_height_px < 1:
        raise ValueError(f"max_height_px must be >= 1, got {max_height_px}")
    if wait_until not in ("load", "domcontentloaded", "networkidle", "commit"):
        raise ValueError(f"wait_until must be load, domcontentloaded, networkidle or commit, got {wait_until!r}")
    if "--no-sandbox" in browser_args:
        raise ValueError("browser_args has --no-sandbox: pass sandbox=False to run Chromium without its sandbox")
    browser_args = [*browser_args, "--no-sandbox"] if not sandbox else list(browser_args)
    selectors = [str(s) for s in remove_selectors]
    if out_dir is None:
        from lmms_nb.config import cache_dir

        out_dir = cache_dir("live", "captures", _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "remove_selectors": selectors, "timeout_s": timeout_s, "retries": retries, "viewport": list(viewport),
        "full_page": full_page, "max_height_px": max_height_px, "wait_until": wait_until, "settle_ms": settle_ms,
        "browser_args": list(browser_args), "sandbox": sandbox,
    }
    job = CaptureJob(url_list, out, selectors, timeout_s, retries, retry_wait_s, viewport, full_page, max_height_px,
                     wait_until, settle_ms, executable_path, list(browser_args), progress, sandbox)
    screenshots, failures = _outside_event_loop(job.run)
    manifest = out / MANIFEST
    write_manifest(manifest, screenshots, failures, config)
    return CaptureResult(screenshots, failures, out, manifest, config)


def _outside_event_loop(fn: Callable[[], T]) -> T:
    """Run `fn` here, or in a worker thread when this thread runs an asyncio loop (a Jupyter cell):
    playwright's sync API refuses to run inside a running loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lmms-nb-capture") as pool:
        return pool.submit(fn).result()
