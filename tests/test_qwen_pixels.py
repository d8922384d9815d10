"""Qwen's image processor writing every image's patches into the batch's one tensor (`_qwen_pixels.
patch_into_one_tensor`): transformers' own `pixel_values` and `image_grid_thw`, bit for bit, checked against a second,
untouched processor on batches of mixed sizes (several shape groups, interleaved), in bfloat16 and float32."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.models._qwen_pixels import patch_into_one_tensor, patchify_in_model_dtype


def _images(sizes: list[tuple[int, int]]) -> list[Image.Image]:
    out = []
    for k, (w, h) in enumerate(sizes):
        image = Image.new("RGB", (w, h), (255, 255 - 20 * k, 10 * k))
        ImageDraw.Draw(image).ellipse((2, 3, w // 2 + k, h - 2), fill=(200, 40 * k % 255, 20))
        ImageDraw.Draw(image).line((0, 0, w, h), fill=(0, 90, 255), width=3)
        out.append(image)
    return out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_patches_into_one_tensor_equal_transformers_own(dtype):
    from transformers import Qwen2VLImageProcessor

    bounds = {"min_pixels": 16 * 28 * 28, "max_pixels": 96 * 28 * 28}
    plain, fast = Qwen2VLImageProcessor(**bounds), Qwen2VLImageProcessor(**bounds)
    patchify_in_model_dtype(fast, dtype)
    assert patch_into_one_tensor(fast) and not patch_into_one_tensor(fast)
    batches = [
        [(64, 64)] * 4,  # one shape group
        [(60, 50), (200, 90), (60, 50), (33, 280), (200, 90)],  # interleaved groups
        [(448, 448)],
        [(17, 300), (300, 17), (90, 90)],
    ]
    for call, sizes in enumerate(batches):
        images = _images(sizes)
        expected, got = plain(images, return_tensors="pt"), fast(images, return_tensors="pt")
        assert fast._lmms_nb_one_tensor is True, call  # the first call checked, and found them identical
        assert got["pixel_values"].dtype == dtype
        assert torch.equal(got["pixel_values"], expected["pixel_values"].to(dtype)), sizes
        assert torch.equal(got["image_grid_thw"], expected["image_grid_thw"]), sizes
        assert got["image_grid_thw"].dtype == expected["image_grid_thw"].dtype


def test_only_qwens_torch_image_processor_gets_it():
    from transformers import Glm4vImageProcessor, Qwen2VLImageProcessorPil

    for other in (Glm4vImageProcessor(), Qwen2VLImageProcessorPil()):
        assert not patch_into_one_tensor(other), type(other).__name__
        assert "_preprocess" not in vars(other)


def test_a_sped_up_processor_still_prints_and_saves_as_transformers_own(tmp_path):
    """The hooks are instance attributes; transformers serialises those (`repr`, `save_pretrained`): they stay out."""
    import json

    from transformers import AutoImageProcessor, Qwen2VLImageProcessor

    plain, fast = Qwen2VLImageProcessor(), Qwen2VLImageProcessor()
    assert patchify_in_model_dtype(fast, torch.bfloat16) and patch_into_one_tensor(fast)
    assert repr(fast) == repr(plain)
    plain.save_pretrained(tmp_path / "plain")
    fast.save_pretrained(tmp_path / "fast")
    name = "preprocessor_config.json"
    assert json.loads((tmp_path / "fast" / name).read_text()) == json.loads((tmp_path / "plain" / name).read_text())
    again = AutoImageProcessor.from_pretrained(tmp_path / "fast")
    images = _images([(64, 64), (90, 40)])
    assert torch.equal(again(images, return_tensors="pt")["pixel_values"],
                       plain(images, return_tensors="pt")["pixel_values"])
