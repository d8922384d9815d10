"""evaluate(): end to end on a real dataset with function models; logs, scores, errors, resume, stop."""

from __future__ import annotations

import dataclasses
import json
import threading

import polars as pl
import pytest

import lmms_nb
from lmms_nb.logs.schema import FIXED_COLUMNS
from lmms_nb.models.baselines import FunctionModel

from _toy import colour_of, toy_task


def test_perfect_model_scores_one_and_logs_lmms_eval_layout(tmp_path):
    task = toy_task(24, path=tmp_path / "ds")
    run = lmms_nb.evaluate(FunctionModel(colour_of, name="org/perfect"), task, output_dir=tmp_path / "out",
                           batch_size=5, progress=False)
    assert run.completed and run.n_errors == 0
    assert run.score("toy_colour", "exact_match") == 1.0
    assert run.samples.height == 24
    assert list(run.samples.columns[: len(FIXED_COLUMNS)]) == list(FIXED_COLUMNS)
    # lmms-eval v0.7 layout: <out>/<model_name_sanitized>/<ts>_results.json + <ts>_samples_<task>.jsonl
    model_dir = tmp_path / "out" / "org__perfect"
    results = list(model_dir.glob("*_results.json"))
    samples = list(model_dir.glob("*_samples_toy_colour.jsonl"))
    assert len(results) == 1 and len(samples) == 1
    payload = json.loads(results[0].read_text())
    assert payload["results"]["toy_colour"]["exact_match,none"] == 1.0
    assert payload["model_name_sanitized"] == "org__perfect"
    assert payload["lmms_nb"]["status"] == "complete"
    assert payload["lmms_nb"]["task_fingerprints"]["toy_colour"] == task.fingerprint()
    assert payload["lmms_nb"]["packages"]["polars"] == pl.__version__
    lines = [json.loads(x) for x in samples[0].read_text().splitlines()]
    assert sorted(r["doc_id"] for r in lines) == list(range(24))
    first = lines[0]
    for key in ("doc_id", "target", "filtered_resps", "input", "exact_match", "model", "latency_s", "error"):
        assert key in first
    assert "resps" not in first  # equal to filtered_resps, so omitted as lmms-eval does
    assert first["image_ref"] == f"dataset:{tmp_path / 'ds'}#{first['doc_id']}"


def test_scores_and_stderr_match_hand_computation(tmp_path):
    # right on 'red' docs only: 8 of 24 -> mean 1/3, stderr = sd/sqrt(n) with sample sd
    model = FunctionModel(lambda images, prompt: "red", name="always-red")
    run = lmms_nb.evaluate(model, toy_task(24), output_dir=tmp_path, progress=False)
    row = run.scores.filter(pl.col("metric") == "exact_match").row(0, named=True)
    import statistics

    vals = [1.0 if i % 3 == 0 else 0.0 for i in range(24)]
    assert row["value"] == pytest.approx(1 / 3)
    assert row["stderr"] == pytest.approx(statistics.stdev(vals) / 24 ** 0.5)
    assert row["n"] == 24
    assert set(run.samples["category"].unique()) == {"warm", "cool"}


def test_model_error_on_some_samples_is_recorded_and_run_goes_on(tmp_path):
    def flaky(images, prompt):
        if prompt.startswith(("Q3:", "Q7:")):
            raise RuntimeError("CUDA out of memory (simulated by this model)")
        return colour_of(images, prompt)

    run = lmms_nb.evaluate(FunctionModel(flaky, name="flaky"), toy_task(12), output_dir=tmp_path, batch_size=4,
                           progress=False)
    errs = run.samples.filter(pl.col("error").is_not_null())
    assert sorted(errs["doc_id"].to_list()) == [3, 7]
    assert "out of memory" in errs["error"][0]
    assert errs["exact_match"].null_count() == 2  # a failure is missing, not a 0
    assert run.n_errors == 2
    row = run.scores.row(0, named=True)
    assert row["n"] == 10 and row["value"] == 1.0


def test_a_model_whose_generate_raises_for_the_batch_only_blames_the_culprit(tmp_path):
    class Fragile:
        name = "fragile"
        model_args: dict = {}

        def generate(self, requests):
            if any(r.doc_id == 5 for r in requests):
                raise ValueError("bad image in batch")
            return [lmms_nb.Response(text=colour_of(r.images, r.prompt)) for r in requests]

    run = lmms_nb.evaluate(Fragile(), toy_task(12), output_dir=tmp_path, batch_size=8, progress=False)
    assert run.samples.filter(pl.col("error").is_not_null())["doc_id"].to_list() == [5]
    assert run.samples.filter(pl.col("exact_match") == 1.0).height == 11


class CountingModel(FunctionModel):
    """A perfect toy model that counts the prompts it answers (the count is not part of its identity)."""

    def __init__(self, name: str):
        super().__init__(colour_of, name=name)
        self.prompts: list[str] = []

    def generate(self, requests):
        self.prompts += [r.prompt for r in requests]
        return super().generate(requests)


