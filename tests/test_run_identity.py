"""A run resumes only itself: anything that changes answers or scores starts a new run and says what changed."""

from __future__ import annotations

import dataclasses
import json
import logging

import datasets
import pytest

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.runner import ResumeError
from lmms_nb.tasks import Metric

from _toy import colour_of, toy_dataset, toy_task


class CountingModel(FunctionModel):
    """Counts the prompts it answers; the count is the model's state, not part of its identity."""

    def __init__(self, fn, name: str):
        super().__init__(fn, name=name)
        self.prompts: list[str] = []

    def generate(self, requests):
        self.prompts += [r.prompt for r in requests]
        return super().generate(requests)


def _new_run_line(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == "lmms_nb.runner"]
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unnamed_lambda_never_resumes_silently(tmp_path, caplog):
    """The issue's example: the second model's answers, never the first run's."""
    caplog.set_level(logging.WARNING, "lmms_nb.runner")
    task = toy_task(6)
    first = lmms_nb.evaluate(FunctionModel(lambda r: "3"), task, output_dir=tmp_path, progress=False)
    second = lmms_nb.evaluate(FunctionModel(lambda r: "999"), task, output_dir=tmp_path, progress=False)
    assert set(first.samples["prediction"]) == {"3"} and set(second.samples["prediction"]) == {"999"}
    assert second.run_id != first.run_id
    assert "unnamed lambda" in _new_run_line(caplog) and "starting a new run" in _new_run_line(caplog)
    # even the very same lambda: its identity cannot be pinned down by a name, so it is said, not assumed
    same = FunctionModel(lambda r: "3")
    with pytest.raises(ResumeError, match="unnamed lambda"):
        lmms_nb.evaluate(same, task, output_dir=tmp_path, progress=False, resume="must")


def test_a_changed_function_body_under_the_same_name_is_a_new_run(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "lmms_nb.runner")
    task = toy_task(6)

    def answer(r):
        return "red"

    first = lmms_nb.evaluate(FunctionModel(answer, name="m"), task, output_dir=tmp_path, progress=False)

    def answer(r):  # noqa: F811 - the same name, another body
        return "blue"

    second = lmms_nb.evaluate(FunctionModel(answer, name="m"), task, output_dir=tmp_path, progress=False)
    assert second.run_id != first.run_id and set(second.samples["prediction"]) == {"blue"}
    assert _new_run_line(caplog) == f"lmms-nb: run {first.results_file.name[:15]} differs in model code; starting a new run"
    # and with resume="must" the change is an error naming it
    with pytest.raises(ResumeError, match="differs in model code"):
        def answer(r):  # noqa: F811
            return "green"
        lmms_nb.evaluate(FunctionModel(answer, name="m"), task, output_dir=tmp_path, progress=False, resume="must")


def test_a_closure_value_is_part_of_the_identity(tmp_path):
    def answering(word):
        return lambda r: word

    task = toy_task(6)
    a = lmms_nb.evaluate(FunctionModel(answering("red"), name="m"), task, output_dir=tmp_path, progress=False)
    again = lmms_nb.evaluate(FunctionModel(answering("red"), name="m"), task, output_dir=tmp_path, progress=False)
    b = lmms_nb.evaluate(FunctionModel(answering("blue"), name="m"), task, output_dir=tmp_path, progress=False)
    assert again.run_id == a.run_id and b.run_id != a.run_id and set(b.samples["prediction"]) == {"blue"}


_SUFFIX = " colour"


def _target_with_suffix(doc):
    return doc["answer"] + _helper()


def _helper():
    return _SUFFIX


