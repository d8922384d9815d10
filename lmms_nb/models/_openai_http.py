"""Reading an OpenAI-compatible endpoint's replies: completions, Retry-After headers, keys kept out of errors."""

from __future__ import annotations

import email.utils
from datetime import datetime, timezone
from typing import Mapping

import httpx

from lmms_nb.models.base import Response

__all__ = ["parse_completion", "parse_retry_after", "redact"]


def parse_completion(r: httpx.Response, latency: float, key: str | None) -> Response:
    try:
        data = r.json()
        message = data["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        error = f"malformed completion (no choices[0].message): {r.text[:500]}"
        return Response(text=None, error=redact(error, key), latency_s=latency)
    finish_reason = data["choices"][0].get("finish_reason") if isinstance(data["choices"][0], dict) else None
    if message.get("refusal") or finish_reason == "content_filter":
        error = f"refused ({finish_reason or 'refusal'}): {message.get('refusal') or r.text[:500]}"
        return Response(text=None, error=redact(error, key), latency_s=latency, cached=False)
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    usage = data.get("usage") or {}
    tokens = usage.get("completion_tokens")
    # lmms-eval's openai class counts a missing prompt / reasoning count as 0 when the reply has a usage
    details = usage.get("completion_tokens_details") or {}
    return Response(text=content or "", latency_s=latency, output_tokens=int(tokens) if tokens is not None else None,
                    cached=False, truncated=None if finish_reason is None else finish_reason == "length",
                    input_tokens=int(usage.get("prompt_tokens") or 0) if usage else None,
                    reasoning_tokens=int(details.get("reasoning_tokens") or 0) if usage else None)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or an HTTP date), else None.

    >>> parse_retry_after({"retry-after": "1.5"})
    1.5
    >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"},
    ...                   now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc))
    10.0
    >>> parse_retry_after({}) is None
    True
    """
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


def redact(text: str, key: str | None) -> str:
    # An endpoint may echo the Authorization header back in an error body; errors end up in logs.
    return text.replace(key, "***") if key else text
