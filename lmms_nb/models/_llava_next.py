"""Original-format LLaVA-OneVision checkpoints (the LLaVA-NeXT repository's `LlavaQwenForCausalLM`), run as
lmms-eval 0.7.3's `llava_onevision` class runs them, on transformers' `LlavaOnevisionForConditionalGeneration`.

lmms-eval's class loads such a checkpoint with LLaVA-NeXT's own code (`load_pretrained_model`); lmms-nb instead
converts it in memory (nothing is written to the checkpoint's folder), renaming the weights as transformers'
`convert_llava_onevision_weights_to_hf.py` does, but without adding `<image>` / `<video>` tokens to the vocabulary
(the conversion script pads the embeddings with sampled rows, which the original model never had): image features
are placed into the input embeddings where LLaVA-NeXT places them (`_llava_next_images`), and generation starts
from those embeddings. As there: float16 weights and pixels, SigLIP's last layer dropped, the tower's geometry
from its own config (found as `mm_vision_tower` names it: a folder, or a hub id in the local hub cache), greedy
answers decoded without special tokens and stripped, one request at a time (lmms-eval's class asserts batch 1).

Example:
    >>> is_llava_next_checkpoint({"architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": "x"})
    True
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

from lmms_nb.models._llava_next_images import (
    CONV_TEMPLATES,
    IMAGE_TOKEN_INDEX,
    pack_image_features,
    process_anyres_image,
    process_padded_image,
    qwen_1_5_prompt,
    tokenizer_image_token,
)
from lmms_nb.models.base import LoglikelihoodRequest, Request, Response

__all__ = ["LlavaNextOneVisionModel", "is_llava_next_checkpoint", "read_checkpoint_config"]

log = logging.getLogger(__name__)

_TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
              "tie_word_embeddings", "bos_token_id", "eos_token_id", "attention_dropout", "use_sliding_window",
              "sliding_window", "max_window_layers")


def _local_folder(name: str) -> Path:
    """A folder, or a hub id resolved to its snapshot (the local hub cache when offline)."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # the local hub cache first: no network round trip for a tower already there
        return Path(snapshot_download(name, local_files_only=True))
    except LocalEntryNotFoundError:
        return Path(snapshot_download(name))


def read_checkpoint_config(pretrained: str) -> dict[str, Any] | None:
    """The checkpoint's config.json as a dict (a folder, or a hub id already in the local cache); None if none."""
    folder = Path(pretrained)
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(pretrained, "config.json")
        except Exception:  # noqa: BLE001 - not a hub id either: the caller's loader reports it
            return None
        folder = Path(found).parent if isinstance(found, str) else None
    if folder is None or not (folder / "config.json").is_file():
        return None
    return json.loads((folder / "config.json").read_text())


def is_llava_next_checkpoint(config: dict[str, Any] | None) -> bool:
    """True for the LLaVA-NeXT repository's format (`LlavaQwenForCausalLM`, `mm_vision_tower`), not transformers'."""
    if not config:
        return False
    return "LlavaQwenForCausalLM" in (config.get("architectures") or []) or "mm_vision_tower" in config


def _convert_key(key: str) -> str:
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


