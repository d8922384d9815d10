"""Requests' images and chat messages in OpenAI's format: PNG data URLs, and pixel hashes for cache keys."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import Any, Callable, Mapping, Sequence

__all__ = ["as_pil_image", "chat_messages_to_openai", "image_data_url", "image_digest"]


def as_pil_image(image: Any):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (bytes, bytearray)):
        return Image.open(io.BytesIO(image))
    if isinstance(image, (str, os.PathLike)):
        return Image.open(image)
    if isinstance(image, dict) and (image.get("bytes") or image.get("path")):  # a datasets Image feature row
        return Image.open(io.BytesIO(image["bytes"])) if image.get("bytes") else Image.open(image["path"])
    raise TypeError(f"unsupported image type {type(image).__name__} (expected a PIL image, bytes or a path)")


def image_digest(image: Any) -> str:
    """A sha256 of an image's mode, size and pixels (stable across encoders and Pillow versions)."""
    im = as_pil_image(image)
    h = hashlib.sha256(f"{im.mode}|{im.size[0]}x{im.size[1]}|".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def chat_messages_to_openai(messages: Sequence[Mapping[str, Any]],
                            encode: Callable[[Any], str] | None = None) -> list[dict[str, Any]]:
    """lmms-eval chat messages (``{"role", "content": [{"type": "text"|"image", ...}]}``) in OpenAI's format, as
    lmms-eval 0.7.3's ``ChatMessages.to_openai_messages``: text parts as they are, images as PNG data URLs.

    >>> chat_messages_to_openai([{"role": "user", "content": [{"type": "text", "text": "Hi?"}]}])
    [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi?'}]}]
    """
    encode = encode or image_data_url
    out = []
    for i, message in enumerate(messages):
        parts = message.get("content")
        if isinstance(parts, str):
            parts = [{"type": "text", "text": parts}]
        content = []
        for part in parts or []:
            kind = part.get("type")
            if kind == "text":
                content.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image":
                content.append({"type": "image_url", "image_url": {"url": encode(part.get("url"))}})
            else:  # lmms-eval decodes video frames client-side; this backend sends images and text only
                raise ValueError(f"message {i}: a {kind!r} part: this backend sends text and images only")
        out.append({"role": str(message.get("role", "user")), "content": content})
    return out


def image_data_url(image: Any) -> str:
    """A ``data:image/png;base64,...`` URL of an image (PNG: lossless, so the model sees the exact pixels)."""
    im = as_pil_image(image)
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
