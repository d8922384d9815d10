"""inspect_ai logs (`.eval` zip archives and `.json` files) -> canonical rows: one per sample and epoch.

Read through inspect_ai's own `read_eval_log` when it is installed (`pip install 'lmms-nb[inspect]'`), and
otherwise by our reader of its documented format (an `.eval` file is a zip of `header.json` and
`samples/<id>_epoch_<n>.json`; a `.json` file is the whole EvalLog); both give the same table.

- model: `eval.model` without its provider (`openai/gpt-4o` -> `gpt-4o`, `hf/Qwen/Qwen2-VL-2B` ->
  `Qwen__Qwen2-VL-2B`, as lmms-eval names it; `openai-api/<service>/<model>` -> `<model>`); task: `eval.task`;
  run_id: `eval.run_id`;
- doc_id: the sample id when it is an integer, else its position in `eval.dataset.sample_ids`;
- filter: "none", or `epoch_<n>` when the task ran several epochs;
- a metric column per scorer (`match`, `choice`...; a scorer with a dict value gives one column per key, as
  inspect names them in its results), values as inspect's `value_to_float` reads them (C=1, I=0, P=0.5, N=0);
- input: the text of the input; target; prediction: `output.completion`; category: from the sample's metadata;
  image_ref `inspect:<log file>#<sample id>/<epoch>` for an image in the input (inline or an attachment),
  `file:<path>` for one given by path.

A log whose status is not "success" (an interrupted or failed run) loads with a warning.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._records import CATEGORY_FIELDS, COLLISION_PREFIX
from lmms_nb.logs._runinfo import sanitize
from lmms_nb.logs.schema import FIXED_COLUMNS

__all__ = ["read_inspect_log", "looks_like_inspect", "inspect_image"]

_EXPECT = "an inspect_ai log (.eval archive or .json EvalLog)"
_LETTER_VALUES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
_SAMPLE_NAME = re.compile(r"^samples/(?P<id>.+)_epoch_(?P<epoch>\d+)\.json$")


def looks_like_inspect(path: Path, head: bytes | None = None) -> bool:
    """An `.eval` zip with inspect's header/journal, or a `.json` whose head is an EvalLog."""
    suffix = path.suffix.lower()
    if suffix == ".eval":
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
        return "header.json" in names or "_journal/start.json" in names
    if suffix == ".json" and head is not None:
        text = head.lstrip()
        return text.startswith(b"{") and all(k in head for k in (b'"version"', b'"status"', b'"eval"'))
    return False


_ZIP_ZSTANDARD = 93  # inspect_ai compresses .eval members with zstd, which zipfile reads only from Python 3.14


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.compress_type != _ZIP_ZSTANDARD or getattr(zipfile, "ZIP_ZSTANDARD", None) == _ZIP_ZSTANDARD:
        return archive.read(name)
    import zstandard

    # the member's raw bytes follow its local header (30 bytes, then the name and the extra field)
    fh = archive.fp
    fh.seek(info.header_offset)
    header = fh.read(30)
    skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    fh.seek(info.header_offset + 30 + skip)
    raw = fh.read(info.compress_size)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
    return reader.read()


