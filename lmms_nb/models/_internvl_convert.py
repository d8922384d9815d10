"""Original-format InternVL checkpoints (OpenGVLab's remote code `InternVLChatModel`: InternVL2 / 2.5 / 3 / 3.5 on
the hub) told apart from transformers' format, and converted in memory to `InternVLForConditionalGeneration`.

The weights are renamed as transformers' InternVL conversion renames them (InternViT's fused `qkv` split into
q/k/v, `ls1`/`ls2` as `lambda_1`/`lambda_2`, `mlp1` as the projector, the LLM under `model.language_model`); the
vision attention is computed as InternViT computes it without flash-attn (`(q * scale) @ k^T`, softmax in the
weights' dtype), which transformers' eager path rounds differently in bfloat16. The LLM (Qwen2, Qwen3, Llama, InternLM2
as Llama, Phi-3) is converted by `_internvl_llm`; anything else is refused naming config.json's field. Nothing is
written to the checkpoint's folder. The model is built on the meta device and each safetensors shard's converted
tensors become its weights (`assign=True`), one shard at a time: loading holds the weights once plus one shard
(benchmarks/bench_internvl_load_memory.py), not a random-weight model beside a dict of every converted tensor.

Example:
    >>> is_internvl_chat_checkpoint({"architectures": ["InternVLChatModel"], "llm_config": {}})
    True
    >>> convert_key("mlp1.1.weight"), convert_key("vision_model.encoder.layers.0.ls1")
    ('model.multi_modal_projector.linear_1.weight', 'model.vision_tower.encoder.layer.0.lambda_1')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmms_nb.models._internvl_llm import (SUPPORTED_LLMS, InternLM2RotaryEmbedding, convert_llm_weight,
                                          default_attention, text_config)

__all__ = ["SUPPORTED_LLMS", "build_model", "check_supported", "convert_key", "is_internvl_chat_checkpoint"]

_ATTENTION = "lmms_nb_internvit"
_RENAMES = [("vision_model.embeddings.class_embedding", "model.vision_tower.embeddings.cls_token"),
            ("vision_model.embeddings.position_embedding", "model.vision_tower.embeddings.position_embeddings"),
            ("vision_model.embeddings.patch_embedding.", "model.vision_tower.embeddings.patch_embeddings.projection."),
            ("vision_model.encoder.layers.", "model.vision_tower.encoder.layer."),
            ("mlp1.0.", "model.multi_modal_projector.layer_norm."),
            ("mlp1.1.", "model.multi_modal_projector.linear_1."),
            ("mlp1.3.", "model.multi_modal_projector.linear_2."),
            ("language_model.model.", "model.language_model."),
            ("language_model.lm_head.", "lm_head.")]
_LAYER_RENAMES = [(".attn.proj.", ".attention.projection_layer."), (".attn.q_norm.", ".attention.q_norm."),
                  (".attn.k_norm.", ".attention.k_norm."), (".ls1", ".lambda_1"), (".ls2", ".lambda_2"),
                  (".norm1.", ".layernorm_before."), (".norm2.", ".layernorm_after.")]


def is_internvl_chat_checkpoint(config: dict[str, Any] | None) -> bool:
    """True for OpenGVLab's remote-code format (`InternVLChatModel`, `llm_config`), not transformers' InternVL."""
    if not config:
        return False
    return "InternVLChatModel" in (config.get("architectures") or []) or (
        config.get("model_type") == "internvl_chat" and "llm_config" in config)


def convert_key(key: str) -> str:
    """An original weight name as `InternVLForConditionalGeneration` names it (`attn.qkv` is split by the caller)."""
    for old, new in _RENAMES:
        if key.startswith(old):
            key = new + key.removeprefix(old)
            break
    if key.startswith("model.vision_tower.encoder.layer."):
        for old, new in _LAYER_RENAMES:
            key = key.replace(old, new)
    return key


def _field(config: dict[str, Any], key: str, path: Path, kind: type | tuple, parent: str = "") -> Any:
    """`config[key]`, or a ValueError naming the file and the field's full path (`vision_config.image_size`).

    >>> _field({"patch_size": 14}, "patch_size", Path("config.json"), int, parent="vision_config")
    14
    >>> _field({}, "image_size", Path("config.json"), int, parent="vision_config")
    Traceback (most recent call last):
    ...
    ValueError: config.json: field 'vision_config.image_size' missing
    """
    name = f"{parent}.{key}" if parent else key
    if key not in config:
        raise ValueError(f"{path}: field {name!r} missing")
    if not isinstance(config[key], kind) or isinstance(config[key], bool):
        raise ValueError(f"{path}: field {name!r} has an unexpected value {config[key]!r}")
    return config[key]


def check_supported(config: dict[str, Any], path: Path) -> None:
    """A ValueError naming config.json and the field for what lmms-nb does not convert (another LLM, its rope
    scaling, pixel shuffle v1, a vision layer other than the last)."""
    llm = _field(config, "llm_config", path, dict)
    arch = (llm.get("architectures") or [None])[0]
    if arch not in SUPPORTED_LLMS:
        raise ValueError(f"{path}: llm_config.architectures is {llm.get('architectures')!r}; lmms-nb converts "
                         f"InternVL checkpoints whose LLM is one of {', '.join(SUPPORTED_LLMS)}")
    text_config(llm, path)  # refuses what the LLM's conversion does not know (its rope scaling)
    _field(config, "vision_config", path, dict)
    if config.get("ps_version", "v1") != "v2":
        raise ValueError(f"{path}: field 'ps_version' is {config.get('ps_version', 'v1')!r}; only 'v2' (InternVL2 "
                         "and later) is supported")
    if config.get("select_layer", -1) != -1:
        raise ValueError(f"{path}: field 'select_layer' is {config['select_layer']!r}; only -1 is supported")


def _internvit_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float,
                         dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """InternViT's `_naive_attn`: the query scaled before the product, softmax in the input's dtype."""
    weights = ((query * scaling) @ key.transpose(-2, -1)).softmax(dim=-1)
    return (weights @ value).transpose(1, 2).contiguous(), weights


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(_ATTENTION, _internvit_attention)


def _hf_config(config: dict[str, Any], path: Path, n_tokens: int):
    from transformers import InternVLConfig

    vision, llm = config["vision_config"], dict(config["llm_config"])  # both checked by check_supported
    size = int(config.get("force_image_size") or _field(vision, "image_size", path, int, "vision_config"))
    patch = int(_field(vision, "patch_size", path, int, "vision_config"))
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        _field(vision, key, path, int, "vision_config")
    text = text_config(llm, path)
    vision_config = {"hidden_size": vision["hidden_size"], "intermediate_size": vision["intermediate_size"],
                     "num_hidden_layers": vision["num_hidden_layers"],
                     "num_attention_heads": vision["num_attention_heads"], "image_size": [size, size],
                     "patch_size": [patch, patch], "num_channels": vision.get("num_channels", 3),
                     "attention_bias": bool(vision.get("qkv_bias", False)),
                     "use_qk_norm": bool(vision.get("qk_normalization", False)),
                     "norm_type": vision.get("norm_type", "rms_norm"),
                     "layer_norm_eps": vision.get("layer_norm_eps", 1e-6),
                     "hidden_act": vision.get("hidden_act", "gelu"), "use_mean_pooling": True}
    return InternVLConfig(vision_config=vision_config, text_config=text,
                          downsample_ratio=config.get("downsample_ratio", 0.5), vision_feature_layer=-1,
                          vision_feature_select_strategy="default", projector_hidden_act="gelu",
                          tie_word_embeddings=False,
                          image_token_id=n_tokens - 1)  # unused: features are placed by the caller


def _converted_shard(file: Path, llm: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """One safetensors shard's weights renamed (and split) as `InternVLForConditionalGeneration` names them, in
    `dtype`; each original tensor is dropped once converted (a fused qkv is not kept beside its three parts)."""
    from safetensors import safe_open

    state: dict[str, Any] = {}
    with safe_open(str(file), framework="pt") as weights:
        for key in weights.keys():
            value = weights.get_tensor(key).to(dtype)
            if key.endswith((".attn.qkv.weight", ".attn.qkv.bias")):
                new = convert_key(key.replace(".attn.qkv.", ".attn.proj."))
                q, k, v = value.chunk(3, dim=0)
                for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    state[new.replace(".projection_layer.", f".{name}.")] = part.contiguous()
            elif key.startswith("language_model."):
                state.update((convert_key(k), v) for k, v in convert_llm_weight(key, value, llm))
            else:
                state[convert_key(key)] = value
            del value
    return state


def build_model(folder: Path, config: dict[str, Any], *, dtype: Any, attn_implementation: str | None,
                n_tokens: int):
    """`InternVLForConditionalGeneration` holding the checkpoint's weights (in `dtype`), eval mode, on the CPU."""
    from transformers import InternVLForConditionalGeneration

    path = folder / "config.json"
    check_supported(config, path)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights (OpenGVLab's InternVL checkpoints keep them there)")
    import torch

    hf_config = _hf_config(config, path, n_tokens)
    with torch.device("meta"):  # no storage (nor random init): the shards' tensors become the weights (assign)
        model = InternVLForConditionalGeneration._from_config(hf_config, dtype=dtype)
    _register_attention()
    # set on the built modules' configs, which they read at each call (_from_config chooses its own)
    model.model.vision_tower.config._attn_implementation = _ATTENTION
    model.model.language_model.config._attn_implementation = attn_implementation or default_attention(
        config["llm_config"])
    # shard by shard, each shard's tensors taken as the weights: the weights exist once, never a second model
    missing: set[str] | None = None
    unexpected: set[str] = set()
    for file in files:
        shard = _converted_shard(file, config["llm_config"], dtype)
        result = model.load_state_dict(shard, strict=False, assign=True)
        del shard
        missing = set(result.missing_keys) if missing is None else missing & set(result.missing_keys)
        unexpected.update(result.unexpected_keys)
    if missing or unexpected:  # what strict loading of all the shards together would report
        raise ValueError(f"{folder}: weights that do not fit InternVL: missing {sorted(missing or ())[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    # the only non-persistent buffers (inv_freq), computed on the CPU as a model built there computes them
    language_model = model.model.language_model
    if config["llm_config"]["architectures"][0] == "InternLM2ForCausalLM":
        language_model.rotary_emb = InternLM2RotaryEmbedding.make(config["llm_config"])
    else:
        language_model.rotary_emb = type(language_model.rotary_emb)(config=language_model.config)
    unset = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if unset:
        raise ValueError(f"{folder}: no value for {unset[:5]} after loading (lmms-nb's InternVL conversion does not "
                         "know this transformers version's model)")
    return model.eval()
