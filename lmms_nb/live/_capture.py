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
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar
from urllib.parse import urlsplit

from lmms_nb._http_retry import retryable_status

__all__ = [
    "CHROMIUM_ARGS",
    "CaptureFailure",
    "CaptureResult",
    "Screenshot",
    "capture_pages",
    "load_capture",
]

#: Flags for a headless Chromium that stays offline except for the pages it is sent to.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
DEFAULT_CHROMIUM = "/usr/bin/chromium"
MANIFEST = "manifest.json"

T = TypeVar("T")

_REMOVE_JS = "s => { const els = document.querySelectorAll(s); els.forEach(e => e.remove()); return els.length }"
_PAGE_SIZE_JS = "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"


@dataclass
class Screenshot:
    """One captured page: where its PNG and HTML are, when it was taken and their sha256 hashes."""

    url: str  # the URL asked for
    path: str  # the PNG
    captured_at: str  # ISO 8601, UTC, to the second
    png_sha256: str
    html_sha256: str  # of the HTML file as saved (UTF-8), i.e. the page as shot, after removals
    html_path: str | None = None
    final_url: str | None = None  # after redirects
    status: int | None = None  # the HTTP status of the main document
    title: str = ""
    width: int = 0
    height: int = 0
    attempts: int = 1
    removed: dict[str, int] = field(default_factory=dict)  # selector -> elements removed

    def image(self) -> Any:
        """The screenshot as an RGB PIL image."""
        from PIL import Image

        with Image.open(self.path) as im:
            return im.convert("RGB")


@dataclass
class CaptureFailure:
    """A URL that could not be captured, why, and after how many attempts."""

    url: str
    error: str
    attempts: int


@dataclass
class CaptureResult:
    """What `capture_pages` did: the screenshots, the failures, and where the manifest is."""

    screenshots: list[Screenshot]
    failures: list[CaptureFailure]
    out_dir: Path
    manifest: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every URL was captured."""
        return not self.failures

    def to_polars(self) -> Any:
        """One row per URL: url, ok, path, captured_at, hashes, status, attempts, error."""
        import polars as pl

        rows = [
            {"url": s.url, "ok": True, "path": s.path, "captured_at": s.captured_at, "png_sha256": s.png_sha256,
             "html_sha256": s.html_sha256, "status": s.status, "width": s.width, "height": s.height,
             "attempts": s.attempts, "error": None}
            for s in self.screenshots
        ] + [
            {"url": f.url, "ok": False, "path": None, "captured_at": None, "png_sha256": None, "html_sha256": None,
             "status": None, "width": None, "height": None, "attempts": f.attempts, "error": f.error}
            for f in self.failures
        ]
        schema = {"url": pl.Utf8, "ok": pl.Boolean, "path": pl.Utf8, "captured_at": pl.Utf8, "png_sha256": pl.Utf8,
                  "html_sha256": pl.Utf8, "status": pl.Int64, "width": pl.Int64, "height": pl.Int64,
                  "attempts": pl.Int64, "error": pl.Utf8}
        return pl.DataFrame(rows, schema=schema)

    def __repr__(self) -> str:
        return (f"CaptureResult({len(self.screenshots)} screenshot(s), {len(self.failures)} failure(s), "
                f"manifest={str(self.manifest)!r})")


class _PageError(Exception):
    """A failed attempt; `retryable` says whether another attempt could succeed."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


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
    job = _CaptureJob(url_list, out, selectors, timeout_s, retries, retry_wait_s, viewport, full_page, max_height_px,
                      wait_until, settle_ms, executable_path, list(browser_args), progress, sandbox)
    screenshots, failures = _outside_event_loop(job.run)
    manifest = out / MANIFEST
    _write_manifest(manifest, screenshots, failures, config)
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


