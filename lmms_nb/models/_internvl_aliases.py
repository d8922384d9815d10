"""lmms-eval 0.7.3's `internvl2`, `internvl3` and `internvl3_5` names: their model args and defaults, over
`lmms_nb.models._internvl_chat` (OpenGVLab's original-format checkpoints converted in memory). Registered, with the
other names, by `lmms_nb.models.lmms_eval_aliases`.

Example:
    >>> import inspect
    >>> list(inspect.signature(internvl3).parameters)[:3]
    ['pretrained', 'modality', 'device']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmms_nb.models._internvl_chat import InternVLChatOriginalModel

__all__ = ["internvl2", "internvl3", "internvl3_5"]


def _default_device() -> str:
    # lmms-eval's classes default to "cuda:0"; on a machine without one that default can only fail
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _one_device(family: str, device: str | None, device_map: Any) -> str:
    """The one device the whole model goes to: `device`, or `device_map` when it names a single device, or the
    default. `device_map="auto"` (lmms-eval's "shard over the GPUs") does NOT shard here: the whole model goes to
    `device`; any other map (a dict, "balanced", ...) is refused.

    >>> _one_device("internvl3", "cpu", "auto"), _one_device("internvl3", None, "cpu"), _one_device("x", None, 0)
    ('cpu', 'cpu', 'cuda:0')
    """
    import torch

    if device_map in (None, "", "auto"):
        return device or _default_device()
    try:
        mapped = torch.device(device_map) if isinstance(device_map, (str, int)) else None
    except (RuntimeError, ValueError):
        mapped = None
    if mapped is None:
        raise ValueError(f"{family}: device_map={device_map!r} is not supported by lmms-nb, which puts the whole "
                         "model on one device: pass device_map=auto (the whole model on `device`) or one device "
                         "(e.g. device_map=cuda:0 or cpu)")
    if device is not None:
        given = torch.device(device)
        if given.type != mapped.type or None not in (given.index, mapped.index) and given.index != mapped.index:
            raise ValueError(f"{family}: device={device!r} and device_map={device_map!r} name different devices")
    return device or str(mapped)


def _internvl_chat(family: str, pretrained: str, *, modality: str, device: str | None, device_map: Any,
                   batch_size: int | str, revision: str | None, max_new_tokens: int, name: str | None,
                   recorded: dict[str, Any], **limits: int) -> InternVLChatOriginalModel:
    from lmms_nb.models._internvl_chat import InternVLChatOriginalModel, is_internvl_chat_checkpoint
    from lmms_nb.models._llava_next_convert import read_checkpoint_config

    device = _one_device(family, device, device_map)
    if int(batch_size) != 1:
        raise ValueError(f"{family}: batch_size must be 1, as in lmms-eval's class (got {batch_size})")
    if modality != "image":
        raise ValueError(f"{family}: modality={modality!r} is not supported by lmms-nb (only 'image')")
    if not is_internvl_chat_checkpoint(read_checkpoint_config(pretrained, revision=revision)):
        raise ValueError(f"{family}: {pretrained!r} is not an original-format InternVL checkpoint (config.json "
                         "without InternVLChatModel / llm_config); an HF-format one (InternVL3-*-hf) is "
                         "lmms-eval's `internvl_hf`")
    model = InternVLChatOriginalModel(pretrained, family="internvl2" if family == "internvl2" else "internvl3",
                                      name=name, device=device, revision=revision,
                                      max_new_tokens=max_new_tokens, **limits)
    model.model_args.update({"device_map": device_map or None, **{k: v for k, v in recorded.items() if v is not None}})
    return model


def internvl3(pretrained: str = "OpenGVLab/InternVL3-8B", modality: str = "image", device: str | None = None,
              device_map: str | None = None, batch_size: int | str = 1, num_frame: int = 32, max_num: int = 12,
              total_max_num: int = 64, use_flash_attn: bool = True, trust_remote_code: bool = True,
              revision: str | None = None, max_new_tokens: int = 1024, name: str | None = None):
    """lmms-eval's `internvl3` (OpenGVLab's remote code on an original-format checkpoint: InternVL2.5 / 3 / 3.5 with
    a Qwen2, Qwen3 or InternLM2 LLM), converted in memory and run as the class runs it (`lmms_nb.models._internvl_chat`):
    bfloat16, 448 px tiles (at most `min(max_num, total_max_num // n_images)` plus a thumbnail), `<image>` before
    the question unless the text holds one per image, the checkpoint's conversation template, max_new_tokens 1024
    unless the task sets it. `use_flash_attn` and `trust_remote_code` are accepted and change nothing (no remote code
    runs); images only (`modality="image"`). The whole model goes to one device: `device_map="auto"` does not shard
    it over GPUs as lmms-eval's class does, and a map naming several devices is refused.

    Attention: lmms-eval's class runs FlashAttention in InternViT and flash_attention_2 in the LLM whenever
    `flash_attn` is installed (i.e. on GPU); lmms-nb always runs InternViT's naive attention and sdpa in the LLM, so
    on a GPU with flash-attn, answers are not guaranteed bit-identical to lmms-eval's (a different summation order;
    greedy answers can differ where two tokens are nearly tied). Without flash_attn (CPU), the answers equal the
    class's on the tiny checkpoints of `tests/test_vs_lmms_eval_073.py`."""
    return _internvl_chat("internvl3", pretrained, modality=modality, device=device, device_map=device_map,
                          batch_size=batch_size, revision=revision, max_new_tokens=max_new_tokens, name=name,
                          recorded={"num_frame": num_frame, "use_flash_attn": use_flash_attn},
                          max_num=max_num, total_max_num=total_max_num)


