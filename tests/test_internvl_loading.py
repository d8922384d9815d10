"""Loading original-format InternVL checkpoints: shard by shard (the same model as one file; a weight missing from
every shard, or one that fits nowhere, named with the checkpoint), InternLM2's rotary tables moved to a new device
rather than recomputed there, and InternLM2's fast remote-code tokenizer refused rather than run as the slow one.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lmms_eval_073"
TEXTS = ["How many squares are in the image? 3", "Answer with a single word or number."]


def _tiny():
    found = importlib.util.spec_from_file_location("tiny_internvl_chat_loading", FIXTURES / "_tiny_internvl_chat.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def internlm2(tmp_path_factory) -> Path:
    return _tiny().build_tiny_internvl_chat(tmp_path_factory.mktemp("internvl_loading") / "internlm2",
                                            vocab_texts=TEXTS, seed=4, llm="internlm2", template="internlm2-chat")


def _split(folder: Path, out: Path, edit=None) -> Path:
    """`folder` with its weights in three shards (as the hub's checkpoints), `edit(shards)` applied first."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("*.safetensors"))
    weights = load_file(str(folder / "model.safetensors"))
    keys = sorted(weights)
    shards = [{k: weights[k] for k in keys[i::3]} for i in range(3)]
    if edit:
        edit(shards)
    for i, shard in enumerate(shards):
        save_file(shard, str(out / f"model-{i + 1:05d}-of-00003.safetensors"), metadata={"format": "pt"})
    return out


def _logits(folder: Path):
    import torch

    from lmms_nb.models._internvl_convert import build_model

    config = json.loads((folder / "config.json").read_text())
    vocab = config["llm_config"]["vocab_size"]
    model = build_model(folder, config, dtype=torch.bfloat16, attn_implementation=None, n_tokens=vocab)
    with torch.inference_mode():
        return model(input_ids=torch.tensor([[(5 * i + 3) % (vocab - 16) for i in range(12)]])).logits


def test_sharded_checkpoint_loads_the_same_model_and_names_what_does_not_fit(internlm2, tmp_path):
    import torch

    one_file = _logits(internlm2)
    assert torch.equal(_logits(_split(internlm2, tmp_path / "sharded")), one_file)
    missing = "language_model.model.layers.1.attention.wqkv.weight"  # its q / k / v are missing in every shard
    folder = _split(internlm2, tmp_path / "missing", lambda shards: [s.pop(missing, None) for s in shards])
    with pytest.raises(ValueError, match=rf"{folder}: weights that do not fit InternVL: missing "
                                         r"\['model\.language_model\.layers\.1\.self_attn\.k_proj\.weight'"):
        _logits(folder)
    folder = _split(internlm2, tmp_path / "unexpected",
                    lambda shards: shards[2].update({"language_model.model.extra.weight": torch.zeros(2)}))
    with pytest.raises(ValueError, match=rf"{folder}: .*missing \[\], unexpected \['model\.language_model\.extra"):
        _logits(folder)


def test_internlm2_rotary_tables_are_moved_to_a_new_device_not_recomputed():
    """As OpenGVLab's buffers, computed on the CPU at load, move with the model: the first call on another device
    (here `meta`, the one other device every machine has) moves the tables; only a longer sequence recomputes."""
    import torch

    from lmms_nb.models._internvl_llm import InternLM2RotaryEmbedding

    rotary = InternLM2RotaryEmbedding.make({"num_attention_heads": 4, "hidden_size": 64, "max_position_embeddings": 32,
                                            "rope_theta": 10000, "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    table = rotary.cos_table
    positions = torch.arange(20)[None]
    cos, _ = rotary(torch.zeros(1, 20, 64, dtype=torch.bfloat16), positions)
    assert rotary.cos_table is table and cos.dtype == torch.bfloat16
    assert torch.equal(cos, table[:20].to(torch.bfloat16)[None])
    recomputed = []
    rotary._cache = lambda seq_len, device: recomputed.append((seq_len, device))
    cos, sin = rotary(torch.zeros(1, 20, 64, device="meta"), positions)
    assert recomputed == [] and cos.device.type == sin.device.type == rotary.cos_table.device.type == "meta"
    rotary(torch.zeros(1, 40, 64, device="meta"), torch.arange(40)[None])  # past the cache: recomputed there
    assert recomputed == [(40, torch.device("meta"))]


def test_fast_internlm2_tokenizer_is_refused_naming_the_field(internlm2, tmp_path):
    import shutil

    from lmms_nb.models import get_model
    from lmms_nb.models._internlm2_tokenizer import InternLM2Tokenizer
    from lmms_nb.models._internvl_chat import _load_tokenizer

    folder = tmp_path / "fast"
    shutil.copytree(internlm2, folder)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer",
                                            "tokenization_internlm2_fast.InternLM2TokenizerFast"]}
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: field 'auto_map\.AutoTokenizer' is .*"
                                         r"the fast class InternLM2TokenizerFast"):
        get_model("internvl2", pretrained=str(folder), device="cpu")
    # internvl3's class asks for the slow one (use_fast=False): the port is what it runs
    assert isinstance(_load_tokenizer(folder, "internvl3"), InternLM2Tokenizer)
