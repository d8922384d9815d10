"""lmms-eval's own `videomme` task end to end on a stand-in Video-MME, against lmms-eval 0.7.3's own evaluator.

The stand-in has Video-MME's real columns (a few generated rows) and tiny generated mp4 files where the task's
utils.py looks for them (``$HF_HOME/videomme/data/<videoID>.mp4``); both tools read the rows through the task's
own `dataset_path` (``lmms-eval/Video-MME``, a local folder here) and `dataset_kwargs` (video, cache_dir). Two
scripted models (one answers the target, one always "A"), which decode the frames of every video they are given,
must get the per-sample values and the aggregate that lmms-eval's evaluator gives for the same answers
(tests/lmms_eval_reference.py, run in a subprocess). A model without video is refused before any generation.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import datasets
import numpy as np
import pytest

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.video import read_video

from catalogue_standins import StandIn

TESTS = Path(__file__).parent
_S = datasets.Value("string")


def write_video(path: Path, n_frames: int = 6, size: tuple[int, int] = (64, 48), fps: int = 3, seed: int = 0) -> Path:
    """A tiny H.264 mp4 made with PyAV: each frame a different colour, with a bar that moves."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n_frames):
            frame = np.full((height, width, 3), ((seed * 40 + i * 30) % 256, 80, (i * 50) % 256), np.uint8)
            frame[:, (i * 7) % width:(i * 7) % width + 6] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def videomme_standin() -> StandIn:
    n = 6
    video_ids = ["vidA", "vidA", "vidB", "vidB", "vidC", "vidC"]  # three questions per video, as Video-MME
    rows = {
        "video_id": [f"{i // 2 + 1:03d}" for i in range(n)], "duration": ["short", "short", "medium", "medium",
                                                                          "long", "long"],
        "domain": ["Knowledge", "Knowledge", "Sports Competition", "Sports Competition", "Life Record",
                   "Life Record"],
        "sub_category": ["Humanity & History", "Humanity & History", "Football", "Football", "Pet & Animal",
                         "Pet & Animal"],
        "url": [f"https://www.youtube.com/watch?v={v}" for v in video_ids], "videoID": video_ids,
        "question_id": [f"{i // 2 + 1:03d}-{i % 2 + 1}" for i in range(n)],
        "task_type": ["Counting Problem", "Temporal Reasoning", "Action Recognition", "Object Recognition",
                      "Attribute Perception", "OCR Problems"],
        "question": [f"What happens in clip {i}?" for i in range(n)],
        "options": [[f"A. thing {i}", f"B. other {i}", f"C. more {i}", f"D. none {i}"] for i in range(n)],
        "answer": ["C", "A", "B", "D", "A", "B"],
    }
    feats = datasets.Features({k: _S for k in rows if k != "options"} | {"options": datasets.Sequence(_S)})
    # the target as a model writes it (the task extracts the letter), and a model that always says "A"
    return StandIn("videomme", "lmms-eval/Video-MME", "test", rows, feats,
                   lambda d: f"The answer is {d['answer']}.", "A")


class ScriptedVideoModel(FunctionModel):
    """Answers each doc with its scripted answer after decoding its video's frames (as lmms-eval's 8)."""

    accepts_video = True

    def __init__(self, answers: dict, policy: str) -> None:
        super().__init__(self._answer, name=f"scripted-video-{policy}")
        self.answers, self.policy, self.frames_seen = answers, policy, []

    def _answer(self, req):
        (path,) = req.images
        self.frames_seen.append(read_video(path, num_frm=8).shape)
        return self.answers[req.task][self.policy][req.doc_id]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    root = tmp_path_factory.mktemp("videomme")
    s = videomme_standin()
    s.write(root)
    for k, video in enumerate(dict.fromkeys(s.rows["videoID"])):
        write_video(root / "hf" / "videomme" / "data" / f"{video}.mp4", n_frames=5 + k, seed=k)
    answers = {"videomme": s.answers()}
    (root / "answers.json").write_text(json.dumps(answers))
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets")}
    reference = {}
    for policy in ("oracle", "constant"):
        out = root / f"reference_{policy}.json"
        proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                               policy, str(out), "videomme"], cwd=root, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reference[policy] = json.loads(out.read_text())
    return root, answers, reference


