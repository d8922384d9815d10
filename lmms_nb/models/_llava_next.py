"""Original-format LLaVA-OneVision checkpoints (the LLaVA-NeXT repository's `LlavaQwenForCausalLM`), run as
lmms-eval 0.7.3's `llava_onevision` class runs them, on transformers' `LlavaOnevisionForConditionalGeneration`.

lmms-eval's class loads such a checkpoint with LLaVA-NeXT's own code (`load_pretrained_model`); lmms-nb converts
it in memory (`_llava_next_convert`), places image features into the input embeddings where LLaVA-NeXT places them
(`_llava_next_images`) and generates from those embeddings. As there: float16 weights and pixels, SigLIP's own
(eager) attention, greedy answers decoded without special tokens and stripped, one request at a time (lmms-eval's
class asserts batch 1), loglikelihoods as its class computes them.

Example:
    >>> is_llava_next_checkpoint({"architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": "x"})
    True
"""

from __future__ import annotations

import re
import time
from typing import Any, Sequence

from lmms_nb.models._llava_next_convert import (
    read_json_config,
    build_model,
    is_llava_next_checkpoint,
    local_folder,
    read_checkpoint_config,
)
from lmms_nb.models._llava_next_images import (
    CONV_TEMPLATES,
    DEFAULT_IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
    pack_image_features,
    process_anyres_image,
    process_padded_image,
    qwen_1_5_prompt,
    tokenizer_image_token,
)
from lmms_nb.models.base import LoglikelihoodRequest, Request, Response, generate_each

__all__ = ["LlavaNextOneVisionModel", "is_llava_next_checkpoint", "read_checkpoint_config"]


def _image_aspect_ratio(config: dict[str, Any], path: Any) -> str:
    """config.json's `image_aspect_ratio` as lmms-eval's class applies it: "pad" when absent, else "pad", "anyres"
    or "anyres_max_N" (LLaVA-NeXT's process_images); another value is one lmms-nb does not implement."""
    aspect = config.get("image_aspect_ratio")
    if aspect is None:
        return "pad"
    if aspect == "pad":
        return aspect
    if aspect == "anyres" or (isinstance(aspect, str) and re.fullmatch(r"anyres_max_\d+", aspect)):
        pinpoints = config.get("image_grid_pinpoints")
        if not isinstance(pinpoints, list) or not all(isinstance(p, list) and len(p) == 2 for p in pinpoints):
            raise ValueError(f"{path}: field 'image_grid_pinpoints' must be a list of [height, width] pairs for "
                             f"image_aspect_ratio {aspect!r} (got {pinpoints!r})")
        return aspect
    raise ValueError(f"{path}: image_aspect_ratio {aspect!r} is not supported by lmms-nb (supported: pad, anyres, "
                     "anyres_max_N)")


def _check_placeholders(prompt: str, images: list, req: Any) -> None:
    if DEFAULT_IMAGE_TOKEN in prompt and not images:
        raise ValueError(f"doc {req.doc_id}: the prompt holds {DEFAULT_IMAGE_TOKEN} but the request has no image")


class LlavaNextOneVisionModel:
    """An original-format LLaVA-OneVision checkpoint with lmms-eval's `llava_onevision` conventions (see module)."""

    def __init__(self, pretrained: str, *, name: str | None = None, device: str = "cpu",
                 conv_template: str = "qwen_1_5", attn_implementation: str | None = "sdpa",
                 use_cache: bool = True, max_new_tokens: int = 1024, revision: str | None = None) -> None:
        import torch
        from transformers import AutoTokenizer, GenerationConfig

        from lmms_nb.models.hf import lmms_eval_model_name

        if conv_template not in CONV_TEMPLATES:
            raise ValueError(f"llava_onevision: conv_template {conv_template!r} is not supported by lmms-nb "
                             f"(supported: {', '.join(CONV_TEMPLATES)})")
        folder = local_folder(pretrained, revision=revision)
        self.config = read_json_config(folder / "config.json")
        self.image_aspect_ratio = _image_aspect_ratio(self.config, folder / "config.json")
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
        self.model = build_model(folder, self.config, dtype=torch.float16, attn_implementation=attn_implementation,
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
        return generate_each(requests, self._generate_one)

    def _image_embeddings(self, images: list) -> list:
        import torch

        inner = self.model.model
        # lmms-eval's class: image_aspect_ratio "pad" (each image one tile of 729 features) for several images or
        # when config.json does not name one; anyres tiles (LLaVA-NeXT's process_images) for anyres / anyres_max_N
        if len(images) > 1 or self.image_aspect_ratio == "pad":
            pixels = torch.stack([process_padded_image(image, self.tile) for image in images])
            hidden = inner.vision_tower(pixels.to(self.device, torch.float16), output_hidden_states=True).hidden_states[-1]
            return list(inner.multi_modal_projector(hidden))
        aspect = self.image_aspect_ratio
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

        from lmms_nb.models._hf_inputs import as_rgb

        out = []
        for req in requests:
            images = [as_rgb(img, req, k) for k, img in enumerate(req.images)]
            _check_placeholders(req.context, images, req)
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

        from lmms_nb.models._hf_inputs import as_rgb

        start = time.perf_counter()
        images = [as_rgb(img, req, k) for k, img in enumerate(req.images)]
        _check_placeholders(req.prompt, images, req)
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
