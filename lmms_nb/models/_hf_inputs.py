"""What the transformers backend does around the model: turn a request's images and chat messages into the
processor's inputs (strictly loaded RGB images, lmms-eval's message template) and finish its answers (the length up
to a stop token, lmms-eval's `until` cut, the checkpoint's name as lmms-eval writes it).

Example:
    >>> apply_until("B. a cat\\n\\nExplanation", ["\\n\\n"]), lmms_eval_model_name("/ckpt/org/model")
    ('B. a cat', 'org/model')
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from lmms_nb.models.base import Request

__all__ = ["apply_until", "as_rgb", "count_until_special", "describe_failure", "generation_config",
           "lmms_eval_model_name", "stop_token_ids", "template_messages"]

#: generation kwargs passed on to `model.generate`; others (lmms-eval's `image_aspect_ratio`, ...) are ignored
_GENERATE_KEYS = (
    "max_new_tokens",
    "min_new_tokens",
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "num_beams",
    "repetition_penalty",
    "length_penalty",
    "no_repeat_ngram_size",
)


def generation_config(kwargs: dict[str, Any], *, max_new_tokens: int, tokenizer: Any, use_cache: bool,
                      style: Any) -> dict[str, Any]:
    """`model.generate`'s keyword arguments for a request's generation kwargs (lmms-eval's conventions).

    >>> from types import SimpleNamespace
    >>> from lmms_nb.models._hf_style import ChatStyle
    >>> tok = SimpleNamespace(pad_token_id=0, eos_token_id=2)
    >>> generation_config({"temperature": 0, "until": ["\\n"]}, max_new_tokens=8, tokenizer=tok, use_cache=True,
    ...                   style=ChatStyle())["do_sample"]
    False
    """
    gen = {k: kwargs[k] for k in _GENERATE_KEYS if k in kwargs and kwargs[k] is not None}
    gen.setdefault("max_new_tokens", max_new_tokens)
    # lmms-eval's convention: temperature > 0 means sampling unless do_sample says otherwise.
    if "do_sample" not in gen:
        gen["do_sample"] = float(gen.get("temperature", 0) or 0) > 0
    if not gen["do_sample"]:
        # greedy: drop sampling knobs (a checkpoint's generation_config may set them) so none applies
        gen.update(temperature=None, top_p=None, top_k=None)
    gen["pad_token_id"] = tokenizer.pad_token_id
    gen["use_cache"] = use_cache
    if style.stop_at_tokenizer_eos_only:
        gen["eos_token_id"] = tokenizer.eos_token_id
    return gen


def stop_token_ids(tokenizer: Any, model_generation_config: Any, style: Any) -> set[int]:
    """Token ids that end an answer: padding, the tokenizer's EOS, and every EOS of the generation config.

    Chat checkpoints often stop at several tokens (Qwen2-VL: <|im_end|> and <|endoftext|>), and generate()
    stops at any of them, so the answer's length must be counted up to any of them too.

    >>> from types import SimpleNamespace as Namespace
    >>> tokenizer = Namespace(pad_token_id=0, eos_token_id=2)
    >>> sorted(stop_token_ids(tokenizer, Namespace(eos_token_id=[2, 7]), Namespace(stop_at_tokenizer_eos_only=False)))
    [0, 2, 7]
    >>> stop_token_ids(tokenizer, Namespace(eos_token_id=7), Namespace(stop_at_tokenizer_eos_only=True))
    {2}
    """
    if style.stop_at_tokenizer_eos_only:
        # generation stops only there; a padding token the model emits earlier is text (skipped on decode)
        return {int(tokenizer.eos_token_id)}
    config_eos = getattr(model_generation_config, "eos_token_id", None)
    if config_eos is None or isinstance(config_eos, int):
        config_eos = [config_eos]
    ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, *config_eos)
    return {int(t) for t in ids if t is not None}


def apply_until(text: str, until: str | Sequence[str] | None) -> str:
    """Cut `text` at the first occurrence of any stop string, as lmms-eval does after decoding.

    >>> apply_until("B. a cat\\n\\nExplanation", ["\\n\\n"])
    'B. a cat'
    >>> apply_until("yes", None)
    'yes'
    """
    if not until:
        return text
    stops = [until] if isinstance(until, str) else list(until)
    for stop in stops:
        if stop:
            text = text.split(stop, 1)[0]
    return text


def lmms_eval_model_name(pretrained: str) -> str:
    """The name lmms-eval gives a checkpoint: the last two parts of its hub id or path (`org/name`), whose
    sanitized form (`org__name`) is the folder lmms-eval writes the logs to.

    >>> lmms_eval_model_name("/data/ckpt/anchor/tiny_model/"), lmms_eval_model_name("Qwen/Qwen2.5-VL-3B-Instruct")
    ('anchor/tiny_model', 'Qwen/Qwen2.5-VL-3B-Instruct')
    """
    parts = [p for p in str(pretrained).replace("\\", "/").rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) if parts else str(pretrained)


def count_until_special(row: list[int], stop_ids: set[int]) -> int:
    """Number of generated tokens before the first EOS / padding token."""
    for i, tok in enumerate(row):
        if tok in stop_ids:
            return i
    return len(row)


def as_rgb(image: Any, req: Request, k: int, transform: Any = None):
    """The image as an RGB PIL image (after `transform`), or an error that names the doc and image."""
    from PIL import Image

    where = f"doc {req.doc_id} of task {req.task!r}, image {k}"
    if not isinstance(image, Image.Image):
        raise TypeError(f"{where}: expected a PIL image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{where}: image is empty ({image.width}x{image.height} pixels)")
    try:
        _load_strictly(image)
        if transform is not None:
            image = transform(image)
        return image.convert("RGB")
    except Exception as e:
        raise ValueError(f"{where}: cannot read image (mode {image.mode}): {e}") from e


_STRICT_LOAD = threading.Lock()


def _load_strictly(image: Any) -> None:
    """Load a lazily opened image file, failing on a truncated one whatever PIL's global setting says.

    Importing lmms-eval (`lmms_eval.api.task`, which catalogue tasks import) sets
    `PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True` for the whole process, after which a truncated file would load
    as garbage pixels and be answered as if it were whole.
    """
    from PIL import ImageFile

    if not isinstance(image, ImageFile.ImageFile) or getattr(image, "fp", None) is None:
        return  # already in memory
    with _STRICT_LOAD:
        allowed, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = allowed


def describe_failure(req: Request, e: Exception) -> str:
    msg = f"{type(e).__name__}: {e}"
    return msg if f"doc {req.doc_id}" in msg else f"doc {req.doc_id}: {msg}"


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's doc_to_messages as lmms-eval's chat classes template them (``ChatMessages.to_hf_messages``): text
    and image parts in the task's order; the images themselves are the request's (`make_request` takes them
    from the messages, in the same order)."""
    out = []
    for i, message in enumerate(messages):
        parts = message.get("content")
        parts = [{"type": "text", "text": parts}] if isinstance(parts, str) else list(parts or [])
        content: list[dict[str, Any]] = []
        for part in parts:
            if part.get("type") == "text":
                content.append({"type": "text", "text": str(part.get("text", ""))})
            elif part.get("type") == "image":
                content.append({"type": "image"})
            else:
                raise ValueError(f"message {i}: a {part.get('type')!r} part: only text and images are supported here")
        out.append({"role": str(message.get("role", "user")), "content": content})
    return out
