"""A faster CPU patch embedding for vision towers whose `Conv3d` kernel equals its stride (Qwen2-VL, Qwen2.5-VL,
Qwen3-VL), giving bit for bit the numbers of the plain convolution, or left alone.

transformers hands such a convolution one (channels, frames, patch, patch) patch per batch row, N rows of one output
each. On CPU, oneDNN then multiplies one output row at a time: measured 3-12x slower (bfloat16, AMX) than the same
convolution over one image holding the N patches side by side on a grid `GRID_WIDTH` patches wide. Both forms are
the same oneDNN convolution, and where oneDNN picks the same kernel for both, every output is the same sum in the same
order: measured identical on every element for 1 to 8192 patches and 64 to 1280 channels. Where it picks another
kernel for the batched form (small N: 1 element in 4096 then differs by one bfloat16 step), the numbers differ, and
lmms-eval's greedy answers, made with the batched form, must stay ours.

Hence a self-check instead of trust: the grid form is used only for calls of at least `MIN_PATCHES` rows (the
smallest Qwen image lmms-eval's default `min_pixels` allows), and only after the first such call, per torch thread
count, dtype and size bucket (the patch count rounded up to a power of two: oneDNN picks kernels by shape), computed
both forms on its real input AND on a seeded random tensor of the same shape and found both equal (a flat input, a
blank image, can agree even where the kernels differ). That call returns the plain result. Given a `VerdictStore`
(lmms-nb's HF backend gives one under its cache dir), each verdict is kept on disk, keyed by the above plus the
conv's weight shape and bias, and a later process with the same environment takes it from there instead of
computing both forms again (`_fast_path_verdicts`).

Example:
    >>> import torch
    >>> conv = torch.nn.Conv3d(3, 8, (2, 14, 14), stride=(2, 14, 14), bias=False)
    >>> speed_up_patch_embeddings(conv)
    1
    >>> x = torch.rand(MIN_PATCHES, 3, 2, 14, 14)
    >>> torch.equal(conv(x), torch.nn.functional.conv3d(x, conv.weight, stride=(2, 14, 14)))
    True
"""

from __future__ import annotations

import logging
import types
from typing import Any

from lmms_nb.models._fast_path_verdicts import forget_if_switched, kernel_settings

__all__ = ["GRID_WIDTH", "MIN_PATCHES", "grid_conv3d", "speed_up_patch_embeddings"]

log = logging.getLogger(__name__)

#: patches per grid row: a fixed width keeps the grid's shape, and so oneDNN's choice of kernel, alike across calls
GRID_WIDTH = 32
#: the grid form is tried only from this many patches on (one 448x448 Qwen image: 256 tokens of 2x2 patches)
MIN_PATCHES = 1024


