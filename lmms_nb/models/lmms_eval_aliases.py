"""lmms-eval 0.7.3's model names as lmms-nb models, with the model args, defaults and preprocessing of its classes.

`--model llava_hf --model_args pretrained=DIR,device_map=cpu` means here what it means in lmms-eval: each name is a
factory whose keyword arguments are the class's `__init__` arguments (an unknown one is an error listing them),
building lmms-nb's transformers backend (`HFImageTextModel`) with that class's dtype, processor arguments and
`ChatStyle` (where images go, which EOS stops generation, `until`, stripping, Qwen's smart resize), so that greedy
answers are the ones lmms-eval gives. Names:

- `llava_hf` (also LLaVA-NeXT / LLaVA-OneVision checkpoints in HF format) and `llava_onevision`: an
  original-format checkpoint (LLaVA-NeXT's `LlavaQwenForCausalLM`, as lmms-eval's own class loads with the
  LLaVA-NeXT repository's code) is converted in memory and run with that class's preprocessing and prompt
  (`lmms_nb.models._llava_next`); an HF-format one goes to `llava_hf`;
- `qwen2_5_vl`, `qwen3_vl` (lmms-eval's chat classes: bfloat16, qwen_vl_utils resize with its default bounds, the
  processor built with `min_pixels` / `max_pixels`), `qwen2_vl` (the simple class: system prompt, JPEG round trip,
  resize within `min_pixels` / `max_pixels`, `until`, stripped answers);
- `idefics2`; `internvl_hf` (InternVL3 / 3.5 in HF format); `internvl2`, `internvl3`, `internvl3_5` (OpenGVLab's
  original-format checkpoints with a Qwen2 / Qwen3 LLM, converted in memory and run with those classes' tiling and
  conversation template: `lmms_nb.models._internvl_chat`); `openai` and `openai_compatible` (lmms-nb's
  OpenAI-compatible backend, lmms-eval's argument names).

Video (a task whose doc_to_visual gives file paths) goes to `qwen2_5_vl`, `qwen3_vl`, `qwen2_vl` and `llava_hf` /
`llava_onevision` with a LLaVA-OneVision checkpoint, frames sampled and resized as the lmms-eval class does
(`fps`, `max_num_frames` / `max_frames_num`, `min_pixels` / `max_pixels`; `lmms_nb.models._qwen_video`,
`lmms_nb.video`); other names and checkpoints are refused for video tasks before generation.

Example:
    >>> import inspect
    >>> sorted(inspect.signature(qwen2_5_vl).parameters)[:4]
    ['attn_implementation', 'batch_size', 'device', 'device_map']
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from typing import Any

from lmms_nb.models._hf_style import ChatStyle
from lmms_nb.models._hf_video import llava_onevision_video_loader
from lmms_nb.models._internvl_aliases import internvl2, internvl3, internvl3_5
from lmms_nb.models._qwen_resize import fetch_image, jpeg_round_trip
from lmms_nb.models._qwen_video import qwen2_5_vl_video_loader, qwen2_vl_video_loader, qwen3_vl_video_loader
from lmms_nb.models.registry import register_model

__all__ = ["idefics2", "internvl2", "internvl3", "internvl3_5", "internvl_hf", "llava_hf", "llava_onevision",
           "openai_compatible", "qwen2_5_vl", "qwen2_vl", "qwen3_vl"]

log = logging.getLogger(__name__)

#: lmms-eval's chat classes (llava_hf, qwen2_5_vl, qwen3_vl) send images first, then doc_to_text as it is, stop at
#: the tokenizer's EOS only and return the decoded text without applying `until`
_CHAT = {"images": "first", "stop_at_tokenizer_eos_only": True, "apply_until": False}


def _default_device() -> str:
    # lmms-eval's classes default to "cuda"; on a machine without one that default can only fail, so take the CPU
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(dtype: Any, torch_dtype: Any, default: str) -> str:
    value = torch_dtype if torch_dtype is not None else dtype
    value = default if value is None else str(value)
    return value.removeprefix("torch.")


def _hf(pretrained: str, *, name: str | None, device: str | None, device_map: Any, dtype: str, style: ChatStyle,
        max_new_tokens: int, revision: str | None = None, trust_remote_code: bool = False,
        attn_implementation: str | None = None, use_cache: bool = True,
        processor_kwargs: dict[str, Any] | None = None, chat_template: str | None = None, **recorded: Any):
    from lmms_nb.models.hf import HFImageTextModel

    model = HFImageTextModel(
        pretrained, name=name, device=device or _default_device(), dtype=dtype,
        device_map=device_map or None, max_new_tokens=max_new_tokens, trust_remote_code=trust_remote_code,
        attn_implementation=attn_implementation, revision=revision if revision != "main" else None,
        use_cache=use_cache, processor_kwargs=processor_kwargs, style=style,
    )
    if chat_template is not None:
        model.processor.chat_template = chat_template
    model.model_args.update({k: v for k, v in recorded.items() if v is not None})
    return model


def llava_hf(pretrained: str = "llava-hf/llava-1.5-7b-hf", revision: str = "main", device: str | None = None,
             dtype: str | None = "auto", batch_size: int | str = 1, trust_remote_code: bool = False,
             attn_implementation: str | None = None, device_map: str = "", chat_template: str | None = None,
             use_cache: bool = True, max_frames_num: int = 32, max_new_tokens: int = 1024,
             torch_dtype: str | None = None, name: str | None = None):
    """lmms-eval's `llava_hf` (its chat class): LLaVA, LLaVA-NeXT and LLaVA-OneVision checkpoints in HF format.

    As lmms-eval: the checkpoint's dtype ("auto"), images then text through the processor's chat template,
    generation up to the tokenizer's EOS, max_new_tokens 1024 unless the task sets it; `chat_template` replaces
    the processor's template. Videos (LLaVA-OneVision checkpoints): `max_frames_num` uniform frames, as lmms-eval's
    llava_hf / llava_onevision classes load them."""
    style = ChatStyle(**_CHAT, video_loader=llava_onevision_video_loader(max_frames_num=max_frames_num))
    return _hf(pretrained, name=name, device=device, device_map=device_map,
               dtype=_dtype(dtype, torch_dtype, "auto"), style=style, max_new_tokens=max_new_tokens,
               revision=revision, trust_remote_code=trust_remote_code, attn_implementation=attn_implementation,
               use_cache=use_cache, chat_template=chat_template, max_frames_num=max_frames_num)


def llava_onevision(pretrained: str = "lmms-lab/llava-onevision-qwen2-7b-ov", truncation: bool = True,
                    device: str | None = None, batch_size: int | str = 1, model_name: str | None = None,
                    attn_implementation: str | None = "sdpa", device_map: str = "", conv_template: str = "qwen_1_5",
                    use_cache: bool = True, truncate_context: bool = False, customized_config: str | None = None,
                    max_frames_num: int = 32, mm_spatial_pool_stride: int = 2, mm_spatial_pool_mode: str = "bilinear",
                    token_strategy: str = "single", video_decode_backend: str = "decord",
                    dtype: str | None = None, torch_dtype: str | None = None, revision: str = "main",
                    trust_remote_code: bool = False, chat_template: str | None = None, max_new_tokens: int = 1024,
                    name: str | None = None):
    """lmms-eval's `llava_onevision`. An original-format checkpoint (config.json with `LlavaQwenForCausalLM` /
    `mm_vision_tower`, e.g. lmms-lab/llava-onevision-qwen2-0.5b-ov) runs as lmms-eval's class runs it with the
    LLaVA-NeXT repository: float16, the config's image_aspect_ratio (anyres / anyres_max_N tiles; "pad", one square
    tile per image, when it names none or for several images), the `qwen_1_5` conversation template with `<image>`
    before the question, one request at a time, answers stripped, loglikelihoods as its class computes them (its
    video path is not implemented). A hub id not cached is told apart by fetching only its config.json. An
    HF-format checkpoint goes to `llava_hf` (dtype, chat_template, revision... apply there)."""
    from lmms_nb.models._llava_next import LlavaNextOneVisionModel, is_llava_next_checkpoint, read_checkpoint_config

    if not is_llava_next_checkpoint(read_checkpoint_config(pretrained, revision=revision)):
        return llava_hf(pretrained, revision=revision, device=device, dtype=dtype if dtype is not None else "auto",
                        batch_size=batch_size, trust_remote_code=trust_remote_code,
                        attn_implementation=attn_implementation if attn_implementation != "sdpa" else None,
                        device_map=device_map, chat_template=chat_template, use_cache=use_cache,
                        max_frames_num=max_frames_num, max_new_tokens=max_new_tokens, torch_dtype=torch_dtype,
                        name=name)
    if int(batch_size) != 1:
        raise ValueError(f"llava_onevision: batch_size must be 1, as in lmms-eval's class (got {batch_size})")
    unsupported = {"customized_config": customized_config, "dtype": dtype, "torch_dtype": torch_dtype,
                   "chat_template": chat_template, "trust_remote_code": trust_remote_code or None}
    given = sorted(k for k, v in unsupported.items() if v is not None)
    if given:
        raise ValueError(f"llava_onevision: {', '.join(given)} not supported for an original-format checkpoint "
                         "(lmms-eval's class loads it in float16 with LLaVA-NeXT's own code)")
    model = LlavaNextOneVisionModel(pretrained, name=name, device=device or _default_device(), revision=revision,
                                    conv_template=conv_template, attn_implementation=attn_implementation,
                                    use_cache=use_cache, max_new_tokens=max_new_tokens)
    model.model_args.update(device_map=device_map or None, max_frames_num=max_frames_num)
    return model


def _qwen_chat(pretrained: str, *, image_patch_size: int, device: str | None, device_map: str | None,
               min_pixels: int, max_pixels: int, max_new_tokens: int, dtype: str | None, torch_dtype: str | None,
               system_prompt: str | None, name: str | None, video_loader: Any = None,
               image_processor_kwargs: tuple[tuple[str, Any], ...] = (), **rest: Any):
    if system_prompt not in (None, "You are a helpful assistant."):
        log.warning("system_prompt=%r is ignored, as lmms-eval's chat class ignores it (the chat template's "
                    "default system message applies)", system_prompt)
    # qwen_vl_utils resizes images within its own default bounds (lmms-eval passes min/max_pixels to videos
    # only); the processor, built with min_pixels / max_pixels, resizes again unless told not to (qwen3_vl)
    style = ChatStyle(**_CHAT, clean_up_tokenization_spaces=False, video_loader=video_loader,
                      image_transform=functools.partial(fetch_image, image_patch_size=image_patch_size),
                      image_processor_kwargs=image_processor_kwargs)
    return _hf(pretrained, name=name, device=device, device_map=device_map or device,
               dtype=_dtype(dtype, torch_dtype, "bfloat16"), style=style, max_new_tokens=max_new_tokens,
               processor_kwargs={"min_pixels": min_pixels, "max_pixels": max_pixels}, **rest)


def qwen2_5_vl(pretrained: str = "Qwen/Qwen2.5-VL-3B-Instruct", device: str | None = None,
               device_map: str | None = "auto", batch_size: int | str = 1, use_cache: bool = True,
               attn_implementation: str | None = None, min_pixels: int = 256 * 28 * 28, max_pixels: int = 1605632,
               max_num_frames: int = 32, fps: float | None = None,
               system_prompt: str | None = "You are a helpful assistant.", interleave_visuals: bool = False,
               reasoning_prompt: str | None = None, max_new_tokens: int = 128, dtype: str | None = None,
               torch_dtype: str | None = None, revision: str | None = None, trust_remote_code: bool = False,
               name: str | None = None):
    """lmms-eval's `qwen2_5_vl` (its chat class): bfloat16, qwen_vl_utils resize (factor 28), the processor built
    with `min_pixels` / `max_pixels`, max_new_tokens 128 unless the task sets it. `dtype` is lmms-nb's addition
    (lmms-eval always loads bfloat16). Videos: `fps` frames per second if set, else `max_num_frames` (at most
    the video's, even), each frame resized within `min_pixels` / `max_pixels` (qwen_vl_utils' fetch_video)."""
    loader = qwen2_5_vl_video_loader(max_num_frames=max_num_frames, fps=fps, min_pixels=min_pixels,
                                     max_pixels=max_pixels)
    return _qwen_chat(pretrained, image_patch_size=14, device=device, device_map=device_map, min_pixels=min_pixels,
                      max_pixels=max_pixels, max_new_tokens=max_new_tokens, dtype=dtype, torch_dtype=torch_dtype,
                      system_prompt=system_prompt, name=name, video_loader=loader, use_cache=use_cache,
                      attn_implementation=attn_implementation, revision=revision,
                      trust_remote_code=trust_remote_code, max_num_frames=max_num_frames, fps=fps)


def qwen3_vl(pretrained: str = "Qwen/Qwen3-VL-4B-Instruct", device: str | None = None,
             device_map: str | None = "auto", batch_size: int | str = 1, use_cache: bool = True,
             attn_implementation: str | None = None, min_pixels: int = 256 * 28 * 28, max_pixels: int = 1605632,
             total_pixels: int | None = None, max_num_frames: int = 32, fps: float | None = None,
             system_prompt: str | None = "You are a helpful assistant.", interleave_visuals: bool = False,
             enable_thinking: bool | None = None, reasoning_prompt: str | None = None, max_new_tokens: int = 128,
             dtype: str | None = None, torch_dtype: str | None = None, revision: str | None = None,
             trust_remote_code: bool = False, name: str | None = None):
    """lmms-eval's `qwen3_vl` (its chat class): as `qwen2_5_vl` with Qwen3-VL's 16 px patches (resize factor 32),
    images kept at qwen_vl_utils' size (the processor is called with `do_resize=False`, as lmms-eval does).
    Videos: `fps` frames per second if set (at most `max_num_frames`), else `max_num_frames` (at most the video's),
    within `min_pixels` and `max_pixels` or `total_pixels`, passed to the processor unsampled and unresized."""
    loader = qwen3_vl_video_loader(max_num_frames=max_num_frames, fps=fps, total_pixels=total_pixels,
                                   min_pixels=min_pixels, max_pixels=max_pixels)
    # lmms-eval calls the processor with do_resize=False: images keep qwen_vl_utils' size (factor 32)
    return _qwen_chat(pretrained, image_patch_size=16, device=device, device_map=device_map, min_pixels=min_pixels,
                      max_pixels=max_pixels, max_new_tokens=max_new_tokens, dtype=dtype, torch_dtype=torch_dtype,
                      system_prompt=system_prompt, name=name, video_loader=loader,
                      image_processor_kwargs=(("do_resize", False),), use_cache=use_cache,
                      attn_implementation=attn_implementation, revision=revision,
                      trust_remote_code=trust_remote_code, max_num_frames=max_num_frames, fps=fps)


def qwen2_vl(pretrained: str = "Qwen/Qwen2-VL-7B-Instruct", device: str | None = None,
             device_map: str | None = None, batch_size: int | str = 1, use_cache: bool = True,
             use_flash_attention_2: bool = False, max_length: int = 2048, max_pixels: int = 602112,
             min_pixels: int = 3136, max_num_frames: int = 32,
             system_prompt: str | None = "You are a helpful assistant.", interleave_visuals: bool = False,
             reasoning_prompt: str | None = None, max_new_tokens: int = 128, dtype: str | None = None,
             torch_dtype: str | None = None, attn_implementation: str | None = None, revision: str | None = None,
             trust_remote_code: bool = False, name: str | None = None):
    """lmms-eval's `qwen2_vl` (a simple class): the checkpoint's dtype, a system message, "<image>" removed from
    the text and images first, each image sent as a JPEG (quality 85) and resized within min/max_pixels, answers
    cut at `until` (default: the EOS text) and stripped. Videos: qwen_vl_utils' 2 frames per second within
    `min_pixels` / `max_pixels`, then at most `max_num_frames` of them."""
    if reasoning_prompt or interleave_visuals:
        raise ValueError("qwen2_vl: reasoning_prompt and interleave_visuals are not supported by lmms-nb")

    def transform(image: Any) -> Any:
        return fetch_image(jpeg_round_trip(image), min_pixels=min_pixels, max_pixels=max_pixels)

    style = ChatStyle(images="first_no_placeholder", system_prompt=system_prompt, image_transform=transform,
                      stop_at_tokenizer_eos_only=True, apply_until=True, strip=True,
                      clean_up_tokenization_spaces=False,
                      video_loader=qwen2_vl_video_loader(max_num_frames=max_num_frames, min_pixels=min_pixels,
                                                         max_pixels=max_pixels))
    return _hf(pretrained, name=name, device=device, device_map=device_map or device,
               dtype=_dtype(dtype, torch_dtype, "auto"), style=style, max_new_tokens=max_new_tokens,
               processor_kwargs={"min_pixels": min_pixels, "max_pixels": max_pixels}, use_cache=use_cache,
               attn_implementation="flash_attention_2" if use_flash_attention_2 else attn_implementation,
               revision=revision, trust_remote_code=trust_remote_code, max_num_frames=max_num_frames)


def idefics2(pretrained: str = "HuggingFaceM4/idefics2-8b", revision: str = "main", device: str | None = None,
             dtype: str | None = "float16", batch_size: int | str = 1, trust_remote_code: bool = False,
             attn_implementation: str | None = None, device_map: str = "", use_cache: bool = True,
             do_image_splitting: bool = False, max_frames_num: int = 16, max_new_tokens: int = 1024,
             torch_dtype: str | None = None, name: str | None = None):
    """lmms-eval's `idefics2`: float16, images first unless the text has "<image>", no `until`."""
    return _hf(pretrained, name=name, device=device, device_map=device_map,
               dtype=_dtype(dtype, torch_dtype, "float16"), style=ChatStyle(apply_until=False),
               max_new_tokens=max_new_tokens, revision=revision, trust_remote_code=trust_remote_code,
               attn_implementation=attn_implementation, use_cache=use_cache,
               processor_kwargs={"do_image_splitting": do_image_splitting}, max_frames_num=max_frames_num)


def internvl_hf(pretrained: str = "OpenGVLab/InternVL3_5-8B-HF", revision: str = "main", device: str | None = None,
                device_map: str | None = "auto", batch_size: int | str = 1, min_patches: int = 1, max_patches: int = 12,
                num_frames: int = 32, fps: float | None = None, trust_remote_code: bool = False,
                low_cpu_mem_usage: bool = False, attn_implementation: str | None = None, use_cache: bool = True,
                max_new_tokens: int = 1024, dtype: str | None = None, torch_dtype: str | None = None,
                name: str | None = None):
    """lmms-eval's `internvl_hf` (its chat class for InternVL3 / InternVL3.5 checkpoints in HF format,
    `InternVLForConditionalGeneration`): bfloat16, images then text through the chat template, the image processor
    tiling between `min_patches` and `max_patches`, generation up to the tokenizer's EOS, max_new_tokens 1024
    unless the task sets it. lmms-eval's `internvl2` / `internvl3` / `internvl3_5` classes load OpenGVLab's
    original-format checkpoints instead (the aliases of the same names)."""
    if int(batch_size) != 1:
        raise ValueError(f"internvl_hf: batch_size must be 1, as in lmms-eval's class (got {batch_size})")
    return _hf(pretrained, name=name, device=device, device_map=device_map or device,
               dtype=_dtype(dtype, torch_dtype, "bfloat16"),
               style=ChatStyle(**_CHAT, clean_up_tokenization_spaces=False), max_new_tokens=max_new_tokens,
               revision=revision, trust_remote_code=trust_remote_code, attn_implementation=attn_implementation, use_cache=use_cache,
               processor_kwargs={"min_patches": min_patches, "max_patches": max_patches},
               num_frames=num_frames, fps=fps, low_cpu_mem_usage=low_cpu_mem_usage or None)


def openai_compatible(model_version: str = "grok-2-latest", model: str | None = None, base_url: str | None = None,
                      api_key: str | None = None, timeout: float = 10, max_retries: int = 5,
                      num_concurrent: int = 32, batch_size: int | str = 64, max_frames_num: int = 10,
                      max_size_in_mb: int = 20, azure_openai: bool = False, httpx_trust_env: bool = True,
                      video_fps: float | None = None, name: str | None = None, *, api_key_env: str | None = None,
                      concurrency: int | None = None, timeout_s: float | None = None, use_cache: bool = True,
                      cache_dir: str | None = None, system_prompt: str | None = None,
                      extra_body: dict[str, Any] | None = None):
    """lmms-eval's `openai` / `openai_compatible` over lmms-nb's OpenAI-compatible backend: lmms-eval's argument
    names (model_version or model, base_url, api_key, timeout, max_retries, num_concurrent), with the key and base
    URL falling back to OPENAI_API_KEY and OPENAI_API_BASE as lmms-eval reads them; the backend's own names
    (api_key_env, concurrency, timeout_s, use_cache, cache_dir, system_prompt, extra_body) work too."""
    from lmms_nb.models.openai_compat import OpenAIChatModel

    if azure_openai:
        raise ValueError("openai: azure_openai=True is not supported by lmms-nb")
    key_env = api_key_env or "OPENAI_API_KEY"
    if api_key:
        # the backend reads its key from the environment, so the key never lands in recorded args; one variable
        # per key (named by a short hash of it), so two models with different keys never read each other's
        key_env = "LMMS_NB_OPENAI_API_KEY_" + hashlib.sha256(str(api_key).encode()).hexdigest()[:8].upper()
        os.environ[key_env] = str(api_key)
    return OpenAIChatModel(model or model_version,
                           base_url=base_url or os.environ.get("OPENAI_API_BASE") or "https://api.openai.com/v1",
                           api_key_env=key_env, concurrency=int(concurrency or num_concurrent),
                           max_retries=int(max_retries), timeout_s=float(timeout_s or timeout), name=name,
                           use_cache=use_cache, cache_dir=cache_dir, system_prompt=system_prompt,
                           extra_body=extra_body)


for _name, _factory in {"llava_hf": llava_hf, "llava_onevision": llava_onevision, "qwen2_5_vl": qwen2_5_vl,
                        "qwen3_vl": qwen3_vl, "qwen2_vl": qwen2_vl, "idefics2": idefics2, "internvl_hf": internvl_hf,
                        "internvl2": internvl2, "internvl3": internvl3, "internvl3_5": internvl3_5,
                        "openai": openai_compatible, "openai_compatible": openai_compatible}.items():
    register_model(_name, _factory)
