"""Capture with the real headless Chromium, against pages this test serves from 127.0.0.1.

The site: two good pages (one with an ad banner to remove), a page slower than the time-out, a 404, a 500,
a page that fails once then works, and a port nobody listens on. Expected values come from the pages' own
geometry (heights and colours written in their CSS), from hashing the saved files with hashlib, and from
the server's own count of requests.
"""

from __future__ import annotations

import os
import asyncio
import datetime as dt
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lmms_nb.live import CaptureResult, capture_pages, load_capture

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (CI must run these: scripts/test.sh installs it)")]

AD_HEIGHT, CONTENT_HEIGHT, FOOTER_HEIGHT = 100, 1900, 400
NEWS = f"""<!doctype html><html><head><title>Daily &amp; News</title><style>
body {{ margin: 0 }} h1 {{ margin: 0 }} .ad {{ height: {AD_HEIGHT}px; background: rgb(255, 0, 0) }}
.content {{ height: {CONTENT_HEIGHT}px; background: rgb(255, 255, 255) }}
.footer {{ height: {FOOTER_HEIGHT}px; background: rgb(0, 0, 255) }}</style></head>
<body><div class="ad">BUY NOW</div><div class="content"><h1>Rain expected on Tuesday</h1></div>
<div class="footer"></div></body></html>"""
FORUM = """<!doctype html><html><head><title>Forum</title><style>body { margin: 0 }
#cookie { position: fixed; top: 0; left: 0; width: 100%; height: 80px; background: rgb(0, 128, 0) }
.post { height: 900px; background: rgb(240, 240, 240) }</style></head>
<body><div id="cookie">We use cookies</div><div class="post">First post</div></body></html>"""

#: Chromium keeps its sandbox unless told otherwise; as root (a CI container) it cannot start one, so these
#: tests opt out, explicitly.
SANDBOX = os.geteuid() != 0


class Site:
    """A tiny website on 127.0.0.1 with good, slow, missing, broken and flaky pages; counts requests per path."""

    def __init__(self, slow_s: float = 4.0):
        self.hits: dict[str, int] = {}
        self.slow_s = slow_s
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802
                with site._lock:
                    n = site.hits.get(self.path, 0)
                    site.hits[self.path] = n + 1
                if self.path == "/slow.html":
                    time.sleep(site.slow_s)
                    return self._send(200, "<html><body>finally</body></html>")
                if self.path == "/news.html":
                    return self._send(200, NEWS)
                if self.path == "/forum.html":
                    return self._send(200, FORUM)
                if self.path == "/boom.html":
                    return self._send(500, "<html><body>server error</body></html>")
                if self.path == "/flaky.html":
                    if n == 0:
                        return self._send(503, "<html><body>try later</body></html>")
                    return self._send(200, "<html><body style='margin:0'><div style='height:300px'>ok now</div></body></html>")
                return self._send(404, "<html><body>not here</body></html>")

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the browser gave up on the slow page
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def captured(site, tmp_path_factory):
    urls = [site.url(p) for p in ("/news.html", "/forum.html", "/slow.html", "/missing.html", "/boom.html",
                                  "/flaky.html")] + [f"http://127.0.0.1:{closed_port()}/gone.html"]
    out = tmp_path_factory.mktemp("capture")
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    result = capture_pages(urls, out, remove_selectors=[".ad", "#cookie"], timeout_s=1.5, retries=1,
                           retry_wait_s=0.05, progress=False, sandbox=SANDBOX)
    finished = dt.datetime.now(dt.timezone.utc)
    return urls, result, started, finished


def test_every_url_is_captured_or_listed_as_a_failure(captured):
    urls, result, _, _ = captured
    shot_urls = [s.url for s in result.screenshots]
    failed_urls = [f.url for f in result.failures]
    assert sorted(shot_urls + failed_urls) == sorted(urls)
    assert [u.rsplit("/", 1)[1] for u in shot_urls] == ["news.html", "forum.html", "flaky.html"]
    assert not result.ok
    table = result.to_polars()
    assert table.height == len(urls) and table["ok"].sum() == 3


def test_failures_say_why_and_retry_only_transient_errors(captured, site):
    _, result, _, _ = captured
    by_name = {f.url.rsplit("/", 1)[1]: f for f in result.failures}
    assert set(by_name) == {"slow.html", "missing.html", "boom.html", "gone.html"}
    assert "timed out after 1.5s" in by_name["slow.html"].error and by_name["slow.html"].attempts == 2
    # a 404 would answer the same again: one attempt; a 500 is retried (retries=1 -> 2 attempts)
    assert by_name["missing.html"].error == "HTTP 404 Not Found" and by_name["missing.html"].attempts == 1
    assert site.hits["/missing.html"] == 1
    assert by_name["boom.html"].error.startswith("HTTP 500") and by_name["boom.html"].attempts == 2
    assert site.hits["/boom.html"] == 2
    assert "ERR_CONNECTION_REFUSED" in by_name["gone.html"].error and by_name["gone.html"].attempts == 2
    flaky = next(s for s in result.screenshots if s.url.endswith("/flaky.html"))
    assert flaky.attempts == 2 and site.hits["/flaky.html"] == 2 and flaky.status == 200


