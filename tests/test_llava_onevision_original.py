"""`--model llava_onevision` on an ORIGINAL-format (LLaVA-NeXT repository) LLaVA-OneVision checkpoint.

What lmms-eval 0.7.3's own class answers on it is checked in test_vs_lmms_eval_073.py (run `llava_onevision`, a
fixture written by the real class with LLaVA-NeXT); here: the format is told apart from HF's, the checkpoint's
folder is left untouched by the in-memory conversion, arguments lmms-eval's class refuses are refused, and the
anyres layout follows LLaVA-NeXT's rules on image sizes the fixture does not cover.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from lmms_nb.models.base import Request

FIXTURES = Path(__file__).parent / "fixtures" / "lmms_eval_073"
sys.path.insert(0, str(FIXTURES))
_found = importlib.util.spec_from_file_location("tiny_llava_onevision_original", FIXTURES / "_tiny_llava_onevision.py")
tiny = importlib.util.module_from_spec(_found)
_found.loader.exec_module(tiny)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ov_original")
    return tiny.build_tiny_llava_onevision(root / "tiny-llava-onevision-qwen2", hf_cache=root / "hf_cache",
                                           vocab_texts=["How many squares are in the image? 3"], seed=0)


@pytest.fixture()
def hub_cache(checkpoint, monkeypatch):
    # the tower is named by hub id, as google/siglip-so400m-patch14-384 is: found in the local hub cache
    import huggingface_hub.constants

    cache = str(checkpoint.parent / "hf_cache")
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", cache)
    return cache


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_original_format_is_told_apart_from_hf_format(checkpoint, tmp_path):
    from lmms_nb.models._llava_next import is_llava_next_checkpoint, read_checkpoint_config
    from lmms_nb.models.tiny import build_tiny_llava

    assert is_llava_next_checkpoint(read_checkpoint_config(str(checkpoint)))
    hf_format = build_tiny_llava(tmp_path / "hf", vocab_texts=["a b c"], seed=0)
    assert not is_llava_next_checkpoint(read_checkpoint_config(str(hf_format)))
    assert read_checkpoint_config(str(tmp_path / "nothing-here")) is None


def test_an_uncached_hub_id_offline_is_named(tmp_path, monkeypatch):
    """Offline, a hub id whose config.json is not in the local hub cache cannot be told apart: a clear error naming
    it, not llava_hf failing somewhere later."""
    import huggingface_hub.constants

    from lmms_nb.models import get_model
    from lmms_nb.models._llava_next import read_checkpoint_config

    empty = str(tmp_path / "empty_hub_cache")
    monkeypatch.setenv("HF_HUB_CACHE", empty)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", empty)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"'lmms-lab/llava-onevision-qwen2-0.5b-ov' \(revision v1\).*HF_HUB_OFFLINE"):
        read_checkpoint_config("lmms-lab/llava-onevision-qwen2-0.5b-ov", revision="v1")
    with pytest.raises(ValueError, match=r"'lmms-lab/llava-onevision-qwen2-0.5b-ov' \(revision main\).*not in the local"):
        get_model("llava_onevision", pretrained="lmms-lab/llava-onevision-qwen2-0.5b-ov", device="cpu")


def test_hf_format_checkpoints_still_go_to_llava_hf(tmp_path):
    from lmms_nb.models import get_model
    from lmms_nb.models.hf import HFImageTextModel
    from lmms_nb.models.tiny import build_tiny_llava

    path = build_tiny_llava(tmp_path / "hf", vocab_texts=["a b c"], seed=0)
    model = get_model("llava_onevision", pretrained=str(path), device="cpu", dtype="float32")
    assert isinstance(model, HFImageTextModel)


def test_conversion_is_in_memory_and_answers(checkpoint, hub_cache):
    from PIL import Image

    from lmms_nb.models import get_model
    from lmms_nb.models._llava_next import LlavaNextOneVisionModel
    from lmms_nb.models.base import Request

    before = _tree(checkpoint)
    model = get_model("llava_onevision", pretrained=str(checkpoint), device="cpu")
    assert isinstance(model, LlavaNextOneVisionModel)
    assert str(model.model.dtype) == "torch.float16"  # lmms-eval's class: LLaVA-NeXT's builder loads float16
    image = Image.new("RGB", (900, 500), (200, 30, 30))
    (answer,) = model.generate([Request(doc_id=0, task="t", images=[image], prompt="How many squares?",
                                        generation_kwargs={"max_new_tokens": 4})])
    assert answer.error is None and isinstance(answer.text, str) and answer.text == answer.text.strip()
    assert _tree(checkpoint) == before  # nothing written beside the user's checkpoint
    empty = Image.new("RGB", (0, 0))
    ok, broken = model.generate([Request(doc_id=6, task="t", images=[image, image], prompt="Two?"),
                                 Request(doc_id=7, task="t", images=[empty], prompt="None?")])
    assert ok.error is None and broken.text is None and "doc 7" in broken.error and "empty" in broken.error


@pytest.mark.parametrize("args, message", [({"batch_size": 2}, "batch_size must be 1"),
                                           ({"conv_template": "llava_llama_3"}, "conv_template"),
                                           ({"dtype": "float32"}, "float16")])
def test_arguments_lmms_eval_refuses_are_refused(checkpoint, hub_cache, args, message):
    from lmms_nb.models import get_model

    with pytest.raises(ValueError, match=message):
        get_model("llava_onevision", pretrained=str(checkpoint), device="cpu", **args)


def test_a_tower_lmms_nb_cannot_convert_is_named(checkpoint, tmp_path, hub_cache):
    import shutil

    from lmms_nb.models import get_model

    clip = tmp_path / "clip-checkpoint"
    shutil.copytree(checkpoint, clip)
    config = json.loads((clip / "config.json").read_text())
    (clip / "config.json").write_text(json.dumps({**config, "mm_vision_tower": "openai/clip-vit-large-patch14"}))
    with pytest.raises(ValueError, match=r"config\.json.*SigLIP.*clip-vit"):
        get_model("llava_onevision", pretrained=str(clip), device="cpu")


def _edited_copy(checkpoint: Path, folder: Path, **changes) -> Path:
    import shutil

    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    return folder


def test_image_aspect_ratio_follows_lmms_eval_class(checkpoint, tmp_path, hub_cache):
    """lmms-eval's class: "pad" (one tile of 729 features) when config.json names no image_aspect_ratio or for
    several images; anyres tiles for anyres_max_N; another value is refused naming the file and the field."""
    from PIL import Image

    from lmms_nb.models import get_model

    image = Image.new("RGB", (900, 500), (200, 30, 30))
    anyres = get_model("llava_onevision", pretrained=str(checkpoint), device="cpu")
    assert anyres.image_aspect_ratio == "anyres_max_9" and anyres._image_embeddings([image])[0].shape[0] > 729
    assert [f.shape[0] for f in anyres._image_embeddings([image, image])] == [729, 729]
    absent = get_model("llava_onevision", pretrained=str(_edited_copy(checkpoint, tmp_path / "absent",
                                                                      image_aspect_ratio=None)), device="cpu")
    assert absent.image_aspect_ratio == "pad" and absent._image_embeddings([image])[0].shape[0] == 729
    (answer,) = absent.generate([Request(doc_id=0, task="t", images=[image], prompt="How many squares?",
                                         generation_kwargs={"max_new_tokens": 2})])
    assert answer.error is None
    with pytest.raises(ValueError, match=r"config\.json: image_aspect_ratio 'highres' is not supported"):
        get_model("llava_onevision", pretrained=str(_edited_copy(checkpoint, tmp_path / "highres",
                                                                 image_aspect_ratio="highres")), device="cpu")
    with pytest.raises(ValueError, match=r"config\.json: field 'image_grid_pinpoints'"):
        get_model("llava_onevision", pretrained=str(_edited_copy(checkpoint, tmp_path / "nopins",
                                                                 image_grid_pinpoints=None)), device="cpu")


def test_bad_config_json_is_named(checkpoint, tmp_path, hub_cache):
    from lmms_nb.models import get_model
    from lmms_nb.models._llava_next import LlavaNextOneVisionModel

    broken = _edited_copy(checkpoint, tmp_path / "broken")
    (broken / "config.json").write_text('{"architectures": ["LlavaQwenForCausalLM"], ')
    with pytest.raises(ValueError, match=r"broken/config\.json: not a readable JSON config"):
        get_model("llava_onevision", pretrained=str(broken), device="cpu")
    (broken / "config.json").unlink()
    with pytest.raises(ValueError, match=r"broken/config\.json: not a readable JSON config"):
        LlavaNextOneVisionModel(str(broken))
    no_tower = _edited_copy(checkpoint, tmp_path / "no_tower", mm_vision_tower=None)
    with pytest.raises(ValueError, match=r"no_tower/config\.json: field 'mm_vision_tower' missing"):
        LlavaNextOneVisionModel(str(no_tower))


def test_image_placeholder_without_images_is_an_error(checkpoint, hub_cache):
    from lmms_nb.models import get_model
    from lmms_nb.models.base import LoglikelihoodRequest

    model = get_model("llava_onevision", pretrained=str(checkpoint), device="cpu")
    (answer,) = model.generate([Request(doc_id=3, task="t", images=[], prompt="<image>\nHow many squares?")])
    assert answer.text is None and "doc 3" in answer.error and "<image>" in answer.error and "no image" in answer.error
    with pytest.raises(ValueError, match=r"doc 4: the prompt holds <image> but the request has no image"):
        model.loglikelihood([LoglikelihoodRequest(doc_id=4, task="t", images=[], context="<image>\nHow many?",
                                                  continuation=" 3")])


@pytest.mark.parametrize("size, grid, tokens", [
    ((50, 70), (1, 1), 729 + 27 * 19 + 27),  # one tile: unpadded to 19 columns, a newline per row
    ((1152, 384), (3, 1), 729 + 27 * (81 + 1)),  # an exact 3x1 grid: nothing to unpad
    ((2000, 1900), (6, 5), None),  # 30 tiles (2304x1920 keeps every pixel, wastes least): shrunk to ~9 tiles
])
def test_anyres_layout_follows_llava_next(size, grid, tokens):
    import torch
    from PIL import Image

    from lmms_nb.models._llava_next_images import pack_image_features, process_anyres_image

    pinpoints = [[384 * w, 384 * h] for w in range(1, 7) for h in range(1, 7)]
    pixels = process_anyres_image(Image.new("RGB", size, (10, 200, 10)), pinpoints)
    assert tuple(pixels.shape) == (1 + grid[0] * grid[1], 3, 384, 384)
    features = torch.randn(pixels.shape[0], 729, 8)
    packed = pack_image_features(features, size, newline=torch.zeros(8), pinpoints=pinpoints,
                                 aspect_ratio="anyres_max_9", tile=384, patches_per_side=27)
    assert torch.equal(packed[:729], features[0])  # the whole image's tile first
    if tokens is not None:
        assert packed.shape[0] == tokens
    else:
        assert 729 + 9 * 729 * 0.9 < packed.shape[0] < 729 + 9 * 729 * 1.3


def _variant(checkpoint: Path, folder: Path, edit_config, edit_weights) -> Path:
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoint, folder)
    (folder / "config.json").write_text(json.dumps(edit_config(json.loads((folder / "config.json").read_text()))))
    weights = edit_weights(load_file(str(folder / "model.safetensors")))
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_vocab_padding_rows_are_cut_and_tied_embeddings_tied_as_llava_next_loads_them(checkpoint, tmp_path,
                                                                                        hub_cache):
    import torch
    from PIL import Image

    from lmms_nb.models import get_model
    from lmms_nb.models.base import Request

    requests = [Request(doc_id=i, task="t", images=[Image.new("RGB", (60 + 40 * i, 90), (40 * i, 90, 200))],
                        prompt="How many squares are in the image?", generation_kwargs={"max_new_tokens": 6})
                for i in range(3)]
    baseline = [r.text for r in get_model("llava_onevision", pretrained=str(checkpoint), device="cpu")
                .generate(requests)]

    def pad(weights):  # a Qwen2 checkpoint's vocab padding, rows that would win every argmax if kept
        extra = 50
        weights["model.embed_tokens.weight"] = torch.cat(
            [weights["model.embed_tokens.weight"], torch.zeros(extra, weights["model.embed_tokens.weight"].shape[1],
                                                               dtype=torch.bfloat16)])
        weights["lm_head.weight"] = torch.cat(
            [weights["lm_head.weight"], torch.full((extra, weights["lm_head.weight"].shape[1]), 50.0,
                                                   dtype=torch.bfloat16)])
        return weights

    padded = _variant(checkpoint, tmp_path / "padded-qwen", lambda c: {**c, "vocab_size": c["vocab_size"] + 50}, pad)
    model = get_model("llava_onevision", pretrained=str(padded), device="cpu")
    assert model.model.lm_head.weight.shape[0] == len(model.tokenizer)
    assert [r.text for r in model.generate(requests)] == baseline

    tied = _variant(checkpoint, tmp_path / "tied-qwen", lambda c: {**c, "tie_word_embeddings": True},
                    lambda w: {k: v for k, v in w.items() if k != "lm_head.weight"})
    model = get_model("llava_onevision", pretrained=str(tied), device="cpu")
    assert torch.equal(model.model.lm_head.weight, model.model.get_input_embeddings().weight)
