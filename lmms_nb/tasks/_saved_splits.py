"""Read a `save_to_disk` DatasetDict folder with pyarrow alone, without importing `datasets` (~1.4 CPU-s).

A prepared folder (what `DatasetDict.save_to_disk` writes: dataset_dict.json, one folder per split with its Arrow
files, state.json and dataset_info.json) is already what `datasets.load_from_disk` reads: the same Arrow files,
memory-mapped, decoded row by row. `open_saved_splits` reads it the same way for the features whose decoding is
plain (Value, ClassLabel, Image, and lists / dicts of them) and returns None for anything else (an Audio or Video
column, a format set with `set_format`, a remote path), where the caller keeps calling `datasets.load_from_disk`.
There is no second copy of the data and so nothing to go stale: an edited folder is read as it is now.

The one thing kept aside is the split's `_fingerprint` (a run's identity records it): `datasets.load_from_disk`
derives it from state.json's by hashing its own `set_format` call with dill, which only `datasets` can do. It is
computed with `datasets` the first time a folder is read and kept under the cache folder, keyed by state.json's
fingerprint, the installed datasets and dill versions and the Python version (from which it follows), so later runs need no `datasets` import.

`SavedSplit` answers what an evaluation asks of a split (len, rows by index, column_names, select_columns,
`_fingerprint`); anything else (`.map`, `.features`, `.shuffle`, ...) goes to the real `datasets.Dataset`, loaded
from the same folder on first use, so a caller never sees a difference beyond speed.

Example:
    >>> import pathlib, tempfile, datasets
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> datasets.DatasetDict({"test": datasets.Dataset.from_dict({"q": ["2+2?"], "a": ["4"]})}).save_to_disk(str(d))
    >>> splits = open_saved_splits(d)
    >>> len(splits["test"]), splits["test"][0], splits["test"]._fingerprint == datasets.load_from_disk(str(d))["test"]._fingerprint
    (1, {'q': '2+2?', 'a': '4'}, True)
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

__all__ = ["SavedSplit", "open_saved_splits"]

# the state datasets writes for a split without set_format: anything else changes what rows look like
_PLAIN_FORMAT = {"_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False}


def open_saved_splits(path: str | Path) -> dict[str, SavedSplit] | None:
    """{split: SavedSplit} of a local `save_to_disk` DatasetDict folder, or None when `datasets` must read it."""
    folder = Path(path)
    try:
        names = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        splits = {name: _open_split(folder / name) for name in names}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not such a folder, or not one we read as datasets does: datasets says what is wrong
    return None if any(s is None for s in splits.values()) else splits  # type: ignore[return-value]


def _open_split(folder: Path) -> SavedSplit | None:
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    features = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8")).get("features")
    if any(state.get(key, value) != value for key, value in _PLAIN_FORMAT.items()) or not isinstance(features, dict):
        return None
    if not all(_plain(f) for f in features.values()):
        return None
    files = [folder / f["filename"] for f in state["_data_files"]]
    if not files or not all(f.is_file() for f in files):
        return None
    return SavedSplit(folder, files, features, state.get("_fingerprint"))


def _plain(feature: Any) -> bool:
    """Features whose rows datasets gives as Arrow's Python values, images decoded (see `_decode`)."""
    if isinstance(feature, dict) and "_type" not in feature:  # a struct: {field: feature}
        return all(_plain(f) for f in feature.values())
    if isinstance(feature, list):  # the old spelling of a list: [feature]
        return len(feature) == 1 and _plain(feature[0])
    if not isinstance(feature, dict):
        return False
    kind = feature["_type"]
    if kind in ("List", "LargeList", "Sequence"):
        inner = feature.get("feature")
        # Sequence of a struct is a struct of lists in datasets' rows: not what Arrow gives
        return _plain(inner) and not (kind == "Sequence" and isinstance(inner, dict) and "_type" not in inner)
    return kind in ("Value", "ClassLabel", "Image")


def _needs_decoding(feature: Any) -> bool:
    if isinstance(feature, list):
        return _needs_decoding(feature[0])
    if "_type" not in feature:
        return any(_needs_decoding(f) for f in feature.values())
    if feature["_type"] == "Image":
        return feature.get("decode", True)
    return feature["_type"] in ("List", "LargeList", "Sequence") and _needs_decoding(feature["feature"])


def _decode(feature: Any, value: Any) -> Any:
    """datasets' decode_nested_example for the plain features: images opened as `datasets.Image` opens them."""
    if value is None:
        return None
    if isinstance(feature, list):
        return [_decode(feature[0], v) for v in value]
    if "_type" not in feature:
        return {k: _decode(feature[k], v) if k in feature else v for k, v in value.items()}
    if feature["_type"] == "Image":
        return _decode_image(value, feature.get("mode")) if feature.get("decode", True) else value
    if feature["_type"] in ("List", "LargeList", "Sequence"):
        return [_decode(feature["feature"], v) for v in value]
    return value


def _decode_image(value: dict[str, Any], mode: str | None) -> Any:
    # as datasets.features.Image.decode_example: open, load, apply the EXIF orientation, convert to `mode`
    import PIL.Image
    import PIL.ImageOps

    path, data = value["path"], value["bytes"]
    if data is None:
        if path is None:
            raise ValueError(f"An image should have one of 'path' or 'bytes' but both are None in {value}.")
        if "://" in path or "::" in path:  # a remote file: datasets downloads it; see SavedSplit.__getitem__
            raise _NeedsDatasets(path)
        image = PIL.Image.open(path)
    else:
        image = PIL.Image.open(io.BytesIO(data))
    image.load()
    if image.getexif().get(PIL.Image.ExifTags.Base.Orientation) is not None:
        image = PIL.ImageOps.exif_transpose(image)
    if mode and mode != image.mode:
        image = image.convert(mode)
    return image


