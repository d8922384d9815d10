"""The transformers backend on a real tiny LLaVA built here: loading through the registry, prompts, greedy decoding
checked against a hand-written greedy loop, batch invariance, stop strings, per-request errors, text-only prompts."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.models import Request, get_model
from lmms_nb.models.hf import HFImageTextModel, apply_until
from lmms_nb.models.tiny import build_tiny_llava

WORDS = ["how", "many", "circles", "squares", "triangles", "are", "there", "in", "the", "image", "what", "color", "is",
         "the", "shape", "red", "green", "blue", "yes", "no"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    texts = [" ".join(WORDS), "How many circles are there?", "What color is the square?", "0 1 2 3 4 5 6 7 8 9"]
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), vocab_texts=texts * 5, seed=0)


@pytest.fixture(scope="session")
def model(tiny_path) -> HFImageTextModel:
    return get_model("hf", pretrained=tiny_path, max_new_tokens=6)


def _real_images() -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]  # china.jpg, flower.jpg (427x640)
    rng = random.Random(1)
    drawn = []
    for i in range(6):
        im = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(im)
        for _ in range(i + 1):
            x, y = rng.randrange(48), rng.randrange(48)
            draw.ellipse((x, y, x + 14, y + 14), fill=tuple(rng.randrange(256) for _ in range(3)))
        drawn.append(im)
    return photos + drawn


def _requests(n: int, *, seed: int = 0, **gen) -> list[Request]:
    rng = random.Random(seed)
    images = _real_images()
    return [
        Request(
            doc_id=i,
            task="toy",
            images=[images[i % len(images)]],
            # 1..30 words: prompts of clearly different token lengths, so batches need padding
            prompt=" ".join(rng.choice(WORDS) for _ in range(1 + (i * 7) % 30)) + "?",
            generation_kwargs=dict(gen),
        )
        for i in range(n)
    ]


def _reference_greedy(tiny_path, prompt_text: str, image: Image.Image | None, max_new_tokens: int) -> str:
    """Greedy decoding written out by hand: full forward pass per step, argmax, stop at EOS. No generate()."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_path)
    net = AutoModelForImageTextToText.from_pretrained(tiny_path).eval()
    inputs = processor(text=[prompt_text], images=[image] if image is not None else None, return_tensors="pt")
    ids = inputs["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            extra = {"pixel_values": inputs["pixel_values"]} if image is not None else {}
            logits = net(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0, -1]
            tok = int(logits.argmax())
            if tok == processor.tokenizer.eos_token_id:
                break
            new.append(tok)
            ids = torch.cat([ids, torch.tensor([[tok]])], dim=1)
    return processor.tokenizer.decode(new, skip_special_tokens=True)  # not stripped, as lmms-eval


def test_registry_loads_the_saved_model(model, tiny_path):
    assert isinstance(model, HFImageTextModel)
    assert type(model.model).__name__ == "LlavaForConditionalGeneration"
    assert model.model_args["pretrained"] == str(tiny_path)
    assert model.model_args["dtype"] == "float32" and model.model_args["device"] == "cpu"
    assert model.name == f"{tiny_path.parent.name}/{tiny_path.name}"  # lmms-eval's last two parts
    assert isinstance(get_model("transformers", pretrained=tiny_path), HFImageTextModel)
    assert HFImageTextModel(tiny_path, name="alias").name == "alias"
    with pytest.raises(ValueError, match="dtype"):
        HFImageTextModel(tiny_path, dtype="float8")


def test_greedy_matches_a_hand_written_decoding_loop(model, tiny_path):
    reqs = _requests(3)
    responses = model.generate(reqs)
    for req, resp in zip(reqs, responses):
        assert resp.error is None
        # the chat template of tiny.py, written out: USER: <image>\n<prompt>\nASSISTANT:
        prompt_text = f"<s>USER: <image>\n{req.prompt}\nASSISTANT:"
        assert resp.text == _reference_greedy(tiny_path, prompt_text, req.images[0], 6)
        assert 1 <= resp.output_tokens <= 6
        assert resp.latency_s > 0


def test_text_only_request(model, tiny_path):
    req = Request(doc_id=0, task="toy", images=[], prompt="what color is the shape?")
    [resp] = model.generate([req])
    assert resp.error is None
    assert resp.text == _reference_greedy(tiny_path, "<s>USER: what color is the shape?\nASSISTANT:", None, 6)
    # text-only and image requests mixed in one call: each gets the answer it gets alone
    mixed = model.generate([_requests(1)[0], req, _requests(2)[1]])
    assert [r.text for r in mixed] == [
        model.generate([_requests(1)[0]])[0].text,
        resp.text,
        model.generate([_requests(2)[1]])[0].text,
    ]


def test_batch_size_1_and_8_give_identical_greedy_predictions(tiny_path):
    reqs = _requests(20)
    lengths = {len(HFImageTextModel._prompt(get_model("hf", pretrained=tiny_path), r)) for r in reqs}
    assert len(lengths) > 10  # really different prompt lengths -> real left padding inside a batch of 8
    one = get_model("hf", pretrained=tiny_path, batch_size=1, max_new_tokens=8).generate(reqs)
    eight = get_model("hf", pretrained=tiny_path, batch_size=8, max_new_tokens=8).generate(reqs)
    assert all(r.error is None for r in one + eight)
    assert [r.text for r in one] == [r.text for r in eight]
    assert [r.output_tokens for r in one] == [r.output_tokens for r in eight]


def test_max_new_tokens_and_num_beams_are_honoured(model, tiny_path):
    reqs = _requests(4, max_new_tokens=2)
    assert all(r.output_tokens <= 2 for r in model.generate(reqs))
    long = model.generate(_requests(4, max_new_tokens=12))
    assert max(r.output_tokens for r in long) > 2
    # beam search: the same as transformers' own beam search on the same inputs
    [req] = _requests(1, num_beams=3, max_new_tokens=5)
    [resp] = model.generate([req])
    inputs = model.processor(text=[model._prompt(req)], images=req.images, return_tensors="pt")
    with torch.no_grad():
        out = model.model.generate(**inputs, num_beams=3, max_new_tokens=5, do_sample=False)
    expected = model.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert resp.text == expected


def test_temperature_samples_and_zero_temperature_is_greedy(model):
    greedy = [r.text for r in model.generate(_requests(8))]
    assert [r.text for r in model.generate(_requests(8, temperature=0))] == greedy
    samples = set()
    for seed in range(3):
        torch.manual_seed(seed)
        samples.add(tuple(r.text for r in model.generate(_requests(8, temperature=1.5, max_new_tokens=6))))
    # an untrained model's next-token distribution is close to uniform: sampling cannot reproduce greedy
    assert len(samples) > 1 and tuple(greedy) not in samples


def test_until_stop_strings_are_applied(model):
    reqs = _requests(8)
    plain = model.generate(reqs)
    checked = 0
    for req, resp in zip(reqs, plain):
        text = resp.text
        if len(text) < 3:
            continue
        stop = text[len(text) // 2]
        req.generation_kwargs = {"until": [stop, "never-generated"]}
        [cut] = model.generate([req])
        assert cut.text == text.split(stop, 1)[0]
        assert stop not in cut.text
        checked += 1
    assert checked >= 3
    assert apply_until("B. a cat\n\nbecause", ["\n\n"]) == "B. a cat"
    assert apply_until("yes. no", ".") == "yes"
    assert apply_until("abc", []) == "abc"


def _truncated_png() -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return Image.open(io.BytesIO(buf.getvalue()[:300]))  # opens lazily; the pixels are missing


def test_a_broken_image_fails_only_its_own_request(model):
    reqs = _requests(8)
    clean = [r.text for r in model.generate(reqs)]
    broken = {1: Image.new("RGB", (0, 0)), 4: _truncated_png(), 6: "not-an-image.png"}
    for i, im in broken.items():
        reqs[i].images = [im]
    responses = model.generate(reqs)
    for i, resp in enumerate(responses):
        if i in broken:
            assert resp.text is None and f"doc {i}" in resp.error
        else:
            assert resp.error is None and resp.text == clean[i]
    assert "0x0" in responses[1].error
    assert "truncated" in responses[4].error
    assert "PIL image" in responses[6].error


def test_a_truncated_image_fails_even_where_pil_was_told_to_accept_truncated_files(model, monkeypatch):
    """Importing lmms-eval (catalogue tasks do) sets PIL's LOAD_TRUNCATED_IMAGES for the whole process."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    reqs = _requests(2)
    reqs[1].images = [_truncated_png()]
    responses = model.generate(reqs)
    assert responses[0].error is None and responses[1].text is None and "truncated" in responses[1].error
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the process's setting is left as it was


def test_prompt_with_its_own_image_placeholder(model):
    req = _requests(1)[0]
    inline = Request(doc_id=0, task="toy", images=req.images, prompt=f"<image>\n{req.prompt}")
    # the placeholder written by the task gives the same prompt as the one the backend adds itself
    assert model._prompt(inline) == model._prompt(req)
    # a placeholder without an image is an error for that request only
    orphan = Request(doc_id=9, task="toy", images=[], prompt="look at <image> please")
    responses = model.generate([req, orphan])
    assert responses[0].error is None and responses[1].text is None
    assert "doc 9" in responses[1].error and "image" in responses[1].error


def test_bfloat16_loads_and_generates(tiny_path):
    model = get_model("hf", pretrained=tiny_path, dtype="bfloat16", max_new_tokens=4)
    assert model.model.dtype == torch.bfloat16 and model.model_args["dtype"] == "bfloat16"
    responses = model.generate(_requests(4))
    assert all(r.error is None and 1 <= r.output_tokens <= 4 for r in responses)
