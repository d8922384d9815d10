"""One capture run in headless Chromium (playwright's sync API): `CaptureJob` launches the browser, shoots each
URL in a fresh context with a time budget per attempt, and retries what may be transient (`retryable_status`,
the rule the OpenAI backend retries by, timeouts and browser errors).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lmms_nb._http_retry import retryable_status
from lmms_nb.live._capture_records import CaptureFailure, Screenshot

__all__ = ["CHROMIUM_ARGS", "DEFAULT_CHROMIUM", "CaptureJob"]

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

_REMOVE_JS = "s => { const els = document.querySelectorAll(s); els.forEach(e => e.remove()); return els.length }"
_PAGE_SIZE_JS = "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"


class _PageError(Exception):
    """A failed attempt; `retryable` says whether another attempt could succeed."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class CaptureJob:
    """The settings of one `capture_pages` call; `run()` captures every URL (see `capture_pages`)."""

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