@functools.cache
def _hashing_versions() -> str:
    """What datasets' fingerprint of a loaded split follows besides state.json: datasets' version and dill's and
    Python's (datasets hashes its set_format call with dill / pickle). Read once per process."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        dill = version("dill")
    except PackageNotFoundError:
        dill = ""
    return f"datasets {version('datasets')}, dill {dill}, python {sys.version_info[0]}.{sys.version_info[1]}"


class _NeedsDatasets(Exception):
    """A value only `datasets` can decode (a remote image path)."""


class SavedSplit:
    """One split of a `save_to_disk` folder read with pyarrow (see the module docstring)."""

    def __init__(self, folder: Path, files: list[Path], features: dict[str, Any], fingerprint: str | None,
                 columns: list[str] | None = None, table: Any = None, selections: tuple[Any, ...] = ()) -> None:
        self._folder, self._files, self._all_features = folder, files, features
        self._state_fingerprint = fingerprint
        # the select_columns arguments so far, as given: datasets hashes each call's argument into the fingerprint
        # (even one keeping every column in order), so the real dataset replays them all
        self._selections = selections
        self._columns = list(features) if columns is None else columns
        self._table, self._real, self._lock = table, None, threading.Lock()

    @property
    def column_names(self) -> list[str]:
        return list(self._columns)

    @property
    def image_columns(self) -> list[str]:
        """Columns holding an image or a list of images (what `_record_columns` looks for)."""
        def is_image(f: Any) -> bool:
            inner = f[0] if isinstance(f, list) and f else (f.get("feature") if isinstance(f, dict) else None)
            return any(isinstance(x, dict) and x.get("_type") == "Image" for x in (f, inner))

        return [c for c in self._columns if is_image(self._all_features[c])]

    def _arrow(self) -> Any:
        with self._lock:
            if self._table is None:
                import pyarrow as pa

                # as datasets' MemoryMappedTable.from_file: the Arrow IPC stream of each file, memory-mapped
                tables = []
                for file in self._files:
                    try:
                        tables.append(pa.ipc.open_stream(pa.memory_map(str(file))).read_all())
                    except (pa.ArrowException, OSError) as e:  # truncated or corrupt: say which file
                        raise ValueError(f"{file}: not a readable Arrow stream ({e})") from e
                self._table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            return self._table

    def __len__(self) -> int:
        return self._arrow().num_rows

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, int) or isinstance(key, bool):
            return self._dataset()[key]
        n = len(self)
        if not -n <= key < n:
            raise IndexError(f"Index {key} out of range for dataset of size {n}.")
        row = self._arrow().slice(key % n, 1).select(self._columns).to_pylist()[0]
        try:
            return {c: _decode(self._all_features[c], v) if _needs_decoding(self._all_features[c]) else v
                    for c, v in row.items()}
        except _NeedsDatasets:
            return self._dataset()[key]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def select_columns(self, column_names: str | list[str]) -> SavedSplit:
        names = [column_names] if isinstance(column_names, str) else list(column_names)
        missing = [c for c in names if c not in self._columns]
        if missing:  # datasets' own error
            return self._dataset().select_columns(names)
        return SavedSplit(self._folder, self._files, self._all_features, self._state_fingerprint, names, self._arrow(),
                          (*self._selections, column_names))

    @property
    def _fingerprint(self) -> str:
        """What `datasets.load_from_disk(...)._fingerprint` is for this split (see the module docstring)."""
        if self._selections or not self._state_fingerprint:
            return self._dataset()._fingerprint  # select_columns derives another one
        from lmms_nb.config import cache_dir

        key = hashlib.sha256(f"{_hashing_versions()}\0{self._state_fingerprint}".encode()).hexdigest()[:24]
        try:
            path = cache_dir("dataset_fingerprints") / key
        except OSError:  # no cache folder to be had: datasets computes it every time
            return self._dataset()._fingerprint
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            pass
        fingerprint = self._dataset()._fingerprint
        tmp = path.with_name(f".{key}.{os.getpid()}")
        try:
            tmp.write_text(fingerprint, encoding="utf-8")
            os.replace(tmp, path)  # atomic: a concurrent reader sees the whole fingerprint or none
        except OSError:  # a read-only cache folder: computed again next time
            tmp.unlink(missing_ok=True)
        return fingerprint

    def _dataset(self) -> Any:
        """The real `datasets.Dataset` of this split (its selected columns), loaded from the folder once."""
        with self._lock:
            if self._real is None:
                import datasets

                real = datasets.load_from_disk(str(self._folder))
                for selection in self._selections:
                    real = real.select_columns(selection)
                self._real = real
            return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_folder", "_files", "_all_features", "_columns", "_table", "_real",
                                             "_lock", "_state_fingerprint"):
            raise AttributeError(name)
        return getattr(self._dataset(), name)

    def __repr__(self) -> str:
        return f"SavedSplit({str(self._folder)!r}, columns={self._columns}, rows={len(self)})"
