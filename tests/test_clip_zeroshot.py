"""CLIPZeroShotModel on a tiny open_clip model built offline (random weights), checked against similarities
computed here, independently, with open_clip itself."""

from __future__ import annotations

import json
import string

import datasets
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lmms_nb.models.base import Request
from lmms_nb.models.clip_zeroshot import CLIPZeroShotModel, strip_option_label

pytestmark = pytest.mark.timeout(180)

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (240, 220, 20),
           "purple": (140, 40, 180), "white": (250, 250, 250), "black": (5, 5, 5), "orange": (250, 140, 0)}
OPTION_SETS = [["cat", "dog", "a red circle"], ["blue", "green", "yellow", "purple"], ["car", "tree"],
               ["square", "triangle", "circle", "star", "heart"], ["one", "two", "three", "four"]]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A folder with open_clip_config.json and random weights, plus the same config as a named architecture."""
    import open_clip
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_clip")
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    model = open_clip.create_model(f"local-dir:{d}")
    save_file(model.state_dict(), str(d / "open_clip_model.safetensors"))
    arch = tmp_path_factory.mktemp("arch")
    (arch / "lmmsnb-tiny-clip.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(arch)
    return d


def _image(k: int) -> Image.Image:
    rng = np.random.default_rng(k)
    names = list(COLOURS)
    im = Image.new("RGB", (64, 64), COLOURS[names[k % len(names)]])
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x, y = rng.integers(0, 48, size=2)
        draw.ellipse([int(x), int(y), int(x) + 16, int(y) + 16], fill=COLOURS[names[int(rng.integers(len(names)))]])
    return im


def _requests(n: int = 16) -> list[Request]:
    reqs = []
    for i in range(n):
        options = list(OPTION_SETS[i % len(OPTION_SETS)])
        np.random.default_rng(100 + i).shuffle(options)
        reqs.append(Request(doc_id=i, task="t", images=[_image(i)], prompt="Which?", choices=options))
    return reqs


def _reference_letters(folder, requests, template="a photo of {}") -> tuple[list[str], list[np.ndarray]]:
    """Argmax of cosine similarities, computed with open_clip directly."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    model.eval()
    letters, sims = [], []
    with torch.no_grad():
        for r in requests:
            img = model.encode_image(preprocess(r.images[0].convert("RGB")).unsqueeze(0))
            txt = model.encode_text(tokenizer([template.format(o) for o in r.choices]))
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            s = (img @ txt.T)[0].numpy()
            sims.append(s)
            letters.append(string.ascii_uppercase[int(s.argmax())])
    return letters, sims


def test_answer_is_the_argmax_of_independently_computed_similarities(tiny_clip):
    requests = _requests()
    model = CLIPZeroShotModel(f"local-dir:{tiny_clip}", batch_size=5)
    responses = model.generate(requests)
    expected, sims = _reference_letters(tiny_clip, requests)

    assert [r.error for r in responses] == [None] * len(requests)
    assert [r.text for r in responses] == expected
    assert len(set(expected)) > 1  # the check has teeth: answers differ across requests
    assert all(r.latency_s is not None and r.latency_s > 0 for r in responses)
    np.testing.assert_allclose(model.similarities([requests[0].images[0]], requests[0].choices)[0], sims[0], atol=1e-5)


def test_batch_size_does_not_change_answers(tiny_clip):
    requests = _requests(10)
    one = CLIPZeroShotModel(f"local-dir:{tiny_clip}", batch_size=1).generate(requests)
    many = CLIPZeroShotModel(f"local-dir:{tiny_clip}", batch_size=32).generate(requests)
    assert [r.text for r in one] == [r.text for r in many]


