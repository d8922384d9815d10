"""Scoring: a saved live benchmark as a `Task` whose metric is the LLM judge, and its LiveBench score table.

`live_task(path, judge)` builds a task like any other: the model sees the screenshot and the question, the
judge rates the answer 0-10 against the reference answer with the question's own criteria (and sees the
screenshot too, as LiveBench's judge does). Run it with `lmms_nb.evaluate(model, task)`: answers and ratings
land in the canonical sample table (metric column ``llm_judge`` = rating / 10, NaN for a failed judgement)
and in lmms-eval-format logs, with ``category`` = the subtask.

`live_scores(run)` gives LiveBench's table: per subtask and in total, ``mean(rating / 10) * 100`` over the
successful judgements, with the failed judgements and the model's own errors counted beside it, never
scored 0.

Example (a stand-in model; no judge, so answers only):
    >>> import tempfile, lmms_nb
    >>> from PIL import Image
    >>> from lmms_nb.live._draft import Candidate
    >>> from lmms_nb.live._dataset import save_live_dataset
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8)).save(png)
    >>> c = Candidate(id="c0", subtask="Basic Understanding", question="Colour?", answer="black",
    ...               criteria="10 if black", image_path=png, url="http://127.0.0.1/",
    ...               captured_at="2026-11-03T10:00:00+00:00",
    ...               png_sha256="0" * 64, html_sha256="", drafted_by="m", draft_template="livebench-draft@1")
    >>> path = tempfile.mkdtemp(); _ = save_live_dataset([c], path)
    >>> task = live_task(path)
    >>> task.name, task.category_column
    ('live_bench_2026_11', 'subtask')
    >>> run = lmms_nb.evaluate(FunctionModel(lambda r: "black", name="m"), task, output_dir=tempfile.mkdtemp(),
    ...                        progress=False)
    >>> run.samples["prediction"].to_list()
    ['black']
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.live._dataset import dataset_month, load_live_dataset
from lmms_nb.live._prompts import SUBTASKS
from lmms_nb.tasks.task import Task

__all__ = ["live_scores", "live_task"]

log = logging.getLogger(__name__)

JUDGE_METRIC = "llm_judge"
TOTAL = "Total"


def live_task(
    path: str | os.PathLike,
    judge: Any = None,
    *,
    name: str | None = None,
    pre_prompt: str = "",
    post_prompt: str = "",
    generation_kwargs: dict[str, Any] | None = None,
    judge_sees_images: bool = True,
    **judge_kwargs: Any,
) -> Task:
    """A `Task` over the live benchmark saved in `path`, scored by an LLM judge.

    Args:
        path: a folder written by `save_live_dataset` / `ReviewSession.save`.
        judge: an `lmms_nb.judge.LLMJudge`; or pass the judge's arguments (``model=..., base_url=...,
            api_key_env=...``) as keywords. Without either, the task has no metric: a run records the
            answers only (they can be judged later).
        name: the task name (default ``live_bench_<YYYY>_<MM>``).
        pre_prompt, post_prompt: text put before and after each question (lmms-eval's live_bench options).
        generation_kwargs: the answering model's generation parameters (default: up to 1024 new tokens,
            greedy).
        judge_sees_images: send the screenshot to the judge with the rubric, as LiveBench does.
    """
    folder = Path(path)
    ds = load_live_dataset(folder)
    month = dataset_month(ds)
    metrics = []
    if judge is not None or judge_kwargs:
        from lmms_nb.judge import judge_metric

        metric_kwargs: dict[str, Any] = {"question_key": "question", "criteria_key": "criteria",
                                         "images_key": "images" if judge_sees_images else None}
        if judge is not None:
            metrics.append(judge_metric(judge, name=JUDGE_METRIC, **metric_kwargs))
        else:
            metrics.append(judge_metric(name=JUDGE_METRIC, **metric_kwargs, **judge_kwargs))

    def doc_to_text(doc: dict[str, Any]) -> str:
        return f"{pre_prompt}{doc['question']}{post_prompt}"

    return Task(
        name=name or f"live_bench_{month.replace('-', '_')}",
        load=lambda: load_live_dataset(folder),
        doc_to_visual=lambda doc: [im.convert("RGB") for im in doc["images"]],
        doc_to_text=doc_to_text,
        doc_to_target=lambda doc: doc["answer"],
        metrics=metrics,
        generation_kwargs=dict(generation_kwargs or {"max_new_tokens": 1024, "do_sample": False}),
        category_column="subtask",
        image_column="images",
        dataset_path=str(folder),
        description=ds.info.description or f"live benchmark {month}",
        # what the questions are, so a resumed run refuses a dataset that changed underneath it
        config={"month": month, "questions_sha256": _questions_digest(ds), "pre_prompt": pre_prompt,
                "post_prompt": post_prompt},
    )


def _questions_digest(ds: Any) -> str:
    """A hash of what is asked and expected (ids, questions, answers, criteria, screenshot hashes)."""
    import hashlib
    import json

    cols = [c for c in ("id", "question", "answer", "criteria", "png_sha256") if c in ds.column_names]
    payload = json.dumps(ds.select_columns(cols).to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def live_scores(run_or_samples: Any, *, task: str | None = None, metric: str = JUDGE_METRIC) -> pl.DataFrame:
    """LiveBench's score table from a `Run` (or its canonical sample table): one row per subtask and a Total.

    Columns: subtask, n (questions), n_scored, n_judge_failed (the judge gave no usable rating), n_model_errors
    (the model gave no answer), score (``mean(rating / 10) * 100`` over scored ones; null when none), stderr.
    """
    samples = run_or_samples.samples if hasattr(run_or_samples, "samples") else run_or_samples
    if isinstance(samples, pl.LazyFrame):
        samples = samples.collect()
    if metric not in samples.columns:
        raise KeyError(f"the samples have no {metric!r} column (a run of a live_task with a judge has one); "
                       f"columns: {samples.columns}")
    tasks = samples["task"].unique().to_list()
    if task is None:
        if len(tasks) != 1:
            raise ValueError(f"the samples hold several tasks {sorted(tasks)}: pass task=...")
        task = tasks[0]
    part = samples.filter(pl.col("task") == task)
    if "filter" in part.columns:
        part = part.filter(pl.col("filter") == "none") if (part["filter"] == "none").any() else part
    if part.height == 0:
        raise ValueError(f"no samples of task {task!r} (tasks: {sorted(tasks)})")
    value = pl.col(metric)
    scored = value.is_not_null() & value.is_not_nan() & pl.col("error").is_null()
    part = part.with_columns(
        subtask=pl.col("category").fill_null("(none)"),
        _scored=scored,
        _judge_failed=pl.col("error").is_null() & ~scored,
        _model_error=pl.col("error").is_not_null(),
    )
    stats = [
        pl.len().alias("n"),
        pl.col("_scored").sum().alias("n_scored"),
        pl.col("_judge_failed").sum().alias("n_judge_failed"),
        pl.col("_model_error").sum().alias("n_model_errors"),
        (value.filter(pl.col("_scored")).mean() * 100).alias("score"),
        (value.filter(pl.col("_scored")).std(ddof=1) / pl.col("_scored").sum().sqrt() * 100).alias("stderr"),
    ]
    by_subtask = part.group_by("subtask").agg(stats)
    total = part.select(stats).with_columns(subtask=pl.lit(TOTAL))
    order = {s: k for k, s in enumerate(SUBTASKS)}
    table = (
        pl.concat([by_subtask, total.select(by_subtask.columns)], how="vertical_relaxed")
        .with_columns(_order=pl.col("subtask").replace_strict(order, default=len(order), return_dtype=pl.Int64)
                      + (pl.col("subtask") == TOTAL).cast(pl.Int64) * 1000)
        .sort("_order", "subtask")
        .drop("_order")
        .with_columns(pl.col("n", "n_scored", "n_judge_failed", "n_model_errors").cast(pl.Int64))
    )
    failed = int(total["n_judge_failed"][0])
    if failed:
        log.warning("%s: %d failed judgement(s) excluded from the score (not scored 0)", task, failed)
    return table
