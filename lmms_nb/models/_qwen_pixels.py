"""Qwen's image processor cutting pixels into patches already in the model's dtype: the same values, half the bytes.

`Qwen2VLImageProcessor` (Qwen2-VL, Qwen2.5-VL) resizes and normalises an image in float32, then `patchify` copies
it into (patches, channels * 2 frames * patch * patch), every pixel twice (the two frames of a still image), and
the processor copies the batch once more to concatenate the images; the transformers backend then casts that
float32 tensor to the model's dtype (bfloat16 for lmms-eval's Qwen classes). A cast rounds each value on its own,
so casting the normalised image before those copies gives the very same model input while the copies move half
the bytes: measured 22 -> 17 ms per batch of four 448x448 images on one CPU thread.

Example:
    >>> import torch
    >>> from transformers import Qwen2VLImageProcessor
    >>> processor = Qwen2VLImageProcessor()
    >>> patchify_in_model_dtype(processor, torch.bfloat16), patchify_in_model_dtype(processor, torch.bfloat16)
    (True, False)
    >>> image = torch.rand(1, 3, 56, 56)
    >>> out = processor.patchify(image, patch_size=14, merge_size=2, temporal_patch_size=2)[0]
    >>> out.dtype, torch.equal(out, Qwen2VLImageProcessor().patchify(image, 14, 2, 2)[0].to(torch.bfloat16))
    (torch.bfloat16, True)
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["patchify_in_model_dtype"]

#: the torch-backend image processor of Qwen2-VL, Qwen2.5-VL and Qwen3-VL (transformers 5 dropped the `Fast`
#: suffix, kept here for older names); its `Pil` twin patchifies numpy arrays and is left alone
QWEN_PROCESSORS = ("Qwen2VLImageProcessor", "Qwen2VLImageProcessorFast")


def _patchify(self: Any, images: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    if isinstance(images, torch.Tensor) and images.is_floating_point():
        images = images.to(self._lmms_nb_patch_dtype)
    return type(self).patchify(self, images, *args, **kwargs)


def patchify_in_model_dtype(image_processor: Any, dtype: Any) -> bool:
    """Make `image_processor` (a torch-backend Qwen2-VL image processor) cast pixels to `dtype` (bfloat16 or
    float16) before it patchifies them. Returns whether it was installed (not for float32, another processor or a
    second time). Only Qwen's own processor class: other processors with a `patchify` (GLM-4V, PaddleOCR-VL,
    HunYuan-VL, Kimi, Fuyu...) are left alone, as nothing here checked what they compute around it."""
    import torch

    if (dtype not in (torch.bfloat16, torch.float16) or type(image_processor).__name__ not in QWEN_PROCESSORS
            or not callable(getattr(image_processor, "patchify", None))
            or hasattr(image_processor, "_lmms_nb_patch_dtype")):
        return False
    image_processor._lmms_nb_patch_dtype = dtype
    image_processor.patchify = types.MethodType(_patchify, image_processor)
    return True
