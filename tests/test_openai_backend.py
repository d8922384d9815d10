"""OpenAIChatModel against a real HTTP server on 127.0.0.1 that injects 429s, 500s and slow replies."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import json
import logging
import re
import secrets
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _servers import Call, FakeOpenAIServer, Fault, always_fail_if, answer_for, fail_first_attempts
from lmms_nb.models.base import Request
from lmms_nb.models.openai_compat import OpenAIChatModel, ResponseCache, parse_retry_after

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "lmms_nb_cache"))


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def _req(i: int, prompt: str | None = None, images=(), **gen) -> Request:
    return Request(doc_id=i, task="t", images=list(images), prompt=prompt or f"q{i}", generation_kwargs=gen)


def _image(seed: int, size=(24, 16)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _model(srv: FakeOpenAIServer, tmp_path: Path, **kw) -> OpenAIChatModel:
    kw.setdefault("api_key_env", None)
    kw.setdefault("cache_dir", tmp_path / "api_cache")
    kw.setdefault("backoff_base_s", 0.01)
    return OpenAIChatModel("fake-vlm", base_url=srv.url, **kw)


def _index(call: Call) -> int:
    return int(re.search(r"q(\d+)", call.prompt).group(1))


# ------------------------------------------------------------------------------------------- the request
def test_images_arrive_as_png_data_urls_and_kwargs_are_mapped(server, tmp_path):
    images = [_image(1), _image(2, size=(10, 30))]
    model = _model(server, tmp_path, system_prompt="Be brief.")
    req = _req(0, "What is shown?", images, max_new_tokens=7, temperature=0.2, top_p=0.9, until=["\n\n"], num_beams=3)
    [resp] = model.generate([req])

    [call] = server.completions()
    body = call.body
    assert body["model"] == "fake-vlm"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop"]) == (7, 0.2, 0.9, ["\n\n"])
    assert "num_beams" not in body and "max_new_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"][-1] == {"type": "text", "text": "What is shown?"}
    assert len(call.image_urls) == 2
    for url, original in zip(call.image_urls, images):
        assert url.startswith("data:image/png;base64,")
        decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), np.asarray(original))

    expected = answer_for("What is shown?", 2)
    assert resp.error is None and resp.text == expected
    assert resp.output_tokens == len(expected.split())
    assert resp.latency_s is not None and resp.latency_s > 0


def test_text_only_prompt_is_a_plain_string_and_greedy_means_temperature_zero(server, tmp_path):
    _model(server, tmp_path).generate([_req(0, "hello", do_sample=False, until="STOP")])
    body = server.completions()[0].body
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["temperature"] == 0.0 and body["stop"] == ["STOP"]


# ----------------------------------------------------------------------------------------------- the key
def test_key_is_sent_but_never_written_to_any_file_log_or_error(tmp_path, monkeypatch, caplog):
    key = "sk-lmmsnb-" + secrets.token_hex(16)
    monkeypatch.setenv("LMMS_NB_TEST_KEY", key)
    echo_key = lambda c: (  # noqa: E731 - an endpoint that echoes the Authorization header in its error
        Fault(status=400, body=json.dumps({"error": {"message": f"bad request from {c.headers.get('authorization')}"}}))
        if "ECHOKEY" in c.prompt
        else None
    )
    out = tmp_path / "out"
    out.mkdir()
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(plan=echo_key, require_key=key) as srv:
        srv.plan = lambda c: echo_key(c) or fail_first_attempts(1, 500)(c)  # retries get logged too
        model = _model(srv, tmp_path, api_key_env="LMMS_NB_TEST_KEY")
        responses = model.generate([_req(i, images=[_image(i)], temperature=0) for i in range(4)] + [_req(9, "ECHOKEY")])
        calls = srv.completions()

    assert {c.headers.get("authorization") for c in calls} == {f"Bearer {key}"}
    assert [r.text for r in responses[:4]] == [answer_for(f"q{i}", 1) for i in range(4)]
    assert "***" in responses[4].error and key not in responses[4].error
    # everything a run would write: model args, responses, the cache (with its sqlite side files)
    (out / "model_args.json").write_text(json.dumps(model.model_args))
    (out / "responses.jsonl").write_text("\n".join(json.dumps(r.__dict__) for r in responses))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written)
    for path in written:
        assert key.encode() not in path.read_bytes(), path
    assert key not in caplog.text and "retrying" in caplog.text
    assert key not in repr(model) and key not in repr(vars(model))
    assert model.model_args["api_key_env"] == "LMMS_NB_TEST_KEY"


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LMMS_NB_SURELY_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match="LMMS_NB_SURELY_UNSET_KEY"):
        OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1", api_key_env="LMMS_NB_SURELY_UNSET_KEY")


# -------------------------------------------------------------------------------------- faults & retries
def test_no_sample_lost_under_429_500_and_slow_replies(server, tmp_path):
    def plan(call: Call) -> Fault | None:
        i = _index(call)
        if i % 4 == 0 and call.attempt < 2:
            return Fault(status=429, retry_after="0")
        if i % 4 == 1 and call.attempt < 1:
            return Fault(status=503 if i % 8 == 1 else 500)
        if i % 4 == 2 and call.attempt < 1:
            return Fault(delay_s=1.5)  # beyond the client's timeout: it gives up and retries
        return None

    server.plan = plan
    n = 32
    model = _model(server, tmp_path, concurrency=8, max_retries=3, timeout_s=0.5)
    responses = model.generate([_req(i) for i in range(n)])

    assert [r.error for r in responses] == [None] * n
    assert [r.text for r in responses] == [answer_for(f"q{i}", 0) for i in range(n)]
    attempts = {i: len(server.calls_for(f"q{i}", exact=True)) for i in range(n)}
    assert attempts == {i: {0: 3, 1: 2, 2: 2, 3: 1}[i % 4] for i in range(n)}


def test_always_failing_request_gets_exactly_max_retries_plus_one_attempts(server, tmp_path):
    server.plan = lambda c: always_fail_if("BROKEN", 500)(c) or always_fail_if("LIMITED", 429)(c) or (
        Fault(status=401) if "DENIED" in c.prompt else None
    )
    model = _model(server, tmp_path, max_retries=3, backoff_max_s=0.05)
    prompts = ["BROKEN", "ok-1", "LIMITED", "DENIED", "ok-2"]
    responses = model.generate([_req(i, p) for i, p in enumerate(prompts)])

    assert len(server.calls_for("BROKEN")) == 4 and len(server.calls_for("LIMITED")) == 4
    assert len(server.calls_for("DENIED")) == 1  # a 401 is not retried: it would fail the same way
    assert "HTTP 500" in responses[0].error and "after 4 attempts" in responses[0].error
    assert "HTTP 429" in responses[2].error and "HTTP 401" in responses[3].error
    assert responses[0].text is None
    assert [responses[1].text, responses[4].text] == [answer_for("ok-1", 0), answer_for("ok-2", 0)]
    # failures are not cached: a rerun asks again
    _model(server, tmp_path, max_retries=0).generate([_req(0, "BROKEN")])
    assert len(server.calls_for("BROKEN")) == 5


def _gaps(calls: list[Call]) -> list[float]:
    return [b.arrived - a.arrived for a, b in zip(calls, calls[1:])]


def test_retry_after_seconds_is_honoured(server, tmp_path):
    server.plan = fail_first_attempts(1, status=429, retry_after="0.4")
    model = _model(server, tmp_path, backoff_base_s=0.001, backoff_max_s=5)
    responses = model.generate([_req(i) for i in range(3)])
    assert all(r.error is None for r in responses)
    for i in range(3):
        calls = server.calls_for(f"q{i}", exact=True)
        assert [c.status for c in calls] == [429, 200]
        # without Retry-After the backoff would be ~1 ms
        assert _gaps(calls)[0] >= 0.39


def test_retry_after_http_date_is_honoured(server, tmp_path):
    def plan(call: Call) -> Fault | None:
        if call.attempt == 0:
            when = datetime.now(timezone.utc) + timedelta(seconds=2)
            return Fault(status=503, retry_after=email.utils.format_datetime(when, usegmt=True))
        return None

    server.plan = plan
    [resp] = _model(server, tmp_path, backoff_base_s=0.001).generate([_req(0)])
    assert resp.error is None
    # an HTTP date has 1 s resolution: now + 2 s, truncated, is at least 1 s away
    assert _gaps(server.calls_for("q0"))[0] >= 0.95


def test_retry_after_is_capped_by_backoff_max(server, tmp_path):
    server.plan = fail_first_attempts(1, status=429, retry_after="3600")
    [resp] = _model(server, tmp_path, backoff_max_s=0.3).generate([_req(0)])
    assert resp.error is None
    gap = _gaps(server.calls_for("q0"))[0]
    assert 0.29 <= gap < 30  # waited the cap, not the hour the server asked for


def test_exponential_backoff_grows_with_jitter_within_bounds(server, tmp_path):
    server.plan = fail_first_attempts(3, status=500)
    base = 0.1
    [resp] = _model(server, tmp_path, backoff_base_s=base, backoff_max_s=10, max_retries=3).generate([_req(0)])
    assert resp.error is None
    gaps = _gaps(server.calls_for("q0"))
    assert len(gaps) == 3
    for retry, gap in enumerate(gaps):
        cap = base * 2**retry
        assert cap / 2 - 0.01 <= gap <= cap + 1.5, (retry, gap)  # slack for a loaded 2-core machine


def test_parse_retry_after_forms():
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Mon, 01 Jan 2024 12:00:07 GMT"}, now=now) == 7.0
    assert parse_retry_after({"Retry-After": "Mon, 01 Jan 2024 11:00:00 GMT"}, now=now) == 0.0  # in the past
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_concurrency_is_limited(tmp_path):
    with FakeOpenAIServer(reply_delay_s=0.15) as srv:
        responses = _model(srv, tmp_path, concurrency=4, use_cache=False).generate([_req(i) for i in range(16)])
    assert all(r.error is None for r in responses)
    assert srv.max_in_flight == 4


def test_bad_image_and_malformed_reply_fail_only_their_sample(server, tmp_path):
    server.plan = lambda c: Fault(status=200, body="<html>proxy page</html>") if "PROXY" in c.prompt else None
    responses = _model(server, tmp_path).generate(
        [_req(0, images=[b"not an image"]), _req(1), _req(2, "PROXY")]
    )
    assert "could not build the request" in responses[0].error
    assert responses[1].text == answer_for("q1", 0)
    assert "malformed completion" in responses[2].error and "proxy page" in responses[2].error
    assert len(server.calls_for("q0")) == 0 and len(server.calls_for("PROXY")) == 1


# ------------------------------------------------------------------------------------------------- cache
def test_rerun_is_served_from_cache(server, tmp_path):
    requests = [_req(i, images=[_image(i)], max_new_tokens=8, do_sample=False) for i in range(6)]
    first = _model(server, tmp_path).generate(requests)
    assert len(server.completions()) == 6

    again = _model(server, tmp_path).generate(requests)  # a fresh object, as a rerun in a new kernel
    assert len(server.completions()) == 6  # zero new requests
    assert [(r.text, r.output_tokens, r.latency_s) for r in again] == [(r.text, r.output_tokens, r.latency_s) for r in first]
    assert [r.cached for r in first] == [False] * 6 and [r.cached for r in again] == [True] * 6

    # the key covers the image pixels, the parameters, the model and the endpoint
    other_image = [_req(0, images=[_image(99)], max_new_tokens=8, do_sample=False)]
    _model(server, tmp_path).generate(other_image)
    _model(server, tmp_path).generate([_req(0, images=[_image(0)], max_new_tokens=9, do_sample=False)])
    OpenAIChatModel("other-vlm", base_url=server.url, api_key_env=None, cache_dir=tmp_path / "api_cache").generate(requests[:1])
    _model(server, tmp_path, use_cache=False).generate(requests[:1])
    assert len(server.completions()) == 10


def test_default_cache_lives_under_lmms_nb_cache(server, tmp_path):
    model = OpenAIChatModel("fake-vlm", base_url=server.url, api_key_env=None)
    model.generate([_req(0, temperature=0)])
    assert model.cache.path == tmp_path / "lmms_nb_cache" / "openai" / "responses.sqlite"
    assert len(model.cache) == 1


_CRASHING_CLIENT = textwrap.dedent(
    """
    import sys
    from lmms_nb.models.base import Request
    from lmms_nb.models.openai_compat import OpenAIChatModel
    url, cache = sys.argv[1], sys.argv[2]
    model = OpenAIChatModel("fake-vlm", base_url=url, api_key_env=None, cache_dir=cache, timeout_s=600)
    prompts = ["HANG"] + [f"q{i}" for i in range(7)]
    model.generate([Request(doc_id=i, task="t", images=[], prompt=p, generation_kwargs={"temperature": 0})
                    for i, p in enumerate(prompts)])
    """
)


def test_answers_paid_for_before_a_crash_are_kept(server, tmp_path):
    server.plan = lambda c: Fault(delay_s=60) if "HANG" in c.prompt else None
    cache = tmp_path / "api_cache"
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_CLIENT, server.url, str(cache)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (cache / "responses.sqlite").exists() and len(ResponseCache(cache / "responses.sqlite")) == 7:
                break
            assert proc.poll() is None, "the client exited before it was killed"
            time.sleep(0.1)
        proc.kill()  # the crash: the batch never finished
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(server.completions()) == 8

    server.plan = None
    prompts = ["HANG"] + [f"q{i}" for i in range(7)]
    responses = _model(server, tmp_path).generate([_req(i, p, temperature=0) for i, p in enumerate(prompts)])
    assert [r.text for r in responses] == [answer_for(p, 0) for p in prompts]
    new_calls = server.completions()[8:]
    assert [c.prompt for c in new_calls] == ["HANG"]  # only the unfinished sample was paid for again


# --------------------------------------------------------------------------------------- event loops, API
def test_generate_works_inside_a_running_event_loop(server, tmp_path):
    model = _model(server, tmp_path)

    async def notebook_cell():
        sync = model.generate([_req(0, temperature=0)])  # as a Jupyter cell calls it: a loop is already running
        awaited = await model.agenerate([_req(1, temperature=0)])
        return sync + awaited

    # asyncio.run in a thread of its own: a loop left running by another test's playwright fixture cannot interfere
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        responses = pool.submit(asyncio.run, notebook_cell()).result()
    assert [r.text for r in responses] == [answer_for("q0", 0), answer_for("q1", 0)]
    # the cache written from the worker thread serves the main thread
    assert [r.text for r in model.generate([_req(0, temperature=0), _req(1, temperature=0)])] == [r.text for r in responses]
    assert len(server.completions()) == 2


def test_registered_as_openai_and_model_args_hold_the_variable_name_only(server, tmp_path, monkeypatch):
    from lmms_nb.models import get_model

    monkeypatch.setenv("MY_ENDPOINT_KEY", "sk-secret-value")
    # (get_model's own first parameter is `name`, so the display name cannot be passed through it)
    model = get_model("openai", model="fake-vlm", base_url=server.url + "/", api_key_env="MY_ENDPOINT_KEY")
    assert isinstance(model, OpenAIChatModel)
    assert model.name == "fake-vlm" and model.model_args["base_url"] == server.url
    assert "sk-secret-value" not in json.dumps(model.model_args)
    assert model.model_args["api_key_env"] == "MY_ENDPOINT_KEY"
    assert model.generate([]) == []


def test_server_in_its_own_process_counts_attempts(tmp_path):
    import httpx

    from _servers import server_process

    with server_process(p_429=0.5, seed=3) as url:
        responses = OpenAIChatModel("fake-vlm", base_url=url, api_key_env=None, use_cache=False,
                                    backoff_base_s=0.01, max_retries=8).generate([_req(i) for i in range(12)])
        stats = httpx.get(f"{url}/_stats").json()
    assert [r.text for r in responses] == [answer_for(f"q{i}", 0) for i in range(12)]
    assert stats["statuses"].get("429", 0) > 0  # faults were injected, and retried through
    assert stats["completions"] == 12 + stats["statuses"]["429"]
