"""lmms-nb's Qwen smart resize against qwen_vl_utils itself (the package lmms-eval's Qwen classes call)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from qwen_vl_utils import vision_process as upstream

from lmms_nb.models._qwen_resize import fetch_image, jpeg_round_trip, smart_resize

SIZES = [(1, 1), (3, 500), (28, 28), (27, 29), (55, 56), (100, 300), (224, 224), (333, 777), (480, 640),
         (1080, 1920), (4000, 3000), (2, 300), (5000, 40)]
BOUNDS = [(None, None), (3136, 602112), (256 * 28 * 28, 1605632), (28 * 28, 56 * 56), (4 * 32 * 32, 16384 * 32 * 32)]


@pytest.mark.parametrize("min_pixels, max_pixels", BOUNDS)
@pytest.mark.parametrize("factor", [28, 32])
def test_smart_resize_equals_qwen_vl_utils(min_pixels, max_pixels, factor):
    for height, width in SIZES:
        assert smart_resize(height, width, factor, min_pixels, max_pixels) == upstream.smart_resize(
            height, width, factor, min_pixels, max_pixels), (height, width)


def test_extreme_aspect_ratio_is_refused_as_upstream():
    with pytest.raises(ValueError, match="aspect ratio"):
        upstream.smart_resize(1, 500, 28)
    with pytest.raises(ValueError, match="aspect ratio.*500x1"):
        smart_resize(1, 500, 28)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
@pytest.mark.parametrize("patch", [14, 16])
def test_fetch_image_gives_the_same_pixels(mode, patch):
    rng = np.random.default_rng(0)
    for height, width in [(37, 91), (300, 200), (64, 64)]:
        array = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        image = Image.fromarray(array, "RGBA").convert(mode)
        for min_pixels, max_pixels in [(None, None), (256 * 28 * 28, 1605632), (3136, 12544)]:
            element = {"image": image, **({"min_pixels": min_pixels, "max_pixels": max_pixels} if min_pixels else {})}
            theirs = upstream.fetch_image(element, image_patch_size=patch)
            ours = fetch_image(image, min_pixels=min_pixels, max_pixels=max_pixels, image_patch_size=patch)
            assert ours.size == theirs.size and ours.mode == theirs.mode == "RGB"
            assert np.array_equal(np.asarray(ours), np.asarray(theirs)), (mode, height, width, min_pixels)


def test_jpeg_round_trip_is_lossy_like_a_quality_85_data_url():
    import base64
    import io

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    via_upstream = upstream.fetch_image({"image": url})
    ours = fetch_image(jpeg_round_trip(image))
    assert np.array_equal(np.asarray(ours), np.asarray(via_upstream))
    assert not np.array_equal(np.asarray(jpeg_round_trip(image)), np.asarray(image))
