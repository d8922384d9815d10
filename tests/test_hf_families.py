"""The transformers backend on tiny Qwen2-VL, Qwen2.5-VL and Idefics3 (SmolVLM) models built here from their configs: loading
through the registry, each family's chat template, greedy decoding checked against a hand-written loop, batch 1 vs 8,
text-only prompts, bfloat16, multi-token EOS, lmms-eval "<image>" placeholders, and a task's pre/post prompts reaching
the model's input ids during `evaluate()`."""

from __future__ import annotations

import random

import datasets
import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.metrics import exact_match
from lmms_nb.models import Request, get_model
from lmms_nb.models.hf import HFImageTextModel
from lmms_nb.models.tiny import (
    build_tiny_idefics3,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
)
from lmms_nb.runner import evaluate
from lmms_nb.tasks.task import Metric, Task

WORDS = ["how", "many", "circles", "squares", "are", "there", "in", "the", "image", "what", "color", "is", "shape",
         "red", "green", "blue", "yes", "no"]
VOCAB = [" ".join(WORDS), "How many circles are there?", "What color is the square?", "0 1 2 3 4 5 6 7 8 9"] * 5

# Each family's chat template written out by hand, from the checkpoints' own templates (Qwen2.5-VL-Instruct,
# SmolVLM-Instruct); "{img}" is where the template puts one image before the processor expands it.
FAMILIES = {
    "qwen2_5_vl": {
        "build": build_tiny_qwen2_5_vl,
        "model_class": "Qwen2_5_VLForConditionalGeneration",
        "processor_class": "Qwen2_5_VLProcessor",
        "img": "<|vision_start|><|image_pad|><|vision_end|>",
        "image_token": "<|image_pad|>",
        "with_image": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{img}{prompt}"
        "<|im_end|>\n<|im_start|>assistant\n",
        "text_only": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{prompt}"
        "<|im_end|>\n<|im_start|>assistant\n",
        # a 64x64 image: smart_resize to 56x56 (multiples of 2 * 14 px), 4x4 patches of 14 px, merged 2x2 -> 4
        "tokens_per_64px_image": (56 // 14) ** 2 // 4,
    },
    "qwen2_vl": {
        "build": build_tiny_qwen2_vl,
        "model_class": "Qwen2VLForConditionalGeneration",
        "processor_class": "Qwen2VLProcessor",
        "img": "<|vision_start|><|image_pad|><|vision_end|>",
        "image_token": "<|image_pad|>",
        "with_image": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{img}{prompt}"
        "<|im_end|>\n<|im_start|>assistant\n",
        "text_only": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{prompt}"
        "<|im_end|>\n<|im_start|>assistant\n",
        "tokens_per_64px_image": (56 // 14) ** 2 // 4,
    },
    "idefics3": {
        "build": build_tiny_idefics3,
        "model_class": "Idefics3ForConditionalGeneration",
        "processor_class": "Idefics3Processor",
        "img": "<image>",
        "image_token": "<image>",
        "with_image": "<|im_start|>User:{img}{prompt}<end_of_utterance>\nAssistant:",
        "text_only": "<|im_start|>User: {prompt}<end_of_utterance>\nAssistant:",
        # 64 px, 16 px patches -> 4x4, pixel shuffle by 2 -> 2x2 = 4
        "tokens_per_64px_image": (64 // 16 // 2) ** 2,
    },
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


@pytest.fixture(scope="session", params=sorted(FAMILIES))
def family(request, tmp_path_factory) -> tuple[str, dict, object]:
    """(family name, its facts, the saved tiny model's folder)."""
    facts = FAMILIES[request.param]
    path = facts["build"](tmp_path_factory.mktemp(request.param), vocab_texts=VOCAB, seed=0)
    return request.param, facts, path


@pytest.fixture(scope="session")
def model(family) -> HFImageTextModel:
    return get_model("hf", pretrained=family[2], max_new_tokens=6)


def _images() -> list[Image.Image]:
    """Two real photos (427x640) and drawn shapes of several sizes, so images resize to different grids."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = random.Random(1)
    drawn = []
    for i in range(6):
        size = (64, 64) if i % 2 == 0 else (40 + 30 * i, 90)
        im = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(im)
        for _ in range(i + 1):
            x, y = rng.randrange(size[0] - 14), rng.randrange(size[1] - 14)
            draw.ellipse((x, y, x + 14, y + 14), fill=tuple(rng.randrange(256) for _ in range(3)))
        drawn.append(im)
    return photos + drawn


def _requests(n: int, *, seed: int = 0, two_images_every: int = 0, **gen) -> list[Request]:
    rng = random.Random(seed)
    images = _images()
    reqs = []
    for i in range(n):
        k = 2 if two_images_every and i % two_images_every == 0 else 1
        reqs.append(Request(
            doc_id=i,
            task="toy",
            images=[images[(i + j) % len(images)] for j in range(k)],
            # 1..30 words: prompts of clearly different token lengths, so batches need left padding
            prompt=" ".join(rng.choice(WORDS) for _ in range(1 + (i * 7) % 30)) + "?",
            generation_kwargs=dict(gen),
        ))
    return reqs


def _reference_greedy(path, prompt_text: str, images: list[Image.Image], max_new_tokens: int) -> str:
    """Greedy decoding written out by hand: a full forward pass per step (no cache), argmax, stop at EOS."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    net = AutoModelForImageTextToText.from_pretrained(path).eval()
    inputs = dict(processor(text=[prompt_text], images=images or None, return_tensors="pt"))
    per_token = {k: v for k, v in inputs.items() if torch.is_tensor(v) and v.shape == inputs["input_ids"].shape}
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            tok = int(net(**inputs).logits[0, -1].argmax())
            if tok == processor.tokenizer.eos_token_id:
                break
            new.append(tok)
            # a generated token is text: attention 1, multimodal type 0 (text)
            for key in per_token:
                fill = tok if key == "input_ids" else (1 if key == "attention_mask" else 0)
                inputs[key] = torch.cat([inputs[key], torch.tensor([[fill]], dtype=inputs[key].dtype)], dim=1)
    return processor.tokenizer.decode(new, skip_special_tokens=True)


def test_registry_loads_each_family_with_its_processor(model, family):
    _, facts, path = family
    assert type(model.model).__name__ == facts["model_class"]
    assert type(model.processor).__name__ == facts["processor_class"]
    assert model.processor.image_token == facts["image_token"]
    assert model.tokenizer.padding_side == "left"
    assert model.model_args["pretrained"] == str(path) and model.name == f"{path.parent.name}/{path.name}"
    assert isinstance(get_model("transformers", pretrained=path), HFImageTextModel)
    assert 100_000 < model.model.num_parameters() < 1_000_000  # tiny, as built


def test_prompts_follow_the_family_chat_template(model, family):
    _, facts, _ = family
    req = _requests(1)[0]
    assert model._prompt(req) == facts["with_image"].format(img=facts["img"], prompt=req.prompt)
    text_only = Request(doc_id=0, task="toy", images=[], prompt="what color?")
    assert model._prompt(text_only) == facts["text_only"].format(prompt="what color?")


def test_greedy_matches_a_hand_written_decoding_loop(model, family):
    _, facts, path = family
    reqs = _requests(3)
    for req, resp in zip(reqs, model.generate(reqs)):
        assert resp.error is None
        prompt_text = facts["with_image"].format(img=facts["img"], prompt=req.prompt)
        assert resp.text == _reference_greedy(path, prompt_text, req.images, 6)
        assert 1 <= resp.output_tokens <= 6


def test_text_only_request(model, family):
    _, facts, path = family
    req = Request(doc_id=0, task="toy", images=[], prompt="what color is the shape?")
    [resp] = model.generate([req])
    assert resp.error is None
    assert resp.text == _reference_greedy(path, facts["text_only"].format(prompt=req.prompt), [], 6)
    # text-only and image requests in one call: each gets the answer it gets alone
    image_req = _requests(1)[0]
    mixed = model.generate([image_req, req])
    assert [r.text for r in mixed] == [model.generate([image_req])[0].text, resp.text]


def test_batch_size_1_and_8_give_identical_greedy_predictions(family):
    _, _, path = family
    # 20 requests, every 5th with two images; photos and drawings resize to different grids
    reqs = _requests(20, two_images_every=5)
    one = get_model("hf", pretrained=path, batch_size=1, max_new_tokens=8)
    lengths = {one.processor(text=[one._prompt(r)], images=r.images, return_tensors="pt")["input_ids"].shape[1]
               for r in reqs}
    assert len(lengths) > 10  # really different token lengths -> real left padding inside a batch of 8
    eight = get_model("hf", pretrained=path, batch_size=8, max_new_tokens=8)
    by_one, by_eight = one.generate(reqs), eight.generate(reqs)
    assert all(r.error is None for r in by_one + by_eight)
    assert [r.text for r in by_one] == [r.text for r in by_eight]
    assert [r.output_tokens for r in by_one] == [r.output_tokens for r in by_eight]
    # and the answers differ between requests: the model reads its inputs
    assert len({r.text for r in by_one}) > 5


def test_bfloat16_loads_and_generates(family):
    _, _, path = family
    model = get_model("hf", pretrained=path, dtype="bfloat16", max_new_tokens=4)
    assert model.model.dtype == torch.bfloat16 and model.model_args["dtype"] == "bfloat16"
    responses = model.generate(_requests(4, two_images_every=3) + [Request(9, "toy", [], "yes or no?")])
    assert all(r.error is None and 1 <= r.output_tokens <= 4 for r in responses), responses


def test_every_eos_of_the_generation_config_ends_the_answer(family):
    _, _, path = family
    model = get_model("hf", pretrained=path, max_new_tokens=8)
    req = _requests(1)[0]
    inputs = model.processor(text=[model._prompt(req)], images=req.images, return_tensors="pt")
    with torch.no_grad():
        out = model.model.generate(**inputs, max_new_tokens=8, do_sample=False)
    plain = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert len(plain) >= 3
    # declare the third generated token a second EOS, as chat checkpoints list several (Qwen: <|im_end|>,
    # <|endoftext|>): the answer must end right before its first occurrence
    extra_eos = plain[2]
    cut = plain.index(extra_eos)
    model.model.generation_config.eos_token_id = [model.tokenizer.eos_token_id, extra_eos]
    [resp] = model.generate([req])
    assert resp.output_tokens == cut
    assert resp.text == model.tokenizer.decode(plain[:cut], skip_special_tokens=True)


def test_lmms_eval_image_placeholders_are_placed_for_every_family(model, family):
    name, facts, _ = family
    a, b = _images()[2:4]
    one = Request(doc_id=0, task="toy", images=[a], prompt="<image>\nHow many circles?")
    two = Request(doc_id=1, task="toy", images=[a, b], prompt="Left <image> right <image> same?")
    if name.startswith("qwen"):
        # "<image>" means nothing to Qwen's tokenizer: each image goes where its placeholder stood, in Qwen's own
        # vision tokens, and the rest of the text is kept as it is
        img = facts["img"]
        assert model._prompt(one) == facts["with_image"].format(img="", prompt=f"{img}\nHow many circles?")
        assert model._prompt(two) == facts["with_image"].format(img="", prompt=f"Left {img} right {img} same?")
        assert "<image>" not in model._prompt(two)
    else:
        # "<image>" is Idefics3's own image token: the prompt goes in as the text it is (as lmms-eval's llava_hf
        # does), and the processor expands each placeholder
        assert model._prompt(one) == facts["text_only"].format(prompt=one.prompt)
        assert model._prompt(two) == facts["text_only"].format(prompt=two.prompt)
    responses = model.generate([one, two])
    assert all(r.error is None for r in responses), responses


def _captured_prompts(model: HFImageTextModel) -> tuple[list[list[int]], object]:
    """Record the input ids of every prefill pass through the model's token embedding (a forward hook)."""
    seen: list[list[int]] = []

    def hook(module, args, output):
        ids = args[0]
        if ids.shape[1] > 1:  # the prompt; later decoding steps see one token at a time
            seen.extend(ids.tolist())

    handle = model.model.get_input_embeddings().register_forward_hook(hook)
    return seen, handle


def test_task_pre_and_post_prompts_reach_the_model_input(model, family, tmp_path):
    _, facts, _ = family
    pre, post = "Look closely. ", "\nAnswer with a number."
    rng = random.Random(3)
    questions = [" ".join(rng.choice(WORDS) for _ in range(2 + 3 * i)) + "?" for i in range(5)]
    images = [im for im in _images() if im.size == (64, 64)]
    ds = datasets.Dataset.from_dict({
        "image": [images[i % len(images)] for i in range(5)],
        "question": questions,
        "answer": ["3"] * 5,
    }, features=datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                   "answer": datasets.Value("string")}))
    task = Task(
        name="prepost",
        load=lambda: ds,
        doc_to_visual=lambda d: [d["image"]],
        doc_to_text=lambda d: pre + d["question"] + post,
        doc_to_target=lambda d: d["answer"],
        metrics=[Metric("exact_match", exact_match)],
        generation_kwargs={"max_new_tokens": 3, "do_sample": False},
    )
    seen, handle = _captured_prompts(model)
    try:
        run = evaluate(model, task, output_dir=tmp_path / "out", batch_size=4, progress=False, resume=False)
    finally:
        handle.remove()
    assert run.n_samples == 5
    tok = model.tokenizer
    decoded = []
    for ids in seen:
        ids = ids[next(i for i, t in enumerate(ids) if t != tok.pad_token_id):]  # drop the left padding
        text = tok.decode(ids, skip_special_tokens=False)
        n_image = ids.count(tok.convert_tokens_to_ids(facts["image_token"]))
        assert n_image == facts["tokens_per_64px_image"], text
        decoded.append(text)
    # the processor expands the template's image placeholder; written out by hand per family
    expanded = {
        "<|vision_start|><|image_pad|><|vision_end|>":
            "<|vision_start|>" + "<|image_pad|>" * facts["tokens_per_64px_image"] + "<|vision_end|>",
        "<image>": "<fake_token_around_image><global-img>" + "<image>" * facts["tokens_per_64px_image"]
        + "<fake_token_around_image>",
    }[facts["img"]]
    expected = [facts["with_image"].format(img=expanded, prompt=pre + q + post) for q in questions]
    assert sorted(decoded) == sorted(expected)