def _in_root(root: Path, monkeypatch, fn):
    """Run fn() from `root` with HF_HOME where the stand-in's videos are (the task's utils reads it at import)."""
    monkeypatch.chdir(root)  # dataset_path lmms-eval/Video-MME resolves here, as for lmms-eval
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_datasets_ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@pytest.mark.parametrize("policy", ["oracle", "constant"])
def test_videomme_gives_lmms_evals_values_and_aggregate(standin, monkeypatch, policy):
    root, answers, reference = standin
    model = ScriptedVideoModel(answers, policy)
    run = _in_root(root, monkeypatch, lambda: lmms_nb.evaluate(model, ["videomme"], output_dir=root / f"ours_{policy}",
                                                               progress=False, resume=False))
    assert len(model.frames_seen) == 6 and all(shape[1:] == (48, 64, 3) for shape in model.frames_seen)
    ref = reference[policy]
    records = sorted((json.loads(line) for line in run.sample_files["videomme"].read_text().splitlines()),
                     key=lambda r: r["doc_id"])
    ref_samples = sorted(ref["samples"]["videomme"], key=lambda s: s["doc_id"])
    assert [r["doc_id"] for r in records] == [s["doc_id"] for s in ref_samples] == list(range(6))
    for rec, sample in zip(records, ref_samples):
        assert rec["error"] is None
        assert rec["input"] == sample["input"]  # the same prompt
        assert rec["filtered_resps"] == sample["filtered_resps"][0]
        assert rec["videomme_perception_score"] == sample["videomme_perception_score"]
    expected = ref["results"]["videomme"]["videomme_perception_score,none"]
    assert expected == (100.0 if policy == "oracle" else pytest.approx(100 * 2 / 6))
    assert math.isclose(run.score("videomme", "videomme_perception_score"), expected, rel_tol=1e-12)


def test_a_model_without_video_is_refused_before_generating(standin, monkeypatch):
    root, _, _ = standin
    calls = []
    model = FunctionModel(lambda req: calls.append(req) or "A", name="text-only")
    with pytest.raises(ValueError, match="task 'videomme' gives videos and model 'text-only' does not take video"):
        _in_root(root, monkeypatch, lambda: lmms_nb.evaluate(model, ["videomme"], output_dir=root / "refused",
                                                             progress=False, resume=False))
    assert calls == [] and not list((root / "refused").rglob("*_samples_*.jsonl"))


def test_a_tiny_qwen2_5_vl_answers_videomme_from_the_frames(standin, monkeypatch, tmp_path):
    from lmms_nb.models import get_model
    from lmms_nb.models.tiny import build_tiny_qwen2_5_vl

    root, _, _ = standin
    path = build_tiny_qwen2_5_vl(tmp_path / "q", vocab_texts=["Select the best answer", "A B C D"])
    model = get_model("qwen2_5_vl", pretrained=str(path), device_map="cpu", min_pixels=3136, max_pixels=12544,
                      max_num_frames=4)
    run = _in_root(root, monkeypatch, lambda: lmms_nb.evaluate(model, ["videomme"], output_dir=root / "qwen",
                                                               progress=False, resume=False, batch_size=2))
    records = [json.loads(line) for line in run.sample_files["videomme"].read_text().splitlines()]
    assert len(records) == 6 and all(r["error"] is None for r in records)
    assert all(0 < r["output_tokens"] <= 16 for r in records)  # the task's max_new_tokens (seeded model)
    assert 0 <= run.score("videomme", "videomme_perception_score") <= 100
