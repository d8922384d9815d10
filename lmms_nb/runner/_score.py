"""Stage 3, score: responses -> filters -> per-sample metric values -> one log record per (doc, filter).

A scorer that raises on one sample becomes that sample's error; a NaN value (a failed LLM judgement) is
logged as null (missing, never a 0) and named in the record's `failed_metrics`. A retried doc carries the
earlier attempts' errors in `history`.
"""

from __future__ import annotations

import math
from typing import Any

from lmms_nb.logs._lmms_eval_073 import sample_line, strip_reasoning
from lmms_nb.models.base import Request, Response
from lmms_nb.tasks.task import Task

__all__ = ["is_failed", "metric_names", "score_batch"]


def metric_names(task: Task) -> set[str]:
    """The task's per-sample metrics: one key each in every log record."""
    return {m.name for m in task.metrics if m.per_sample}


def is_failed(record: dict[str, Any]) -> bool:
    """Whether a log record is a failure to retry: a model or scorer error, or a metric without a value."""
    return record.get("error") is not None or bool(record.get("failed_metrics"))


def score_batch(task: Task, doc_ids: list[int], docs: list[dict[str, Any]], requests: list[Request],
                responses: list[Response], *, run_id: str, model_name: str,
                history: dict[int, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The log records of one generated batch, doc by doc, one per filter, in lmms-eval's key layout plus ours."""
    image_ref_base = f"dataset:{task.dataset_path}" if task.dataset_path else None
    batched, filtered = _score_batched_metrics(task, docs, responses)
    records: list[dict[str, Any]] = []
    for k, (doc_id, doc, req, resp) in enumerate(zip(doc_ids, docs, requests, responses)):
        records.extend(_score_one(task, doc_id, doc, req, resp, run_id=run_id, model_name=model_name,
                                  image_ref_base=image_ref_base, history=(history or {}).get(doc_id),
                                  precomputed={f: v[k] for f, v in batched.items()},
                                  filtered={f: v[k] for f, v in filtered.items()}))
    return records


def _score_batched_metrics(task: Task, docs: list[dict[str, Any]], responses: list[Response]
                           ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[tuple[Any, Any] | Exception | None]]]:
    """Values of the task's batched metrics, per filter then per doc: {filter: [{metric: value | Exception}]},
    and the filters' outputs they scored, per filter then per doc: {filter: [`_filtered`'s pair | its error |
    None (a model error)]}, so that `_score_one` logs them without running the filters a second time.

    One call per metric and filter covers the whole batch (an LLM judge then sends its requests concurrently).
    A scorer that raises marks the batch's samples with that error instead of stopping the run.
    """
    metrics = task.batch_metrics()
    out: dict[str, list[dict[str, Any]]] = {}
    filtered: dict[str, list[tuple[Any, Any] | Exception | None]] = {}
    if not metrics:
        return out, filtered
    ok = [i for i, r in enumerate(responses) if r.error is None]
    for filter_name, filter_fn in task.filters.items():
        per_doc: list[dict[str, Any]] = [{} for _ in docs]
        outputs: list[tuple[Any, Any] | Exception | None] = [None for _ in docs]
        preds, idx = [], []
        for i in ok:
            try:
                outputs[i] = _filtered(task, filter_fn, responses[i], docs[i])
            except Exception as e:  # noqa: BLE001 - reported per sample by _score_one
                outputs[i] = e
                continue
            preds.append(outputs[i][1])
            idx.append(i)
        targets = [task.doc_to_target(docs[i]) for i in idx]
        for m in metrics:
            try:
                values = list(m.score_batch(preds, targets, [docs[i] for i in idx])) if idx else []
                if len(values) != len(idx):
                    raise RuntimeError(f"{m.name}: {len(values)} values for {len(idx)} samples")
            except Exception as e:  # noqa: BLE001
                values = [e] * len(idx)
            for i, v in zip(idx, values):
                per_doc[i][m.name] = v
        out[filter_name] = per_doc
        filtered[filter_name] = outputs
    return out, filtered


def _score_one(task: Task, doc_id: int, doc: dict[str, Any], req: Request, resp: Response, *, run_id: str,
               model_name: str, image_ref_base: str | None, history: list[dict[str, Any]] | None = None,
               precomputed: dict[str, dict[str, Any]] | None = None,
               filtered: dict[str, tuple[Any, Any] | Exception | None] | None = None) -> list[dict[str, Any]]:
    """One log record per filter for this doc (`filtered`: the filters' outputs, when already computed)."""
    target = task.doc_to_target(doc)
    category = doc.get(task.category_column) if task.category_column else None
    # in metric_list order: the order lmms-eval writes a sample line's metric keys in
    names = [m.name for m in task.metrics if m.per_sample]
    records = []
    for filter_name, filter_fn in task.filters.items():
        error = resp.error
        failed: list[str] = []
        prediction = before_strip = None
        values: dict[str, float | None] = {m: None for m in names}
        if error is None:
            try:
                earlier = (filtered or {}).get(filter_name)
                if isinstance(earlier, Exception):
                    raise earlier
                before_strip, prediction = earlier if earlier is not None else _filtered(task, filter_fn, resp, doc)
                batched = (precomputed or {}).get(filter_name, {})
                if task.process_results is not None:
                    values.update(task.score(doc, prediction))
                else:
                    target_value = task.doc_to_target(doc)
                    for m in task.metrics:
                        if not m.per_sample:
                            continue
                        if m.name in batched:
                            v = batched[m.name]
                            if isinstance(v, Exception):
                                raise v
                            values[m.name] = float(v)
                        else:
                            values[m.name] = float(m.score(prediction, target_value, doc))
                failed = sorted(k for k, v in values.items() if isinstance(v, float) and math.isnan(v))
                values = {k: (None if k in failed else v) for k, v in values.items()}
            except Exception as e:  # noqa: BLE001 - a scorer bug on one sample is that sample's error
                error = f"scoring failed: {type(e).__name__}: {e}"
                values = {m: None for m in names}
        # lmms-eval 0.7.3's keys, shapes and order (lmms_nb.logs._lmms_eval_073), then ours
        rec = sample_line(doc_id=doc_id, target=target, resps=before_strip if error is None else None,
                          filtered_resps=prediction, output_tokens=resp.output_tokens, doc=req.doc or {},
                          metrics=values, input=req.prompt if req.logged_prompt is None else req.logged_prompt,
                          input_tokens=getattr(resp, "input_tokens", None),
                          reasoning_tokens=getattr(resp, "reasoning_tokens", None))
        if resp.repeats is not None:
            # lmms-eval logs the first of the k answers' token counts; every answer is kept here beside it
            rec["token_counts"] = [{"output_tokens": int(resp.repeats[0].output_tokens)}
                                   if resp.repeats[0].output_tokens is not None else None]
        rec.update({
            "filter": filter_name,
            "run_id": run_id,
            "model": model_name,
            "task": task.name,
            "split": task.split,
            "category": None if category is None else str(category),
            "image_ref": f"{image_ref_base}#{doc_id}" if image_ref_base and req.images else None,
            "error": error,
            "latency_s": resp.latency_s,
            "output_tokens": resp.output_tokens,
            "raw_response": resp.text,
            # what built the request, as lmms-eval chooses: a chat backend gets the task's doc_to_messages
            "prompt_source": "doc_to_messages" if req.messages is not None else "doc_to_text",
        })
        if resp.repeats is not None:
            rec["raw_responses"] = [r.text for r in resp.repeats]
        if failed:  # a metric without a value (a failed judgement): retried like an error, counted as one
            rec["failed_metrics"] = failed
        for flag in ("cached", "truncated"):
            if getattr(resp, flag, None) is not None:
                rec[flag] = getattr(resp, flag)
        if history:
            rec["history"] = history
        records.append(rec)
    return records


def _filtered(task: Task, filter_fn: Any, resp: Response, doc: dict[str, Any]) -> tuple[Any, Any]:
    """(the filter's output as lmms-eval logs it in `resps`, the answer it scores: reasoning blocks stripped).

    lmms-eval 0.7.3 strips reasoning blocks and whitespace from each filtered answer before scoring and logs the
    filter's output before that as `resps`; a YAML task's filter does the strip itself (`before_strip` is then
    the filter without it). With `repeats` the filter takes the doc's k responses and may keep a list.
    """
    unstripped = getattr(filter_fn, "before_strip", None)
    tags = task.config.get("reasoning_tags")
    if resp.repeats is not None:
        many = getattr(filter_fn, "many", None)
        if many is None:
            raise TypeError(f"task {task.name!r}: its filter takes one response, not the {len(resp.repeats)} "
                            "of `repeats`")
        texts = [r.text if r.text is not None else "" for r in resp.repeats]
        before = (getattr(unstripped, "many", None) or many)(texts, doc)
        if unstripped is not None:
            return before, filter_fn.strip(before)
        if isinstance(before, list):
            return before, [strip_reasoning(x, tags) for x in before]
        return before, strip_reasoning(before, tags)
    raw = resp.text if resp.text is not None else ""
    before = (unstripped or filter_fn)(raw, doc)
    return before, filter_fn.strip(before) if unstripped else strip_reasoning(before, tags)
