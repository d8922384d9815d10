"""Which failed HTTP replies are worth another attempt: one rule for every client lmms-nb runs.

The OpenAI-compatible backend (`lmms_nb.models.openai_compat`) and the page capture of `lmms_nb.live` both
retry with this rule, so an endpoint or a site that says "not now" is treated the same way by both. It has no
imports, so the capture (Playwright) path does not load the HTTP client of the model backends.

Example:
    >>> [retryable_status(s) for s in (404, 409, 429, 503)]
    [False, True, True, True]
"""

from __future__ import annotations

__all__ = ["RETRY_STATUSES", "retryable_status"]

#: 4xx statuses worth retrying, as OpenAI's own client does: 408 Request Timeout, 409 Conflict (a transient
#: lock on the server's side) and 429 Too Many Requests. Any other 4xx says the same request fails again.
RETRY_STATUSES = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """Whether a reply with HTTP `status` may succeed if sent again: `RETRY_STATUSES` and every 5xx."""
    return status in RETRY_STATUSES or status >= 500
