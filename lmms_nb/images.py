"""Resolve an `image_ref` of the canonical table back to an image, and render it as a small inline PNG.

`image_ref` forms: `dataset:<save_to_disk folder>#<row>` (the image column of that row), `file:<path>`,
`b64:<source_file>#<line>` (an lmms-eval `input_media` entry kept in its log), or a plain path.

Example:
    >>> from lmms_nb.images import load_image
    >>> load_image(None) is None
    True
"""

from __future__ import annotations

import base64
import functools
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["load_image", "thumbnail_data_url"]


@functools.lru_cache(maxsize=16)
def _dataset(folder: str) -> Any:
    import datasets

    return datasets.load_from_disk(folder)


def _image_column(ds: Any) -> str | None:
    import datasets

    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            return name
        if isinstance(feature, (list, datasets.Sequence)) and isinstance(getattr(feature, "feature", None), datasets.Image):
            return name
    return None


def load_image(image_ref: str | None) -> Image.Image | None:
    """The image an `image_ref` points at, or None when it is missing or cannot be read (never raises)."""
    if not image_ref:
        return None
    try:
        kind, _, rest = image_ref.partition(":")
        if kind == "dataset":
            folder, _, row = rest.rpartition("#")
            ds = _dataset(folder)
            if hasattr(ds, "keys"):  # a DatasetDict: the first split that has the row
                ds = next(iter(ds.values()))
            col = _image_column(ds)
            if col is None:
                return None
            value = ds[int(row)][col]
            return value[0] if isinstance(value, list) else value
        if kind == "b64":
            source, _, line = rest.rpartition("#")
            with open(source, encoding="utf-8") as fh:
                for i, text in enumerate(fh, start=1):
                    if i == int(line):
                        media = json.loads(text).get("input_media") or []
                        for item in media:
                            if isinstance(item, str) and len(item) > 200:
                                return Image.open(io.BytesIO(base64.b64decode(item.split(",")[-1])))
                        return None
            return None
        path = Path(rest if kind == "file" else image_ref)
        return Image.open(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - a picture we cannot show must never break a table or a report
        return None


def thumbnail_data_url(image_ref: str | None, size: int = 128) -> str | None:
    """A `data:image/png;base64,...` URL of the image, fitted in size x size; None when there is no image."""
    img = load_image(image_ref)
    if img is None:
        return None
    img = img.convert("RGB")
    img.thumbnail((size, size))
    if max(img.size) < size // 2:  # tiny benchmark images are enlarged so people can see them
        scale = size // max(img.size)
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
