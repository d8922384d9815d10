"""A tiny Qwen2.5-VL loaded twice (one copy to keep lmms-nb's CPU fast paths, one to put transformers' own forward
back) and four circle images of growing size: the set-up of the "same tokens with and without" tests of
tests/test_patch_embed.py and tests/test_vision_attention.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from lmms_nb.models import Request, get_model
from lmms_nb.models.tiny import build_tiny_qwen2_5_vl

PROMPT = "How many circles are there?"


def tiny_qwen_pair(folder: Path, *, seed: int, size_step: tuple[int, int],
                   checked_attr: str) -> tuple[Any, Any, list[Request]]:
    """(fast, plain, requests): `plain`'s modules marked with `checked_attr` get transformers' forward back;
    image k is (64 + size_step[0] * k) x (64 + size_step[1] * k) pixels."""
    path = build_tiny_qwen2_5_vl(folder, vocab_texts=[PROMPT, "0 1 2 3 4 5"], seed=seed)
    images = []
    for k in range(4):
        image = Image.new("RGB", (64 + size_step[0] * k, 64 + size_step[1] * k), "white")
        ImageDraw.Draw(image).ellipse((5 + k, 5, 40, 40 + k), fill=(200, 30 * k, 20))
        images.append(image)
    requests = [Request(doc_id=k, task="t", images=[im], prompt=PROMPT, generation_kwargs={"max_new_tokens": 6})
                for k, im in enumerate(images)]
    fast = get_model("qwen2_5_vl", pretrained=str(path), device_map="cpu")  # lmms-eval's class: bfloat16, 448 px+
    plain = get_model("qwen2_5_vl", pretrained=str(path), device_map="cpu")
    for module in plain.model.modules():  # back to transformers' own forward
        if hasattr(module, checked_attr):
            del module.forward
    return fast, plain, requests
