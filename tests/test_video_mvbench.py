"""lmms-eval's own `mvbench` subtasks end to end on a stand-in MVBench, against lmms-eval 0.7.3's own evaluator.

The stand-in has MVBench's real columns for two of its twenty subtasks (action_antonym: video, question,
candidates, answer; object_interaction, from STAR, adds the clip's start and end) in a few generated rows, and tiny
generated mp4 files where the task's utils.py looks for them (``$HF_HOME/mvbench_video/<DATA_LIST folder>/<video>``).
Both tools read the rows through the tasks' own `dataset_path` (``OpenGVLab/MVBench``, a local folder here),
`dataset_name` (the subtask) and `dataset_kwargs` (video, cache_dir, revision, token). Two scripted models (one answers
"(letter) option", one always "A"), which decode the frames of every video they are given, must get the per-sample
values and the aggregates that lmms-eval's evaluator gives for the same answers (tests/lmms_eval_reference.py, one
subprocess for both models).
"""

from __future__ import annotations

import json
import math
import os
import string
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

import lmms_nb

from catalogue_standins import StandIn
from test_video_videomme import ScriptedVideoModel, _in_root, write_video

TESTS = Path(__file__).parent
_S = datasets.Value("string")
_F = datasets.Value("float64")
TASKS = ("mvbench_action_antonym", "mvbench_object_interaction")


def _oracle(doc: dict) -> str:
    # as an instruction-tuned model writes it; mvbench's mcq_acc extracts the letter
    letter = string.ascii_uppercase[doc["candidates"].index(doc["answer"])]
    return f"({letter}) {doc['answer']}"


def action_antonym() -> StandIn:
    n = 4
    candidates = [["Not sure", "Scattering something down", "Piling something up"],
                  ["Opening something", "Closing something", "Not sure"],
                  ["Not sure", "Pushing something left", "Pushing something right"],
                  ["Lifting something up", "Not sure", "Putting something down"]]
    rows = {"video": [f"{1000 + i}.mp4" for i in range(n)],
            "question": ["What is the action performed by the person in the video?"] * n,
            "candidates": candidates,
            "answer": ["Piling something up", "Opening something", "Pushing something left", "Putting something down"]}
    feats = datasets.Features({"video": _S, "question": _S, "candidates": datasets.Sequence(_S), "answer": _S})
    return StandIn("mvbench_action_antonym", "OpenGVLab/MVBench", "train", rows, feats, _oracle, "A",
                   dataset_name="action_antonym")


def object_interaction() -> StandIn:
    candidates = [["The closet/cabinet.", "The blanket.", "The clothes.", "The table."],
                  ["The door.", "The bag.", "The book.", "The dish."],
                  ["The laptop.", "The paper/notebook.", "The shoe.", "The pillow."]]
    rows = {"video": ["6H78U.mp4", "Z7XGE.mp4", "YSKX3.mp4"],
            "question": ["Which object was tidied up by the person?", "Which object was opened by the person?",
                         "Which object was put down by the person?"],
            "candidates": candidates, "answer": ["The closet/cabinet.", "The dish.", "The shoe."],
            "start": [11.1, 0.0, 3.5], "end": [19.6, 6.2, 9.0]}
    feats = datasets.Features({"video": _S, "question": _S, "candidates": datasets.Sequence(_S), "answer": _S,
                               "start": _F, "end": _F})
    return StandIn("mvbench_object_interaction", "OpenGVLab/MVBench", "train", rows, feats, _oracle, "A",
                   dataset_name="object_interaction")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvbench")
    answers = {}
    # mvbench's utils.py DATA_LIST: the folder under $HF_HOME/mvbench_video each subtask's videos are in
    for s, folder in ((action_antonym(), "ssv2_video_mp4"), (object_interaction(), "star/Charades_segment")):
        s.write(root)
        for k, video in enumerate(s.rows["video"]):
            write_video(root / "hf" / "mvbench_video" / folder / video, n_frames=4 + k, size=(48, 32), seed=k)
        answers[s.task] = s.answers()
    (root / "answers.json").write_text(json.dumps(answers))
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets")}
    proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                           "oracle,constant", str(root / "reference_{policy}.json"), *TASKS], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = {p: json.loads((root / f"reference_{p}.json").read_text()) for p in ("oracle", "constant")}
    return root, answers, reference


@pytest.mark.parametrize("policy", ["oracle", "constant"])
def test_mvbench_gives_lmms_evals_values_and_aggregates(standin, monkeypatch, policy):
    root, answers, reference = standin
    model = ScriptedVideoModel(answers, policy)
    run = _in_root(root, monkeypatch, lambda: lmms_nb.evaluate(model, list(TASKS), output_dir=root / f"ours_{policy}",
                                                               progress=False, resume=False))
    assert len(model.frames_seen) == 7 and all(shape[1:] == (32, 48, 3) for shape in model.frames_seen)
    ref = reference[policy]
    expected_scores = {"oracle": {TASKS[0]: 100.0, TASKS[1]: 100.0},
                       "constant": {TASKS[0]: 25.0, TASKS[1]: 100 / 3}}[policy]  # "A" right on doc 1 / doc 0
    for task, n in zip(TASKS, (4, 3)):
        records = sorted((json.loads(line) for line in run.sample_files[task].read_text().splitlines()),
                         key=lambda r: r["doc_id"])
        ref_samples = sorted(ref["samples"][task], key=lambda s: s["doc_id"])
        assert [r["doc_id"] for r in records] == [s["doc_id"] for s in ref_samples] == list(range(n))
        for rec, sample in zip(records, ref_samples):
            assert rec["error"] is None
            assert rec["input"] == sample["input"]  # the same prompt, post_prompt from lmms_eval_specific_kwargs
            assert rec["filtered_resps"] == sample["filtered_resps"][0]
            assert rec["mvbench_accuracy"] == sample["mvbench_accuracy"]  # pred_answer, gt_answer, score
        expected = ref["results"][task]["mvbench_accuracy,none"]
        assert expected == pytest.approx(expected_scores[task])
        assert math.isclose(run.score(task, "mvbench_accuracy"), expected, rel_tol=1e-12)
