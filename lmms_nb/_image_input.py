"""An image as a caller hands it over (PIL, bytes, a path, an array, a datasets row), opened as a PIL image.

One reader for every place that takes images in: the OpenAI backend (data URLs, pixel hashes), the CLIP
zero-shot model and the Lite embedders. PIL is imported on the first call, not at import.

Example:
    >>> import numpy as np
    >>> as_pil_image(np.zeros((2, 3, 3), dtype=np.uint8)).size
    (3, 2)
    >>> as_pil_image(np.zeros((2, 3), dtype=np.uint8), mode="RGB").mode
    'RGB'
"""

from __future__ import annotations

import io
import os
from typing import Any

__all__ = ["as_pil_image"]


def as_pil_image(obj: Any, where: str = "image", *, mode: str | None = None) -> Any:
    """`obj` as a PIL image, converted to `mode` when given (None: as stored). `where` names it in errors.

    Takes a PIL image, encoded bytes, a file path, a numpy array (floats in [0, 1] are scaled to 0..255) or a
    datasets Image row (``{"bytes": ..., "path": ...}``; the bytes first). A file or bytes PIL cannot open raise
    ValueError naming `where`; any other type raises TypeError.
    """
    from PIL import Image

    if isinstance(obj, Image.Image):
        image = obj
    elif isinstance(obj, (str, os.PathLike)):
        try:
            image = Image.open(obj)
        except (OSError, ValueError) as e:
            raise ValueError(f"{where}: cannot open image file {str(obj)!r}: {e}") from e
    elif isinstance(obj, (bytes, bytearray)) or (
            isinstance(obj, dict) and (obj.get("bytes") is not None or obj.get("path"))):
        data = obj if isinstance(obj, (bytes, bytearray)) else obj.get("bytes")
        source = io.BytesIO(data) if data else obj.get("path") if isinstance(obj, dict) else None
        if not source:  # empty bytes and no path to fall back on
            raise ValueError(f"{where}: cannot decode image: no bytes and no path")
        try:
            image = Image.open(source)
        except (OSError, ValueError) as e:
            raise ValueError(f"{where}: cannot decode image: {e}") from e
    else:
        import numpy as np

        if not isinstance(obj, np.ndarray):
            raise TypeError(f"{where}: expected a PIL image, bytes, a path, an array or a datasets "
                            f"{{'bytes'|'path'}} dict, got {type(obj).__name__}")
        arr = obj
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(arr)
    return image.convert(mode) if mode is not None else image
