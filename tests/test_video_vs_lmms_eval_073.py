"""Video answers of tiny seeded Qwen2.5-VL and Qwen2-VL equal what the real lmms-eval 0.7.3 gave, with its command line.

The fixtures under tests/fixtures/lmms_eval_073_video were written by lmms-eval 0.7.3 itself (make.py there) on
tiny seeded models, generated mp4 clips and a video task; this test rebuilds models and clips (their bytes must hash
the same), runs `lmms-nb` with the same arguments (only the program name changed) and compares every prompt,
answer and score: frames are sampled and resized as lmms-eval's `qwen2_5_vl` (max_num_frames=8) and `qwen2_vl`
classes do (qwen_vl_utils' fetch_video), so the greedy answers match token for token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lmms_eval_073_video"
_spec = importlib.util.spec_from_file_location("lmms_eval_073_video_spec", FIXTURES / "spec.py")
spec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spec)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video073")
    hashes = spec.build(root)
    recorded = json.loads((FIXTURES / "versions.json").read_text())["sha256"]
    assert hashes == recorded, "the tiny models or clips no longer build identically: regenerate (make.py)"
    return root


def _lines(folder: Path) -> list[dict]:
    (path,) = folder.glob("*_samples_vs_video.jsonl")
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("model", list(spec.MODELS))
def test_video_answers_and_scores_equal_lmms_evals(root, model):
    out = f"out_{model}"
    proc = subprocess.run([sys.executable, "-m", "lmms_nb", *spec.command(model, out)], cwd=root, capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (theirs_dir,) = (FIXTURES / model).iterdir()
    (ours_dir,) = (root / out).iterdir()
    assert ours_dir.name == theirs_dir.name
    theirs, ours = _lines(theirs_dir), _lines(ours_dir)
    assert [a["doc_id"] for a in ours] == [b["doc_id"] for b in theirs] == list(range(len(spec.QUESTIONS)))
    for a, b in zip(ours, theirs):
        assert a["error"] is None
        assert (a["input"], a["target"]) == (b["input"], b["target"])
        assert a["filtered_resps"] == b["filtered_resps"], (model, a["doc_id"])
        assert a["exact_match"] == b["exact_match"]
    # the clips differ, so do the answers: the frames reached the model
    assert len({b["filtered_resps"] for b in theirs}) >= 3
    (their_results,) = theirs_dir.glob("*_results.json")
    (our_results,) = ours_dir.glob("*_results.json")
    a, b = json.loads(our_results.read_text()), json.loads(their_results.read_text())
    strip = lambda r: {k: v for k, v in r.items() if "stderr" not in k}  # noqa: E731
    assert strip(a["results"]["vs_video"]) == strip(b["results"]["vs_video"])
