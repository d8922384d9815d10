"""Memoising pure functions of score matrices by content, so that equal training sets share one computation.

Nested cross-validation fits the same things many times over: with outer leave-one-out, inner fold (f, i) and
(i, f) train on the same models; a design's residual spread does not depend on the budget; and anchor selection
is deterministic given its training models. `memoised` keys a call by its arguments' content (an array by its
dtype, shape and a hash of its bytes, never by ``id``: a freed array's id can be reused), keeps the last
`maxsize` results, and hands out copies, so a caller that writes to a result cannot change the cache. Results
are the function's own, bit for bit; `caching(False)` turns it off (tests compare both paths).

Example:
    >>> import numpy as np
    >>> calls = []
    >>> @memoised()
    ... def column_means(x):
    ...     calls.append(1)
    ...     return x.mean(axis=0)
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> column_means(a).tolist(), column_means(a.copy()).tolist(), len(calls)
    ([1.5, 2.5, 3.5], [1.5, 2.5, 3.5], 1)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

__all__ = ["caching", "content_key", "memoised"]

F = TypeVar("F", bound=Callable[..., Any])
_enabled = True


def content_key(value: Any) -> Any:
    """A hashable key equal for equal content: arrays by dtype, shape and a hash of their bytes (object and
    string arrays by their values), sequences element by element, scalars as they are."""
    if isinstance(value, np.ndarray):
        a = value.astype(str) if value.dtype == object else np.ascontiguousarray(value)
        return ("nd", a.dtype.str, a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).digest())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *map(content_key, value))
    return value


def _copied(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(map(_copied, value))
    return value


def memoised(maxsize: int = 512) -> Callable[[F], F]:
    """Decorator: cache a pure function's results by `content_key` of its arguments (the last `maxsize`)."""

    def wrap(fn: F) -> F:
        cache: OrderedDict[Any, Any] = OrderedDict()

        @functools.wraps(fn)
        def cached(*args: Any, **kwargs: Any) -> Any:
            if not _enabled:
                return fn(*args, **kwargs)
            key = (content_key(args), tuple(sorted((k, content_key(v)) for k, v in kwargs.items())))
            if key in cache:
                cache.move_to_end(key)
            else:
                cache[key] = fn(*args, **kwargs)
                if len(cache) > maxsize:
                    cache.popitem(last=False)
            return _copied(cache[key])

        cached.cache_clear = cache.clear  # type: ignore[attr-defined]
        return cached  # type: ignore[return-value]

    return wrap


@contextlib.contextmanager
def caching(enabled: bool) -> Iterator[None]:
    """Within the block, `memoised` functions compute every call (False) or use their caches (True)."""
    global _enabled
    before, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = before
