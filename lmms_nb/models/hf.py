"""`HFImageTextModel`: any transformers image-text-to-text model (LLaVA, Qwen2/2.5-VL, Idefics3/SmolVLM, ...)
behind the `Model` protocol.

Registered as "hf" and "transformers". Loads `AutoProcessor` + `AutoModelForImageTextToText`, builds each prompt
with the processor's chat template (image placeholders first, then the text, as lmms-eval's llava_hf backend),
pads on the left, and decodes only the new tokens. Greedy decoding gives the same answers at any batch size.
Tested on tiny LLaVA, Qwen2-VL, Qwen2.5-VL and Idefics3 models built offline (`lmms_nb.models.tiny`), on CPU
and once on a CUDA GPU (device="cuda" and device_map="auto"; float32 and bfloat16).

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from lmms_nb.models import Request, get_model
    >>> from lmms_nb.models.tiny import build_tiny_llava
    >>> path = build_tiny_llava(tempfile.mkdtemp(), vocab_texts=["How many circles?", "3"])
    >>> model = get_model("hf", pretrained=path, max_new_tokens=4)
    >>> [r] = model.generate([Request(doc_id=0, task="t", images=[Image.new("RGB", (64, 64))], prompt="How many?")])
    >>> r.error is None and isinstance(r.text, str) and r.output_tokens <= 4
    True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmms_nb.models._hf_inputs import (
    apply_until,
    as_rgb,
    count_until_special,
    describe_failure,
    generation_config,
    lmms_eval_model_name,
    stop_token_ids,
)
from lmms_nb.models._hf_prompt import chat_prompt
from lmms_nb.models._hf_style import ChatStyle
from lmms_nb.models._hf_video import default_video_loader, load_request_videos, video_processor_kwargs, visual_kinds
from lmms_nb.models import _patch_embed, _vision_attention
from lmms_nb.models._fast_path_verdicts import VerdictStore
from lmms_nb.models._hf_malloc import keep_freed_memory
from lmms_nb.models._patch_embed import speed_up_patch_embeddings
from lmms_nb.models._qwen_pixels import patch_into_one_tensor, patchify_in_model_dtype
from lmms_nb.models._qwen_text import processor_inputs
from lmms_nb.models._vision_attention import speed_up_vision_attention
from lmms_nb.models.base import LoglikelihoodRequest, Request, Response
from lmms_nb.models.registry import register_model

__all__ = ["HFImageTextModel", "apply_until", "lmms_eval_model_name"]

log = logging.getLogger(__name__)

_DTYPES = ("float32", "bfloat16", "float16", "auto")


class HFImageTextModel:
    """A transformers vision-language model. See the module docstring for an example.

    Args:
        pretrained: a hub id or a local folder holding a model and its processor.
        name: the name in logs (default: lmms-eval's, the last two parts of `pretrained`, e.g. "org/model").
        device: where to put the model when `device_map` is not given ("cpu", "cuda", "cuda:1", ...).
        dtype: "float32" (default; bit-stable results), "bfloat16", "float16" or "auto" (the checkpoint's).
        device_map: passed to `from_pretrained` (e.g. "auto" to shard a large model); overrides `device`.
        batch_size: at most this many requests go through the model at once (default: each list given to
            `generate`, i.e. the runner's batch, is one model batch).
        max_new_tokens: the default when a request's generation kwargs do not set it.
        trust_remote_code: passed to `from_pretrained`.
        attn_implementation: e.g. "eager" or "sdpa"; default: transformers' choice.
        revision: the hub revision (branch, tag or commit) to load.
        use_cache: passed to `generate` (the KV cache; answers are the same either way).
        processor_kwargs: passed to `AutoProcessor.from_pretrained` (e.g. Qwen's min_pixels / max_pixels).
        style: prompt and answer conventions (`ChatStyle`); lmms-eval's model names set their class's.
    """

    def __init__(
        self,
        pretrained: str | Path,
        *,
        name: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        device_map: str | dict | None = None,
        batch_size: int | None = None,
        max_new_tokens: int = 32,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        revision: str | None = None,
        use_cache: bool = True,
        processor_kwargs: dict[str, Any] | None = None,
        style: ChatStyle | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pretrained = str(pretrained)
        self.name = name or lmms_eval_model_name(self.pretrained)
        self.batch_size = batch_size
        self.max_new_tokens = int(max_new_tokens)
        self.style = style or ChatStyle()
        self.use_cache = bool(use_cache)
        self.model_args: dict[str, Any] = {
            "pretrained": self.pretrained,
            "dtype": dtype,
            "device": device if device_map is None else f"device_map={device_map}",
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
        }
        hub = {"revision": revision} if revision else {}
        self.processor = AutoProcessor.from_pretrained(self.pretrained, trust_remote_code=trust_remote_code, **hub,
                                                       **(processor_kwargs or {}))
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        # Left padding: every prompt then ends at the last column, so generated tokens line up across the batch.
        # Batch invariance of greedy answers (tested at batch 1 vs 8): generate() masks the pads and derives
        # position_ids from the attention mask (cumsum), so a padded prompt sees the same positions as alone;
        # what remains is float rounding from differently shaped matmuls, measured at ~2e-7 on the logits of
        # the tiny LLaVA in float32 (sdpa and eager alike). Hence float32 by default: bfloat16 keeps only ~3
        # significant digits, so the same rounding is far larger there and can flip near-ties between tokens.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        load_kwargs: dict[str, Any] = {
            "dtype": getattr(torch, dtype) if dtype != "auto" else "auto",
            "trust_remote_code": trust_remote_code,
            **hub,
        }
        if device_map is not None:
            load_kwargs["device_map"] = device_map
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        self.model = AutoModelForImageTextToText.from_pretrained(self.pretrained, **load_kwargs)
        if device_map is None:
            self.model.to(device)
        self.model.eval()
        # Qwen's conv3d and per-window SDPA calls on CPU, faster with the same numbers (checked at run time; the
        # verdicts kept under the cache dir for the next process: _fast_path_verdicts)
        speed_up_patch_embeddings(self.model, VerdictStore.in_cache("patch_embed", _patch_embed.__file__))
        speed_up_vision_attention(self.model, VerdictStore.in_cache("vision_attention", _vision_attention.__file__))
        # Qwen's image processor copies pixels in float32 that the model then takes in its dtype: cast them first
        patchify_in_model_dtype(getattr(self.processor, "image_processor", None), self.model.dtype)
        patch_into_one_tensor(getattr(self.processor, "image_processor", None))  # no concatenation copy
        self.device = self.model.device
        if self.device.type == "cpu":  # its forward passes then reuse freed memory instead of faulting in new pages
            keep_freed_memory()
        # video paths become frames as the family's lmms-eval class makes them; None: the model takes no video
        # (no loader for its family, or a processor without a video processor, e.g. LLaVA-1.5 under llava_hf)
        loader = self.style.video_loader or default_video_loader(getattr(self.model.config, "model_type", None))
        self.video_loader = loader if getattr(self.processor, "video_processor", None) is not None else None

    @property
    def accepts_video(self) -> bool:
        """Whether this model takes video files (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision); the runner refuses a
        video task before generating for a model that does not."""
        return self.video_loader is not None

    def __repr__(self) -> str:
        return f"HFImageTextModel(name={self.name!r}, pretrained={self.pretrained!r})"

    # -- the Model protocol ------------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order; a failing request gets `error` set, the others still run."""
        responses: list[Response | None] = [None] * len(requests)
        # Requests with different generation kwargs (or with and without images) cannot share a generate() call.
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(self._group_key(req), []).append(i)
        for indices in groups.values():
            step = self.batch_size or len(indices)
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                for i, resp in zip(chunk, self._generate_or_isolate([requests[i] for i in chunk])):
                    responses[i] = resp
        return responses  # type: ignore[return-value]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, bool]]:
        """``(loss, is_greedy)`` per request: lmms-eval's answer to a loglikelihood request (multiple_choice).

        As lmms-eval's transformers backends: the context goes through the chat template as the user turn (with
        the generation prompt), the continuation follows it; loss = the mean negative log-likelihood of the
        continuation's tokens (transformers' own loss with the context's labels masked), is_greedy = greedy
        decoding would give exactly those tokens. One forward pass per request; raises on a bad request (the
        runner records it on that doc).
        """
        import torch

        out = []
        for req in requests:
            context = self._prompt(Request(doc_id=req.doc_id, task=req.task, images=req.images, prompt=req.context))
            images = [as_rgb(img, req, k) for k, img in enumerate(req.images)] or None  # type: ignore[arg-type]
            n_context = self.processor(text=[context], images=images, return_tensors="pt")["input_ids"].shape[1]
            inputs = self.processor(text=[context + req.continuation], images=images,
                                    return_tensors="pt").to(self.model.device)
            if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            ids = inputs["input_ids"]
            if ids.shape[1] <= n_context:
                raise ValueError(f"doc {req.doc_id}: the continuation {req.continuation!r} adds no tokens")
            labels = ids.clone()
            labels[:, :n_context] = -100
            with torch.inference_mode():
                output = self.model(**inputs, labels=labels)
            greedy = output.logits[0, n_context - 1:-1].argmax(-1)
            out.append((float(output.loss), bool((greedy == ids[0, n_context:]).all())))
        return out

    # -- internals ---------------------------------------------------------------------------------------------

    @staticmethod
    def _group_key(req: Request) -> tuple:
        kwargs = tuple(sorted((k, repr(v)) for k, v in (req.generation_kwargs or {}).items()))
        kinds = visual_kinds(req)
        return (kwargs, "image" in kinds, "video" in kinds)

    def _generate_or_isolate(self, batch: list[Request]) -> list[Response]:
        try:
            return self._generate_batch(batch)
        except Exception as e:  # noqa: BLE001 - a bad sample must not stop the run
            if len(batch) == 1:
                return [Response(text=None, error=describe_failure(batch[0], e))]
            log.warning("batch of %d failed (%s); retrying one request at a time", len(batch), e)
            return [self._generate_or_isolate([req])[0] for req in batch]

    @property
    def accepts_messages(self) -> bool:
        """lmms-eval's chat classes (llava_hf, qwen2_5_vl, qwen3_vl: images first) get a task's doc_to_messages."""
        return self.style.images == "first"

    def _prompt(self, req: Request) -> str:
        return chat_prompt(self.processor, self.style, req)

    def _generation_config(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return generation_config(kwargs, max_new_tokens=self.max_new_tokens, tokenizer=self.tokenizer,
                                 use_cache=self.use_cache, style=self.style)

    def _stop_token_ids(self) -> set[int]:
        return stop_token_ids(self.tokenizer, self.model.generation_config, self.style)

    def _generate_batch(self, batch: list[Request]) -> list[Response]:
        import torch

        start = time.perf_counter()
        texts = [self._prompt(req) for req in batch]
        images = [as_rgb(img, req, k, self.style.image_transform) for req in batch
                  for k, (img, kind) in enumerate(zip(req.images, visual_kinds(req))) if kind == "image"]
        videos = [video for req in batch for video in load_request_videos(req, self.video_loader)]
        video_kwargs: dict[str, Any] = {}
        if videos:
            video_kwargs["videos"] = [frames for frames, _ in videos]
            if any(metadata is not None for _, metadata in videos):  # Qwen2.5-VL: lmms-eval passes the metadata
                video_kwargs["video_metadata"] = [metadata for _, metadata in videos]
            video_kwargs.update(video_processor_kwargs(getattr(self.model.config, "model_type", None)))
        if images:
            video_kwargs.update(self.style.image_processor_kwargs)
        # Qwen: the prompts tokenized with one pad token per image, the pad runs put in as ids (same inputs)
        inputs = processor_inputs(
            self.processor, text=texts, images=images or None, padding=True, return_tensors="pt", **video_kwargs
        ).to(self.model.device)
        for key in ("pixel_values", "pixel_values_videos"):
            if key in inputs and inputs[key].is_floating_point():
                inputs[key] = inputs[key].to(self.model.dtype)
        gen_kwargs = batch[0].generation_kwargs or {}
        with torch.inference_mode():
            out = self.model.generate(**inputs, **self._generation_config(gen_kwargs))
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        elapsed = time.perf_counter() - start
        special = self._stop_token_ids()
        responses = []
        for req, row in zip(batch, new_tokens.tolist()):
            n_out = count_until_special(row, special)
            decode_kwargs = {}
            if self.style.clean_up_tokenization_spaces is not None:
                decode_kwargs["clean_up_tokenization_spaces"] = self.style.clean_up_tokenization_spaces
            text = self.tokenizer.decode(row[:n_out], skip_special_tokens=True, **decode_kwargs)
            if self.style.apply_until:
                text = apply_until(text, (req.generation_kwargs or {}).get("until"))
            responses.append(
                Response(
                    # not stripped (unless the style says so): lmms-eval hands the decoded text to its filters as
                    # it is (" A"), and anchored filter regexes must see the same string to give the same scores
                    text=text.strip() if self.style.strip else text,
                    latency_s=elapsed / len(batch),
                    output_tokens=n_out,
                )
            )
        return responses


register_model("hf", HFImageTextModel)
register_model("transformers", HFImageTextModel)
