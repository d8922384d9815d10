"""Resolve an `image_ref` of the canonical table into a small inline PNG for the sample browser.

The table never holds image bytes, only a reference (see `lmms_nb.logs.schema`):

- ``dataset:<save_to_disk folder>#<row>``: row `row` of a `datasets.load_from_disk` folder, first image column;
- ``file:<path>``: an image file;
- ``b64:<source_file>#<line>``: the base64 image held inline by line `line` (1-based) of a JSONL log file;
- ``b64:<base64 data>`` or ``b64:data:image/...;base64,<data>``: the image itself.

Thumbnails are cached (per reference and size) and datasets are opened once per folder, so turning pages
back and forth costs nothing after the first visit.

References come from logs, which may be other people's: a path is read only when it lies under an allowed
root (after resolving symlinks): the folders of the logs `load_logs` read in this process, the datasets
`evaluate` ran on, lmms-nb's cache (`LMMS_NB_CACHE`), the folders in ``LMMS_NB_IMAGE_ROOTS`` (os.pathsep
separated), the folder of the log named by `source_file`, and roots added with `allow_image_roots`. Anything
else raises `ImageRefError` saying why, without opening the file, and shows as a missing image.

Example:
    >>> import base64, io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (300, 200), "red").save(buf, format="PNG")
    >>> uri = thumbnail_data_uri("b64:" + base64.b64encode(buf.getvalue()).decode(), 64)
    >>> uri.startswith("data:image/png;base64,")
    True
    >>> load_image("b64:" + base64.b64encode(buf.getvalue()).decode()).size
    (300, 200)
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["ImageRefError", "allow_image_roots", "allowed_image_roots", "load_image", "thumbnail_data_uri"]

_ROW_REF = re.compile(r"^(?P<path>.+)#(?P<row>\d+)$")
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/=\s]+$")
#: JSONL keys that hold inline media in the logs we read, searched first (then any base64-looking string).
_MEDIA_KEYS = ("input_media", "image", "images", "image_b64", "media", "doc")


class ImageRefError(ValueError):
    """An image reference that cannot be resolved; the message names the reference and what was wrong."""


_ROOTS: set[Path] = set()


def allow_image_roots(*folders: str | Path) -> None:
    """Allow image references to files under these folders (see the module docstring)."""
    _ROOTS.update(Path(f).expanduser().resolve() for f in folders)


def allowed_image_roots(source_file: str | Path | None = None) -> list[Path]:
    """The folders image references may read from, for a row of the log `source_file` (if given)."""
    import os

    from lmms_nb.config import cache_dir

    roots = set(_ROOTS) | {cache_dir().resolve()}
    roots |= {Path(p).expanduser().resolve() for p in os.environ.get("LMMS_NB_IMAGE_ROOTS", "").split(os.pathsep) if p}
    if source_file:
        roots.add(Path(source_file).expanduser().resolve().parent)
    return sorted(roots)


def _check_allowed(path: Path, ref: str, source_file: str | Path | None) -> Path:
    resolved = path.expanduser().resolve()
    roots = allowed_image_roots(source_file)
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ImageRefError(
            f"image_ref {ref!r}: {str(path)!r} is outside the allowed image roots (the logs' folders, the datasets "
            "evaluated, lmms-nb's cache, LMMS_NB_IMAGE_ROOTS); not read. lmms_nb.images.allow_image_roots(folder) "
            "allows a folder you trust")
    return resolved


def load_image(ref: str, *, source_file: str | Path | None = None) -> Image.Image:
    """The image an `image_ref` points at (full size). Raises `ImageRefError` naming the reference.

    `source_file`, the log the reference comes from, adds that log's folder to the allowed roots.
    """
    if not isinstance(ref, str) or ":" not in ref:
        raise ImageRefError(f"image_ref {ref!r}: expected 'dataset:<folder>#<row>', 'file:<path>' or 'b64:...'")
    scheme, _, rest = ref.partition(":")
    if scheme == "dataset":
        return _from_dataset(ref, rest, source_file)
    if scheme == "file":
        path = _check_allowed(Path(rest), ref, source_file)
        if not path.is_file():
            raise ImageRefError(f"image_ref {ref!r}: no such file {rest!r}")
        return _open(path.read_bytes(), ref)
    if scheme == "b64":
        return _from_b64(ref, rest, source_file)
    if scheme == "inspect":  # an image inside an inspect_ai log: `inspect:<log>#<sample id>/<epoch>`
        from lmms_nb.logs._inspect import inspect_image

        _check_allowed(Path(rest.rpartition("#")[0]), ref, source_file)
        try:
            image = inspect_image(rest)
        except (OSError, ValueError) as e:
            raise ImageRefError(f"image_ref {ref!r}: {e}") from None
        if image.startswith("data:"):
            return _from_b64(ref, image, source_file)
        return load_image(f"file:{image}", source_file=source_file)
    raise ImageRefError(f"image_ref {ref!r}: unknown scheme {scheme!r} (dataset:, file: or b64:)")


def thumbnail_data_uri(ref: str, size: int = 96, *, source_file: str | Path | None = None) -> str:
    """A ``data:image/png;base64,...`` URI of the image scaled to fit `size` x `size` pixels (cached).

    Images smaller than half of `size` are enlarged by a whole factor so a 16-pixel chart stays visible.
    """
    return _thumbnail(ref, size, str(source_file) if source_file else None)


@functools.lru_cache(maxsize=2048)
def _thumbnail(ref: str, size: int, source_file: str | None) -> str:
    image = load_image(ref, source_file=source_file)
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    image.thumbnail((size, size))
    if max(image.size) < size // 2:  # tiny benchmark images are enlarged (nearest: pixels stay sharp)
        scale = size // max(image.size)
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _open(data: bytes, ref: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as e:  # noqa: BLE001 - PIL raises several types for bad bytes
        raise ImageRefError(f"image_ref {ref!r}: not a readable image ({type(e).__name__}: {e})") from None
    return image


# ---- dataset:<folder>#<row> ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _dataset_images(folder: str) -> tuple[Any, str]:
    """The dataset saved in `folder`, reduced to its first image column, and that column's name."""
    import datasets

    try:
        ds = datasets.load_from_disk(folder)
    except FileNotFoundError:
        raise ImageRefError(f"dataset folder {folder!r} does not exist or holds no saved dataset") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:  # row numbers are per split: guessing the split would show the wrong image
            raise ImageRefError(f"dataset folder {folder!r} holds splits {list(ds)}; an image_ref must name a "
                                f"split folder such as {folder.rstrip('/')}/{next(iter(ds))}")
        ds = ds[next(iter(ds))]
    for name, feature in ds.features.items():
        inner = getattr(feature, "feature", None)  # Sequence / List of images
        if isinstance(feature, datasets.Image) or isinstance(inner, datasets.Image) or (
            isinstance(feature, list) and feature and isinstance(feature[0], datasets.Image)
        ):
            return ds.select_columns([name]), name
    raise ImageRefError(f"dataset {folder!r} has no image column (columns: {', '.join(ds.column_names)})")


