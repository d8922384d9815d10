"""Qwen-VL image preprocessing as `qwen_vl_utils` (0.0.14) does it before the processor: `smart_resize`, `fetch_image`.

lmms-eval's Qwen classes pass every image through `qwen_vl_utils.process_vision_info`, which resizes it to sides that
are multiples of 28 (patch 14 x merge 2) with a pixel count within [min_pixels, max_pixels] (PIL's default bicubic
`resize`), after flattening transparency onto white. The processor then resizes again with its own bounds. Written
here so lmms-nb needs no qwen_vl_utils (which pulls in PyAV); tests compare both on many sizes.

Example:
    >>> smart_resize(100, 300, factor=28)
    (112, 308)
    >>> smart_resize(1000, 1000, factor=28, max_pixels=256 * 28 * 28)
    (448, 448)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fetch_image", "smart_resize"]

MAX_RATIO = 200
SPATIAL_MERGE_SIZE = 2
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int | None = None,
                 max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) both divisible by `factor`, the pixel count within [min_pixels, max_pixels], the aspect
    ratio kept as closely as possible (qwen_vl_utils' rule, including its defaults of 4 and 16384 tokens)."""
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor**2
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor**2
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, "
                         f"got {max(height, width) / min(height, width)} for a {width}x{height} image")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _to_rgb(image: Any) -> Any:
    from PIL import Image

    if image.mode == "RGBA":  # transparency goes onto white, as qwen_vl_utils.to_rgb
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def fetch_image(image: Any, *, min_pixels: int | None = None, max_pixels: int | None = None,
                image_patch_size: int = 14) -> Any:
    """A PIL image as `qwen_vl_utils.fetch_image({"image": image, ...})` returns it (RGB, smart-resized)."""
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    image = _to_rgb(image)
    width, height = image.size
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor**2
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor**2
    resized_height, resized_width = smart_resize(height, width, factor=factor, min_pixels=min_pixels,
                                                 max_pixels=max_pixels)
    return image.resize((resized_width, resized_height))


def jpeg_round_trip(image: Any, quality: int = 85) -> Any:
    """The image after lmms-eval's qwen2_vl (simple) class sends it as a JPEG data URL (quality 85)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded
