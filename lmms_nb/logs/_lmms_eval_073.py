"""Sample lines and results JSON shaped key for key and type for type as lmms-eval 0.7.3 writes them.

A 0.7.3 sample line of a `generate_until` task (one request per doc) is, in this order: doc_id, target (a string),
resps (the filter's output before reasoning tags and whitespace are stripped; only when it differs),
filtered_resps (a string), token_counts (a list with one dict per request), doc_hash, one key per metric, input.
Its results JSON holds results (per task: alias, `metric,filter`, `_stderr`, `_stderr_clt`, `_stderr_clustered`),
group_subtasks, configs, versions, n-shot, higher_is_better, n-samples, config, git_hash, git_branch,
lmms_eval_version, date, throughput, usage, efficiency, task_hashes and the run tracker's model_source, model_name,
model_name_sanitized, system_instruction(_sha), fewshot_as_multiturn, chat_template(_sha), start_time, end_time,
total_evaluation_time_seconds. lmms-nb's own keys go beside them (in each line after lmms-eval's, and under
`lmms_nb` in the results).

Example:
    >>> line = sample_line(doc_id=3, target=6, resps=" 6", filtered_resps="6", output_tokens=1,
    ...                    doc={"question": "How many?"}, metrics={"exact_match": 1.0}, input="How many?")
    >>> list(line), line["filtered_resps"], line["token_counts"]
    (['doc_id', 'target', 'resps', 'filtered_resps', 'token_counts', 'doc_hash', 'exact_match', 'input'], '6', [{'output_tokens': 1}])
    >>> strip_reasoning("<think>hmm</think> B ")
    'B'
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lmms_nb.tasks import filters
from lmms_nb.tasks.filters import DEFAULT_REASONING_TAGS

__all__ = ["DEFAULT_REASONING_TAGS", "clt_stderr", "doc_hash", "results_extras", "sample_line", "strip_reasoning",
           "task_config_073"]

#: lmms-eval 0.7.3's --reasoning_tags default: blocks removed from every filtered answer before scoring

#: TaskConfig fields 0.7.3 writes for every task in `configs`, with the defaults it writes when a YAML omits them
_TASK_CONFIG_DEFAULTS: dict[str, Any] = {
    "full_docs": False, "process_results_use_image": False, "description": "", "target_delimiter": " ",
    "fewshot_delimiter": "\n\n", "num_fewshot": 0, "repeats": 1, "should_decontaminate": False,
    "score_key": "score", "auto_strip_thinking": False,
}


def strip_reasoning(text: str, tag_pairs: Sequence[Sequence[str]] | None = DEFAULT_REASONING_TAGS) -> str:
    """lmms-eval 0.7.3's strip_reasoning_tags (`filters.strip_reasoning`) on a logged answer; `tag_pairs=None`
    (reasoning tags off) and answers that are not text come back unchanged."""
    if tag_pairs is None or not isinstance(text, str):
        return text
    return filters.strip_reasoning(text, tag_pairs)


def doc_hash(doc: Mapping[str, Any] | None = None) -> str:
    """0.7.3's `doc_hash`: sha256 of `json.dumps(requests[0].doc, indent=2)`. 0.7.3's tasks never set an
    Instance's `doc` (the `doc=doc` arguments are commented out in its `construct_requests`), so every line it
    writes hashes JSON null, whatever the doc; we write the same value, so `task_hashes` agree too.

    >>> doc_hash({"question": "q"}) == doc_hash() == hashlib.sha256(b"null").hexdigest()
    True
    """
    return hashlib.sha256(json.dumps(None, indent=2).encode()).hexdigest()


def sample_line(*, doc_id: int, target: Any, resps: Any, filtered_resps: Any, output_tokens: int | None,
                doc: Mapping[str, Any], metrics: Mapping[str, Any], input: Any, input_tokens: int | None = None,
                reasoning_tokens: int | None = None) -> dict[str, Any]:
    """One (doc, filter) line as 0.7.3 writes it (see the module docstring); our keys are added by the caller."""
    line: dict[str, Any] = {"doc_id": doc_id, "target": str(target)}
    resps_text = _logged(resps)
    filtered_text = _logged(filtered_resps)
    if resps_text != filtered_text:
        line["resps"] = resps_text
    line["filtered_resps"] = filtered_text
    # 0.7.3's TokenCounts.to_dict: the counts the backend reported, in this order (None when it reported none)
    counts = {k: int(v) for k, v in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                                     ("reasoning_tokens", reasoning_tokens)) if v is not None}
    line["token_counts"] = [counts or None]
    line["doc_hash"] = doc_hash(doc)
    line.update(metrics)
    line["input"] = input
    return line


def _logged(value: Any) -> Any:
    # 0.7.3's sanitize_list: a list (several answers kept with `repeats`) stays a list of strings
    if isinstance(value, (list, tuple)):
        return [_logged(v) for v in value]
    return "" if value is None else str(value)


def clt_stderr(values: Sequence[Any], score_key: str = "score") -> float | str:
    """0.7.3's `_stderr_clt`: the sample standard deviation over sqrt(n) of the numeric values (dict values give
    their `score_key`), "N/A" below two values."""
    numbers = []
    for v in values:
        if isinstance(v, Mapping):
            if isinstance(v.get(score_key), (int, float)):
                numbers.append(float(v[score_key]))
        elif isinstance(v, (int, float)):
            numbers.append(float(v))
    numbers = [x for x in numbers if not math.isnan(x)]
    n = len(numbers)
    if n < 2:
        return "N/A"
    mean = sum(numbers) / n
    return math.sqrt(sum((x - mean) ** 2 for x in numbers) / (n - 1)) / math.sqrt(n)


def task_config_073(config: Mapping[str, Any]) -> dict[str, Any]:
    """A task's `configs` entry with every field 0.7.3 writes (its defaults where the task leaves one out)."""
    out = dict(config)
    for key, value in _TASK_CONFIG_DEFAULTS.items():
        out.setdefault(key, value)
    version = (out.get("metadata") or {}).get("version") if isinstance(out.get("metadata"), Mapping) else None
    if isinstance(version, str):
        try:
            out["metadata"] = {**out["metadata"], "version": float(version)}
        except ValueError:
            pass
    return out


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _efficiency(lines_by_task: Mapping[str, Sequence[Mapping[str, Any]]], score_key: str = "score") -> dict:
    """0.7.3's `efficiency` block, from the sample lines (one "doc" per line, as it counts them)."""
    by_task = {}
    fields = ("docs", "docs_with_token_counts", "total_input_tokens", "total_output_tokens", "total_tokens",
              "total_correct_score")
    overall = dict.fromkeys(fields, 0.0)
    for task, lines in lines_by_task.items():
        counted = [t for line in lines for t in (line.get("token_counts") or []) if isinstance(t, Mapping)]
        out_tokens = float(sum(t.get("output_tokens", 0) for t in counted))
        in_tokens = float(sum(t.get("input_tokens", 0) for t in counted))
        correct = float(sum(line[score_key] for line in lines if isinstance(line.get(score_key), (int, float))))
        summary = {"docs": float(len(lines)), "docs_with_token_counts": float(len(counted)),
                   "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
                   "total_tokens": in_tokens + out_tokens, "total_correct_score": correct}
        for key in fields:
            overall[key] += summary[key]
        summary["avg_output_tokens_per_sample"] = out_tokens / len(counted) if counted else 0.0
        summary["tokens_per_correct_answer"] = out_tokens / correct if correct > 0 else None
        by_task[task] = summary
    overall["avg_output_tokens_per_sample"] = (overall["total_output_tokens"] / overall["docs_with_token_counts"]
                                               if overall["docs_with_token_counts"] else 0.0)
    overall["tokens_per_correct_answer"] = (overall["total_output_tokens"] / overall["total_correct_score"]
                                            if overall["total_correct_score"] > 0 else None)
    return {"by_task": by_task, "overall": overall}


def results_extras(*, task_names: Sequence[str], lines_by_task: Mapping[str, Sequence[Mapping[str, Any]]],
                   n_original: Mapping[str, int], higher_is_better: Mapping[str, Mapping[str, bool]],
                   n_shot: Mapping[str, int], model_source: str, model_name: str, model_name_sanitized: str,
                   date: str, start_time: float, end_time: float, generation_seconds: float,
                   version: str, system_instruction: str | None = None, chat_template: str | None = None,
                   fewshot_as_multiturn: bool = False, groups: Mapping[str, Sequence[str]] | None = None,
                   ) -> dict[str, Any]:
    """The results-JSON keys 0.7.3 writes beside results / configs / versions / config (see the module)."""
    subtasks: dict[str, list[str]] = {name: [] for name in task_names}
    for group, members in (groups or {}).items():
        subtasks[group] = list(members)
    task_hashes = {  # 0.7.3: over every line of the task's samples file, in order
        name: hashlib.sha256("".join(f"sample_{i}" + str(line.get("doc_hash", ""))
                                     for i, line in enumerate(lines)).encode()).hexdigest()
        for name, lines in lines_by_task.items()
    }
    generated = {(task, line.get("doc_id")): line.get("token_counts") or [] for task, lines in lines_by_task.items()
                 for line in lines}  # one generation per doc, however many filter lines it has
    output_tokens = sum(t.get("output_tokens", 0) for counts in generated.values() for t in counts
                        if isinstance(t, Mapping))
    n_effective = {name: len({line.get("doc_id") for line in lines}) for name, lines in lines_by_task.items()}
    return {
        "group_subtasks": dict(reversed(list(subtasks.items()))),
        "n-shot": {name: int(n_shot.get(name, 0)) for name in sorted(task_names)},
        "higher_is_better": {name: dict(higher_is_better.get(name, {})) for name in sorted(task_names)},
        "n-samples": {name: {"original": int(n_original.get(name, n_effective.get(name, 0))),
                             "effective": int(n_effective.get(name, 0))} for name in task_names},
        "git_hash": None,
        "git_branch": None,
        "lmms_eval_version": f"lmms-nb {version}",
        "date": date,
        "throughput": {"total_gen_tokens": int(output_tokens), "total_elapsed_time": float(generation_seconds),
                       "avg_speed": output_tokens / generation_seconds if generation_seconds > 0 else 0,
                       "avg_rank": 0.0},
        "usage": {},
        "efficiency": _efficiency(lines_by_task),
        "task_hashes": task_hashes,
        "model_source": model_source,
        "model_name": model_name,
        "model_name_sanitized": model_name_sanitized,
        "system_instruction": system_instruction,
        "system_instruction_sha": _sha(system_instruction),
        "fewshot_as_multiturn": bool(fewshot_as_multiturn),
        "chat_template": chat_template,
        "chat_template_sha": _sha(chat_template),
        "start_time": float(start_time),
        "end_time": float(end_time),
        "total_evaluation_time_seconds": str(end_time - start_time),
    }