def test_hashes_times_and_files(captured):
    _, result, started, finished = captured
    for shot in result.screenshots:
        png = Path(shot.path).read_bytes()
        assert hashlib.sha256(png).hexdigest() == shot.png_sha256
        html = Path(shot.html_path).read_bytes()
        assert hashlib.sha256(html).hexdigest() == shot.html_sha256
        when = dt.datetime.fromisoformat(shot.captured_at)
        assert when.utcoffset() == dt.timedelta(0) and started <= when <= finished
        with Image.open(shot.path) as im:
            assert im.format == "PNG" and im.size == (shot.width, shot.height)


def test_full_page_shot_without_the_removed_elements(captured):
    _, result, _, _ = captured
    news = next(s for s in result.screenshots if s.url.endswith("/news.html"))
    assert news.title == "Daily & News" and news.removed == {".ad": 1, "#cookie": 0}
    im = news.image()
    # the whole page, below the 800 px viewport, without the 100 px ad: content then the blue footer
    assert im.size == (1280, CONTENT_HEIGHT + FOOTER_HEIGHT)
    assert im.getpixel((5, 5)) == (255, 255, 255)
    assert im.getpixel((5, CONTENT_HEIGHT + FOOTER_HEIGHT - 5)) == (0, 0, 255)
    assert im.getpixel((5, CONTENT_HEIGHT - 5)) == (255, 255, 255)
    html = Path(news.html_path).read_text()
    assert "BUY NOW" not in html and "Rain expected on Tuesday" in html
    forum = next(s for s in result.screenshots if s.url.endswith("/forum.html"))
    assert forum.removed == {".ad": 0, "#cookie": 1}
    assert forum.image().getpixel((5, 5)) == (240, 240, 240)  # the fixed green banner is gone


def test_manifest_reads_back(captured):
    _, result, _, _ = captured
    again = load_capture(result.out_dir)
    assert isinstance(again, CaptureResult)
    assert again.screenshots == result.screenshots
    assert again.failures == result.failures
    assert again.config["remove_selectors"] == [".ad", "#cookie"]
    text = result.manifest.read_text()
    assert str(result.out_dir) not in text  # paths are relative: the folder can move


def test_without_selectors_the_ad_is_there_and_capture_works_inside_an_event_loop(site, tmp_path):
    async def in_a_notebook_cell():  # Jupyter runs cells inside an asyncio loop; playwright's sync API refuses that
        return capture_pages([site.url("/news.html")], tmp_path, progress=False, sandbox=SANDBOX)

    # In a thread of its own, so a loop left running by another test's playwright fixture cannot interfere.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, in_a_notebook_cell()).result()
    assert not result.failures
    im = result.screenshots[0].image()
    assert im.size == (1280, AD_HEIGHT + CONTENT_HEIGHT + FOOTER_HEIGHT)
    assert im.getpixel((5, 5)) == (255, 0, 0)


def test_a_tall_page_is_cut_to_max_height(site, tmp_path):
    result = capture_pages([site.url("/news.html"), site.url("/forum.html")], tmp_path, max_height_px=1000,
                           progress=False, sandbox=SANDBOX)
    news, forum = (s.image() for s in result.screenshots)
    assert news.size == (1280, 1000) and news.getpixel((5, 5)) == (255, 0, 0)
    assert news.getpixel((5, 999)) == (255, 255, 255)  # still the content: the blue footer starts at 2000
    # shorter than the cap: the whole 900 px page
    assert forum.size == (1280, 900)


def test_bad_arguments_fail_before_any_page_is_loaded(site, tmp_path):
    before = dict(site.hits)
    with pytest.raises(ValueError, match=r"'div\[' is not a valid CSS selector"):
        capture_pages([site.url("/news.html")], tmp_path, remove_selectors=["div["], progress=False,
                      sandbox=SANDBOX)
    with pytest.raises(ValueError, match=r"urls\[1\] = 'ftp://example.org/x' is not an http\(s\) or file URL"):
        capture_pages([site.url("/news.html"), "ftp://example.org/x"], tmp_path, progress=False, sandbox=SANDBOX)
    with pytest.raises(RuntimeError, match="/nonexistent/chromium"):
        capture_pages([site.url("/news.html")], tmp_path, executable_path="/nonexistent/chromium", progress=False,
                      sandbox=SANDBOX)
    assert site.hits == before


def test_load_capture_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no capture manifest"):
        load_capture(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "lmms-nb-live-capture", "screenshots": [{"url": "u"}]}')
    with pytest.raises(ValueError, match=r"screenshots\[0\] lacks \['path', 'captured_at', 'png_sha256', 'html_sha256'\]"):
        load_capture(tmp_path)
