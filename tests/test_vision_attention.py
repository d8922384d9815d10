"""Qwen vision attention with runs of equal chunks batched into one SDPA call (`lmms_nb.models._vision_attention`) and
Qwen's image processor patchifying in the model's dtype (`lmms_nb.models._qwen_pixels`): real transformers vision
towers and processors, compared bit for bit with transformers' own forward and output, and a tiny Qwen2.5-VL in
bfloat16 generating the same tokens with both as without them."""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.models._qwen_pixels import patchify_in_model_dtype
from lmms_nb.models._vision_attention import speed_up_vision_attention
from _tiny_qwen_pair import tiny_qwen_pair

_TEXT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
         "intermediate_size": 64, "vocab_size": 64}


def _tower(family: str, dtype: torch.dtype):
    """A seeded random vision tower of `family` (depth 2; Qwen2.5-VL: one window block, one full block)."""
    import transformers

    torch.manual_seed(0)
    if family == "qwen2_5_vl":
        config = transformers.Qwen2_5_VLConfig(
            vision_config={"depth": 2, "hidden_size": 64, "num_heads": 4, "out_hidden_size": 32,
                           "intermediate_size": 128, "fullatt_block_indexes": [1], "window_size": 112},
            text_config={**_TEXT, "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2]}})
        model = transformers.Qwen2_5_VLForConditionalGeneration(config)
    elif family == "qwen2_vl":
        config = transformers.Qwen2VLConfig(
            vision_config={"depth": 2, "embed_dim": 64, "num_heads": 4, "hidden_size": 32, "mlp_ratio": 2},
            text_config={**_TEXT, "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2]}})
        model = transformers.Qwen2VLForConditionalGeneration(config)
    else:
        config = transformers.Qwen3VLConfig(
            vision_config={"depth": 2, "hidden_size": 64, "num_heads": 4, "out_hidden_size": 32,
                           "intermediate_size": 128, "deepstack_visual_indexes": [], "num_position_embeddings": 64},
            text_config={**_TEXT, "head_dim": 16,
                         "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2]}})
        model = transformers.Qwen3VLForConditionalGeneration(config)
    return model.model.visual.to(dtype).eval()


#: (t, h, w) patch grids per call: equal images (windows all of one length), mixed sizes with partial windows at
#: the edges (runs of several lengths), one image alone (nothing to batch in full attention)
_GRIDS = [[[1, 32, 32]] * 3, [[1, 32, 32], [1, 20, 36], [1, 46, 30]], [[1, 8, 12]], [[1, 32, 32]] * 3]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_vision_towers_give_transformers_numbers_bit_for_bit(family, dtype):
    plain = _tower(family, dtype)
    fast = copy.deepcopy(plain)
    assert speed_up_vision_attention(fast) == 2 and speed_up_vision_attention(fast) == 0  # installed once
    patch_dim = 3 * 2 * plain.patch_embed.patch_size ** 2
    with torch.inference_mode():
        for grids in _GRIDS:
            grid_thw = torch.tensor(grids)
            pixels = (torch.rand(int(grid_thw.prod(-1).sum()), patch_dim) * 4 - 2).to(dtype)
            for _ in range(2):  # the first call of each chunk length checks, the next ones use the result
                expected, got = plain(pixels, grid_thw), fast(pixels, grid_thw)
                assert torch.equal(got.pooler_output, expected.pooler_output), grids
                assert torch.equal(got.last_hidden_state, expected.last_hidden_state), grids
    checked = {key: same for block in fast.blocks for key, same in block.attn._lmms_nb_batched_checked.items()}
    # keys: (threads, dtype, heads, head_dim, chunk length, chunks in the run). Full attention over three 32x32
    # images is one run of 3 chunks of 1024, and on CPU the check finds it identical at these shapes
    assert checked[(torch.get_num_threads(), dtype, 4, 16, 32 * 32, 3)] is True
    if family == "qwen2_5_vl":  # 112 px windows: 8x8 patches, 16 per 32x32 image, partial ones at mixed sizes' edges
        assert checked[(torch.get_num_threads(), dtype, 4, 16, 64, 3 * 16)] is True
        assert len(checked) > 2


def test_each_run_length_and_count_is_checked_on_its_own_at_20_threads():
    """The count is the batch size of the batched SDPA, which PyTorch's CPU flash attention blocks by (with AMX, 20
    threads, bfloat16 and 16 heads of 80, 3 windows of 64 came out different from one at a time while 2 matched):
    a 2-window run passing must not let a 3-window run through unchecked."""
    import transformers

    torch.manual_seed(0)
    config = transformers.Qwen2_5_VLConfig(
        vision_config={"depth": 1, "hidden_size": 16 * 80, "num_heads": 16, "out_hidden_size": 32,
                       "intermediate_size": 64, "fullatt_block_indexes": [], "window_size": 112},
        text_config={**_TEXT, "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2]}})
    plain = transformers.Qwen2_5_VLForConditionalGeneration(config).model.visual.to(torch.bfloat16).eval()
    fast = copy.deepcopy(plain)
    assert speed_up_vision_attention(fast) == 1
    threads = torch.get_num_threads()
    torch.set_num_threads(20)
    try:
        prefix = (20, torch.bfloat16, 16, 80, 64)
        checked = fast.blocks[0].attn._lmms_nb_batched_checked
        # 8x16 patches: one row of 2 windows of 8x8; 8x24: one row of 3
        for grid, windows in (([1, 8, 16], 2), ([1, 8, 24], 3)):
            grid_thw = torch.tensor([grid])
            pixels = (torch.rand(8 * grid[2], 3 * 2 * 14 * 14) * 4 - 2).to(torch.bfloat16)
            with torch.inference_mode():
                for call in range(2):  # the first call checks this (length, count), the second uses the verdict
                    assert torch.equal(fast(pixels, grid_thw).last_hidden_state,
                                       plain(pixels, grid_thw).last_hidden_state), (grid, call)
                    assert prefix + (windows,) in checked, (grid, call)
        assert set(checked) == {prefix + (2,), prefix + (3,)}
    finally:
        torch.set_num_threads(threads)


def test_eager_attention_and_training_are_left_to_transformers():
    tower = _tower("qwen2_5_vl", torch.float32)
    speed_up_vision_attention(tower)
    tower.config._attn_implementation = "eager"
    grid_thw = torch.tensor([[1, 16, 16]] * 2)
    with torch.inference_mode():
        tower(torch.rand(512, 3 * 2 * 14 * 14), grid_thw)
    assert all(not block.attn._lmms_nb_batched_checked for block in tower.blocks)


def test_qwen_image_processor_patchifies_in_the_model_dtype_with_the_same_values():
    from transformers import Qwen2VLImageProcessor

    images = []
    for k in range(3):
        image = Image.new("RGB", (60 + 30 * k, 50), "white")
        ImageDraw.Draw(image).ellipse((3, 4, 40 + k, 30), fill=(200, 40 * k, 20))
        images.append(image)
    plain = Qwen2VLImageProcessor(min_pixels=64 * 28 * 28, max_pixels=256 * 28 * 28)
    fast = Qwen2VLImageProcessor(min_pixels=64 * 28 * 28, max_pixels=256 * 28 * 28)
    assert not patchify_in_model_dtype(fast, torch.float32)  # nothing to gain where the model takes float32
    from transformers import Glm4vImageProcessor, Qwen2VLImageProcessorPil

    for other in (Glm4vImageProcessor(), Qwen2VLImageProcessorPil()):  # a `patchify` too, but not Qwen's torch one
        assert callable(other.patchify) and not patchify_in_model_dtype(other, torch.bfloat16), type(other).__name__
    assert patchify_in_model_dtype(fast, torch.bfloat16) and not patchify_in_model_dtype(fast, torch.bfloat16)
    expected, got = plain(images, return_tensors="pt"), fast(images, return_tensors="pt")
    assert got["pixel_values"].dtype == torch.bfloat16
    assert torch.equal(got["pixel_values"], expected["pixel_values"].to(torch.bfloat16))
    assert torch.equal(got["image_grid_thw"], expected["image_grid_thw"])


def test_tiny_qwen2_5_vl_generates_the_same_tokens_with_and_without_them(tmp_path):
    fast, plain, requests = tiny_qwen_pair(tmp_path / "qwen", seed=5, size_step=(40, 8),
                                           checked_attr="_lmms_nb_batched_checked")
    del plain.processor.image_processor.patchify
    assert fast.model.dtype == torch.bfloat16
    for _ in range(2):  # the first call checks, the second uses the batched form where the check passed
        assert [r.text for r in fast.generate(requests)] == [r.text for r in plain.generate(requests)]
    assert any(any(getattr(m, "_lmms_nb_batched_checked", {}).values()) for m in fast.model.modules())


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_the_one_pass_rotary_gives_transformers_numbers(family):
    import importlib

    from lmms_nb.models._vision_attention import _known_rotary, _rotary_query_key

    module = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    assert _known_rotary(module.apply_rotary_pos_emb_vision)
    assert not _known_rotary(lambda q, k, cos, sin: (q, k))
    generator = torch.Generator().manual_seed(3)
    for dtype in (torch.bfloat16, torch.float32):
        for seq, heads, head_dim in ((64, 2, 16), (1000, 16, 80), (7, 3, 4)):
            qkv = (torch.randn(seq, 3 * heads * head_dim, generator=generator) * 3).to(dtype).reshape(seq, 3, heads, -1)
            angles = torch.randn(seq, head_dim, generator=generator) * 50
            query, key, _ = qkv.permute(1, 0, 2, 3).unbind(0)
            expected = module.apply_rotary_pos_emb_vision(query, key, angles.cos(), angles.sin())
            got = _rotary_query_key(qkv, angles.cos(), angles.sin())
            assert all(torch.equal(g, e) and g.dtype == e.dtype for g, e in zip(got, expected)), (dtype, seq)
            assert all(g.is_contiguous() and g.stride() == e.stride() for g, e in zip(got, expected)), (dtype, seq)
