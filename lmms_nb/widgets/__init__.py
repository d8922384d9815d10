"""Notebook widgets over the public API: browse samples, compare models, launch evaluations.

The widgets hold state and callbacks only; what they show is computed by `lmms_nb.analysis`, `evaluate()`
and the polars queries of `SampleIndex`. Every string from data is HTML-escaped before it is shown.

Example:
    >>> import polars as pl
    >>> from lmms_nb.widgets import SampleBrowser
    >>> df = pl.DataFrame({"model": ["A", "B"], "task": ["t", "t"], "doc_id": [0, 0],
    ...                    "prediction": ["<script>x</script>", "4"], "exact_match": [0.0, 1.0]})
    >>> "&lt;script&gt;" in SampleBrowser(df).samples_html.value
    True
"""

from lmms_nb.widgets._browser import ALL, NO_CATEGORY, SampleBrowser
from lmms_nb.widgets._dashboard import CompareDashboard
from lmms_nb.widgets._images import ImageRefError, load_image, thumbnail_data_uri
from lmms_nb.widgets._launcher import EvalLauncher
from lmms_nb.widgets._query import SampleIndex, SampleQuery

__all__ = [
    "ALL",
    "CompareDashboard",
    "EvalLauncher",
    "ImageRefError",
    "NO_CATEGORY",
    "SampleBrowser",
    "SampleIndex",
    "SampleQuery",
    "load_image",
    "thumbnail_data_uri",
]
