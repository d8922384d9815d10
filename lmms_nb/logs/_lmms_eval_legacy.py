"""lmms-eval before v0.2.4: one `<task>.json` per task holding `{"args", "model_configs", "logs": [...]}`.

Layouts: v0.1 `<out>/<model>/model_args_<hash6>/<MMDD_HHMM>_<suffix>/{results.json, <task>.json}` and
v0.2.0-0.2.3 `<out>/<MMDD_HHMM>_<suffix>_<model>_model_args_<hash6>/{results.json, <task>.json}`. Each entry
of `logs` is a sample with `doc`, `target`, `arguments`, `resps` (`[[...]]`) and `filtered_resps`, plus metrics.
The model comes from `args.model_args` (or the results JSON), the folder name being the fallback.

Example:
    >>> model_from_legacy_folder(Path("out/llava/model_args_1a2b3c/0315_1200_demo/mme.json"))
    'llava'
    >>> model_from_legacy_folder(Path("out/0315_1200_demo_llava_model_args_1a2b3c/mme.json"))
    'demo_llava'
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._runinfo import model_from_model_args, model_from_results, read_results_json, task_filters
from lmms_nb.logs._samples import FileMeta, normalize_rows, resolve_filters, rows_to_frame

_V020_FOLDER = re.compile(r"^\d{4}_\d{4}_(.+)_model_args_[0-9a-f]{6}$")
_V01_RUN = re.compile(r"^\d{4}_\d{4}(?:_.*)?$")
_EXPECT = 'a JSON object {"args", "model_configs", "logs": [...]} (an lmms-eval <= v0.2.3 task log)'


def model_from_legacy_folder(path: Path) -> str | None:
    """The model named by the folders of a legacy task log (the fallback when its JSON names none)."""
    parent = path.parent
    match = _V020_FOLDER.match(parent.name)
    if match:
        return match.group(1)
    if _V01_RUN.match(parent.name) and parent.parent.name.startswith("model_args_"):
        return parent.parent.parent.name or None
    return parent.name or None


def legacy_run_id(path: Path) -> str:
    """The run folder (v0.1: `model_args_<hash>/<MMDD_HHMM>_<suffix>`; v0.2.0: its one folder)."""
    parent = path.parent
    if parent.parent.name.startswith("model_args_"):
        return f"{parent.parent.name}/{parent.name}"
    return parent.name


def read_legacy_json(path: Path, problems: Problems) -> pl.DataFrame | None:
    """Rows of one legacy task log; None (after reporting) when the file is not one."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        where = getattr(e, "lineno", None)
        problems.error(path, where, f"cannot parse the file ({getattr(e, 'msg', None) or e})", _EXPECT)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("logs"), list):
        problems.error(path, None, "no `logs` list", _EXPECT)
        return None
    args = payload.get("args") if isinstance(payload.get("args"), dict) else {}
    task_config = payload.get("model_configs") if isinstance(payload.get("model_configs"), dict) else {}

    results: dict[str, Any] = {}
    results_file = path.parent / "results.json"
    if results_file.is_file():
        try:
            results = read_results_json(results_file)
        except ValueError as e:
            problems.error(results_file, None, f"unreadable results JSON: {e}", "a JSON object")
    task = task_config.get("task") if isinstance(task_config.get("task"), str) else path.stem
    model = (
        model_from_model_args(args.get("model_args"))
        or (model_from_results(results) if results else None)
        or model_from_legacy_folder(path)
    )
    filters = task_filters({"configs": {task: task_config}}).get(task) or task_filters(results).get(task, [])
    split = task_config.get("test_split") or task_config.get("validation_split")
    meta = FileMeta(
        path=path,
        source_format="lmms_eval",
        model=model,
        task=task,
        run_id=legacy_run_id(path),
        split=split if isinstance(split, str) else None,
        filters=filters,
    )
    records = ((None, f"logs[{i}]", rec) for i, rec in enumerate(payload["logs"]))
    rows = resolve_filters(normalize_rows(records, meta, problems), meta, problems)
    return rows_to_frame(rows, meta)
