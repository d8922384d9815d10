"""Qwen vision attention on CPU with one `scaled_dot_product_attention` call per run of equal-length chunks instead
of one per chunk, giving bit for bit the numbers of transformers' loop, or left alone.

Without flash-attention, the vision towers of Qwen2-VL, Qwen2.5-VL and Qwen3-VL split the packed sequence at
`cu_seqlens` and call SDPA once per chunk: once per image for full attention, once per window (Qwen2.5-VL: a 112 px
window, 16 or 64 tokens) for window attention, i.e. hundreds of calls per batch of images, each a few dozen
microseconds of overhead around little work. Consecutive chunks of one length are slices of the same tensor, so
they can go through SDPA as one batch of shape (chunks, heads, length, head_dim) taken as a strided view, with no
copy going in. On CPU, SDPA's kernel usually splits each (batch row, head) into the same query and key blocks
whatever the batch size, so every output is the same sum in the same order: measured identical at the tiny models'
shapes and at Qwen2.5-VL-3B's (16 heads of 80, windows of 64 tokens, full attention over 1024), bfloat16 and
float32, 1.3-3x faster; but not always (below), hence the check.

Not trusted blindly, as `_patch_embed`: the batched form is used for a run of `count` chunks of one `length` only
after the first call with that exact (length, count) (per torch thread count, dtype, heads and head size) computed
transformers' own forward and the batched one on its real input AND both SDPA forms on seeded random tensors of the
same shape, and found them equal; that call returns transformers' result. The count is part of the key because it is
the batch size of the batched call, and PyTorch's CPU flash-attention kernel picks its GEMM packing from the batch
size, the thread count and the work per thread: with 20 threads, bfloat16 and 16 heads of 80 over 64-token windows,
runs of 3, 4, 5 and 7 windows rounded differently from one window at a time while runs of 2 matched (with AMX).
Elsewhere (eager or flash attention, training, another device, unknown arguments) transformers' forward runs
unchanged. The batched forward also applies the rotary embedding to query and key in one pass (`_rotary_query_key`:
the same float32 roundings as transformers' function, where that function is the known source, else its own).
Given a `VerdictStore` (lmms-nb's HF backend gives one under its cache dir), each (length, count) verdict is kept on
disk, keyed by the above plus the attention class, and a later process with the same environment takes it from there
instead of checking again (`_fast_path_verdicts`).

Example:
    >>> import torch
    >>> from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    >>> config = Qwen2_5_VLConfig(vision_config={"depth": 1, "hidden_size": 32, "num_heads": 2, "out_hidden_size": 32,
    ...                           "intermediate_size": 64, "fullatt_block_indexes": []},
    ...                           text_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    ...                                        "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 64,
    ...                                        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 1, 1]}})
    >>> model = Qwen2_5_VLForConditionalGeneration(config).eval()
    >>> speed_up_vision_attention(model)
    1
"""

from __future__ import annotations

import functools
import logging
import sys
import types
from typing import Any

from lmms_nb.models._fast_path_verdicts import forget_if_switched, kernel_settings

__all__ = ["speed_up_vision_attention"]

log = logging.getLogger(__name__)

#: the vision attention classes whose forward (identical in transformers 5.x for the three) this module reproduces
ATTENTION_CLASSES = ("VisionAttention", "Qwen2_5_VLVisionAttention", "Qwen3VLVisionAttention")


def _runs(lengths: list[int]) -> list[tuple[int, int]]:
    """(length, count) of each run of consecutive equal chunk lengths.

    >>> _runs([16, 16, 16, 8, 16, 16])
    [(16, 3), (8, 1), (16, 2)]
    """
    runs: list[tuple[int, int]] = []
    for length in lengths:
        if runs and runs[-1][0] == length:
            runs[-1] = (length, runs[-1][1] + 1)
        else:
            runs.append((length, 1))
    return runs


def _attention(query: Any, key: Any, value: Any, runs: list[tuple[int, int]], scaling: float,
               batched: set[tuple[int, int]]) -> Any:
    """(1, seq, heads, head_dim): SDPA over each chunk, one call per run whose (length, count) is in `batched`, else
    one call per chunk as transformers' loop (query, key, value: (1, heads, seq, head_dim))."""
    import torch

    sdpa = torch.nn.functional.scaled_dot_product_attention
    heads, head_dim = query.shape[1], query.shape[3]
    outputs, start = [], 0
    for length, count in runs:
        end = start + length * count
        if count > 1 and (length, count) in batched:
            # (1, heads, count * length, d) -> (count, heads, length, d): a strided view, no copy
            q, k, v = (x[0, :, start:end].reshape(heads, count, length, head_dim).transpose(0, 1)
                       for x in (query, key, value))
            out = sdpa(q, k, v, dropout_p=0.0, scale=scaling, is_causal=False)
            outputs.append(out.transpose(1, 2).reshape(1, count * length, heads, head_dim))
        else:
            for chunk in range(start, end, length):
                q, k, v = (x[:, :, chunk:chunk + length] for x in (query, key, value))
                out = sdpa(q, k, v, dropout_p=0.0, scale=scaling, is_causal=False)
                outputs.append(out.transpose(1, 2).contiguous())
        start = end
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)


