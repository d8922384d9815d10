"""Qwen's processor with the prompts tokenized one pad token per image and the pad runs put in as ids
(`_qwen_text.processor_inputs`): transformers' own `input_ids`, `attention_mask`, `mm_token_type_ids`,
`pixel_values` and `image_grid_thw`, bit for bit, checked against a second, untouched processor of a tiny real
Qwen2.5-VL, on batches that need padding (prompts of different lengths, several images in one prompt, images of
different sizes); and the processor's own call wherever the fast form does not apply."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.models._qwen_text import _VERDICTS, _fast, fits, processor_inputs
from lmms_nb.models.tiny import build_tiny_qwen2_5_vl

PROMPTS = ["How many circles are there?", "Which colour is the big one", "0 1 2 3 4 5 circles"]


@pytest.fixture(scope="module")
def processors(tmp_path_factory):
    from transformers import AutoProcessor

    path = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen_text"), vocab_texts=PROMPTS, seed=0)
    return AutoProcessor.from_pretrained(str(path)), AutoProcessor.from_pretrained(str(path))


def _image(w: int, h: int, k: int) -> Image.Image:
    image = Image.new("RGB", (w, h), (255, 250 - 30 * k, 10 * k))
    ImageDraw.Draw(image).ellipse((2, 3, w // 2 + k, h - 2), fill=(200, 40 * k % 255, 20))
    return image


def _prompt(processor, question: str, n_images: int) -> str:
    content = [{"type": "image"}] * n_images + [{"type": "text", "text": question}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def _batches(processor):
    one = [_prompt(processor, q, 1) for q in PROMPTS]
    return [
        (one, [_image(64, 64, 0), _image(90, 60, 1), _image(120, 200, 2)], {}),
        # two images in one prompt, none in another: left padding, pad runs of different lengths
        ([_prompt(processor, PROMPTS[0], 2), _prompt(processor, PROMPTS[1], 0) + PROMPTS[2],
          _prompt(processor, PROMPTS[2], 1)], [_image(60, 50, 3), _image(300, 40, 4), _image(56, 56, 5)], {}),
        (one[:1], [_image(448, 448, 6)], {"min_pixels": 16 * 28 * 28, "max_pixels": 64 * 28 * 28}),
    ]


def test_pad_runs_put_in_as_ids_equal_transformers_own(processors):
    fast, plain = processors
    assert fits(fast)
    for call, (texts, images, extra) in enumerate(_batches(plain)):
        kwargs = dict(padding=True, return_tensors="pt", **extra)
        expected = plain(text=list(texts), images=images, **kwargs)
        mine = _fast(fast, list(texts), images, kwargs)  # the fast form itself, not the checked call's fallback
        got = processor_inputs(fast, text=list(texts), images=images, **kwargs)
        assert _VERDICTS[fast] is True, call  # the first call checked, and found them identical
        assert (expected["attention_mask"] == 0).any() or call != 1  # padding was exercised
        for out in (mine, got):
            assert set(out) == set(expected) == {"input_ids", "attention_mask", "mm_token_type_ids",
                                                 "pixel_values", "image_grid_thw"}
            for key in expected:
                assert out[key].dtype == expected[key].dtype, key
                assert torch.equal(out[key], expected[key]), (call, key)


def test_whatever_the_fast_form_does_not_cover_is_the_processors_own_call(processors):
    fast, plain = processors
    texts, images, _ = _batches(plain)[0]
    # a keyword the fast form does not know: the processor's own call, and its output
    got = processor_inputs(fast, text=list(texts), images=images, padding=True, return_tensors="pt",
                           return_text_replacement_offsets=True)
    assert "text_replacement_offsets" in got
    # one placeholder too few: the processor's own error, not an index error of the fast form
    with pytest.raises(ValueError, match="should be the same as the number of images"):
        processor_inputs(fast, text=list(texts), images=images + [_image(64, 64, 7)], padding=True,
                         return_tensors="pt")
    # text only (no images): the processor's own call
    only_text = processor_inputs(fast, text=[PROMPTS[0]], padding=True, return_tensors="pt")
    assert torch.equal(only_text["input_ids"], plain(text=[PROMPTS[0]], return_tensors="pt")["input_ids"])


def _fresh(processors):
    """A third processor of the same folder, with no verdict yet."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(processors[0].tokenizer.name_or_path)


def test_a_fast_form_that_differs_is_never_used(processors, monkeypatch):
    import lmms_nb.models._qwen_text as qwen_text

    plain = processors[1]
    texts, images, _ = _batches(plain)[1]
    kwargs = dict(padding=True, return_tensors="pt")
    expected = plain(text=list(texts), images=images, **kwargs)

    def one_pad_too_many(*args):
        out = _fast(*args)
        out["input_ids"] = torch.cat([out["input_ids"][:, :1], out["input_ids"]], dim=1)
        return out

    # a fast form whose ids differ: the first call finds it out and returns the processor's own; so do the next
    wrong = _fresh(processors)
    monkeypatch.setattr(qwen_text, "_fast", one_pad_too_many)
    for _ in range(2):
        got = processor_inputs(wrong, text=list(texts), images=images, **kwargs)
        assert _VERDICTS[wrong] is False and torch.equal(got["input_ids"], expected["input_ids"])

    # transformers' private API moved under it (an error inside the fast form): the processor's own call, from now on
    def moved(*args):
        raise TypeError("_merge_kwargs() missing 1 required positional argument: 'ModelProcessorKwargs'")

    broken = _fresh(processors)
    monkeypatch.setattr(qwen_text, "_fast", moved)
    got = processor_inputs(broken, text=list(texts), images=images, **kwargs)
    assert _VERDICTS[broken] is False and all(torch.equal(got[k], expected[k]) for k in expected)
    # a processor of transformers 4.x (its _merge_kwargs takes the kwargs class first) is not taken on at all
    old = _fresh(processors)
    old._merge_kwargs = lambda ModelProcessorKwargs, tokenizer_init_kwargs=None, **kw: None  # noqa: N803
    assert not fits(old)


def test_qwen2_vl_processor_too(tmp_path):
    from transformers import AutoProcessor

    from lmms_nb.models.tiny import build_tiny_qwen2_vl

    path = build_tiny_qwen2_vl(tmp_path, vocab_texts=PROMPTS, seed=0)
    fast, plain = AutoProcessor.from_pretrained(str(path)), AutoProcessor.from_pretrained(str(path))
    assert type(fast).__name__ == "Qwen2VLProcessor" and fits(fast)
    texts, images, _ = _batches(plain)[1]
    kwargs = dict(padding=True, return_tensors="pt")
    expected = plain(text=list(texts), images=images, **kwargs)
    processor_inputs(fast, text=list(texts), images=images, **kwargs)
    assert _VERDICTS[fast] is True
    got = processor_inputs(fast, text=list(texts), images=images, **kwargs)
    assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)


def test_other_processors_are_left_alone():
    assert not fits(object())
    assert not fits(type("LlavaProcessor", (), {"tokenizer": 1, "image_processor": 1, "image_token": "<image>"})())