def _from_dataset(ref: str, rest: str, source_file: str | Path | None) -> Image.Image:
    match = _ROW_REF.match(rest)
    if not match:
        raise ImageRefError(f"image_ref {ref!r}: expected 'dataset:<folder>#<row>'")
    images, column = _dataset_images(str(_check_allowed(Path(match["path"]), ref, source_file)))
    row = int(match["row"])
    if row >= len(images):
        raise ImageRefError(f"image_ref {ref!r}: row {row} is past the end of the dataset ({len(images)} rows)")
    value = images[row][column]
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        raise ImageRefError(f"image_ref {ref!r}: row {row} has no image in column {column!r}")
    return value


# ---- b64:... ---------------------------------------------------------------------------------------------------
def _from_b64(ref: str, rest: str, source_file: str | Path | None) -> Image.Image:
    match = _ROW_REF.match(rest)
    if match:  # "<log file>#<line>": '#' is never part of base64 data
        path = _check_allowed(Path(match["path"]), ref, source_file)
        if not path.is_file():
            raise ImageRefError(f"image_ref {ref!r}: no such log file {match['path']!r}")
        data = _b64_in_log_line(ref, path, int(match["row"]))
    else:
        data = rest
    return _open(_decode_b64(data, ref), ref)


def _decode_b64(text: str, ref: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        shown = ref if len(ref) < 80 else ref[:77] + "..."
        raise ImageRefError(f"image_ref {shown!r}: not valid base64") from None


def _b64_in_log_line(ref: str, path: Path, line_no: int) -> str:
    line = _read_line(path, line_no)
    if line is None:
        raise ImageRefError(f"image_ref {ref!r}: {path} has no line {line_no}")
    try:
        record = json.loads(line)
    except ValueError as e:
        raise ImageRefError(f"image_ref {ref!r}: {path}:{line_no} is not JSON ({e})") from None
    ordered = [record[k] for k in _MEDIA_KEYS if isinstance(record, dict) and k in record] + [record]
    for value in ordered:
        found = _first_base64(value)
        if found is not None:
            return found
    raise ImageRefError(f"image_ref {ref!r}: {path}:{line_no} holds no base64 image")


def _read_line(path: Path, line_no: int) -> str | None:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if number == line_no:
                return line
    return None


def _first_base64(value: Any) -> str | None:
    if isinstance(value, str):
        if value.startswith("data:image") or (len(value) >= 64 and _BASE64_CHARS.match(value)):
            return value
        return None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _first_base64(item)
        if found is not None:
            return found
    return None
