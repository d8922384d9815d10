"""A run killed with SIGKILL at arbitrary moments, then resumed: no sample lost or duplicated, same scores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from lmms_nb.logs.writer import heal_samples_file, read_samples_file

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import lmms_nb
    from lmms_nb.models.baselines import FunctionModel
    from _toy import colour_of, toy_task

    def slow(images, prompt):
        time.sleep({delay})
        i = int(prompt[1:prompt.index(":")])
        return colour_of(images, prompt) if i % 4 else "purple"   # wrong on every 4th doc

    task = toy_task(60, path=__import__("pathlib").Path({ds!r}), two_filters=True)
    run = lmms_nb.evaluate(FunctionModel(slow, name="slow"), task, output_dir={out!r}, batch_size=3,
                           progress=False)
    print("DONE", run.samples.height, run.score("toy_colour", "exact_match"))
""")


def _script(tmp_path: Path, out: Path, delay: float) -> Path:
    path = tmp_path / f"run_{out.name}.py"
    path.write_text(SCRIPT.format(tests=str(TESTS), delay=delay, ds=str(tmp_path / "ds"), out=str(out)))
    return path


def _comparable(df: pl.DataFrame) -> pl.DataFrame:
    return df.select("doc_id", "filter", "prediction", "exact_match", "target").sort("doc_id", "filter")


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    reference_out = tmp_path / "reference"
    ref = subprocess.run([sys.executable, _script(tmp_path, reference_out, 0.0)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    import lmms_nb
    from _toy import toy_task

    expected_score = 0.75
    assert f"DONE 120 {expected_score}" in ref.stdout

    killed_out = tmp_path / "killed"
    script = _script(tmp_path, killed_out, 0.01)
    kills = 0
    # Kill at several moments (early, middle, late), resuming each time, until a run finishes by itself.
    for attempt, wait in enumerate([1.2, 0.5, 0.35, 0.3, 0.6, 0.25, 10, 30, 60]):
        proc = subprocess.Popen([sys.executable, script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            out, err = proc.communicate(timeout=wait)
            assert proc.returncode == 0, err
            break
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
    else:
        pytest.fail("the run never finished")
    assert kills >= 3, "the run finished before it could be interrupted; the test proves nothing"
    assert f"DONE 120 {expected_score}" in out

    sample_files = list((killed_out / "slow").glob("*_samples_toy_colour.jsonl"))
    assert len(sample_files) == 1, "every resumed attempt must append to the same run"
    lines = [json.loads(x) for x in sample_files[0].read_text().splitlines()]
    keys = [(r["doc_id"], r["filter"]) for r in lines]
    assert len(keys) == len(set(keys)) == 120
    results = json.loads(next((killed_out / "slow").glob("*_results.json")).read_text())
    assert results["results"]["toy_colour"]["exact_match,none"] == expected_score
    # the same samples as the uninterrupted run
    task = toy_task(60, path=tmp_path / "ds", two_filters=True)
    from lmms_nb.models.baselines import FunctionModel

    def must_not_run(images, prompt):
        raise AssertionError("a finished run must not call the model again")

    # same name and model_args as the script's model, so both calls resume their finished run and only re-read it
    same = dict(name="slow", model_args={"function": "slow"})
    resumed = lmms_nb.evaluate(FunctionModel(must_not_run, **same), task, output_dir=killed_out, batch_size=3,
                               progress=False)
    reference = lmms_nb.evaluate(FunctionModel(must_not_run, **same), task, output_dir=reference_out,
                                 batch_size=3, progress=False)
    assert resumed.n_errors == 0 and resumed.completed
    assert resumed.samples.height == reference.samples.height == 120
    assert _comparable(resumed.samples).equals(_comparable(reference.samples))


def test_heal_drops_torn_last_line_and_partial_docs(tmp_path):
    path = tmp_path / "x_samples_t.jsonl"
    good = [{"doc_id": 0, "filter": "a"}, {"doc_id": 0, "filter": "b"}, {"doc_id": 1, "filter": "a"},
            {"doc_id": 1, "filter": "b"}, {"doc_id": 2, "filter": "a"}]
    text = "".join(json.dumps(r) + "\n" for r in good) + '{"doc_id": 2, "fil'
    path.write_text(text)
    found = heal_samples_file(path, ["a", "b"])
    assert found.truncated_tail and found.dropped == 1
    assert sorted({r["doc_id"] for r in found.records}) == [0, 1]
    # healed on disk: only complete docs, every line valid
    again = read_samples_file(path, ["a", "b"])
    assert not again.truncated_tail and again.dropped == 0 and len(again.records) == 4


def test_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "x_samples_t.jsonl"
    path.write_text('{"doc_id": 0}\nnot json\n{"doc_id": 1}\n')
    with pytest.raises(ValueError, match=r"x_samples_t.jsonl:2: invalid sample line"):
        read_samples_file(path)