@pytest.mark.parametrize("change, said", [
    ("doc_to_target", "task toy_colour: target (doc_to_target)"),
    ("callee", "task toy_colour: target (doc_to_target)"),
    ("filter", "task toy_colour: filters"),
    ("metric", "task toy_colour: metrics"),
    ("process_results", "task toy_colour: metrics"),
    ("generation_kwargs", "task toy_colour: config"),
    ("data", "task toy_colour: data"),
])
def test_a_changed_task_or_dataset_is_a_new_run_that_says_what_changed(tmp_path, caplog, change, said):
    global _SUFFIX
    caplog.set_level(logging.WARNING, "lmms_nb.runner")
    model = CountingModel(colour_of, "perfect")
    task = toy_task(6)
    task.doc_to_target = _target_with_suffix
    first = lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False)
    assert lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False).run_id == first.run_id
    assert len(model.prompts) == 6 and caplog.records == []

    changed = dataclasses.replace(task)
    if change == "doc_to_target":
        changed.doc_to_target = lambda d: d["answer"].upper()
    elif change == "callee":
        _SUFFIX = " color"  # a module constant read by a function that doc_to_target calls
    elif change == "filter":
        changed.filters = {"none": lambda r, d: r.lower()}
    elif change == "metric":
        changed.metrics = [Metric("exact_match", lambda p, t, d: float(p.strip() == t.strip()))]
    elif change == "process_results":
        changed.process_results = lambda doc, pred: {"exact_match": 1.0}
    elif change == "generation_kwargs":
        changed.generation_kwargs = {"max_new_tokens": 32, "do_sample": False}
    elif change == "data":
        rows = toy_dataset(6).to_dict()
        rows["question"][0] = "Q0: which colour is it?"
        ds = datasets.Dataset.from_dict(rows, features=toy_dataset(1).features)
        changed.load = lambda: ds
    try:
        second = lmms_nb.evaluate(model, changed, output_dir=tmp_path, progress=False)
    finally:
        _SUFFIX = " colour"
    assert second.run_id != first.run_id and len(model.prompts) == 12
    line = _new_run_line(caplog)
    assert line.startswith(f"lmms-nb: run {first.results_file.name[:15]} differs in ") and said in line, line


def test_same_task_rebuilt_resumes(tmp_path):
    """The identity is of code and values, not of objects: the same task built again is the same run."""
    model = CountingModel(colour_of, "perfect")
    first = lmms_nb.evaluate(model, toy_task(6), output_dir=tmp_path, progress=False)
    again = lmms_nb.evaluate(model, toy_task(6), output_dir=tmp_path, progress=False)
    assert again.run_id == first.run_id and len(model.prompts) == 6


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from lmms_nb.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny"), vocab_texts=["What colour is the image?", "red blue"])


def test_changed_weights_are_a_new_run(tmp_path, tiny_llava, caplog):
    import shutil

    import torch

    from lmms_nb.models.hf import HFImageTextModel

    caplog.set_level(logging.WARNING, "lmms_nb.runner")
    path = tmp_path / "model"
    shutil.copytree(tiny_llava, path)
    task = toy_task(4)
    first = lmms_nb.evaluate(HFImageTextModel(path, max_new_tokens=2), task, output_dir=tmp_path / "out",
                             progress=False)
    resumed = lmms_nb.evaluate(HFImageTextModel(path, max_new_tokens=2), task, output_dir=tmp_path / "out",
                               progress=False)
    assert resumed.run_id == first.run_id and caplog.records == []
    # fine-tuned in place: same folder, same name, same args; one weight changed
    model = HFImageTextModel(path, max_new_tokens=2)
    with torch.no_grad():
        next(model.model.parameters()).view(-1)[0] += 1.0
    model.model.save_pretrained(path)
    changed = lmms_nb.evaluate(HFImageTextModel(path, max_new_tokens=2), task, output_dir=tmp_path / "out",
                               progress=False)
    assert changed.run_id != first.run_id
    assert "differs in model weights" in _new_run_line(caplog)


@pytest.mark.parametrize("edit", ["p.data.add_", "no_grad p.add_", "numpy view", "config value", "sub-config value",
                                  "generation_config repetition_penalty", "generation_config eos_token_id"])
