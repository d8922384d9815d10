"""Original-format LLaVA-OneVision checkpoints (the LLaVA-NeXT repository's `LlavaQwenForCausalLM`) told apart
from transformers' format, and converted in memory to `LlavaOnevisionForConditionalGeneration`.

The weights are renamed as transformers' `convert_llava_onevision_weights_to_hf.py` renames them, without its
`<image>` / `<video>` tokens (it pads the embeddings with sampled rows the original model never had); the
embeddings are cut to the tokenizer's length as LLaVA-NeXT's builder does (`resize_token_embeddings`); the SigLIP
tower's geometry comes from its own config (the folder or hub id `mm_vision_tower` names) minus its last layer,
which LLaVA-NeXT drops. Nothing is written to the checkpoint's folder.

Example:
    >>> is_llava_next_checkpoint({"architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": "x"})
    True
    >>> convert_key("model.mm_projector.0.weight"), convert_key("model.layers.0.mlp.up_proj.weight")
    ('model.multi_modal_projector.linear_1.weight', 'model.language_model.layers.0.mlp.up_proj.weight')
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["build_model", "convert_key", "is_llava_next_checkpoint", "local_folder", "read_checkpoint_config",
           "read_json_config"]

log = logging.getLogger(__name__)

_TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
              "tie_word_embeddings", "bos_token_id", "eos_token_id", "attention_dropout", "use_sliding_window",
              "sliding_window", "max_window_layers")


def local_folder(name: str, revision: str | None = None) -> Path:
    """A folder, or a hub id resolved to its snapshot (the local hub cache when offline)."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # the local hub cache first: no network round trip for a tower already there
        return Path(snapshot_download(name, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError:
        return Path(snapshot_download(name, revision=revision))


def _hub_offline() -> bool:
    import os

    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def read_checkpoint_config(pretrained: str, revision: str | None = None) -> dict[str, Any] | None:
    """The checkpoint's config.json as a dict: from a folder, a hub id's local cache, or else (online) just that
    file fetched from the hub. None if the name is neither a folder nor a hub id, or the repository has no
    config.json (the caller's loader then reports it); offline and not cached: a ValueError naming the id."""
    folder = Path(pretrained)
    if folder.is_dir():
        path = folder / "config.json"
        return read_json_config(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    try:
        found = try_to_load_from_cache(pretrained, "config.json", revision=revision)
    except HFValidationError:  # not a hub id either: the caller's loader reports it
        return None
    if isinstance(found, str):
        return read_json_config(Path(found))
    if found is not None:  # the cache knows the repository has no config.json
        return None
    if _hub_offline():
        raise ValueError(f"{pretrained!r} (revision {revision or 'main'}): not a local folder and its config.json is "
                         "not in the local hub cache, and HF_HUB_OFFLINE is set: download the checkpoint first "
                         "(huggingface-cli download) or pass a local folder")
    try:
        return read_json_config(Path(hf_hub_download(pretrained, "config.json", revision=revision)))
    except LocalEntryNotFoundError as e:  # the hub unreachable (a subclass of EntryNotFoundError: caught first)
        raise ValueError(f"{pretrained!r} (revision {revision or 'main'}): config.json is neither a local file, nor "
                         f"in the local hub cache, nor reachable on the hub ({e})") from e
    except EntryNotFoundError:  # the repository has no config.json
        return None


def read_json_config(path: Path) -> dict[str, Any]:
    """A config.json as a dict; unreadable or not a JSON object: a ValueError naming the file."""
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON config ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a JSON object expected, got {type(config).__name__}")
    return config


def is_llava_next_checkpoint(config: dict[str, Any] | None) -> bool:
    """True for the LLaVA-NeXT repository's format (`LlavaQwenForCausalLM`, `mm_vision_tower`), not transformers'."""
    if not config:
        return False
    return "LlavaQwenForCausalLM" in (config.get("architectures") or []) or "mm_vision_tower" in config


def convert_key(key: str) -> str:
    """An original weight name as `LlavaOnevisionForConditionalGeneration` names it (transformers' layout)."""
    if key.startswith("model.vision_tower.vision_tower."):
        return "model.vision_tower." + key.removeprefix("model.vision_tower.vision_tower.")
    if key.startswith("model.mm_projector."):
        rest = key.removeprefix("model.mm_projector.")
        return "model.multi_modal_projector." + rest.replace("0.", "linear_1.", 1).replace("2.", "linear_2.", 1)
    if key == "model.image_newline":
        return key
    if key.startswith("model."):
        return "model.language_model." + key.removeprefix("model.")
    return key


def _load_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights (an original-format LLaVA-OneVision checkpoint "
                                "keeps them there)")
    weights: dict[str, Any] = {}
    for file in files:
        weights.update(load_file(str(file)))
    return weights


def _field(config: dict[str, Any], key: str, path: Path, kind: type) -> Any:
    """config[key], which must be there and be a `kind`: else a ValueError naming the file and the field."""
    if key not in config:
        raise ValueError(f"{path}: field {key!r} missing")
    if not isinstance(config[key], kind) or isinstance(config[key], bool):
        raise ValueError(f"{path}: field {key!r} must be a {kind.__name__}, got {config[key]!r}")
    return config[key]


def build_model(folder: Path, config: dict[str, Any], *, dtype: Any, attn_implementation: str | None,
                 n_tokens: int):
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    path = folder / "config.json"
    tower_name = _field(config, "mm_vision_tower", path, str)
    if config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu" or "siglip" not in tower_name:
        raise ValueError(f"{path}: only SigLIP towers with an mlp2x_gelu projector are supported "
                         f"(mm_vision_tower={tower_name!r}, mm_projector_type={config.get('mm_projector_type')!r})")
    tower_path = local_folder(tower_name) / "config.json"
    if not tower_path.is_file():
        raise ValueError(f"{tower_path}: missing (the config of the vision tower {path} names in mm_vision_tower)")
    tower = read_json_config(tower_path)
    tower = tower.get("vision_config", tower)
    vision = {k: tower[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "image_size",
                                    "patch_size", "num_channels", "layer_norm_eps", "hidden_act") if k in tower}
    # LLaVA-NeXT drops the tower's last layer and takes the output of the one before it
    vision.update(model_type="siglip_vision_model", num_hidden_layers=_field(tower, "num_hidden_layers", tower_path, int) - 1,
                  vision_use_head=False)
    text = {"model_type": "qwen2", **{k: config[k] for k in _TEXT_KEYS if k in config}}
    # LLaVA-NeXT's builder resizes the embeddings to the tokenizer's length (resize_token_embeddings): a Qwen2
    # checkpoint's padding rows (151936 vs 151646 tokens) are cut off, so they can never be generated
    vocab = int(text.get("vocab_size", n_tokens))
    text["vocab_size"] = min(vocab, n_tokens)
    hf_config = LlavaOnevisionConfig(
        text_config=text, vision_config=vision, image_grid_pinpoints=config.get("image_grid_pinpoints"),
        vision_feature_layer=-1, vision_feature_select_strategy="full",
        vision_aspect_ratio=config.get("image_aspect_ratio", "anyres_max_9"), use_image_newline_parameter=True,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)))
    # built on the CPU (buffers such as rotary frequencies are computed, not loaded), then overwritten
    model = LlavaOnevisionForConditionalGeneration._from_config(hf_config, dtype=dtype)
    # LLaVA-NeXT's SigLIP computes attention by hand (eager: sdpa's float16 rounding differs, by up to 0.03 on the
    # tiny tower's features); its Qwen2 takes lmms-eval's attn_implementation (sdpa). Set on the built modules'
    # configs, which they read at each call (_from_config chooses its own)
    model.model.vision_tower.config._attn_implementation = "eager"
    model.model.language_model.config._attn_implementation = attn_implementation or "sdpa"
    state = {convert_key(k): v.to(dtype) for k, v in _load_weights(folder).items()}
    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        if key in state:
            state[key] = state[key][: text["vocab_size"]]
    expected = set(model.state_dict())
    # the tower is a SiglipVisionModel (`vision_model.` inside) in some transformers versions, its inner
    # SiglipVisionTransformer in others
    state = {k if k in expected else k.replace(".vision_tower.vision_model.", ".vision_tower.", 1): v
             for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if hf_config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
        model.tie_weights()
    if missing or unexpected:
        raise ValueError(f"{folder}: weights that do not fit LLaVA-OneVision: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    if n_tokens > vocab:
        log.warning("%s: the tokenizer has %d tokens for %d embedding rows; LLaVA-NeXT adds rows sampled at "
                    "random, so answers that use them can differ from lmms-eval's", folder, n_tokens, vocab)
        model.resize_token_embeddings(n_tokens)
    return model.eval()