def _batched_forward(self: Any, hidden_states: Any, runs: list[tuple[int, int]], position_embeddings: Any,
                     batched: set[tuple[int, int]]) -> Any:
    """transformers' vision attention forward (sdpa branch), with `_attention` in place of its per-chunk loop."""
    rotary = sys.modules[type(self).__module__].apply_rotary_pos_emb_vision
    seq_length = hidden_states.shape[0]
    qkv = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1)
    cos, sin = position_embeddings
    if _known_rotary(rotary) and qkv.shape[-1] % 2 == 0:
        query, key = _rotary_query_key(qkv, cos, sin)
        value = qkv[:, 2]
    else:
        query, key, value = qkv.permute(1, 0, 2, 3).unbind(0)
        query, key = rotary(query, key, cos, sin)
    query, key, value = (x.transpose(0, 1).unsqueeze(0) for x in (query, key, value))
    out = _attention(query, key, value, runs, self.scaling, batched)
    return self.proj(out.reshape(seq_length, -1).contiguous())


#: transformers 5's `apply_rotary_pos_emb_vision` and `rotate_half` (the same in Qwen2-VL, Qwen2.5-VL and Qwen3-VL),
#: whose numbers `_rotary_query_key` gives; a family whose functions are not this code keeps its own
_REFERENCE_ROTARY = """
def apply_rotary_pos_emb_vision(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    orig_q_dtype = q.dtype
    orig_k_dtype = k.dtype
    q, k = q.float(), k.float()
    cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    q_embed = q_embed.to(orig_q_dtype)
    k_embed = k_embed.to(orig_k_dtype)
    return q_embed, k_embed


def rotate_half(x):
    \"\"\"Rotates half the hidden dims of the input.\"\"\"
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)
"""


@functools.lru_cache(maxsize=8)
def _known_rotary(rotary: Any) -> bool:
    """Whether a family's `apply_rotary_pos_emb_vision` and its module's `rotate_half` are `_REFERENCE_ROTARY`'s
    source, line for line (their bytecode differs with the Python patch release that compiled the .pyc)."""
    import inspect

    half = getattr(sys.modules.get(getattr(rotary, "__module__", None) or ""), "rotate_half", None)
    try:
        source = inspect.getsource(rotary).strip() + "\n\n\n" + inspect.getsource(half).strip()
    except (OSError, TypeError):
        return False
    return source == _REFERENCE_ROTARY.strip()


def _rotary_query_key(qkv: Any, cos: Any, sin: Any) -> tuple[Any, Any]:
    """`apply_rotary_pos_emb_vision` on the query and key of `qkv` (seq, 3, heads, head_dim) in one pass over both
    and with no `rotate_half` copy: the lower half is x1 * cos - x2 * sin, the upper x2 * cos + x1 * sin, each
    product and sum rounded in float32 as transformers' `(x * cos) + (rotate_half(x) * sin)` rounds it (negating
    is exact, and a + (-b) is a - b), then cast back: the same numbers, ~25% less time. Query and key come back
    contiguous, as transformers' do: the product is written into a (query and key, seq, heads, head_dim) tensor."""
    import torch

    half = qkv.shape[-1] // 2
    x = qkv[:, :2].permute(1, 0, 2, 3).float()  # (query and key, seq, heads, head_dim): a view (or one copy)
    cos, sin = cos.float()[None, :, None, :], sin.float()[None, :, None, :]
    # an explicit contiguous output: `x * cos` would follow x's permuted strides, and out[0] would be strided
    out = torch.mul(x, cos, out=torch.empty(x.shape, dtype=torch.float32, device=x.device))
    out[..., :half] -= x[..., half:] * sin[..., :half]
    out[..., half:] += x[..., :half] * sin[..., half:]
    out = out.to(qkv.dtype)
    return out[0], out[1]