def _load_ours(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "header.json" in names:
            log = json.loads(_member(archive, "header.json"))
        else:  # a run still going or killed: only the journal's start record
            log = json.loads(_member(archive, "_journal/start.json"))
            log.setdefault("status", "started")
        samples = []
        for name in names:
            if _SAMPLE_NAME.match(name):
                samples.append(json.loads(_member(archive, name)))
    samples.sort(key=lambda s: (s.get("epoch", 1), str(s.get("id"))))
    log["samples"] = samples
    return log


def _load_with_inspect(path: Path) -> dict[str, Any] | None:
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        return None
    log = read_eval_log(str(path))
    return log.model_dump(mode="json", exclude_none=True)


def _load(path: Path, use_inspect: bool | None) -> dict[str, Any]:
    if use_inspect is not False:
        loaded = _load_with_inspect(path)
        if loaded is not None:
            return loaded
        if use_inspect:
            raise ImportError("inspect_ai is not installed (pip install 'lmms-nb[inspect]')")
    return _load_ours(path)


def model_name(model: str | None) -> str | None:
    """inspect's `provider/model` as lmms-eval names models.

    >>> model_name("openai/gpt-4o"), model_name("hf/Qwen/Qwen2-VL-2B"), model_name("openai-api/local/tiny-vlm")
    ('gpt-4o', 'Qwen__Qwen2-VL-2B', 'tiny-vlm')
    """
    if not model:
        return None
    parts = model.split("/")
    if parts[0] == "openai-api" and len(parts) > 2:
        parts = parts[2:]
    elif len(parts) > 1:
        parts = parts[1:]
    return sanitize("/".join(parts))


def value_to_float(value: Any) -> float | None:
    """inspect_ai's `value_to_float`: numbers, booleans, C/I/P/N, yes/no/true/false, numeric text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in _LETTER_VALUES:
            return _LETTER_VALUES[value]
        lowered = value.strip().lower()
        if lowered in ("yes", "true"):
            return 1.0
        if lowered in ("no", "false"):
            return 0.0
        try:
            return float(lowered)
        except ValueError:
            return None
    return None


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [c.get("text") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


def _input_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [_text_of(m.get("content")) for m in value if isinstance(m, dict) and m.get("role") != "system"]
        texts = [t for t in texts if t]
        return "\n".join(texts) if texts else None
    return None


def _first_image(value: Any) -> str | None:
    if not isinstance(value, list):
        return None
    for message in value:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image" and isinstance(part.get("image"), str):
                    return part["image"]
    return None


def inspect_image(ref_rest: str) -> str:
    """The image data URI (or path) behind `inspect:<log file>#<sample id>/<epoch>`; ValueError if there is none."""
    file, _, key = ref_rest.rpartition("#")
    sample_id, _, epoch = key.rpartition("/")
    log = _load_ours(Path(file))
    for sample in log.get("samples") or []:
        if str(sample.get("id")) == sample_id and str(sample.get("epoch", 1)) == epoch:
            image = _first_image(sample.get("input"))
            if image and image.startswith("attachment://"):
                image = (sample.get("attachments") or {}).get(image[len("attachment://"):])
            if image:
                return image
    raise ValueError(f"no image for sample {sample_id!r} epoch {epoch} in {file}")


def _scores(sample: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for scorer, score in (sample.get("scores") or {}).items():
        value = score.get("value") if isinstance(score, dict) else None
        if isinstance(value, dict):
            for key, inner in value.items():
                out[str(key)] = value_to_float(inner)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                out[f"{scorer}.{i}"] = value_to_float(inner)
        else:
            out[scorer] = value_to_float(value)
    return out


def read_inspect_log(path: Path, problems: Problems, *, use_inspect: bool | None = None) -> pl.DataFrame | None:
    """Canonical rows of one inspect_ai log; None (after reporting) when it cannot be read.

    use_inspect: None uses inspect_ai's reader when it is installed, True requires it, False uses ours.
    """
    try:
        log = _load(path, use_inspect)
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure (zip, JSON, pydantic) is this file's format error
        problems.error(path, None, f"cannot read the log ({type(e).__name__}: {str(e)[:200]})", _EXPECT)
        return None
    spec = log.get("eval") if isinstance(log.get("eval"), dict) else {}
    samples = log.get("samples") or []
    status = log.get("status")
    expected = (spec.get("dataset") or {}).get("samples")
    epochs = (spec.get("config") or {}).get("epochs") or 1
    if status != "success":
        problems.warning(path, None, f"a partial run (status {status!r}): {len(samples)} sample(s) logged"
                         + (f" of {expected * epochs}" if expected else ""), "a finished run (status 'success')")
    if not samples:
        if status == "success":
            problems.error(path, None, "no samples in the log (run with log_samples=False?)", _EXPECT)
        return None
    ids = list((spec.get("dataset") or {}).get("sample_ids") or [])
    all_int = all(isinstance(s.get("id"), int) and not isinstance(s.get("id"), bool) for s in samples)
    order = {str(v): i for i, v in enumerate(ids)}
    fallback = {v: i for i, v in enumerate(sorted({str(s.get("id")) for s in samples} - set(order)), start=len(ids))}
    several_epochs = epochs > 1 or len({s.get("epoch", 1) for s in samples}) > 1
    task = str(spec.get("task") or path.stem).rsplit("/", 1)[-1]
    records = []
    renamed: set[str] = set()
    for sample in samples:
        sid, epoch = sample.get("id"), sample.get("epoch", 1)
        doc_id = sid if all_int else order.get(str(sid), fallback.get(str(sid)))
        output = sample.get("output") or {}
        completion = output.get("completion")
        if not completion and output.get("choices"):
            completion = _text_of(((output["choices"][0] or {}).get("message") or {}).get("content"))
        image = _first_image(sample.get("input"))
        if image is None:
            image_ref = None
        elif image.startswith(("attachment://", "data:")):
            image_ref = f"inspect:{path}#{sid}/{epoch}"
        else:
            image_ref = f"file:{image}"
        metadata = sample.get("metadata") if isinstance(sample.get("metadata"), dict) else {}
        category = next((metadata[k] for k in CATEGORY_FIELDS if isinstance(metadata.get(k), str)), None)
        target = sample.get("target")
        error = sample.get("error")
        usage = output.get("usage") or {}
        row: dict[str, Any] = {
            "run_id": spec.get("run_id") or spec.get("eval_id") or path.stem,
            "model": model_name(spec.get("model")),
            "task": task,
            "doc_id": doc_id,
            "filter": f"epoch_{epoch}" if several_epochs else "none",
            "input": _input_text(sample.get("input")),
            "target": target if isinstance(target, str) or target is None else json.dumps(target, ensure_ascii=False),
            "prediction": completion,
            "raw_response": completion,
            "category": category,
            "image_ref": image_ref,
            "error": (error.get("message") if isinstance(error, dict) else str(error)) if error else None,
            "latency_s": sample.get("total_time"),
            "output_tokens": usage.get("output_tokens"),
            "run_status": {"success": "finished", "error": "failed"}.get(status, "partial"),
            "source_format": "inspect_ai",
            "source_file": str(path),
        }
        for name, value in _scores(sample).items():
            if name in FIXED_COLUMNS:
                renamed.add(name)
                name = COLLISION_PREFIX + name
            row[name] = value
        records.append(row)
    for name in sorted(renamed):
        problems.warning(path, None, f"a scorer is named {name!r}, like a column of the canonical table: kept as "
                         f"{COLLISION_PREFIX + name!r}", "scorer names that are not columns")
    frame = pl.DataFrame(records, infer_schema_length=None)
    exprs = [pl.col(c).cast(t, strict=False) if c in frame.columns else pl.lit(None, t).alias(c)
             for c, t in FIXED_COLUMNS.items()]
    metrics = [pl.col(c).cast(pl.Float64, strict=False) for c in frame.columns if c not in FIXED_COLUMNS]
    return frame.select(exprs + metrics).sort("filter", "doc_id", maintain_order=True)
