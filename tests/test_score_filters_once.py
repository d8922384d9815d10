"""Scoring runs each filter of a task once per sample, as lmms-eval does: a filter may be slow or call an API.

Two places used to run it twice: a YAML task's answer is logged before reasoning tags are stripped (`resps`)
and scored after, and a task with a batched metric (an LLM judge) filtered the batch for the judge, then
again per sample for the log record.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lmms_nb.models.baselines import FunctionModel
from lmms_nb.runner import evaluate
from lmms_nb.tasks.task import Metric
from lmms_nb.tasks.yaml_loader import load_task

from _toy import toy_task

N_DOCS = 4


def yaml_task_with_a_counting_filter(folder: Path, extra: str = "") -> Path:
    """A YAML task whose filter (a `!function` class) appends one line to calls.txt per doc it filters."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "utils.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        class CountingFilter:
            def apply(self, resps, docs):
                with open(Path(__file__).with_name("calls.txt"), "a") as f:
                    f.write("".join(f"{d['q']}\\n" for d in docs))
                return [[r.replace("a", "A") for r in rs] for rs in resps]
        """))
    (folder / "d.csv").write_text("q,a\n" + "".join(f"q{i},A{i}\n" for i in range(N_DOCS)))
    path = folder / "counted.yaml"
    path.write_text(textwrap.dedent("""\
        task: counted
        dataset_path: csv
        dataset_kwargs: {data_files: {test: d.csv}}
        test_split: test
        doc_to_text: q
        doc_to_target: a
        filter_list:
          - name: upper
            filter:
              - function: !function utils.CountingFilter
              - function: take_first
        """) + extra)
    return path


def calls(folder: Path) -> list[str]:
    return (folder / "calls.txt").read_text().splitlines()


@pytest.mark.parametrize("repeats", [1, 2])
def test_a_yaml_filter_runs_once_per_doc_though_resps_and_filtered_resps_are_both_logged(tmp_path, repeats):
    folder = tmp_path / "task"
    task = load_task(yaml_task_with_a_counting_filter(folder, f"repeats: {repeats}\n"))
    # the answer's reasoning block is stripped after the filter (lmms-eval's default reasoning tags)
    model = FunctionModel(lambda images, prompt: f"<think>hmm</think> a{prompt[1:]}", name="m")
    run = evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    assert sorted(calls(folder)) == [f"q{i}" for i in range(N_DOCS)]
    lines = [json.loads(x) for x in next(iter(run.sample_files.values())).read_text().splitlines()]
    assert [line["filtered_resps"] for line in lines] == [f"A{i}" for i in range(N_DOCS)]
    assert [line["resps"] for line in lines] == [f"<think>hmm</think> A{i}" for i in range(N_DOCS)]
    assert run.score("counted", "exact_match", filter="upper") == 1.0


def test_a_batched_metric_and_the_log_record_share_one_filter_run(tmp_path):
    filtered: list[str] = []

    def counting_filter(response: str, doc: dict) -> str:
        filtered.append(doc["question"])
        return response

    def judge(predictions, targets, docs):  # a batched scorer, as an LLM judge is
        return [float(p == t) for p, t in zip(predictions, targets, strict=True)]

    task = toy_task(N_DOCS)
    task.filters = {"counted": counting_filter}
    task.metrics = [Metric("judged", lambda p, t, d: float(p == t), score_batch=judge)]
    run = evaluate(FunctionModel(lambda images, prompt: "red", name="m"), task, output_dir=tmp_path, progress=False)
    assert sorted(filtered) == sorted(task.doc_to_text(d) for d in task.dataset())
    assert run.samples["judged"].to_list() == [float(i % 3 == 0) for i in range(N_DOCS)]


def test_evaluating_the_same_yaml_task_object_again_resumes_its_run(tmp_path):
    """The filters' identity (digested from what they capture) must not change by filtering: a notebook that
    evaluates the same Task object again resumes the finished run instead of starting a new one."""
    from lmms_nb.runner._identity import callable_digest

    folder = tmp_path / "task"
    task = load_task(yaml_task_with_a_counting_filter(folder))
    digests = {name: callable_digest(fn) for name, fn in task.filters.items()}
    model = FunctionModel(lambda images, prompt: f"<think>hmm</think> a{prompt[1:]}", name="m")
    first = evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    assert {name: callable_digest(fn) for name, fn in task.filters.items()} == digests
    again = evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    assert again.run_id == first.run_id
    assert sorted(calls(folder)) == [f"q{i}" for i in range(N_DOCS)]  # nothing filtered a second time
