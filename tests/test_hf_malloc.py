"""glibc's malloc thresholds pinned once a model is on the CPU (`lmms_nb.models._hf_malloc`): freed memory is reused
instead of coming back as fresh zeroed pages, and a real tiny Qwen2.5-VL gives the same logits bit for bit with the
thresholds pinned as with malloc left alone. Each side runs in a fresh process, malloc's settings being the process's."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmms_nb.models._hf_malloc import OPT_OUT_ENV
from lmms_nb.models.tiny import build_tiny_qwen2_5_vl

REPO = Path(__file__).resolve().parents[1]
PROMPT = "How many circles are there?"

#: the child: glibc's starting thresholds with its dynamic rule off (so that every 8 MiB block is its own mapping
#: unless lmms-nb pins them), page faults of reallocating 8 MiB ten times before and after loading the model, then
#: the model's logits on one image request and its greedy answers
_CHILD = r"""
import ctypes, json, resource, sys
import torch
from PIL import Image, ImageDraw
from lmms_nb.models import Request, get_model

libc = ctypes.CDLL(None)
assert libc.mallopt(-3, 128 * 1024) == 1 and libc.mallopt(-1, 128 * 1024) == 1

def faults_of_reallocating():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(2 << 20).sum()  # 8 MiB of float32, written, read, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_before = faults_of_reallocating()
model = get_model("qwen2_5_vl", pretrained=sys.argv[1], device_map="cpu")
faults_after = faults_of_reallocating()
image = Image.new("RGB", (90, 70), "white")
ImageDraw.Draw(image).ellipse((5, 5, 40, 44), fill=(200, 30, 20))
request = Request(doc_id=0, task="t", images=[image], prompt=sys.argv[3], generation_kwargs={"max_new_tokens": 6})
inputs = model.processor(text=[model._prompt(request)], images=[model.style.image_transform(image)],
                         return_tensors="pt")
inputs["pixel_values"] = inputs["pixel_values"].to(model.model.dtype)
with torch.inference_mode():
    torch.save(model.model(**inputs).logits, sys.argv[2])
answers = [r.text for r in model.generate([request] * 2)]
print(json.dumps({"before": faults_before, "after": faults_after, "answers": answers}))
"""


def _child(model: Path, out: Path, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(out), PROMPT], cwd=REPO, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false", **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc's thresholds are glibc's (musl, macOS: none)")
def test_a_cpu_model_reuses_freed_memory_and_gives_the_same_logits(tmp_path):
    model = build_tiny_qwen2_5_vl(tmp_path / "qwen", vocab_texts=[PROMPT, "0 1 2 3 4 5"], seed=3)
    pinned = _child(model, tmp_path / "pinned.pt")
    alone = _child(model, tmp_path / "alone.pt", **{OPT_OUT_ENV: "0"})
    # 8 MiB is 2048 pages: a fresh mapping per block faults them all in again (10 blocks: ~20,000 faults); pinned,
    # the heap grows once (at most one block's pages) and the other nine reuse it
    assert pinned["before"] > 9 * 2048 and alone["before"] > 9 * 2048
    assert pinned["after"] < 2 * 2048 and alone["after"] > 9 * 2048, (pinned, alone)
    logits_pinned, logits_alone = torch.load(tmp_path / "pinned.pt"), torch.load(tmp_path / "alone.pt")
    assert logits_pinned.dtype == torch.bfloat16 and torch.equal(logits_pinned, logits_alone)
    assert pinned["answers"] == alone["answers"]
