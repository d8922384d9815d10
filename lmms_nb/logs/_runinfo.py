"""What a samples file does not say about itself: model, run, split and filter names, from its results JSON.

lmms-eval, lm-evaluation-harness and lmms-nb write one results JSON per run next to the per-sample files.
The model name comes from it (``model_name_sanitized``, else ``config.model_args``), the folder name being the
fallback; splits come from ``configs.<task>.test_split`` and filter names, in order, from
``configs.<task>.filter_list``.

Example:
    >>> model_from_model_args("pretrained=liuhaotian/llava-v1.5-7b,device_map=auto")
    'liuhaotian__llava-v1.5-7b'
    >>> model_from_model_args("pretrained=/opt/hf/hub/models--Qwen--Qwen2-VL-2B/snapshots/0a1b2c")
    'Qwen__Qwen2-VL-2B'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# lmms-eval's `sanitize_model_name`: characters that cannot be in a folder name become "__"
_UNSAFE = re.compile(r"[\"<>:/|\\?*\[\]]+")
# a Hugging Face cache folder (`.../models--Org--Name/snapshots/<sha>`) names the model it holds
_HF_CACHE = re.compile(r"models--([^/\\]+?)--([^/\\,]+)")
# lmms-eval's `_get_model_name` prefixes, in its order (peft/delta come with pretrained and win)
_MODEL_ARG_KEYS = ("peft", "delta", "pretrained", "model", "model_version", "model_name", "model_id", "path", "engine")
# `model_name_sanitized` values that are artefacts of a local path rather than a name
_ARTEFACT_NAME = re.compile(r"^(?:snapshots__)?[0-9a-f]{20,}$|^snapshots__")


def sanitize(name: str) -> str:
    """lmms-eval's folder-safe model name: `org/model` -> `org__model`.

    >>> sanitize("Qwen/Qwen2-VL-7B-Instruct")
    'Qwen__Qwen2-VL-7B-Instruct'
    """
    return _UNSAFE.sub("__", name).strip("_") or name


def _parse_model_args(model_args: Any) -> dict[str, str]:
    if isinstance(model_args, dict):
        return {str(k): str(v) for k, v in model_args.items() if v is not None}
    if not isinstance(model_args, str):
        return {}
    out: dict[str, str] = {}
    for part in model_args.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def model_from_model_args(model_args: Any) -> str | None:
    """The model a `model_args` string (or dict) names, folder-safe; None when it names none."""
    text = model_args if isinstance(model_args, str) else json.dumps(model_args, default=str)
    cached = _HF_CACHE.search(text or "")
    if cached:
        return f"{cached.group(1)}__{cached.group(2)}"
    args = _parse_model_args(model_args)
    for key in _MODEL_ARG_KEYS:
        value = args.get(key)
        if value:
            if value.startswith(("/", "./", "../", "~")):
                # a local checkpoint: its last two folders say more than the whole absolute path
                parts = [p for p in Path(value).parts if p not in ("/", "~", ".", "..")]
                value = "/".join(parts[-2:])
            return sanitize(value)
    return None


def model_from_results(results: dict[str, Any]) -> str | None:
    """The model of a results JSON: a Hugging Face cache path wins, then `model_name_sanitized`, then model_args."""
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    if not config and isinstance(results.get("model_configs"), dict):
        config = results["model_configs"]  # lmms-eval <= 0.2.3 results.json
    model_args = config.get("model_args")
    for text in (results.get("model_name"), model_args):
        if isinstance(text, str):
            cached = _HF_CACHE.search(text)
            if cached:
                return f"{cached.group(1)}__{cached.group(2)}"
    sanitized = results.get("model_name_sanitized")
    if isinstance(sanitized, str) and sanitized and not _ARTEFACT_NAME.search(sanitized):
        return sanitized
    from_args = model_from_model_args(model_args)
    if from_args:
        return from_args
    name = results.get("model_name") or config.get("model")
    return sanitize(str(name)) if name else None


@dataclass
class RunInfo:
    """Run-level facts shared by the rows of one samples file."""

    source_format: str
    model: str | None = None
    run_id: str | None = None
    splits: dict[str, str] = field(default_factory=dict)
    filters: dict[str, list[str]] = field(default_factory=dict)
    results_file: Path | None = None
    #: "finished", "partial" or "failed" (see `lmms_nb.logs.schema`), None when unknown
    status: str | None = None
    #: docs per task the results JSON says the run covers (`n-samples.<task>.effective`)
    expected: dict[str, int] = field(default_factory=dict)


def run_status(results: dict[str, Any]) -> str | None:
    """The state of the run a results JSON describes: lmms-nb records it; other tools write it when done.

    >>> run_status({"lmms_nb": {"status": "stopped"}}), run_status({"results": {}})
    ('partial', 'finished')
    """
    ours = results.get("lmms_nb")
    if not isinstance(ours, dict):
        return "finished"  # lmms-eval and lm-evaluation-harness write their results JSON at the end
    status = ours.get("status")
    if status not in ("complete", "complete_with_errors"):
        return "partial"  # "running" (killed) or "stopped"
    expected = sum(_expected_docs(results).values())
    return "failed" if expected and (ours.get("n_errors") or 0) >= expected else "finished"


def _expected_docs(results: dict[str, Any]) -> dict[str, int]:
    out = {}
    for task, counts in (results.get("n-samples") or {}).items():
        if isinstance(counts, dict) and isinstance(counts.get("effective"), int):
            out[str(task)] = counts["effective"]
    return out


def read_results_json(path: Path) -> dict[str, Any]:
    """A results JSON as a dict; raises ValueError (with the reason) when it is not one."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON at line {e.lineno} ({e.msg})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"a JSON {type(payload).__name__} instead of an object")
    return payload


def task_splits(results: dict[str, Any]) -> dict[str, str]:
    """task -> split, from `configs.<task>.test_split` (validation_split when a task has no test split)."""
    out: dict[str, str] = {}
    configs = results.get("configs")
    if isinstance(configs, dict):
        for task, cfg in configs.items():
            if isinstance(cfg, dict):
                split = cfg.get("test_split") or cfg.get("validation_split")
                if isinstance(split, str):
                    out[str(task)] = split
    return out


def task_filters(results: dict[str, Any]) -> dict[str, list[str]]:
    """task -> filter names in the order lmms-eval applies (and logs) them, from `configs.<task>.filter_list`."""
    out: dict[str, list[str]] = {}
    configs = results.get("configs")
    if isinstance(configs, dict):
        for task, cfg in configs.items():
            flist = cfg.get("filter_list") if isinstance(cfg, dict) else None
            if isinstance(flist, list):
                names = [f.get("name") for f in flist if isinstance(f, dict) and isinstance(f.get("name"), str)]
                if names:
                    out[str(task)] = names
    return out


def run_info_from_results(results: dict[str, Any], results_file: Path, run_id: str) -> RunInfo:
    """RunInfo of a parsed results JSON; `source_format` is "lmms_nb" when it carries our `lmms_nb` block."""
    ours = results.get("lmms_nb")
    is_ours = isinstance(ours, dict)
    if is_ours and isinstance(ours.get("run_id"), str):
        run_id = ours["run_id"]
    return RunInfo(
        source_format="lmms_nb" if is_ours else "lmms_eval",
        model=model_from_results(results),
        run_id=run_id,
        splits=task_splits(results),
        filters=task_filters(results),
        results_file=results_file,
        status=run_status(results),
        expected=_expected_docs(results),
    )
