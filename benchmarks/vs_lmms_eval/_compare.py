"""Agreement of the vs-lmms-eval benchmark: per-sample answers and metric values of lmms-nb's logs against
lmms-eval's, and the key-and-type diff of a sample line and of the results JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["compare", "key_type_diff", "lmms_eval_samples", "shape"]


def shape(value: Any) -> Any:
    """A JSON value's keys and types (numbers as one type), for the key-and-type diff."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def key_type_diff(ours: dict, theirs: dict, where: str = "") -> list[str]:
    """Keys lmms-eval writes that lmms-nb lacks, and values whose type differs (lmms-nb's extra keys are fine)."""
    out = []
    for key, value in theirs.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in ours:
            out.append(f"missing {path}")
        elif isinstance(value, dict) and isinstance(ours[key], dict):
            out.extend(key_type_diff(ours[key], value, path))
        elif value is not None and ours[key] is not None and shape(ours[key]) != shape(value):
            out.append(f"type of {path}: lmms-nb {shape(ours[key])} vs lmms-eval {shape(value)}")
    return out


def lmms_eval_samples(results_file: Path, task: str, filters: list[str]) -> dict[tuple[int, str], dict]:
    """(doc_id, filter) -> sample. lmms-eval writes one block of lines per filter, in filter_list order."""
    [path] = results_file.parent.glob(f"{results_file.name.removesuffix('_results.json')}_samples_{task}.jsonl")
    seen: dict[int, int] = {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        k = seen.get(sample["doc_id"], 0)
        seen[sample["doc_id"]] = k + 1
        out[(sample["doc_id"], filters[k])] = sample
    return out


def _first(value: Any) -> Any:
    while isinstance(value, list):
        value = value[0] if value else ""
    return value


def _same(a: Any, b: Any) -> bool:
    """Metric values equal: numbers as floats (0 and 0.0), anything else (a process_results dict) as JSON."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def compare(task, ours_file: Path, theirs: dict[tuple[int, str], dict]) -> dict[str, Any]:
    """Agreement per doc of the raw answer (lmms-eval logs it only as the `raw` take_first filter's output) and
    per (doc, filter) of the filtered answer and every metric value."""
    ours = {}
    for line in ours_file.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        ours[(rec["doc_id"], rec["filter"])] = rec
    # the raw answer: the `raw` (take_first) filter's output, or the only filter's when the task has one (pope)
    filters = {f for _, f in theirs}
    raw_filter = filters.pop() if len(filters) == 1 else "raw"
    their_raw = {doc: str(_first(s["filtered_resps"])) for (doc, f), s in theirs.items() if f == raw_filter}
    our_raw = {doc: rec.get("raw_response") or "" for (doc, _), rec in ours.items()}
    docs = sorted(set(their_raw) | set(our_raw))
    same_raw = sum(our_raw.get(d, "\0").strip() == their_raw.get(d, "\1").strip() for d in docs)
    metrics = [m.name for m in task.metrics]
    keys = sorted(set(ours) | set(theirs))
    same_filtered = same_metrics = 0
    disagreements = []
    for key in keys:
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            disagreements.append((key, "missing in " + ("lmms-nb" if a is None else "lmms-eval")))
            continue
        ours_filtered, theirs_filtered = str(_first(a["filtered_resps"])), str(_first(b["filtered_resps"]))
        filtered_ok = ours_filtered.strip() == theirs_filtered.strip()
        metric_ok = all(a.get(m) is not None and _same(a[m], b.get(m)) for m in metrics)
        same_filtered += filtered_ok
        same_metrics += metric_ok
        if not (filtered_ok and metric_ok):
            disagreements.append((key, {"lmms-nb": [ours_filtered, [a.get(m) for m in metrics]],
                                        "lmms-eval": [theirs_filtered, [b.get(m) for m in metrics]]}))
    return {"docs": len(docs), "pairs": len(keys), "raw": same_raw / max(1, len(docs)),
            "filtered": same_filtered / max(1, len(keys)), "metrics": same_metrics / max(1, len(keys)),
            "disagreements": disagreements[:5]}
