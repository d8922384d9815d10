"""The language model of an original-format InternVL checkpoint (`llm_config` in config.json) as a transformers text
model: Qwen2 / Qwen3 / Llama as they are (OpenGVLab's code builds transformers' own classes), Phi-3 as transformers'
`Phi3` (the same weight names, fused `qkv_proj` and `gate_up_proj` in the same layout), InternLM2 as `Llama` (its
fused grouped `wqkv` split into q / k / v, `w1` / `w3` / `w2` as gate / up / down) with InternLM2's own rotary
embedding put back (see `InternLM2RotaryEmbedding`) and, for both, the remote code's eager attention.

OpenGVLab's InternLM2 and Phi-3 code (internvl_chat/internvl/model/internlm2, phi3) was read for each mapping;
`tests/test_vs_lmms_eval_073.py` runs both against lmms-eval 0.7.3's `internvl2` class on that code.

Example:
    >>> text_model_type({"architectures": ["InternLM2ForCausalLM"]}), text_model_type({"architectures": ["Gemma"]})
    ('llama', None)
    >>> list(convert_llm_key("language_model.model.layers.0.feed_forward.w1.weight", "InternLM2ForCausalLM"))
    ['language_model.model.layers.0.mlp.gate_proj.weight']
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

__all__ = ["REMOTE_EAGER", "SUPPORTED_LLMS", "InternLM2RotaryEmbedding", "convert_llm_weight", "convert_llm_key",
           "default_attention", "text_config", "text_model_type"]

#: llm_config.architectures[0] -> the transformers text model_type it is converted to
SUPPORTED_LLMS = {"Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3", "LlamaForCausalLM": "llama",
                  "InternLM2ForCausalLM": "llama", "Phi3ForCausalLM": "phi3"}
#: the attention of OpenGVLab's InternLM2 / Phi-3 code without flash-attn (registered under this name)
REMOTE_EAGER = "lmms_nb_remote_eager"
_DROPPED = ("architectures", "auto_map", "_name_or_path", "torch_dtype", "dtype", "transformers_version",
            "attn_implementation")
_INTERNLM2_RENAMES = [(".tok_embeddings.", ".embed_tokens."), (".attention.wo.", ".self_attn.o_proj."),
                      (".feed_forward.w1.", ".mlp.gate_proj."), (".feed_forward.w3.", ".mlp.up_proj."),
                      (".feed_forward.w2.", ".mlp.down_proj."), (".attention_norm.", ".input_layernorm."),
                      (".ffn_norm.", ".post_attention_layernorm."), ("language_model.output.", "language_model.lm_head.")]


def text_model_type(llm: dict[str, Any]) -> str | None:
    """transformers' model_type for `llm_config`, None where lmms-nb does not convert its architecture."""
    return SUPPORTED_LLMS.get((llm.get("architectures") or [None])[0])


def _internlm2_config(llm: dict[str, Any], path: Path) -> dict[str, Any]:
    scaling = llm.get("rope_scaling")
    if scaling is not None and (not isinstance(scaling, dict) or scaling.get("type") not in ("dynamic", "linear")):
        raise ValueError(f"{path}: field 'llm_config.rope_scaling' is {scaling!r}; InternLM2's code (and lmms-nb) "
                         "knows type 'dynamic' or 'linear'")
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "bos_token_id",
            "eos_token_id", "pad_token_id", "initializer_range")
    config = {k: llm[k] for k in keep if k in llm}
    heads = int(llm["num_attention_heads"])
    config.update(model_type="llama", rope_theta=float(llm.get("rope_theta", 10000)),
                  attention_bias=bool(llm.get("bias", True)),  # wqkv and wo; InternLM2's FFN never has biases
                  mlp_bias=False, head_dim=int(llm["hidden_size"]) // heads,
                  num_key_value_heads=int(llm.get("num_key_value_heads") or heads))
    return config


