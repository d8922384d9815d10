"""`--model internvl3 / internvl3_5 / internvl2` on ORIGINAL-format InternVL checkpoints (OpenGVLab's remote code).

What lmms-eval 0.7.3's own classes answer (running OpenGVLab's code) is checked line for line in
test_vs_lmms_eval_073.py (runs `internvl3`, `internvl2`); here: the format is told apart from transformers', the
checkpoint's folder is left untouched by the in-memory conversion, what lmms-nb cannot convert is refused naming
config.json's field, lmms-eval's argument names are taken and others refused, and the tiling is the classes'.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lmms_eval_073"


def _load(name: str, file: str):
    found = importlib.util.spec_from_file_location(name, FIXTURES / file)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


tiny = _load("tiny_internvl_chat_original", "_tiny_internvl_chat.py")
TEXTS = ["How many squares are in the image? 3", "Answer with a single word or number."]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny.build_tiny_internvl_chat(tmp_path_factory.mktemp("internvl_original") / "tiny_internvl3",
                                         vocab_texts=TEXTS, seed=0)


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _edited_copy(checkpoint: Path, folder: Path, edit) -> Path:
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_original_format_is_told_apart_from_hf_format(checkpoint, tmp_path):
    from lmms_nb.models._internvl_chat import is_internvl_chat_checkpoint
    from lmms_nb.models._llava_next_convert import read_checkpoint_config
    from lmms_nb.models import get_model

    assert is_internvl_chat_checkpoint(read_checkpoint_config(str(checkpoint)))
    hf_format = _load("tiny_internvl_hf", "_tiny_internvl.py").build_tiny_internvl(tmp_path / "hf", vocab_texts=TEXTS)
    assert not is_internvl_chat_checkpoint(read_checkpoint_config(str(hf_format)))
    with pytest.raises(ValueError, match="internvl_hf"):
        get_model("internvl3", pretrained=str(hf_format), device="cpu")


def test_conversion_is_in_memory_and_answers(checkpoint):
    from PIL import Image

    from lmms_nb.models import get_model
    from lmms_nb.models._internvl_chat import InternVLChatOriginalModel
    from lmms_nb.models.base import Request

    before = _tree(checkpoint)
    model = get_model("internvl3_5", pretrained=str(checkpoint), device="cpu")
    assert isinstance(model, InternVLChatOriginalModel)
    assert str(model.model.dtype) == "torch.bfloat16"  # lmms-eval's classes load bfloat16
    image = Image.new("RGB", (900, 500), (200, 30, 30))
    answers = model.generate([Request(doc_id=0, task="t", images=[image], prompt="How many squares?",
                                      generation_kwargs={"max_new_tokens": 4}),
                              Request(doc_id=1, task="t", images=[], prompt="How many squares?",
                                      generation_kwargs={"max_new_tokens": 4}),
                              Request(doc_id=2, task="t", images=[Image.new("RGB", (0, 0))], prompt="None?")])
    assert all(isinstance(a.text, str) and a.text == a.text.strip() for a in answers[:2])
    assert answers[2].text is None and "doc 2" in answers[2].error and "empty" in answers[2].error
    assert _tree(checkpoint) == before  # nothing written beside the user's checkpoint


def test_a_qwen3_llm_converts_and_answers(tmp_path):
    """InternVL3.5's LLM (Qwen3: q/k norms, no q/k/v biases) converts with every weight placed."""
    from lmms_nb.models import get_model
    from lmms_nb.models.base import Request

    path = tiny.build_tiny_internvl_chat(tmp_path / "tiny_internvl3_5", vocab_texts=TEXTS, seed=1, llm="qwen3")
    model = get_model("internvl3_5", pretrained=str(path), device="cpu")
    assert model.model.config.text_config.model_type == "qwen3"
    (answer,) = model.generate([Request(doc_id=0, task="t", images=[], prompt="How many?",
                                        generation_kwargs={"max_new_tokens": 3})])
    assert answer.error is None


@pytest.mark.parametrize("llm, model_type, template", [("internlm2", "llama", "internlm2-chat"),
                                                        ("phi3", "phi3", "phi3-chat")])
