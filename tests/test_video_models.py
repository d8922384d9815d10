"""Video through the transformers backend: Qwen2.5-VL / Qwen2-VL (plain "hf" and lmms-eval's names) and
LLaVA-OneVision take video files; LLaVA-1.5 under llava_hf does not and says so. Tiny seeded models built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmms_nb.models import Request, get_model
from lmms_nb.models.tiny import _byte_level_bpe, build_tiny_llava, build_tiny_qwen2_5_vl
from lmms_nb.video import load_video_uniform

from test_video_videomme import write_video

QUESTION = "What happens in the video?"
ONEVISION_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'video' %}<video>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_llava_onevision(path, seed: int = 0):
    """A seeded tiny LLaVA-OneVision (SigLIP 32 px, 8 px patches; Qwen2 text) with image and video processors."""
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor,
                              PreTrainedTokenizerFast, Qwen2Config, SiglipVisionConfig)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(["user\n", "assistant\n", QUESTION, "a bar moves right"], specials, 300),
        pad_token="<|endoftext|>", eos_token="<|im_end|>", padding_side="left", model_max_length=2048,
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"})
    size = {"height": 32, "width": 32}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=[[32, 32]]),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tokenizer, num_image_tokens=16,
        vision_feature_select_strategy="full", chat_template=ONEVISION_TEMPLATE)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=32, patch_size=8),
        text_config=Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                                eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], image_grid_pinpoints=[[32, 32]],
        vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_1")
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_models")
    return [write_video(root / f"c{k}.mp4", n_frames=n, size=(64, 48), fps=4, seed=k)
            for k, n in enumerate((6, 14, 40))]


def _ask(model, clips, **gen):
    reqs = [Request(doc_id=k, task="t", images=[str(c)], prompt=QUESTION,
                    generation_kwargs={"max_new_tokens": 4, **gen}) for k, c in enumerate(clips)]
    return model.generate(reqs)


def test_qwen2_5_vl_takes_video_through_hf_and_its_lmms_eval_name(tmp_path, clips):
    path = build_tiny_qwen2_5_vl(tmp_path / "q", vocab_texts=[QUESTION, "a bar moves right"])
    plain = get_model("hf", pretrained=str(path), max_new_tokens=4)
    alias = get_model("qwen2_5_vl", pretrained=str(path), device_map="cpu", dtype="float32", min_pixels=3136,
                      max_pixels=12544, max_num_frames=4)
    assert plain.accepts_video and alias.accepts_video
    for model in (plain, alias):
        out = _ask(model, clips)
        assert all(r.error is None and r.output_tokens == 4 for r in out), out
    # batch and single answers agree, and a clip's frames change the answer of this random model
    one = [_ask(alias, [c])[0].text for c in clips]
    assert one == [r.text for r in _ask(alias, clips)]
    assert len(set(one)) > 1
    # the frames asked for reach the model: 4 frames -> 2 temporal patches of (56 / 14) ** 2 patches
    video, meta = alias.video_loader(str(clips[2]))
    assert video.shape == (4, 3, 56, 56) and meta["frames_indices"] == [0, 13, 26, 39]
    inputs = alias.processor(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[video],
                             video_metadata=[meta], return_tensors="pt")
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]


def test_llava_onevision_takes_uniform_frames_and_llava_1_5_is_refused(tmp_path, clips):
    path = build_tiny_llava_onevision(tmp_path / "ov")
    model = get_model("llava_onevision", pretrained=str(path), device="cpu", dtype="float32", max_frames_num=8)
    assert model.accepts_video
    frames, meta = model.video_loader(str(clips[1]))
    assert frames.shape == (8, 48, 64, 3) and meta is None
    assert np.array_equal(frames, load_video_uniform(clips[1], 8))
    assert "<video>" in model._prompt(Request(doc_id=0, task="t", images=[str(clips[0])], prompt=QUESTION))
    out = _ask(model, clips)
    assert all(r.error is None and r.output_tokens is not None for r in out), out
    assert len({r.text for r in out}) > 1  # the frames reach this random model and change its answer
    llava = build_tiny_llava(tmp_path / "llava", vocab_texts=[QUESTION])
    plain_llava = get_model("llava_hf", pretrained=str(llava), device="cpu")
    assert not plain_llava.accepts_video  # no video processor: refused by the runner before generating
    (r,) = _ask(plain_llava, clips[:1])
    assert r.error and "takes none" in r.error