def _phi3_config(llm: dict[str, Any], path: Path) -> dict[str, Any]:
    config = {k: v for k, v in llm.items() if k not in _DROPPED and k != "rope_scaling"}
    config["model_type"] = "phi3"
    scaling = llm.get("rope_scaling")
    if scaling is None:
        return config
    kind = scaling.get("type") if isinstance(scaling, dict) else None
    if kind not in ("su", "longrope", "yarn") or "original_max_position_embeddings" not in llm:
        raise ValueError(f"{path}: field 'llm_config.rope_scaling' is {scaling!r}; OpenGVLab's Phi-3 code (and "
                         "lmms-nb) knows type 'su' or 'yarn' with llm_config.original_max_position_embeddings")
    original = int(llm["original_max_position_embeddings"])
    scale = int(llm["max_position_embeddings"]) / original
    # OpenGVLab's su = transformers' longrope; its yarn is longrope's frequencies with another cos/sin factor
    factor = 1.0 if scale <= 1.0 else (math.sqrt(1 + math.log(scale) / math.log(original)) if kind != "yarn"
                                       else 0.1 * math.log(scale) + 1.0)
    config["rope_scaling"] = {"rope_type": "longrope", "short_factor": list(scaling["short_factor"]),
                              "long_factor": list(scaling["long_factor"]), "attention_factor": factor,
                              "original_max_position_embeddings": original,
                              "rope_theta": float(llm.get("rope_theta", 10000.0))}
    return config


def text_config(llm: dict[str, Any], path: Path) -> dict[str, Any]:
    """`llm_config` as transformers' text config of the converted model (a dict with its `model_type`)."""
    model_type, arch = text_model_type(llm), llm["architectures"][0]
    if arch == "InternLM2ForCausalLM":
        config = _internlm2_config(llm, path)
    elif arch == "Phi3ForCausalLM":
        config = _phi3_config(llm, path)
    else:
        config = {k: v for k, v in llm.items() if k not in _DROPPED}
        config["model_type"] = model_type
    config["tie_word_embeddings"] = False  # InternVLChatConfig forces it off
    return config


def convert_llm_key(key: str, arch: str) -> Iterator[str]:
    """An LLM weight's original name as the converted text model names it (still under `language_model.`)."""
    if arch == "InternLM2ForCausalLM":
        for old, new in _INTERNLM2_RENAMES:
            key = key.replace(old, new)
    yield key