def test_checkpoint_path_with_a_registered_architecture_loads_the_same_weights(tiny_clip):
    requests = _requests(8)
    by_dir = CLIPZeroShotModel(f"local-dir:{tiny_clip}").generate(requests)
    by_file = CLIPZeroShotModel("lmmsnb-tiny-clip", pretrained=str(tiny_clip / "open_clip_model.safetensors"))
    assert [r.text for r in by_file.generate(requests)] == [r.text for r in by_dir]
    assert by_file.model_args["pretrained"].endswith("open_clip_model.safetensors")


def test_template_and_option_labels(tiny_clip):
    requests = _requests(8)
    bare = CLIPZeroShotModel(f"local-dir:{tiny_clip}", template="{option}")
    expected, _ = _reference_letters(tiny_clip, requests, template="{}")
    assert [r.text for r in bare.generate(requests)] == expected

    labelled = [Request(r.doc_id, r.task, r.images, r.prompt, choices=[f"{c}. {o}" for c, o in zip("ABCDE", r.choices)])
                for r in requests]
    model = CLIPZeroShotModel(f"local-dir:{tiny_clip}")
    assert [r.text for r in model.generate(labelled)] == [r.text for r in model.generate(requests)]
    assert model.option_prompt("(C) a blue square") == "a photo of a blue square"
    assert strip_option_label("B) dog") == "dog" and strip_option_label("Bob: hi") == "Bob: hi"
    with pytest.raises(ValueError, match=r"\{option\}"):
        CLIPZeroShotModel(f"local-dir:{tiny_clip}", template="a photo")


def test_unanswerable_requests_fail_alone(tiny_clip):
    good = _requests(2)
    requests = [
        Request(0, "t", [_image(0)], "free text?"),  # no choices
        good[0],
        Request(2, "t", [], "which?", choices=["a", "b"]),  # no image
        Request(3, "t", [b"not a png"], "which?", choices=["a", "b"]),
        good[1],
    ]
    responses = CLIPZeroShotModel(f"local-dir:{tiny_clip}").generate(requests)
    assert "multiple-choice" in responses[0].error
    assert "needs an image" in responses[2].error
    assert "could not read the image" in responses[3].error
    expected, _ = _reference_letters(tiny_clip, good)
    assert [responses[1].text, responses[4].text] == expected


def test_evaluate_scores_a_multiple_choice_task(tiny_clip, tmp_path, monkeypatch):
    """Through the registry and the runner: the task score is the accuracy of the reference argmax."""
    from lmms_nb.metrics import exact_match
    from lmms_nb.models import get_model
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.task import Metric, Task

    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    colours = list(COLOURS)[:4]
    rows = {"image": [], "A": [], "B": [], "C": [], "D": [], "answer": []}
    for i in range(12):
        options = list(colours)
        np.random.default_rng(i).shuffle(options)
        rows["image"].append(Image.new("RGB", (64, 64), COLOURS[colours[i % 4]]))
        for letter, option in zip("ABCD", options):
            rows[letter].append(option)
        rows["answer"].append("ABCD"[options.index(colours[i % 4])])
    ds = datasets.Dataset.from_dict(rows)
    task = Task(name="clip_colours", load=lambda: ds, doc_to_visual=lambda d: [d["image"]],
                doc_to_text=lambda d: "What colour is the image?", doc_to_target=lambda d: d["answer"],
                doc_to_choice=lambda d: [d[c] for c in "ABCD"], metrics=[Metric("exact_match", exact_match)])

    model = get_model("clip_zeroshot", model_name=f"local-dir:{tiny_clip}")
    assert isinstance(model, CLIPZeroShotModel)
    run = evaluate(model, task, output_dir=tmp_path / "out", progress=False, batch_size=5)

    requests = [Request(i, "t", [ds[i]["image"]], "", choices=[ds[i][c] for c in "ABCD"]) for i in range(12)]
    predicted, _ = _reference_letters(tiny_clip, requests)
    accuracy = float(np.mean([p == a for p, a in zip(predicted, rows["answer"])]))
    assert run.samples.sort("doc_id")["prediction"].to_list() == predicted
    assert run.score("clip_colours", "exact_match") == pytest.approx(accuracy)