def internvl3_5(pretrained: str = "OpenGVLab/InternVL3_5-8B", modality: str = "image", device: str | None = None,
                device_map: str | None = None, batch_size: int | str = 1, num_frame: int = 32, max_num: int = 12,
                total_max_num: int = 64, use_flash_attn: bool = True, trust_remote_code: bool = True,
                revision: str | None = None, max_new_tokens: int = 1024, name: str | None = None):
    """lmms-eval's `internvl3_5`: its `internvl3` class with InternVL3.5's default checkpoint (see `internvl3`)."""
    return internvl3(pretrained, modality=modality, device=device, device_map=device_map, batch_size=batch_size,
                     num_frame=num_frame, max_num=max_num, total_max_num=total_max_num, use_flash_attn=use_flash_attn,
                     trust_remote_code=trust_remote_code, revision=revision, max_new_tokens=max_new_tokens, name=name)


def internvl2(pretrained: str = "OpenGVLab/InternVL2-2B", modality: str = "image", device: str | None = None,
              device_map: str | None = None, batch_size: int | str = 1, num_frame: int = 32,
              num_layers: int | None = None, trust_remote_code: bool = True, revision: str | None = None,
              max_new_tokens: int = 1024, name: str | None = None):
    """lmms-eval's `internvl2` on an original-format checkpoint with a Qwen2, InternLM2, Phi-3 or Llama LLM
    (InternVL2-1B, 2B, 4B, 8B, 26B, 40B, 76B, InternVL2.5-1B...; InternLM2's remote-code tokenizer is lmms-nb's port of it, any other one is
    refused naming tokenizer_config.json's field): as `internvl3` but at most 6 tiles per image whatever their number, and
    `<image>` placeholders always put before the question. InternLM2 / Phi-3 LLMs run their remote code's eager
    attention (the class's without flash-attn)."""
    return _internvl_chat("internvl2", pretrained, modality=modality, device=device, device_map=device_map,
                          batch_size=batch_size, revision=revision, max_new_tokens=max_new_tokens, name=name,
                          recorded={"num_frame": num_frame, "num_layers": num_layers}, max_num=6)

