"""A request's parts in OpenAI's format: generation parameters, chat messages, images as PNG data URLs, and
pixel hashes of images for cache keys."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any, Callable, Mapping, Sequence

from lmms_nb._image_input import as_pil_image

__all__ = ["chat_messages_to_openai", "generation_params", "image_data_url", "image_digest"]


def generation_params(gen_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """lmms-eval generation kwargs -> chat-completions parameters (unknown ones are ignored, as lmms-eval).

    >>> generation_params({"max_new_tokens": 16, "do_sample": False, "until": "Q:", "num_beams": 1})
    {'max_tokens': 16, 'temperature': 0.0, 'stop': ['Q:']}
    """
    params: dict[str, Any] = {}
    if gen_kwargs.get("max_new_tokens") is not None:
        params["max_tokens"] = int(gen_kwargs["max_new_tokens"])
    if gen_kwargs.get("temperature") is not None:
        params["temperature"] = float(gen_kwargs["temperature"])
    elif gen_kwargs.get("do_sample") is False:
        params["temperature"] = 0.0  # greedy, as the local backends do with do_sample=False
    if gen_kwargs.get("top_p") is not None:
        params["top_p"] = float(gen_kwargs["top_p"])
    until = gen_kwargs.get("until")
    if until:
        params["stop"] = [until] if isinstance(until, str) else list(until)
    if gen_kwargs.get("seed") is not None:
        params["seed"] = int(gen_kwargs["seed"])
    return params


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
