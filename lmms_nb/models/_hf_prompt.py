"""The prompt text the transformers backend gives the processor for a request: the processor's chat template over
the request's images (or videos) and text, placed as the model's lmms-eval class places them (`ChatStyle.images`).

Example:
    >>> from types import SimpleNamespace
    >>> from lmms_nb.models._hf_style import ChatStyle
    >>> from lmms_nb.models.base import Request
    >>> base_model = SimpleNamespace(image_token="<image>", chat_template=None)  # no chat template: a base model
    >>> chat_prompt(base_model, ChatStyle(), Request(doc_id=0, task="t", images=[], prompt="How many?"))
    'How many?'
"""

from __future__ import annotations

from typing import Any

from lmms_nb.models._hf_inputs import template_messages
from lmms_nb.models._hf_video import visual_kinds
from lmms_nb.models.base import Request

__all__ = ["chat_prompt"]

#: the image placeholder lmms-eval task prompts write, whatever the model family
_LMMS_EVAL_IMAGE_TOKEN = "<image>"


def chat_prompt(processor: Any, style: Any, req: Request) -> str:
    """The prompt for `req` (see the module docstring); `style` is the model's `ChatStyle`."""
    if req.messages is not None and getattr(processor, "chat_template", None):
        # as lmms-eval's chat classes: the task's messages as they are (no system prompt added)
        return processor.apply_chat_template(template_messages(req.messages), add_generation_prompt=True,
                                             tokenize=False)
    image_token = getattr(processor, "image_token", None) or _LMMS_EVAL_IMAGE_TOKEN
    kinds = visual_kinds(req)
    if style.images != "auto" or "video" in kinds:
        # lmms-eval's chat classes: every image or video in the order doc_to_visual gave them, then the text as
        # the task wrote it (qwen2_vl drops "<image>")
        text = req.prompt
        if style.images == "first_no_placeholder":
            text = text.replace(_LMMS_EVAL_IMAGE_TOKEN, "")
        content = [{"type": kind} for kind in kinds] + [{"type": "text", "text": text}]
    elif req.images and req.prompt.count(image_token) == len(req.images):
        # the prompt already places its images in this processor's own token (an lmms-eval "<image>"
        # interleaved prompt for LLaVA or Idefics3): keep it
        content = [{"type": "text", "text": req.prompt}]
    elif req.images and req.prompt.count(_LMMS_EVAL_IMAGE_TOKEN) == len(req.images):
        # lmms-eval's "<image>" placeholders for a family whose image token is another one (Qwen2-VL's
        # <|vision_start|><|image_pad|><|vision_end|>): each image goes where its placeholder stood, so the
        # common "<image>\nQuestion" becomes image-then-"\nQuestion", as lmms-eval's qwen2_vl backend sends it
        parts = req.prompt.split(_LMMS_EVAL_IMAGE_TOKEN)
        content = [{"type": "text", "text": parts[0]}] if parts[0] else []
        for part in parts[1:]:
            content.append({"type": "image"})
            if part:
                content.append({"type": "text", "text": part})
    else:
        content = [{"type": "image"} for _ in req.images] + [{"type": "text", "text": req.prompt}]
    messages = [{"role": "user", "content": content}]
    if style.system_prompt is not None:
        messages.insert(0, {"role": "system", "content": style.system_prompt})
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # no chat template (a base model): image placeholders then the prompt, as lmms-eval does
    if len(content) == 1:
        return req.prompt
    return image_token * len(req.images) + "\n" + req.prompt