@dataclass
class _CaptureJob:
    urls: list[str]
    out: Path
    selectors: list[str]
    timeout_s: float
    retries: int
    retry_wait_s: float
    viewport: tuple[int, int]
    full_page: bool
    max_height_px: int | None
    wait_until: str
    settle_ms: int
    executable_path: str
    browser_args: list[str]
    progress: bool
    sandbox: bool = True

    def run(self) -> tuple[list[Screenshot], list[CaptureFailure]]:
        from playwright.sync_api import sync_playwright
        from tqdm.auto import tqdm

        screenshots: list[Screenshot] = []
        failures: list[CaptureFailure] = []
        with sync_playwright() as pw:
            browser = self._launch(pw)
            try:
                self._check_selectors(browser)
                for index, url in enumerate(tqdm(self.urls, desc="capture", unit="page", disable=not self.progress)):
                    if not browser.is_connected():  # a crashed browser must not fail every later page
                        browser = self._launch(pw)
                    outcome = self._capture_with_retries(browser, index, url)
                    (screenshots if isinstance(outcome, Screenshot) else failures).append(outcome)
            finally:
                if browser.is_connected():
                    browser.close()
        return screenshots, failures

    def _launch(self, pw: Any) -> Any:
        if not Path(self.executable_path).exists():
            raise RuntimeError(
                f"Chromium not found at {self.executable_path!r} (executable_path): install Debian's chromium "
                "(apt-get install chromium) or pass the path of another Chromium"
            )
        try:
            return pw.chromium.launch(executable_path=self.executable_path, args=self.browser_args,
                                      chromium_sandbox=self.sandbox)
        except Exception as e:
            hint = ""
            if self.sandbox and hasattr(os, "geteuid") and os.geteuid() == 0:
                hint = (" (as root Chromium cannot start its sandbox: run as another user, or pass sandbox=False "
                        "for pages you trust)")
            raise RuntimeError(f"could not launch Chromium at {self.executable_path!r}{hint}: {e}") from e

    def _check_selectors(self, browser: Any) -> None:
        """Fail before capturing anything when a selector cannot be parsed (a typo would remove nothing)."""
        if not self.selectors:
            return
        page = browser.new_page()
        try:
            for selector in self.selectors:
                ok = page.evaluate(
                    "s => { try { document.querySelectorAll(s); return true } catch (e) { return false } }", selector
                )
                if not ok:
                    raise ValueError(f"remove_selectors: {selector!r} is not a valid CSS selector")
        finally:
            page.close()

    def _capture_with_retries(self, browser: Any, index: int, url: str) -> Screenshot | CaptureFailure:
        errors: list[str] = []
        for attempt in range(1, self.retries + 2):
            try:
                shot = self._capture_once(browser, index, url)
            except _PageError as e:
                errors.append(str(e))
                if not e.retryable or attempt > self.retries:
                    break
                time.sleep(self.retry_wait_s * 2 ** (attempt - 1))
            else:
                shot.attempts = attempt
                return shot
        if len(set(errors)) == 1:
            detail = errors[-1]
        else:
            detail = "; ".join(f"attempt {i + 1}: {e}" for i, e in enumerate(errors))
        return CaptureFailure(url=url, error=detail, attempts=len(errors))

    def _capture_once(self, browser: Any, index: int, url: str) -> Screenshot:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        budget_ms = self.timeout_s * 1000.0
        started = time.monotonic()

        def remaining_ms() -> float:
            left = budget_ms - (time.monotonic() - started) * 1000.0
            if left <= 0:
                raise _PageError(f"timed out after {self.timeout_s:g}s", retryable=True)
            return left

        context = browser.new_context(viewport={"width": self.viewport[0], "height": self.viewport[1]},
                                      device_scale_factor=1)
        try:
            page = context.new_page()
            try:
                response = page.goto(url, timeout=remaining_ms(), wait_until=self.wait_until)
            except PlaywrightTimeout:
                raise _PageError(f"timed out after {self.timeout_s:g}s loading the page", retryable=True) from None
            except PlaywrightError as e:
                raise _PageError(_first_line(e), retryable=True) from None
            status = response.status if response is not None else None
            if status is not None and status >= 400:
                reason = response.status_text if response is not None else ""
                retryable = retryable_status(status)  # the rule the OpenAI backend retries by
                raise _PageError(f"HTTP {status}{' ' + reason if reason else ''}", retryable=retryable)
            try:
                if self.settle_ms:
                    page.wait_for_timeout(min(self.settle_ms, remaining_ms()))
                removed = {s: int(page.evaluate(_REMOVE_JS, s)) for s in self.selectors}
                html = page.content()
                title = page.title()
                clip = None
                if self.full_page and self.max_height_px is not None:
                    size = page.evaluate(_PAGE_SIZE_JS)
                    if size[1] > self.max_height_px:
                        clip = {"x": 0, "y": 0, "width": size[0], "height": self.max_height_px}
                png = page.screenshot(full_page=self.full_page, clip=clip, timeout=remaining_ms(), type="png")
            except PlaywrightTimeout:
                raise _PageError(f"timed out after {self.timeout_s:g}s taking the screenshot", retryable=True) from None
            except PlaywrightError as e:
                raise _PageError(_first_line(e), retryable=True) from None
            final_url = page.url
        finally:
            context.close()
        captured_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        png_sha = hashlib.sha256(png).hexdigest()
        html_bytes = html.encode("utf-8")
        stem = f"{index:04d}-{_slug(url)}-{png_sha[:10]}"
        png_path = self.out / f"{stem}.png"
        html_path = self.out / f"{stem}.html"
        png_path.write_bytes(png)
        html_path.write_bytes(html_bytes)
        width, height = _png_size(png)
        return Screenshot(
            url=url, path=str(png_path), captured_at=captured_at, png_sha256=png_sha,
            html_sha256=hashlib.sha256(html_bytes).hexdigest(), html_path=str(html_path), final_url=final_url,
            status=status, title=title, width=width, height=height, removed=removed,
        )


