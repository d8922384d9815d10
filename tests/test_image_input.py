"""`as_pil_image`, the one reader of images handed to lmms-nb (OpenAI backend, CLIP zero-shot, Lite embedders):
every form it takes gives the same pixels, and what it cannot read fails naming the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lmms_nb._image_input import as_pil_image
from lmms_nb.models._openai_messages import image_digest


@pytest.fixture()
def png(tmp_path):
    image = Image.new("RGBA", (5, 3), (10, 20, 30, 255))
    image.putpixel((4, 2), (200, 100, 50, 128))
    path = tmp_path / "im.png"
    image.save(path)
    return image, path


def test_every_form_gives_the_same_pixels(png) -> None:
    image, path = png
    data = path.read_bytes()
    forms = [image, str(path), path, data, bytearray(data), {"bytes": data, "path": None},
             {"bytes": None, "path": str(path)}, {"bytes": b"", "path": str(path)}, np.asarray(image)]
    for form in forms:
        got = as_pil_image(form)
        assert got.mode == "RGBA" and got.tobytes() == image.tobytes(), type(form)
        assert as_pil_image(form, mode="RGB").tobytes() == image.convert("RGB").tobytes()
    # the OpenAI cache key hashes the stored mode's pixels: the same for every form
    assert len({image_digest(form) for form in forms}) == 1


def test_float_arrays_in_unit_range_are_scaled() -> None:
    got = as_pil_image(np.full((2, 2, 3), 0.5), mode="RGB")
    assert got.getpixel((0, 0)) == (127, 127, 127)


def test_what_cannot_be_read_fails_naming_the_image(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"doc 3, image 0: expected a PIL image.*got int"):
        as_pil_image(7, "doc 3, image 0")
    with pytest.raises(ValueError, match=r"doc 3: cannot open image file '.*missing.png'"):
        as_pil_image(tmp_path / "missing.png", "doc 3")
    with pytest.raises(ValueError, match="doc 3: cannot decode image"):
        as_pil_image(b"not a png", "doc 3")
    with pytest.raises(ValueError, match="doc 3: cannot decode image"):
        as_pil_image({"bytes": b"x", "path": None}, "doc 3")