def convert_llm_weight(key: str, value: Any, llm: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs of the converted LLM for one original weight: InternLM2's `wqkv` (rows grouped per KV
    head as [the group's q heads..., k, v], modeling_internlm2's `b q (h gs d) -> b q h gs d`) split in three."""
    arch = llm["architectures"][0]
    if arch != "InternLM2ForCausalLM" or ".attention.wqkv." not in key:
        yield from ((k, value) for k in convert_llm_key(key, arch))
        return
    heads = int(llm["num_attention_heads"])
    kv = int(llm.get("num_key_value_heads") or heads)
    head_dim = int(llm["hidden_size"]) // heads
    grouped = value.reshape(kv, heads // kv + 2, head_dim, *value.shape[1:])
    base = key.replace(".attention.wqkv.", ".self_attn.{}.")
    yield base.format("q_proj"), grouped[:, :-2].reshape(heads * head_dim, *value.shape[1:]).contiguous()
    yield base.format("k_proj"), grouped[:, -2].reshape(kv * head_dim, *value.shape[1:]).contiguous()
    yield base.format("v_proj"), grouped[:, -1].reshape(kv * head_dim, *value.shape[1:]).contiguous()


def _remote_eager_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float,
                            dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """modeling_internlm2 / modeling_phi3's eager attention op for op: `q @ k^T / sqrt(head_dim)`, the mask added,
    softmax in float32, back to the query's dtype. transformers' own eager computes the same thing (its product by
    `head_dim ** -0.5` gave bit-identical logits to this division on the CPU, head_dim 24 included: 0 of 4e7
    bfloat16 scores rounded apart); its sdpa does not (internvl_llm_logits.json: logits off by up to 1.7, argmax
    changed), which is why these LLMs never default to sdpa. Kept as the remote code writes it so that no kernel's
    choice of how to scale can move the answers."""
    import torch

    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    weights = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.shape[-1])
    if attention_mask is not None:  # eager's additive mask (registered with the attention)
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def default_attention(llm: dict[str, Any]) -> str:
    """The LLM attention lmms-nb runs unless asked otherwise: the remote code's eager one for InternLM2 / Phi-3
    (registered here), sdpa for Qwen2 / Qwen3 / Llama (transformers' own classes, sdpa in lmms-eval's run too)."""
    if (llm.get("architectures") or [None])[0] not in ("InternLM2ForCausalLM", "Phi3ForCausalLM"):
        return "sdpa"
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(REMOTE_EAGER, _remote_eager_attention)
    AttentionMaskInterface.register(REMOTE_EAGER, eager_mask)  # else sdpa's (None where causal suffices)
    return REMOTE_EAGER


# The rotary embedding below is ported from InternLM2's modeling_internlm2.py (OpenGVLab/InternVL at 2410d1d,
# internvl_chat/internvl/model/internlm2/modeling_internlm2.py: InternLM2RotaryEmbedding and its linear / dynamic NTK
# subclasses), which carries:
#     Copyright (c) The InternLM team and The HuggingFace Inc. team. All rights reserved.
#     Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).
# Modified for lmms-nb (Apache-2.0 as well): the three classes folded into one module taking Llama's
# `(x, position_ids)` call, the tables indexed by position ids and kept in float32 (cast to the call's dtype: the
# same rounding as the original's tables stored in the default dtype), moved (not recomputed) to a new device.
class InternLM2RotaryEmbedding:
    """InternLM2's rotary embedding as its code computes it, in place of Llama's (a `torch.nn.Module` made by
    `make`): cos / sin tables cached up to the longest sequence seen (first `max_position_embeddings`, computed
    on the CPU at load as the original computes them); a call on another device moves the cached tables there
    (the original's buffers move with the model) and only a longer sequence recomputes them, on the call's
    device; with `rope_scaling` type dynamic, that longer sequence recomputes the base from its length and KEEPS
    it for every later call, shorter ones included (transformers' dynamic rope goes back to the original base);
    linear divides the positions by the factor before the product."""

    @staticmethod
    def make(llm: dict[str, Any]):
        import torch

        heads = int(llm["num_attention_heads"])
        dim = int(llm["hidden_size"]) // heads
        base, max_positions = float(llm.get("rope_theta", 10000)), int(llm["max_position_embeddings"])
        scaling = llm.get("rope_scaling") or {}
        kind, factor = scaling.get("type"), float(scaling.get("factor", 1.0))

        class _Rotary(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
                self._cache(max_positions, torch.device("cpu"))

            def _cache(self, seq_len: int, device: Any) -> None:
                self.cached = seq_len
                if kind == "dynamic" and seq_len > max_positions:
                    scaled = base * ((factor * seq_len / max_positions) - (factor - 1)) ** (dim / (dim - 2))
                    self.inv_freq = 1.0 / (scaled ** (torch.arange(0, dim, 2).float().to(device) / dim))
                t = torch.arange(seq_len, device=device).to(self.inv_freq.dtype)
                if kind == "linear":
                    t = t / factor
                freqs = torch.einsum("i,j->ij", t, self.inv_freq.to(device))
                emb = torch.cat((freqs, freqs), dim=-1)
                self.cos_table, self.sin_table = emb.cos(), emb.sin()

            def forward(self, x: Any, position_ids: Any) -> tuple[Any, Any]:
                seq_len = int(position_ids.max()) + 1
                if seq_len > self.cached:
                    self._cache(seq_len, x.device)
                elif self.cos_table.device != x.device:  # the same table (CUDA's cos / sin may round otherwise)
                    self.cos_table, self.sin_table = self.cos_table.to(x.device), self.sin_table.to(x.device)
                return self.cos_table[position_ids].to(x.dtype), self.sin_table[position_ids].to(x.dtype)

        return _Rotary()