def test_an_in_place_edit_of_the_same_model_object_is_a_new_run(tmp_path, tiny_llava, caplog, edit):
    """One model object, evaluated, edited in place (weights, config or generation config (`generate` reads it for
    what a task does not pass), in any way that bypasses torch's version counters), evaluated again: never a resume
    of the first run. Unedited, the same object resumes."""
    import torch

    from lmms_nb.models.hf import HFImageTextModel

    caplog.set_level(logging.WARNING, "lmms_nb.runner")
    model = HFImageTextModel(tiny_llava, max_new_tokens=2)
    task = toy_task(4)
    first = lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    again = lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    assert again.run_id == first.run_id and caplog.records == []
    param = next(model.model.parameters())
    if edit == "p.data.add_":
        version = param._version
        param.data.view(-1)[:1].add_(1.0)
        assert param._version == version  # invisible to the version counter
    elif edit == "no_grad p.add_":
        with torch.no_grad():
            param.view(-1)[:1].add_(1.0)
    elif edit == "numpy view":
        param.data.view(-1)[:1].numpy()[0] += 1.0
    elif edit == "config value":
        model.model.config.image_token_id = model.model.config.image_token_id  # no change: still resumes
        assert lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False).run_id == first.run_id
        model.model.config.lmms_nb_test_note = "edited"  # a new key in the config's JSON
    elif edit == "sub-config value":
        model.model.config.text_config.rms_norm_eps *= 2
    elif edit == "generation_config repetition_penalty":
        model.model.generation_config.repetition_penalty = 1.3
    else:
        model.model.generation_config.eos_token_id = [1, 2]
    changed = lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False)
    assert changed.run_id != first.run_id
    assert "differs in model weights" in _new_run_line(caplog)


def test_identity_is_recorded_part_by_part(tmp_path):
    run = lmms_nb.evaluate(FunctionModel(colour_of, name="p"), toy_task(4), output_dir=tmp_path, progress=False)
    meta = json.loads(run.results_file.read_text())["lmms_nb"]
    assert {"model", "model code", "seed", "lmms-nb version", "task toy_colour: data", "task toy_colour: doc ids",
            "task toy_colour: filters", "task toy_colour: metrics"} <= set(meta["identity"])
    assert meta["version"] == meta["identity"]["lmms-nb version"]


def test_a_new_run_takes_the_first_second_no_file_is_named_after(tmp_path, monkeypatch):
    """Runs shorter than a second push later stamps into the future; the claim skips every second some file (a
    results file, or a samples file left alone) is named after, listing the folder once, and an O_EXCL race lost
    to another run moves on."""
    import datetime as dt
    import os

    from lmms_nb.runner import _plan

    now = dt.datetime(2030, 1, 2, 3, 4, 5)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    monkeypatch.setattr(_plan._dt, "datetime", Clock)
    stamp = lambda s: (now + dt.timedelta(seconds=s)).strftime("%Y%m%d_%H%M%S")  # noqa: E731
    for s in (0, 1, 2):
        (tmp_path / f"{stamp(s)}_results.json").write_text("{}")
    (tmp_path / f"{stamp(3)}_samples_t.jsonl").write_text("")  # a samples file whose results file is gone
    (tmp_path / f".{stamp(4)}.lock").write_text("")  # a lock names no stamp_ file
    listings = []
    real = _plan.names_in
    monkeypatch.setattr(_plan, "names_in", lambda folder: listings.append(folder) or real(folder))
    assert _plan._claim_fresh_timestamp(tmp_path) == stamp(4) and len(listings) == 1
    assert (tmp_path / f"{stamp(4)}_results.json").read_text() == ""  # created empty by the claim
    # another run creates stamp 5's results file after our listing: O_EXCL fails there, the claim lists again
    real_open = os.open

    def racing_open(path, flags, *args):
        if str(path).endswith(f"{stamp(5)}_results.json") and not os.path.exists(path):
            os.close(real_open(path, flags, *args))  # the other run wins this second
        return real_open(path, flags, *args)

    monkeypatch.setattr(_plan.os, "open", racing_open)
    assert _plan._claim_fresh_timestamp(tmp_path) == stamp(6) and len(listings) == 3
