"""VLMEvalKit's per-model score tables (`<model>_<dataset>_score.csv`, `_acc.csv`, `_score.json`...) as long rows
(model, task, metric, value): `load_scores` reads them (source_format "vlmevalkit_score"); they are not per-sample.

Example:
    >>> import tempfile
    >>> from lmms_nb.logs._errors import Problems
    >>> path = Path(tempfile.mkdtemp()) / "InternVL2-2B_MME_score.csv"
    >>> _ = path.write_text("perception,reasoning\\n1500.5,350\\n")
    >>> read_score_table(path, Problems(strict=True)).rows()
    [('InternVL2-2B', 'MME', 'perception', 1500.5), ('InternVL2-2B', 'MME', 'reasoning', 350.0)]
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._vlmevalkit import read_table, split_model_dataset

__all__ = ["LABEL_COLUMNS", "read_score_table"]


#: Columns that label the rows of a score table (MMBench `split`, older tables' `Category`, MMSci `subject`...).
LABEL_COLUMNS = ("split", "category", "field", "task&skill", "subject", "l2-category", "dimension", "task", "type")
_UNNAMED = re.compile(r"^(?:|Unnamed: \d+|__UNNAMED__\d+|index)$")


def _number(text: object) -> float | None:
    if text is None:
        return None
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _score_json(path: Path) -> list[tuple[str, float]]:
    payload = json.loads(path.read_text(encoding="utf-8"))

    def flatten(prefix: str, value: object) -> list[tuple[str, float]]:
        if isinstance(value, bool):
            return []
        if isinstance(value, (int, float)):
            return [(prefix, float(value))]
        if isinstance(value, dict):
            return [item for k, v in value.items() for item in flatten(f"{prefix}/{k}" if prefix else str(k), v)]
        return []

    return flatten("", payload)


def read_score_table(path: Path, problems: Problems) -> pl.DataFrame | None:
    """Long rows (model, task, metric, value) of a per-model score table, every layout VLMEvalKit has written.

    - one row of numbers (MME `_score.csv`, VQA `_acc.csv`): metric = the column;
    - rows labelled by a column (`split` in MMBench's `_acc.csv`, `Category` in 2023 `_prefetch.xlsx` / MMVet,
      `field`, `Task&Skill` in MathVista...; any text column counts): metric = `<column>/<label>`, e.g.
      `Overall/dev`, `acc/Overall`; several label columns join with "/";
    - a pandas index written as an unnamed first column: dropped when it only counts rows, a label otherwise;
    - JSON scores (`_score.json` of OCRBench, `_acc.json` of MTVQA): metric = the key (nested keys joined by "/").
    """
    expected = "a VLMEvalKit score table (a header row and rows of numbers)"
    model, dataset = split_model_dataset(path)
    schema = {"model": pl.String, "task": pl.String, "metric": pl.String, "value": pl.Float64}
    if path.suffix.lower() == ".json":
        try:
            items = _score_json(path)
        except (OSError, ValueError, RecursionError) as e:
            problems.error(path, None, f"cannot read the scores ({type(e).__name__}: {str(e)[:200]})", expected)
            return None
        if not items:
            problems.error(path, None, "no number in the JSON", expected)
            return None
        return pl.DataFrame([(model, dataset, k, v) for k, v in items], schema=schema, orient="row")
    try:
        frame = read_table(path)
    except Exception as e:  # noqa: BLE001
        problems.error(path, None, f"cannot read the table ({type(e).__name__}: {str(e)[:200]})", expected)
        return None
    if frame.height == 0:
        problems.error(path, None, "empty table", expected)
        return None
    records = frame.rows(named=True)
    unnamed = [c for c in frame.columns if _UNNAMED.match(c)]
    counting = [c for c in unnamed if [_number(r[c]) for r in records] == [float(i) for i in range(len(records))]
                or [_number(r[c]) for r in records] == [float(i) for i in range(1, len(records) + 1)]]
    columns = [c for c in frame.columns if c not in counting]
    labels = [c for c in columns if c.strip().lower() in LABEL_COLUMNS
              or any(r[c] is not None and _number(r[c]) is None for r in records)]
    if not labels and len(records) > 1:
        labels = [c for c in unnamed if c in columns][:1]
    rows = []
    for record in records:
        label = "/".join(str(record[c]) for c in labels if record[c] is not None) if labels else ""
        for metric in columns:
            if metric in labels:
                continue
            value = _number(record[metric])
            if value is None:
                continue
            rows.append((model, dataset, f"{metric}/{label}" if label else metric, value))
    if not rows:
        problems.error(path, None, "no numeric cell", expected)
        return None
    return pl.DataFrame(rows, schema=schema, orient="row")