def _same_on_random(shape: tuple[int, ...], dtype: Any, length: int, count: int, scaling: float) -> bool:
    """Both SDPA forms on seeded random (1, heads, count * length, head_dim) tensors: varied values expose a kernel
    difference that one input could hide."""
    import torch

    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(shape, generator=generator).to(dtype) for _ in range(3))
    runs = [(length, count)]
    return torch.equal(_attention(query, key, value, runs, scaling, {(length, count)}),
                       _attention(query, key, value, runs, scaling, set()))


def _forward(self: Any, hidden_states: Any, cu_seqlens: Any, position_embeddings: Any = None,
             max_seqlen: Any = None, **kwargs: Any) -> Any:
    """The attention's forward: runs of equal chunks batched where checked identical, else transformers' own."""
    import torch

    plain = type(self).forward
    if (self.training or hidden_states.device.type != "cpu" or position_embeddings is None
            or getattr(self.config, "_attn_implementation", None) != "sdpa"
            or any(value not in (None, False) for value in kwargs.values())):
        return plain(self, hidden_states, cu_seqlens=cu_seqlens, position_embeddings=position_embeddings,
                     max_seqlen=max_seqlen, **kwargs)
    runs = _runs((cu_seqlens[1:] - cu_seqlens[:-1]).tolist())
    head_dim = hidden_states.shape[1] // self.num_heads
    prefix = (torch.get_num_threads(), hidden_states.dtype, self.num_heads, head_dim)
    checked = self._lmms_nb_batched_checked
    forget_if_switched(self, checked)
    # keyed by (length, count): the count is the batch size of the batched SDPA call, which the CPU kernel's
    # blocking depends on, so a length that passed at one count says nothing about another
    unchecked = {run for run in runs if run[1] > 1 and prefix + run not in checked}
    store = self._lmms_nb_batched_verdicts
    if unchecked and store is not None:
        for run in sorted(unchecked):
            verdict = store.get(_stored_key(self, prefix + run))
            if verdict is not None:
                checked[prefix + run] = verdict
                unchecked.discard(run)
                log.debug("vision attention batched, %d threads, %s, %d heads of %d, (length, count) %s: %s "
                          "(stored verdict)", *prefix, run, verdict)
    if unchecked:
        expected = plain(self, hidden_states, cu_seqlens=cu_seqlens, position_embeddings=position_embeddings,
                         max_seqlen=max_seqlen, **kwargs)
        mine = _batched_forward(self, hidden_states, runs, position_embeddings, unchecked)
        same = torch.equal(mine, expected)
        for length, count in sorted(unchecked):
            checked[prefix + (length, count)] = same and _same_on_random(
                (1, self.num_heads, length * count, head_dim), hidden_states.dtype, length, count, self.scaling)
        log.debug("vision attention batched, %d threads, %s, %d heads of %d, (length, count) %s: %s", *prefix,
                  {run: checked[prefix + run] for run in sorted(unchecked)}, "checked; used where identical")
        if store is not None:
            store.put({_stored_key(self, prefix + run): checked[prefix + run] for run in unchecked})
        return expected
    batched = {run for run in runs if run[1] > 1 and checked[prefix + run]}
    if not batched:
        return plain(self, hidden_states, cu_seqlens=cu_seqlens, position_embeddings=position_embeddings,
                     max_seqlen=max_seqlen, **kwargs)
    return _batched_forward(self, hidden_states, runs, position_embeddings, batched)


def _stored_key(attention: Any, key: tuple[Any, ...]) -> str:
    """The verdict's name on disk: the in-process key (threads, dtype, heads, head size, length, count) plus the
    attention's class (its forward is the reference) and the kernel switches (`kernel_settings`)."""
    threads, dtype, heads, head_dim, length, count = key
    return (f"{type(attention).__name__}|{threads} threads|{dtype}|{heads} heads of {head_dim}"
            f"|{count} chunks of {length}|{kernel_settings()}")


def speed_up_vision_attention(model: Any, verdicts: Any = None) -> int:
    """Give every Qwen vision attention of `model` the checked batched form on CPU (see the module docstring);
    `verdicts`, a `VerdictStore`, keeps the checks' verdicts on disk. Returns how many attention modules got it."""
    count = 0
    for module in model.modules():
        if (type(module).__name__ in ATTENTION_CLASSES and hasattr(module, "qkv") and hasattr(module, "scaling")
                and hasattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb_vision")
                and not hasattr(module, "_lmms_nb_batched_checked")):
            module._lmms_nb_batched_checked = {}
            module._lmms_nb_batched_verdicts = verdicts
            module.forward = types.MethodType(_forward, module)
            count += 1
    return count
