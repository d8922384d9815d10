"""A backend for any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, SGLang, LiteLLM...).

Images travel as base64 PNG data URLs. Requests run concurrently on an asyncio loop (`concurrency` workers,
each with an httpx.AsyncClient), and each is retried on 408/409/429/5xx, timeouts and connection errors with
exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms``,
each wait capped by `backoff_max_s`, at most `max_retries` times. A request that still fails comes back as
``Response(error=...)``: `generate` never raises for one bad sample.

Finished answers go to a sqlite cache as soon as each arrives (write-through), keyed by a hash of the
endpoint, the model, the messages (images by a hash of their pixels) and the generation parameters, so a
rerun, or a run resumed after a crash, never pays twice for a finished sample. Only deterministic requests
(temperature 0) are cached unless `cache_sampled=True`: five samples at temperature 1.5 are five calls. A
failure is never cached (an HTTP error, a malformed completion, a refusal, or a reply the caller's `accept`
rejects, such as a judge reply without a rating), so the next call asks again. Each `Response` says whether
it came from the cache (`cached`) and whether it stopped at the token limit (`truncated`, finish_reason
"length").

The API key is read from the environment variable named by `api_key_env` when each batch starts; it is
never stored on the object, in `model_args`, in the cache, or in error messages (which are redacted).

Example (against a local server; `generate` also works inside Jupyter's running event loop):
    >>> import sys; sys.path.insert(0, "tests")
    >>> from _servers import FakeOpenAIServer
    >>> from lmms_nb.models.base import Request
    >>> from lmms_nb.models.openai_compat import OpenAIChatModel
    >>> with FakeOpenAIServer() as srv:
    ...     model = OpenAIChatModel("fake", base_url=srv.url, api_key_env=None, use_cache=False)
    ...     [r.text for r in model.generate([Request(doc_id=0, task="t", images=[], prompt="Hi?")])]
    ['echo:0:Hi?']
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import httpx

from lmms_nb.models._openai_cache import ResponseCache, request_cache_key
from lmms_nb._http_retry import retryable_status
from lmms_nb.models._openai_http import parse_completion, parse_retry_after, redact
from lmms_nb.models._openai_messages import (
    chat_messages_to_openai,
    generation_params,
    image_data_url,
    image_digest,
)
from lmms_nb.models.base import Request, Response

# ResponseCache, parse_retry_after, request_cache_key and image_data_url are imported from here by tests,
# notebooks and benchmarks: they stay importable from this module.
__all__ = ["OpenAIChatModel", "ResponseCache", "image_data_url", "parse_retry_after", "request_cache_key"]

log = logging.getLogger(__name__)


class OpenAIChatModel:
    """A `Model` backed by an OpenAI-compatible chat-completions endpoint (see the module docstring).

    Args:
        model: the endpoint's model id (e.g. ``"gpt-4o-mini"``, or the name a vLLM server serves).
        base_url: the API root, up to and including ``/v1``.
        api_key_env: the name of the environment variable holding the key; None for a server without auth.
        concurrency: requests in flight at once.
        max_retries: retries after the first attempt (so at most ``max_retries + 1`` attempts per request).
        timeout_s: per-attempt timeout.
        backoff_base_s, backoff_max_s: exponential backoff ``base * 2**retry`` with jitter, each wait capped
            at `backoff_max_s` (Retry-After included).
        cache_dir: the folder of the response cache (default: ``lmms_nb.config.cache_dir("openai")``).
        use_cache: False to neither read nor write the cache.
        name: the name in logs and tables (default: `model`).
        system_prompt: an optional system message sent before each request.
        extra_body: extra fields merged into every request body (e.g. ``{"response_format": {...}}``).
        cache_sampled: also cache requests that sample (temperature > 0 or unset), so a rerun gets the same
            sample back; off by default, as a new call would give a new sample.
        accept: ``accept(text) -> bool``: whether a reply may be cached (e.g. a judge reply that parses).
    """

    #: a task's doc_to_messages reaches this backend as `Request.messages` (lmms-eval's chat backends get them)
    accepts_messages = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        name: str | None = None,
        system_prompt: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        cache_sampled: bool = False,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(
                f"environment variable {api_key_env!r} (api_key_env) is not set: export the API key there, "
                "or pass api_key_env=None for a server that needs no key"
            )
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.system_prompt = system_prompt
        self.extra_body = dict(extra_body or {})
        self.name = name or model
        self.use_cache = use_cache
        self.cache_sampled = cache_sampled
        self.accept = accept
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache: ResponseCache | None = None
        self._ssl: Any = None
        # The variable's name only: model_args go into results.json and reports.
        self.model_args: dict[str, Any] = {
            "model": model,
            "base_url": self.base_url,
            "api_key_env": api_key_env,
            "concurrency": concurrency,
            "max_retries": max_retries,
            "timeout_s": timeout_s,
            "backoff_base_s": backoff_base_s,
            "backoff_max_s": backoff_max_s,
            "use_cache": use_cache,
            "cache_sampled": cache_sampled,
            "system_prompt": system_prompt,
            "extra_body": self.extra_body or None,
        }

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    @property
    def cache(self) -> "ResponseCache | None":
        """The response cache (opened on first use), or None when `use_cache` is False."""
        if not self.use_cache:
            return None
        if self._cache is None:
            from lmms_nb.config import cache_dir

            folder = self._cache_dir if self._cache_dir is not None else cache_dir("openai")
            self._cache = ResponseCache(Path(folder) / "responses.sqlite")
        return self._cache

    # ----------------------------------------------------------------------------------------- public API
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One `Response` per request, in order; failures come back as ``Response(error=...)``.

        Runs its own event loop; called from inside a running loop (a Jupyter cell), it runs that loop in a
        worker thread, since a running loop cannot be re-entered.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(requests))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lmms-nb-openai") as pool:
            return pool.submit(asyncio.run, self.agenerate(requests)).result()

    async def agenerate(self, requests: Sequence[Request]) -> list[Response]:
        """The coroutine behind `generate`, for callers already in async code (``await model.agenerate(...)``)."""
        requests = list(requests)
        if not requests:
            return []
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if self.api_key_env and not key:
            raise ValueError(f"environment variable {self.api_key_env!r} (api_key_env) is not set")
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # `concurrency` workers, each with its own one-connection client, pull requests from a shared
        # iterator. One shared pool of 32 connections costs ~2.5x more client CPU per request: httpcore
        # rescans every pooled connection on each request.
        pending = iter(enumerate(requests))
        responses: list[Response | None] = [None] * len(requests)
        one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)

        async def worker() -> None:
            async with httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self.timeout_s),
                limits=one_connection,
                verify=self._ssl_context(),
            ) as client:
                for i, request in pending:  # a plain iterator is safe: workers only switch at awaits
                    responses[i] = await self._one(client, request, key)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))
        return responses  # type: ignore[return-value]

    # ---------------------------------------------------------------------------------------- internals
    def _ssl_context(self):
        # Building one loads the CA bundle (~70 ms): once per model, not once per generate() call, which
        # matters for a judge scoring sample by sample.
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _messages(self, request: Request, image_urls: Sequence[str],
                  encode: Callable[[Any], str] | None = None) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        if request.messages is not None:
            # the task's doc_to_messages, as lmms-eval's chat backend sends it (protocol.ChatMessages)
            return messages + chat_messages_to_openai(request.messages, encode)
        if image_urls:
            content: Any = [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
            content.append({"type": "text", "text": request.prompt})
        else:
            content = request.prompt  # a plain string: text-only servers reject a list of parts
        messages.append({"role": "user", "content": content})
        return messages

    def _cache_key(self, request: Request, params: Mapping[str, Any]) -> str:
        # Images by pixel hash: the key does not depend on how PNG encoding happens to compress them.
        hashed = self._messages(request, [f"sha256:{image_digest(im)}" for im in request.images],
                                lambda im: f"sha256:{image_digest(im)}")
        return request_cache_key(self.base_url, self.model, hashed, {**params, **self.extra_body})

    async def _one(self, client: httpx.AsyncClient, request: Request, key: str | None) -> Response:
        try:
            params = generation_params(request.generation_kwargs)
            cache_key = self._cache_key(request, params)
        except Exception as e:  # an unreadable image: this sample fails, the batch goes on
            return Response(text=None, error=redact(f"could not build the request: {e!r}", key))
        cache = self.cache if self._cacheable(params) else None
        if cache is not None:
            hit = cache.get(cache_key)
            if hit is not None:
                return hit
        try:
            messages = self._messages(request, [image_data_url(im) for im in request.images])
        except Exception as e:
            return Response(text=None, error=redact(f"could not encode the images: {e!r}", key))
        body = {"model": self.model, "messages": messages, **params, **self.extra_body}
        # the worker's slot is held through backoff too: a rate-limited endpoint should see fewer calls
        response = await self._post_with_retries(client, body, key)
        if cache is not None and response.error is None and (self.accept is None or self.accept(response.text or "")):
            cache.put(cache_key, response, model=self.model)
        return response

    def _cacheable(self, params: Mapping[str, Any]) -> bool:
        """Deterministic requests (temperature 0) only, unless `cache_sampled`."""
        temperature = {**params, **self.extra_body}.get("temperature")
        return self.cache_sampled or (temperature is not None and float(temperature) == 0.0)

    async def _post_with_retries(self, client: httpx.AsyncClient, body: dict[str, Any], key: str | None) -> Response:
        url = f"{self.base_url}/chat/completions"
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            started = time.perf_counter()
            try:
                r = await client.post(url, json=body)
            except httpx.TimeoutException as e:
                last_error = f"timeout after {self.timeout_s}s ({type(e).__name__})"
            except httpx.TransportError as e:
                last_error = f"connection error: {type(e).__name__}: {e}"
            else:
                latency = time.perf_counter() - started
                if r.status_code == 200:
                    return parse_completion(r, latency, key)
                last_error = f"HTTP {r.status_code}: {r.text[:500]}"
                if not retryable_status(r.status_code):
                    break  # 400/401/403/404...: the same request would fail again
                retry_after = parse_retry_after(r.headers)
            if attempt < self.max_retries:
                delay = self._backoff(attempt, retry_after)
                log.info("retrying %s in %.2fs after: %s", self.name, delay, redact(last_error, key)[:200])
                await asyncio.sleep(delay)
        attempts = attempt + 1
        return Response(text=None, error=redact(f"{last_error} (after {attempts} attempt{'s' * (attempts > 1)})", key))

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `retry + 1`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_s)
        cap = min(self.backoff_max_s, self.backoff_base_s * 2**retry)
        return random.uniform(cap / 2, cap)  # "equal jitter": spread clients out, never wait less than half
