"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks, with fault injection.

`FakeOpenAIServer` is an `http.server.ThreadingHTTPServer` on a free port, served from a daemon thread. It
answers `POST /v1/chat/completions` (and `GET /v1/models`) deterministically from the prompt, records every
request it receives (arrival time, headers, parsed body, the status it sent) and can inject faults from a
*plan*: a callable `(call) -> Fault | None` deciding, per incoming request, whether to answer with a 429 and
a Retry-After, a 5xx, a slow reply beyond the client's timeout, or anything else.

`server_process(...)` runs one in a separate process (its own GIL: for benchmarks, or clients in several
processes); ``GET <url>/_stats`` then reports the counts and ``POST <url>/_reset`` clears them.

Answers:
- a judge prompt (one containing ``[Ground Truth Response]``, as LiveBench's rubric) gets a JSON rating,
  10 when the assistant response equals the ground truth (case- and space-insensitive) else 0, wrapped in
  a ```json fence with chatter around it, as real judges reply;
- any other prompt gets ``answer_for(prompt, n_images)``: ``"echo:<n_images>:<prompt>"``; pass `answer=` to
  change it (e.g. the option letter a rule would pick).

Example:
    >>> import httpx
    >>> from _servers import FakeOpenAIServer, fail_first_attempts
    >>> with FakeOpenAIServer(plan=fail_first_attempts(1, status=429, retry_after="0")) as srv:
    ...     body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    ...     first = httpx.post(srv.url + "/chat/completions", json=body)
    ...     second = httpx.post(srv.url + "/chat/completions", json=body)
    >>> first.status_code, second.json()["choices"][0]["message"]["content"]
    (429, 'echo:0:hi')
    >>> [c.status for c in srv.calls]
    [429, 200]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = [
    "Call",
    "Fault",
    "FakeOpenAIServer",
    "always_fail_if",
    "answer_for",
    "compose",
    "fail_first_attempts",
    "judge_reply_for",
    "prompt_of",
    "random_faults",
    "server_process",
    "slow_first_attempts",
]


@dataclass
class Fault:
    """What to do instead of (or before) a normal answer."""

    status: int = 200  # a non-200 status answers with an error body
    retry_after: str | None = None  # the Retry-After header value, verbatim ("0.5" or an HTTP date)
    delay_s: float = 0.0  # sleep this long before answering (a slow reply)
    body: str | None = None  # the body sent verbatim (with `status`, 200 included); default: an error object


@dataclass
class Call:
    """One request the server received."""

    index: int  # 0-based arrival order over the server's life
    attempt: int  # 0-based count of earlier requests with the same body (so retries are 1, 2, ...)
    arrived: float  # time.monotonic() at arrival
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it is not JSON
    status: int | None = None  # what the server answered (None while in flight)
    finished: float | None = None

    @property
    def prompt(self) -> str:
        return prompt_of(self.body)

    @property
    def image_urls(self) -> list[str]:
        return [
            part["image_url"]["url"]
            for msg in (self.body or {}).get("messages", [])
            if isinstance(msg.get("content"), list)
            for part in msg["content"]
            if part.get("type") == "image_url"
        ]


Plan = Callable[[Call], "Fault | None"]


def prompt_of(body: Any) -> str:
    """The text of the last user message of a chat-completions body."""
    if not isinstance(body, dict):
        return ""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if p.get("type") == "text")


def answer_for(prompt: str, n_images: int) -> str:
    """The default deterministic answer to a non-judge prompt."""
    return f"echo:{n_images}:{prompt}"


_JUDGE_SECTION = re.compile(r"\[(Question|Assistant Response|Ground Truth Response|System)\]\s*\n")


def judge_reply_for(prompt: str) -> str | None:
    """A LiveBench-style judge reply (JSON in a fence, with chatter) when `prompt` is a judge prompt."""
    if "[Ground Truth Response]" not in prompt:
        return None
    parts = _JUDGE_SECTION.split(prompt)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    same = norm(sections.get("Assistant Response", "")) == norm(sections.get("Ground Truth Response", ""))
    verdict = {"Explanation": "matches the ground truth" if same else "differs", "Rating": "10" if same else "0"}
    return f"Here is my judgement.\n```json\n{json.dumps(verdict, indent=2)}\n```\nThanks."


# ----------------------------------------------------------------------------------------------- plans
def fail_first_attempts(
    n: int, status: int = 429, retry_after: str | None = None, when: Callable[[Call], bool] | None = None
) -> Plan:
    """Each distinct request body fails its first `n` attempts with `status` (and Retry-After)."""

    def plan(call: Call) -> Fault | None:
        if call.attempt < n and (when is None or when(call)):
            return Fault(status=status, retry_after=retry_after)
        return None

    return plan


def slow_first_attempts(n: int, delay_s: float, when: Callable[[Call], bool] | None = None) -> Plan:
    """Each distinct request body is answered only after `delay_s` on its first `n` attempts."""

    def plan(call: Call) -> Fault | None:
        if call.attempt < n and (when is None or when(call)):
            return Fault(delay_s=delay_s)
        return None

    return plan


def always_fail_if(marker: str, status: int = 500) -> Plan:
    """Every request whose prompt contains `marker` fails with `status`, on every attempt."""
    return lambda call: Fault(status=status) if marker in call.prompt else None


def random_faults(
    p_429: float = 0.0,
    p_500: float = 0.0,
    p_slow: float = 0.0,
    slow_s: float = 1.0,
    retry_after: str | None = "0",
    seed: int = 0,
) -> Plan:
    """Faults drawn per (body, attempt) from a hash, so the same run meets the same faults every time."""

    def plan(call: Call) -> Fault | None:
        digest = hashlib.sha256(f"{seed}|{call.attempt}|{json.dumps(call.body, sort_keys=True)}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u < p_429:
            return Fault(status=429, retry_after=retry_after)
        if u < p_429 + p_500:
            return Fault(status=500)
        if u < p_429 + p_500 + p_slow:
            return Fault(delay_s=slow_s)
        return None

    return plan


def compose(*plans: Plan) -> Plan:
    """The first fault any of `plans` returns."""

    def plan(call: Call) -> Fault | None:
        for p in plans:
            fault = p(call)
            if fault is not None:
                return fault
        return None

    return plan


# ---------------------------------------------------------------------------------------------- server
class FakeOpenAIServer:
    """A real HTTP server speaking OpenAI's chat-completions protocol on 127.0.0.1 (see module docstring).

    Args:
        plan: fault injection, `(Call) -> Fault | None`, consulted for every chat-completions request.
        answer: `(prompt, n_images) -> str` for non-judge prompts.
        reply_delay_s: a fixed service time added to every reply (a model's latency, for benchmarks).
        require_key: when set, requests without ``Authorization: Bearer <require_key>`` get a 401.
    """

    def __init__(
        self,
        plan: Plan | None = None,
        answer: Callable[[str, int], str] = answer_for,
        reply_delay_s: float = 0.0,
        require_key: str | None = None,
    ) -> None:
        self.plan = plan
        self.answer = answer
        self.reply_delay_s = reply_delay_s
        self.require_key = require_key
        self.calls: list[Call] = []
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> "FakeOpenAIServer":
        handler = _make_handler(self)
        httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL clients use (``http://127.0.0.1:<port>/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # inspection
    def completions(self) -> list[Call]:
        """The chat-completions calls received so far."""
        with self._lock:
            return [c for c in self.calls if c.path.endswith("/chat/completions")]

    def calls_for(self, marker: str, exact: bool = False) -> list[Call]:
        """The chat-completions calls whose prompt contains (or, `exact`, equals) `marker`, in arrival order."""
        return [c for c in self.completions() if (c.prompt == marker if exact else marker in c.prompt)]

    def stats(self) -> dict[str, Any]:
        """Counts for a client that cannot see `calls` (the server runs in another process)."""
        done = self.completions()
        statuses: dict[str, int] = {}
        for c in done:
            statuses[str(c.status)] = statuses.get(str(c.status), 0) + 1
        return {"completions": len(done), "max_in_flight": self.max_in_flight, "statuses": statuses}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._attempts.clear()
            self.max_in_flight = 0

    # request handling (runs in the server's handler threads)
    def _record(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Call:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = hashlib.sha256(raw).hexdigest()
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            call = Call(len(self.calls), attempt, time.monotonic(), method, path, headers, body)
            self.calls.append(call)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return call

    def _done(self, call: Call, status: int) -> None:
        with self._lock:
            call.status = status
            call.finished = time.monotonic()
            self._in_flight -= 1

    def _respond(self, call: Call) -> tuple[int, dict[str, str], bytes]:
        if self.require_key is not None and call.headers.get("authorization") != f"Bearer {self.require_key}":
            return 401, {}, _error_body("invalid api key", "invalid_request_error")
        if not isinstance(call.body, dict) or not isinstance(call.body.get("messages"), list):
            return 400, {}, _error_body("body must be a JSON object with 'messages'", "invalid_request_error")
        fault = self.plan(call) if self.plan is not None else None
        delay = self.reply_delay_s + (fault.delay_s if fault else 0.0)
        if delay:
            time.sleep(delay)
        if fault is not None and (fault.status != 200 or fault.body is not None):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if fault.body is not None:
                body = fault.body.encode()
            else:
                body = _error_body(f"injected {fault.status}", "server_error")
            return fault.status, headers, body
        prompt = call.prompt
        text = judge_reply_for(prompt)
        if text is None:
            text = self.answer(prompt, len(call.image_urls))
        finish_reason = "stop"
        max_tokens = call.body.get("max_tokens")
        if isinstance(max_tokens, int) and len(text.split()) > max_tokens:  # one word = one token here
            text, finish_reason = " ".join(text.split()[:max_tokens]), "length"
        payload = {
            "id": f"chatcmpl-{call.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(text.split()),
                "total_tokens": len(prompt.split()) + len(text.split()),
            },
        }
        return 200, {}, json.dumps(payload).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # slow handlers must not keep the test process alive
    request_queue_size = 128  # the default backlog of 5 makes 32 concurrent clients wait on SYN retries


def _error_body(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind}}).encode()


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints: clients reuse connections

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as two writes; with Nagle on, the body waits for a delayed ACK (40 ms).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): expected
                self.close_connection = True

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path.rstrip("/").endswith("/_reset"):
                server.reset()
                self._send(200, {}, b"{}")
                return
            call = server._record("POST", self.path, headers, raw)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                status, extra, body = 404, {}, _error_body(f"no route {self.path}", "not_found")
            else:
                try:
                    status, extra, body = server._respond(call)
                except Exception as e:  # a bug in a plan or answer function: surface it as a 500
                    status, extra, body = 500, {}, _error_body(f"fake server error: {e!r}", "server_error")
            server._done(call, status)
            self._send(status, extra, body)

        def do_GET(self) -> None:  # noqa: N802
            headers = {k.lower(): v for k, v in self.headers.items()}
            call = server._record("GET", self.path, headers, b"")
            if self.path.rstrip("/").endswith("/models"):
                status, body = 200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
            elif self.path.rstrip("/").endswith("/_stats"):  # for a server in another process (server_process)
                status, body = 200, json.dumps(server.stats()).encode()
            else:
                status, body = 404, _error_body(f"no route {self.path}", "not_found")
            server._done(call, status)
            self._send(status, {}, body)

    return Handler



# ------------------------------------------------------------------------------------ a server process
@contextlib.contextmanager
def server_process(reply_delay_s: float = 0.0, p_429: float = 0.0, p_500: float = 0.0, p_slow: float = 0.0,
                   slow_s: float = 1.0, seed: int = 0) -> Iterator[str]:
    """A `FakeOpenAIServer` in its own process (its own GIL: for benchmarks and multi-process clients).

    Yields the base URL; ``GET <url>/_stats`` returns the counts, ``POST <url>/_reset`` clears them.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--delay-s", str(reply_delay_s), "--p-429", str(p_429),
           "--p-500", str(p_500), "--p-slow", str(p_slow), "--slow-s", str(slow_s), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("http://"):
            raise RuntimeError(f"fake server process did not start (printed {line!r}, exit code {proc.poll()})")
        yield line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible endpoint; prints its base URL.")
    ap.add_argument("--delay-s", type=float, default=0.0)
    ap.add_argument("--p-429", type=float, default=0.0)
    ap.add_argument("--p-500", type=float, default=0.0)
    ap.add_argument("--p-slow", type=float, default=0.0)
    ap.add_argument("--slow-s", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    faulty = a.p_429 or a.p_500 or a.p_slow
    plan = random_faults(a.p_429, a.p_500, a.p_slow, a.slow_s, seed=a.seed) if faulty else None
    srv = FakeOpenAIServer(plan=plan, reply_delay_s=a.delay_s).start()
    print(srv.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    _main()