def _first_line(error: Exception) -> str:
    # playwright appends a multi-line "Call log"; the first line says what happened (net::ERR_..., etc.)
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _slug(url: str, limit: int = 40) -> str:
    parts = urlsplit(url)
    text = re.sub(r"[^A-Za-z0-9]+", "-", f"{parts.hostname or ''}{parts.path}").strip("-")
    return (text[:limit].strip("-") or "page").lower()


def _png_size(png: bytes) -> tuple[int, int]:
    # width and height are the first fields of the IHDR chunk, right after the 8-byte signature
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _write_manifest(path: Path, screenshots: list[Screenshot], failures: list[CaptureFailure],
                    config: dict[str, Any]) -> None:
    base = path.parent

    def rel(p: str | None) -> str | None:
        return None if p is None else os.path.relpath(p, base)

    payload = {
        "format": "lmms-nb-live-capture",
        "version": 1,
        "config": config,
        "screenshots": [
            {**dataclasses.asdict(s), "path": rel(s.path), "html_path": rel(s.html_path)} for s in screenshots
        ],
        "failures": [dataclasses.asdict(f) for f in failures],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


_REQUIRED_SHOT_FIELDS = ("url", "path", "captured_at", "png_sha256", "html_sha256")


def load_capture(out_dir: str | os.PathLike) -> CaptureResult:
    """Read a capture back from its ``manifest.json``; a missing file or field is an error naming it."""
    out = Path(out_dir)
    manifest = out / MANIFEST if out.is_dir() else out
    out = manifest.parent
    try:
        payload = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{manifest}: no capture manifest (run capture_pages into this folder first)") from None
    except ValueError as e:
        raise ValueError(f"{manifest}: not valid JSON ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != "lmms-nb-live-capture":
        raise ValueError(f"{manifest}: not an lmms-nb capture manifest (no format 'lmms-nb-live-capture')")
    known = {f.name for f in dataclasses.fields(Screenshot)}
    screenshots = []
    for i, rec in enumerate(payload.get("screenshots") or []):
        missing = [k for k in _REQUIRED_SHOT_FIELDS if not isinstance(rec, dict) or rec.get(k) in (None, "")]
        if missing:
            raise ValueError(f"{manifest}: screenshots[{i}] lacks {missing}")
        rec = {k: v for k, v in rec.items() if k in known}
        rec["path"] = str(out / rec["path"])
        if rec.get("html_path"):
            rec["html_path"] = str(out / rec["html_path"])
        screenshots.append(Screenshot(**rec))
    failures = []
    for i, rec in enumerate(payload.get("failures") or []):
        if not isinstance(rec, dict) or "url" not in rec or "error" not in rec:
            raise ValueError(f"{manifest}: failures[{i}] lacks url or error")
        failures.append(CaptureFailure(url=rec["url"], error=rec["error"], attempts=int(rec.get("attempts", 1))))
    return CaptureResult(screenshots, failures, out, manifest, dict(payload.get("config") or {}))