def test_resume_skips_finished_samples_and_a_different_limit_is_a_different_run(tmp_path):
    task = toy_task(20)
    m = CountingModel("counting")
    first = lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=8, progress=False)
    assert len(m.prompts) == 8
    # the same call again is resumed and costs nothing
    again = lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=8, progress=False)
    assert len(m.prompts) == 8 and again.run_id == first.run_id and again.samples.height == 8
    # a different limit selects other docs: a different run, which asks for all of its docs again
    other = lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=12, progress=False)
    assert len(m.prompts) == 20 and other.run_id != first.run_id and other.samples.height == 12
    assert other.results_file != first.results_file and first.results_file.exists()
    # and each of the two runs still resumes itself
    assert lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=8, progress=False).run_id == first.run_id
    assert lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=12, progress=False).run_id == other.run_id
    assert len(m.prompts) == 20
    fresh = lmms_nb.evaluate(m, task, output_dir=tmp_path, limit=8, progress=False, resume=False)
    assert len(m.prompts) == 28 and fresh.run_id not in (first.run_id, other.run_id)


def test_stop_event_keeps_what_was_written_and_a_later_call_resumes(tmp_path):
    stop = threading.Event()
    seen = []

    def on_batch(p):
        seen.append(p)
        if p.done >= 8:
            stop.set()

    m = FunctionModel(colour_of, name="stoppable")
    task = toy_task(24)
    part = lmms_nb.evaluate(m, task, output_dir=tmp_path, batch_size=4, progress=False, on_batch=on_batch,
                            stop_event=stop)
    assert not part.completed and part.samples.height == 8 and part.docs_per_task() == {task.name: 8}
    assert seen[-1].done == 8 and seen[-1].total == 24 and seen[-1].partial_scores["exact_match"] == 1.0
    full = lmms_nb.evaluate(m, task, output_dir=tmp_path, batch_size=4, progress=False)
    assert full.completed and full.samples.height == 24 and full.run_id == part.run_id
    assert full.samples["doc_id"].n_unique() == 24


def test_docs_per_task_follows_the_run_task_order_with_every_task(tmp_path):
    m = FunctionModel(colour_of, name="two_tasks")
    run = lmms_nb.evaluate(m, [toy_task(5, name="zz_first"), toy_task(3, name="aa_second")], output_dir=tmp_path,
                           progress=False)
    assert list(run.docs_per_task().items()) == [("zz_first", 5), ("aa_second", 3)]
    empty = dataclasses.replace(run, samples=run.samples.clear())
    assert empty.docs_per_task() == {"zz_first": 0, "aa_second": 0}


def test_several_filters_give_one_line_per_doc_and_filter(tmp_path):
    m = FunctionModel(lambda images, prompt: colour_of(images, prompt) + " colour", name="verbose")
    run = lmms_nb.evaluate(m, toy_task(6, two_filters=True), output_dir=tmp_path, progress=False)
    assert run.samples.height == 12 and run.docs_per_task() == {run.tasks[0]: 6}  # docs, not lines
    by_filter = {r["filter"]: r["value"] for r in run.scores.iter_rows(named=True)}
    assert by_filter == {"none": 0.0, "first_word": 1.0}
    lines = [json.loads(x) for x in next(iter(run.sample_files.values())).read_text().splitlines()]
    none_line = next(x for x in lines if x["filter"] == "none")
    word_line = next(x for x in lines if x["filter"] == "first_word")
    # lmms-eval 0.7.3's shapes: filtered_resps a string; resps (the filter's output before reasoning tags and
    # whitespace are stripped) only where it differs; the model's own text is our raw_response
    assert "resps" not in none_line and "resps" not in word_line
    assert word_line["filtered_resps"] == word_line["raw_response"].split()[0]
    assert none_line["filtered_resps"] == none_line["raw_response"]
    # a finished file is in lmms-eval's order: one block per filter, docs ascending
    assert [(x["filter"], x["doc_id"]) for x in lines] == [(f, d) for f in ("none", "first_word") for d in range(6)]


def test_unknown_task_and_missing_image_column_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="unknown task 'synthbench_cont'.*synthbench_count"):
        lmms_nb.evaluate(FunctionModel(colour_of), "synthbench_cont", output_dir=tmp_path)
    task = toy_task(4)
    task.image_column = "picture"
    with pytest.raises(ValueError, match="toy_colour.*no image column 'picture'"):
        lmms_nb.evaluate(FunctionModel(colour_of), task, output_dir=tmp_path)


def test_pandas_on_request(tmp_path):
    run = lmms_nb.evaluate(FunctionModel(colour_of, name="p"), toy_task(6), output_dir=tmp_path, progress=False)
    pdf = run.to_pandas()
    assert len(pdf) == 6 and "exact_match" in pdf.columns


def test_batched_metric_is_called_once_per_batch_and_nan_is_missing(tmp_path):
    calls = []

    def judge_like(preds, targets, docs):
        calls.append(len(preds))
        # "fails" (NaN) on green docs, as a judge whose reply could not be parsed
        return [float("nan") if t == "green" else float(p == t) for p, t in zip(preds, targets)]

    task = toy_task(12)
    task.metrics = [lmms_nb.Metric("judged", lambda p, t, d: 0.0, score_batch=judge_like)]
    run = lmms_nb.evaluate(FunctionModel(colour_of, name="judged"), task, output_dir=tmp_path, batch_size=5,
                           progress=False)
    assert calls == [5, 5, 2]
    assert run.samples["judged"].null_count() == 4  # the 4 green docs: missing, not 0
    assert run.samples["error"].null_count() == 12
    row = run.scores.row(0, named=True)
    assert row["n"] == 8 and row["value"] == 1.0