def test_internlm2_and_phi3_llms_convert_and_answer(tmp_path, llm, model_type, template):
    """InternVL2-2B / 8B / 26B's LLM (InternLM2, as Llama: grouped wqkv split) and InternVL2-4B's (Phi-3) convert with
    every weight placed, stop at their template's separator; an unknown rope scaling is refused naming the field."""
    from lmms_nb.models import get_model
    from lmms_nb.models.base import Request

    path = tiny.build_tiny_internvl_chat(tmp_path / llm, vocab_texts=TEXTS, seed=2, llm=llm, template=template)
    model = get_model("internvl2", pretrained=str(path), device="cpu")
    assert model.model.config.text_config.model_type == model_type
    assert model.eos_id == model.tokenizer.convert_tokens_to_ids({"phi3": "<|end|>"}.get(llm, "<|im_end|>"))
    (answer,) = model.generate([Request(doc_id=0, task="t", images=[], prompt="How many?",
                                        generation_kwargs={"max_new_tokens": 3})])
    assert answer.error is None
    config = json.loads((path / "config.json").read_text())
    config["llm_config"]["rope_scaling"] = {"type": "llama3", "factor": 8.0}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: field 'llm_config\.rope_scaling'"):
        get_model("internvl2", pretrained=str(path), device="cpu")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["llm_config"].update(architectures=["GemmaForCausalLM"]),
     r"config\.json: llm_config\.architectures is \['GemmaForCausalLM'\]"),
    (lambda c: c.update(ps_version="v1"), r"config\.json: field 'ps_version'"),
    ("QWenTokenizer", r"tokenizer_config\.json: field 'tokenizer_class' is 'QWenTokenizer', remote code"),
    (lambda c: c.update(template="vicuna_v1.1"), r"config\.json: field 'template'"),
    (lambda c: c.pop("llm_config"), r"config\.json: field 'llm_config' missing"),
    (lambda c: (c.pop("force_image_size", None), c["vision_config"].pop("image_size")),
     r"config\.json: field 'vision_config\.image_size' missing"),
    (lambda c: c["vision_config"].update(num_attention_heads="16"),
     r"config\.json: field 'vision_config\.num_attention_heads' has an unexpected value '16'"),
])
def test_what_lmms_nb_cannot_convert_is_named(checkpoint, tmp_path, edit, message):
    from lmms_nb.models import get_model

    if isinstance(edit, str):  # the tokenizer's config: a remote-code class lmms-nb has no port of (Qwen-VL's)
        folder = _edited_copy(checkpoint, tmp_path / "edited", lambda c: None)
        tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
        tokenizer.update(tokenizer_class=edit, auto_map={"AutoTokenizer": [f"tokenization_qwen.{edit}", None]})
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    else:
        folder = _edited_copy(checkpoint, tmp_path / "edited", edit)
    config = json.loads((folder / "config.json").read_text())
    if "llm_config" not in config:
        config["architectures"] = ["InternVLChatModel"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        get_model("internvl3", pretrained=str(folder), device="cpu")


@pytest.mark.parametrize("name, args, message", [
    ("internvl3", {"batch_size": 2}, "batch_size must be 1"),
    ("internvl2", {"modality": "video"}, "modality='video'"),
    ("internvl3", {"min_pixels": 1}, r"does not take the model arg\(s\) min_pixels; it takes: pretrained"),
    ("internvl2", {"max_num": 3}, r"does not take the model arg\(s\) max_num"),  # internvl2's class has no max_num
    # one device only: "auto" puts the whole model on `device`, a map over several devices is refused
    ("internvl3", {"device_map": "balanced"}, r"device_map='balanced' is not supported by lmms-nb"),
    ("internvl3", {"device_map": {"": "cpu"}}, r"device_map=\{'': 'cpu'\} is not supported"),
    ("internvl2", {"device_map": "meta"}, r"device='cpu' and device_map='meta' name different devices"),
])
def test_arguments_follow_lmms_eval_classes(checkpoint, name, args, message):
    from lmms_nb.models import get_model

    with pytest.raises(ValueError, match=message):
        get_model(name, pretrained=str(checkpoint), device="cpu", **args)


def test_factories_take_the_classes_arguments():
    """lmms-eval 0.7.3's __init__ arguments (lmms_eval/models/simple/internvl3.py, internvl2.py), each taken under its
    name with the class's default."""
    import inspect

    from lmms_nb.models import lmms_eval_aliases as aliases

    internvl3 = {"pretrained": "OpenGVLab/InternVL3-8B", "modality": "image", "batch_size": 1, "num_frame": 32,
                 "max_num": 12, "total_max_num": 64, "use_flash_attn": True}
    internvl2 = {"pretrained": "OpenGVLab/InternVL2-2B", "modality": "image", "batch_size": 1, "num_frame": 32,
                 "num_layers": None}
    for factory, expected in ((aliases.internvl3, internvl3), (aliases.internvl2, internvl2),
                              (aliases.internvl3_5, {**internvl3, "pretrained": "OpenGVLab/InternVL3_5-8B"})):
        params = inspect.signature(factory).parameters
        assert {"device", "device_map"} <= set(params)
        assert {k: params[k].default for k in expected} == expected, factory.__name__


def test_lmms_eval_argument_names_are_taken(checkpoint):
    from lmms_nb.models import get_model

    model = get_model("internvl3", pretrained=str(checkpoint), device="cpu", device_map="auto", max_num=2,
                      total_max_num=8, use_flash_attn=False, num_frame=8, trust_remote_code=True)
    assert (model.max_num, model.total_max_num) == (2, 8)
    assert model.model_args["use_flash_attn"] is False and model.model_args["device_map"] == "auto"
    assert model.device.type == "cpu"  # "auto" does not shard: the whole model on `device`
    internvl2 = get_model("internvl2", pretrained=str(checkpoint), device_map="cpu", num_layers=2)  # one device
    assert internvl2.device.type == "cpu"
    assert internvl2.max_num == 6  # internvl2's load_image: 6 tiles at most


@pytest.mark.parametrize("size, max_num, as_set, tiles", [
    ((50, 70), 12, True, 13),   # 3x4 grid + thumbnail
    ((123, 37), 12, True, 4),   # 3x1 + thumbnail
    ((140, 60), 12, True, 11),  # 5x2 + thumbnail
    # a small square: 1x1, 2x2 and 3x3 are equally close and the area rule takes none of the later ones, so the
    # first one met wins: internvl3's module searches a set (2x2 comes first), internvl2's a sorted list (1x1)
    ((77, 77), 12, True, 5),
    ((77, 77), 6, False, 1),
    ((900, 500), 6, False, 3),  # 2x1 + thumbnail
    ((900, 500), 1, True, 1),
])
def test_tiles_follow_the_classes_dynamic_preprocess(size, max_num, as_set, tiles):
    from PIL import Image

    from lmms_nb.models._internvl_chat import dynamic_preprocess

    got = dynamic_preprocess(Image.new("RGB", size), max_num, as_set=as_set)
    assert len(got) == tiles
    assert all(t.size == (448, 448) for t in got)


def test_image_placeholders_go_where_each_class_puts_them(checkpoint):
    """internvl3 keeps a text that already holds one `<image>` per image and otherwise puts them before it (its
    "mismatch" fallback keeps the text's own too); internvl2 always puts them before."""
    from lmms_nb.models import get_model

    v3 = get_model("internvl3", pretrained=str(checkpoint), device="cpu")
    v2 = get_model("internvl2", pretrained=str(checkpoint), device="cpu")
    assert v3._question("A <image> vs B <image>?", 2) == "A <image> vs B <image>?"
    assert v3._question("A <image>?", 2) == "<image> <image>\nA <image>?"
    assert v3._question("How many?", 1) == "<image>\nHow many?"
    assert v3._question("How many?", 0) == "How many?"
    assert v2._question("A <image> vs B <image>?", 2) == "<image> <image>\nA <image> vs B <image>?"


def test_a_hub_style_config_converts_to_the_same_model(checkpoint, tmp_path):
    """The hub's config.json files carry PretrainedConfig's serialized defaults in llm_config (generation defaults,
    flash_attention_2, use_cache false, transformers 4.37's version...): the conversion ignores what does not define
    the model, and answers as from the plain config."""
    from lmms_nb.models import get_model
    from lmms_nb.models.base import Request

    def hub_style(config):
        config["llm_config"].update({
            "_name_or_path": "./pretrained/Qwen2.5-0.5B-Instruct", "attn_implementation": "flash_attention_2",
            "max_length": 20, "min_length": 0, "num_beams": 1, "repetition_penalty": 1.0, "temperature": 1.0,
            "top_k": 50, "top_p": 1.0, "use_cache": False, "use_bfloat16": True, "transformers_version": "4.37.2",
            "rope_scaling": None, "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "return_dict": True})
        config["vision_config"].update({"_name_or_path": "", "use_bfloat16": True,
                                        "auto_map": {"AutoConfig": "configuration_intern_vit.InternVisionConfig"}})

    hub = _edited_copy(checkpoint, tmp_path / "hub_style", hub_style)
    requests = [Request(doc_id=0, task="t", images=[], prompt="How many squares?",
                        generation_kwargs={"max_new_tokens": 8})]
    plain = get_model("internvl3", pretrained=str(checkpoint), device="cpu").generate(requests)
    assert get_model("internvl3", pretrained=str(hub), device="cpu").generate(requests)[0].text == plain[0].text