def _build_model(folder: Path, config: dict[str, Any], *, dtype: Any, attn_implementation: str | None,
                 n_tokens: int):
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    if config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu" or "siglip" not in config["mm_vision_tower"]:
        raise ValueError(f"{folder / 'config.json'}: only SigLIP towers with an mlp2x_gelu projector are supported "
                         f"(mm_vision_tower={config['mm_vision_tower']!r}, "
                         f"mm_projector_type={config.get('mm_projector_type')!r})")
    tower = json.loads((_local_folder(config["mm_vision_tower"]) / "config.json").read_text())
    tower = tower.get("vision_config", tower)
    vision = {k: tower[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "image_size",
                                    "patch_size", "num_channels", "layer_norm_eps", "hidden_act") if k in tower}
    # LLaVA-NeXT drops the tower's last layer and takes the output of the one before it
    vision.update(model_type="siglip_vision_model", num_hidden_layers=tower["num_hidden_layers"] - 1,
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
    state = {_convert_key(k): v.to(dtype) for k, v in _load_weights(folder).items()}
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


class LlavaNextOneVisionModel:
    """An original-format LLaVA-OneVision checkpoint with lmms-eval's `llava_onevision` conventions (see module)."""

    def __init__(self, pretrained: str, *, name: str | None = None, device: str = "cpu",
                 conv_template: str = "qwen_1_5", attn_implementation: str | None = "sdpa",
                 use_cache: bool = True, max_new_tokens: int = 1024) -> None:
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from lmms_nb.models.hf import lmms_eval_model_name

        if conv_template not in CONV_TEMPLATES:
            raise ValueError(f"llava_onevision: conv_template {conv_template!r} is not supported by lmms-nb "
                             f"(supported: {', '.join(CONV_TEMPLATES)})")
        folder = _local_folder(pretrained)
        self.config = json.loads((folder / "config.json").read_text())
        self.pretrained, self.name = str(pretrained), name or lmms_eval_model_name(str(pretrained))
        self.use_cache, self.max_new_tokens = bool(use_cache), int(max_new_tokens)
        self.model_args: dict[str, Any] = {"pretrained": self.pretrained, "dtype": "float16", "device": device,
                                           "conv_template": conv_template, "format": "llava-next original"}
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        # the tokens LLaVA-NeXT's builder adds (its defaults when config.json does not say)
        if self.config.get("mm_use_im_patch_token", True):
            self.tokenizer.add_tokens(["<im_patch>"], special_tokens=True)
        if self.config.get("mm_use_im_start_end", False):
            self.tokenizer.add_tokens(["<im_start>", "<im_end>"], special_tokens=True)
        self.model = _build_model(folder, self.config, dtype=torch.float16, attn_implementation=attn_implementation,
                                  n_tokens=len(self.tokenizer)).to(device)
        if (folder / "generation_config.json").is_file():
            self.model.generation_config = GenerationConfig.from_pretrained(str(folder))
        self.device = self.model.device
        vision = self.model.config.vision_config
        self.tile, self.patches_per_side = vision.image_size, vision.image_size // vision.patch_size

    def __repr__(self) -> str:
        return f"LlavaNextOneVisionModel(name={self.name!r}, pretrained={self.pretrained!r})"

    accepts_video = False

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order, each generated alone; a failing request gets `error` set."""
        out = []
        for req in requests:
            try:
                out.append(self._generate_one(req))
            except Exception as e:  # noqa: BLE001 - a bad sample must not stop the run
                msg = f"{type(e).__name__}: {e}"
                out.append(Response(text=None, error=msg if f"doc {req.doc_id}" in msg else f"doc {req.doc_id}: {msg}"))
        return out

    def _image_embeddings(self, images: list) -> list:
        import torch

        inner = self.model.model
        if len(images) > 1:  # lmms-eval's class: image_aspect_ratio "pad", each image one tile of 729 features
            pixels = torch.stack([process_padded_image(image, self.tile) for image in images])
            hidden = inner.vision_tower(pixels.to(self.device, torch.float16), output_hidden_states=True).hidden_states[-1]
            return list(inner.multi_modal_projector(hidden))
        aspect = self.config.get("image_aspect_ratio", "anyres_max_9")
        pinpoints = self.config.get("image_grid_pinpoints")
        tiles = [process_anyres_image(image, pinpoints, self.tile) for image in images]
        pixels = torch.cat(tiles).to(self.device, torch.float16)
        hidden = inner.vision_tower(pixels, output_hidden_states=True).hidden_states[-1]
        features = torch.split(inner.multi_modal_projector(hidden), [t.shape[0] for t in tiles])
        return [pack_image_features(f, image.size, newline=inner.image_newline, pinpoints=pinpoints,
                                    aspect_ratio=aspect, tile=self.tile, patches_per_side=self.patches_per_side)
                for f, image in zip(features, images)]

    def _embed(self, ids: list[int], features: list) -> Any:
        """Input embeddings (1, length, hidden): text tokens embedded, each IMAGE_TOKEN_INDEX replaced by the next
        image's features (the last one again if the prompt has more placeholders than images, as LLaVA-NeXT)."""
        import torch

        embed = self.model.get_input_embeddings()
        pieces, text, k = [], [], 0
        for token in [*ids, None]:
            if token is None or token == IMAGE_TOKEN_INDEX:
                if text:
                    pieces.append(embed(torch.tensor(text, device=self.device)))
                text = []
                if token is not None:
                    pieces.append(features[min(k, len(features) - 1)])
                    k += 1
            else:
                text.append(token)
        return torch.cat(pieces)[None]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, bool]]:
        """``(loss, is_greedy)`` per request, as lmms-eval's class computes them: the context as the user turn, the
        continuation as the assistant's (then `<|im_end|>` and a newline, which count in the loss); loss = the
        mean cross-entropy of the tokens after the context, in float32 over float16 logits; is_greedy compares
        the continuation's ids with the argmax at the same positions counted WITHOUT the image features (the
        class's indexing, kept so that the answers are the same)."""
        import torch

        from lmms_nb.models.hf import _as_rgb

        out = []
        for req in requests:
            images = [_as_rgb(img, req, k) for k, img in enumerate(req.images)]
            prompt = qwen_1_5_prompt(req.context, len(images))
            n_context = len(tokenizer_image_token(prompt, self.tokenizer))
            full = tokenizer_image_token(qwen_1_5_prompt(req.context, len(images), answer=req.continuation),
                                         self.tokenizer)
            with torch.inference_mode():
                embeds = self._embed(full, self._image_embeddings(images) if images else [])
                logits = self.model(inputs_embeds=embeds).logits.float()[0]
            n_prefix = embeds.shape[1] - (len(full) - n_context)  # the context's length once images are expanded
            labels = torch.full((embeds.shape[1],), -100, dtype=torch.long, device=self.device)
            labels[n_prefix:] = torch.tensor(full[n_context:], device=self.device)
            loss = torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
            greedy = logits.argmax(-1)[n_context: len(full)]
            out.append((float(loss), bool((greedy == torch.tensor(full[n_context:], device=self.device)).all())))
        return out

    def _generate_one(self, req: Request) -> Response:
        import torch

        from lmms_nb.models.hf import _as_rgb

        start = time.perf_counter()
        images = [_as_rgb(img, req, k) for k, img in enumerate(req.images)]
        ids = tokenizer_image_token(qwen_1_5_prompt(req.prompt, len(images)), self.tokenizer)
        with torch.inference_mode():
            embeds = self._embed(ids, self._image_embeddings(images) if images else [])
            gen = dict(req.generation_kwargs or {})
            kwargs = {"max_new_tokens": int(gen.get("max_new_tokens", self.max_new_tokens)),
                      "do_sample": bool(gen.get("do_sample", False)), "use_cache": self.use_cache,
                      "pad_token_id": self.tokenizer.pad_token_id
                      if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id}
            if kwargs["do_sample"]:
                kwargs.update({k: gen[k] for k in ("temperature", "top_p", "top_k") if k in gen})
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            for key in ("num_beams",):
                if key in gen:
                    kwargs[key] = gen[key]
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
            out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)
        row = out[0].tolist()
        text = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        eos = self.model.generation_config.eos_token_id
        stops = {eos} if isinstance(eos, int) else set(eos or [])
        n_out = next((i for i, t in enumerate(row) if t in stops), len(row))
        return Response(text=text, latency_s=time.perf_counter() - start, output_tokens=n_out)
