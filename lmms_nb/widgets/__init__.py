"""Notebook widgets over the public API: browse samples, compare models, launch evaluations, build Lite sets.

The widgets hold state and callbacks only; what they show is computed by `lmms_nb.analysis`, `evaluate()`,
`lmms_nb.lite_selection` and the polars queries of `SampleIndex`. Every string from data is HTML-escaped
before it is shown.

Example:
    >>> import polars as pl
    >>> from lmms_nb.widgets import SampleBrowser
    >>> df = pl.DataFrame({"model": ["A", "B"], "task": ["t", "t"], "doc_id": [0, 0],
    ...                    "prediction": ["<script>x</script>", "4"], "exact_match": [0.0, 1.0]})
    >>> "&lt;script&gt;" in SampleBrowser(df).samples_html.value
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from lmms_nb.widgets._browser import ALL, NO_CATEGORY, SampleBrowser
from lmms_nb.widgets._dashboard import CompareDashboard
from lmms_nb.images import ImageRefError, load_image, thumbnail_data_uri
from lmms_nb.widgets._launcher import EvalLauncher
from lmms_nb.widgets._query import SampleIndex, SampleQuery

# Widgets of other features, imported on first use so a problem in one never breaks the others.
_LAZY = {"LiteBuilder": "lmms_nb.widgets._lite_builder", "LiveReviewWidget": "lmms_nb.widgets._live_review",
         "SliceList": "lmms_nb.widgets._slices"}

__all__ = [
    "ALL",
    "NO_CATEGORY",
    "CompareDashboard",
    "EvalLauncher",
    "ImageRefError",
    "LiteBuilder",
    "LiveReviewWidget",
    "SampleBrowser",
    "SampleIndex",
    "SampleQuery",
    "SliceList",
    "load_image",
    "thumbnail_data_uri",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmms_nb.widgets' has no attribute {name!r}")
