"""Aggregations: per-sample values of a task -> (score, standard error)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

Doc = dict[str, Any]


def _finite(values: Sequence[float | None]) -> np.ndarray:
    array = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return array[~np.isnan(array)]


def mean_stderr(values: Sequence[float | None]) -> tuple[float, float | None]:
    """Mean and standard error (sample sd / sqrt(n)) of the values, ignoring None and NaN.

    The stderr is None below two values; no values give ``(nan, None)``.

    >>> mean, stderr = mean_stderr([1.0, 0.0, 1.0, None, float("nan"), 0.0])
    >>> mean, round(stderr, 4)
    (0.5, 0.2887)
    >>> mean_stderr([1.0])
    (1.0, None)
    """
    finite = _finite(values)
    if finite.size == 0:
        return math.nan, None
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, None
    from scipy import stats  # here, not at import: scipy.stats takes seconds, and every `lmms-nb eval` imports this

    return mean, float(stats.sem(finite, ddof=1))


def mme_acc_plus(
    values: Sequence[float | None],
    docs: Sequence[Doc],
    *,
    key: str = "image_id",
) -> tuple[float, float | None]:
    """MME "acc+": the fraction of images whose every question is answered right, and its stderr over images.

    Samples are grouped by ``doc[key]``. Missing values (None/NaN, e.g. a failed generation) are skipped,
    as `mean_stderr` skips them, and an image with no scored question is left out.

    >>> docs = [{"image_id": "a"}, {"image_id": "a"}, {"image_id": "b"}, {"image_id": "b"}]
    >>> mme_acc_plus([1, 1, 1, 0], docs)
    (0.5, 0.5)
    """
    if len(values) != len(docs):
        raise ValueError(f"mme_acc_plus: {len(values)} values but {len(docs)} docs")
    per_image: dict[Any, list[float]] = defaultdict(list)
    for i, (value, doc) in enumerate(zip(values, docs)):
        if key not in doc:
            raise KeyError(f"mme_acc_plus: doc {i} has no {key!r} field (fields: {', '.join(map(str, doc))})")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        per_image[doc[key]].append(float(value))
    all_right = [float(all(v >= 1.0 for v in group)) for group in per_image.values()]
    return mean_stderr(all_right)