def grid_conv3d(conv: Any, patches: Any) -> Any:
    """`conv(patches)` for N patches (N, C, *kernel_size) computed as one convolution over a grid image of them.

    >>> import torch
    >>> conv = torch.nn.Conv3d(3, 4, (2, 2, 2), stride=(2, 2, 2)).double()
    >>> x = torch.rand(70, 3, 2, 2, 2, dtype=torch.float64)
    >>> torch.allclose(grid_conv3d(conv, x), conv(x))
    True
    """
    import torch

    n, channels, depth, height, width = patches.shape
    columns = min(n, GRID_WIDTH)
    rows = -(-n // columns)
    if rows * columns != n:  # the last grid row is filled with zero patches, whose outputs are dropped
        patches = torch.cat([patches, patches.new_zeros(rows * columns - n, channels, depth, height, width)])
    cells = patches.reshape(rows, columns, channels, depth, height, width)
    if cells.element_size() == 2 and width % 2 == 0 and cells.is_contiguous() and cells.data_ptr() % 4 == 0:
        # 16-bit values moved two at a time (as int32): the same bytes, measured 1.7 -> 1.4 ms for 4096 patches
        cells = cells.view(torch.int32)
        width //= 2
    grid = (cells.permute(2, 3, 0, 4, 1, 5).reshape(1, channels, depth, rows * height, columns * width)
            .view(patches.dtype))
    out = conv._conv_forward(grid, conv.weight, conv.bias)  # (1, out_channels, 1, rows, columns)
    return out.reshape(out.shape[1], rows * columns)[:, :n].t().reshape(n, out.shape[1], 1, 1, 1)


def _size_bucket(n: int) -> int:
    """The patch count rounded up to a power of two: one self-check per bucket of shapes."""
    return 1 << max(n - 1, 0).bit_length()


def _same_on_random(conv: Any, plain: Any, shape: tuple[int, ...], dtype: Any) -> bool:
    """Both forms on a seeded random tensor of `shape`: varied values expose a kernel difference a flat input hides."""
    import torch

    generator = torch.Generator().manual_seed(0)
    patches = (torch.rand(shape, generator=generator) * 4 - 2).to(dtype)  # about the range of normalised pixels
    return torch.equal(grid_conv3d(conv, patches), plain(conv, patches))


def _forward(self: Any, patches: Any) -> Any:
    """The conv's forward: the grid form where it is checked to give the same numbers, else the plain one."""
    import torch

    plain = type(self).forward
    if (patches.dim() != 5 or patches.device.type != "cpu" or patches.shape[0] < MIN_PATCHES
            or tuple(patches.shape[2:]) != tuple(self.kernel_size)):
        return plain(self, patches)
    key = (torch.get_num_threads(), patches.dtype, _size_bucket(patches.shape[0]))
    checked = self._lmms_nb_grid_checked
    forget_if_switched(self, checked)
    if key not in checked:
        store = self._lmms_nb_grid_verdicts
        stored_key = _stored_key(self, key)
        verdict = store.get(stored_key) if store is not None else None
        if verdict is not None:
            checked[key] = verdict
            log.debug("patch embedding on a grid, %d threads, %s, up to %d patches: %s (stored verdict)", *key,
                      "identical, used" if verdict else "differs, not used")
        else:
            expected = plain(self, patches)
            checked[key] = (torch.equal(grid_conv3d(self, patches), expected)
                            and _same_on_random(self, plain, tuple(patches.shape), patches.dtype))
            log.debug("patch embedding on a grid, %d threads, %s, up to %d patches: %s (checked)", *key,
                      "identical, used from now on" if checked[key] else "differs, not used")
            if store is not None:
                store.put({stored_key: checked[key]})
            return expected
    return grid_conv3d(self, patches) if checked[key] else plain(self, patches)


def _stored_key(conv: Any, key: tuple[Any, ...]) -> str:
    """The verdict's name on disk: the in-process key plus what tells one patch embedding from another."""
    threads, dtype, bucket = key
    bias = "bias" if conv.bias is not None else "no bias"
    return (f"{threads} threads|{dtype}|up to {bucket} patches|weight {tuple(conv.weight.shape)}|{bias}"
            f"|grid {GRID_WIDTH} wide|{kernel_settings()}")


def speed_up_patch_embeddings(model: Any, verdicts: Any = None) -> int:
    """Give every patch-embedding `Conv3d` of `model` (kernel == stride, no padding, dilation or groups) the
    checked grid form on CPU (see the module docstring); `verdicts`, a `VerdictStore`, keeps the checks' verdicts
    on disk. Returns how many convolutions got it."""
    import torch

    count = 0
    for module in model.modules():
        if (type(module) is torch.nn.Conv3d and tuple(module.stride) == tuple(module.kernel_size)
                and tuple(module.padding) == (0, 0, 0) and tuple(module.dilation) == (1, 1, 1)
                and module.groups == 1 and module.padding_mode == "zeros"
                and not hasattr(module, "_lmms_nb_grid_checked")):
            module._lmms_nb_grid_checked = {}
            module._lmms_nb_grid_verdicts = verdicts
            module.forward = types.MethodType(_forward, module)
            count += 1
    return count
