"""OpenAI-compatible backend throughput against a local server, at concurrency 1, 8 and 32, side by side.

The server (tests/_servers.py, a real HTTP server on 127.0.0.1, in its own process so that it does not share
the client's GIL) answers each chat completion after a fixed service time (`--delay-ms`, default 50 ms: a fast
hosted model), so the ideal speed-up at concurrency c is
min(c, N): the table shows the achieved speed-up over concurrency 1 and its efficiency (speed-up / c).
Each request carries one 64x64 PNG image as a data URL, as the evaluation of a VLM does.

Rows:
- baseline: a plain synchronous `httpx.Client` loop posting the same bodies (what one writes by hand);
- OpenAIChatModel at each concurrency (cache off);
- a rerun served from the response cache (the server must see zero requests);
- the highest concurrency against a server injecting faults (10% 429 with Retry-After: 0, 5% 500): every
  sample must still come back (errors 0), at the cost of the extra attempts shown.

Run:  python benchmarks/bench_openai_throughput.py                  # N=256, 50 ms service time
      python benchmarks/bench_openai_throughput.py --n 64 --delay-ms 20   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake server lives with the tests

from _servers import server_process  # noqa: E402

from lmms_nb.models.base import Request  # noqa: E402
from lmms_nb.models.openai_compat import OpenAIChatModel  # noqa: E402


def make_requests(n: int) -> list[Request]:
    rng = np.random.default_rng(0)
    return [
        Request(doc_id=i, task="bench", images=[Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))],
                prompt=f"Question {i}: what is in the image?", generation_kwargs={"max_new_tokens": 16})
        for i in range(n)
    ]


def _stats(url: str) -> dict:
    return httpx.get(f"{url}/_stats").json()


def time_model(url: str, requests: list[Request], repeat: int, **kw) -> tuple[float, int, int]:
    """Median seconds for the batch, requests the server saw per run, and errors per run."""
    times, seen, errors = [], 0, 0
    for _ in range(repeat):
        httpx.post(f"{url}/_reset")
        model = OpenAIChatModel("bench-vlm", base_url=url, api_key_env=None, backoff_base_s=0.01, **kw)
        t0 = time.perf_counter()
        responses = model.generate(requests)
        times.append(time.perf_counter() - t0)
        seen = _stats(url)["completions"]
        errors = sum(r.error is not None for r in responses)
    return statistics.median(times), seen, errors


def time_sync_loop(url: str, requests: list[Request], repeat: int) -> float:
    # the same bodies the backend sends, built once outside the timed loop
    from lmms_nb.models.openai_compat import image_data_url

    model = OpenAIChatModel("bench-vlm", base_url=url, api_key_env=None, use_cache=False)
    bodies = [
        {"model": "bench-vlm", "messages": model._messages(r, [image_data_url(im) for im in r.images]), "max_tokens": 16}
        for r in requests
    ]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with httpx.Client(timeout=60) as client:
            for body in bodies:
                client.post(f"{url}/chat/completions", json=body).raise_for_status()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="requests per batch")
    ap.add_argument("--delay-ms", type=float, default=50.0, help="server service time per request")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeat", type=int, default=3, help="runs per row (the median is shown)")
    args = ap.parse_args()

    requests = make_requests(args.n)
    delay = args.delay_ms / 1000
    print(f"N={args.n} requests, 1 image each, server service time {args.delay_ms:.0f} ms, median of {args.repeat}")
    print(f"{'configuration':<34}{'seconds':>9}{'req/s':>9}{'speed-up':>10}{'ideal':>7}{'effic.':>8}{'attempts':>10}{'errors':>8}")

    def row(label: str, secs: float, seen: int | str, errors: int | str, base: float | None, ideal: float | None) -> None:
        speedup = base / secs if base else None
        print(
            f"{label:<34}{secs:>9.2f}{args.n / secs:>9.1f}"
            f"{(f'{speedup:.2f}x' if speedup else '-'):>10}{(f'{ideal:.0f}x' if ideal else '-'):>7}"
            f"{(f'{speedup / ideal:.0%}' if speedup and ideal else '-'):>8}{seen!s:>10}{errors!s:>8}"
        )

    results = {}
    first, top = args.concurrency[0], max(args.concurrency)
    with server_process(reply_delay_s=delay) as url:
        sync_s = time_sync_loop(url, requests, args.repeat)
        row("baseline: sync httpx loop", sync_s, args.n, 0, None, None)
        for c in args.concurrency:
            secs, seen, errors = time_model(url, requests, args.repeat, concurrency=c, use_cache=False)
            results[c] = secs
            row(f"OpenAIChatModel concurrency={c}", secs, seen, errors, results[first], min(c, args.n) / min(first, args.n))
        with tempfile.TemporaryDirectory() as cache:
            OpenAIChatModel("bench-vlm", base_url=url, api_key_env=None, cache_dir=cache, concurrency=top).generate(requests)
            secs, seen, errors = time_model(url, requests, args.repeat, concurrency=top, cache_dir=cache)
            row(f"rerun from cache, conc={top}", secs, seen, errors, results[first], None)
    with server_process(reply_delay_s=delay, p_429=0.10, p_500=0.05, seed=1) as url:
        secs, seen, errors = time_model(url, requests, args.repeat, concurrency=top, use_cache=False)
        row(f"  + 10% 429, 5% 500, conc={top}", secs, seen, errors, results[first], min(top, args.n) / min(first, args.n))
    print(f"\nconcurrency {first} vs the sync loop: {sync_s / results[first]:.2f}x "
          "(asyncio, image hashing for the cache key and PNG encoding per request)")
    for c in args.concurrency[1:]:
        print(f"concurrency {c} vs {first}: {results[first] / results[c]:.1f}x (ideal {min(c, args.n) / min(first, args.n):.0f}x)")


if __name__ == "__main__":
    main()
