"""`ChatStyle`: how the transformers backend shapes a request around the model, where lmms-eval's classes differ.

lmms-eval's model classes each build the model input their own way (images before the text or where `<image>`
stood, a system message or not, a resize before the processor) and finish the answer their own way (stop at the
tokenizer's EOS only, apply `until` or not, strip or not). A `ChatStyle` names those choices so that one backend
gives each lmms-eval class's greedy answers (`lmms_nb.models.lmms_eval_aliases`). The default is lmms-nb's own.

Example:
    >>> ChatStyle().images, ChatStyle(images="first").apply_until
    ('auto', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ChatStyle"]

_IMAGE_PLACEMENTS = ("auto", "first", "first_no_placeholder")


@dataclass(frozen=True)
class ChatStyle:
    """Prompt and answer conventions of one model class.

    Attributes:
        images: "auto" (lmms-nb: each `<image>` placeholder of the prompt becomes an image, else images first),
            "first" (every image, then the prompt text as it is: lmms-eval's chat classes), or
            "first_no_placeholder" (every image, then the text with `<image>` removed: lmms-eval's qwen2_vl).
        system_prompt: a system message before the user turn (None: none, the chat template's default applies).
        image_transform: applied to each PIL image before the processor (e.g. Qwen's smart resize).
        stop_at_tokenizer_eos_only: generation stops only at the tokenizer's EOS (lmms-eval passes
            `eos_token_id=tokenizer.eos_token_id`), not at every EOS of the generation config.
        apply_until: cut the answer at the request's `until` strings (lmms-eval's chat classes do not).
        strip: strip whitespace from the answer (lmms-eval's qwen2_vl does).
        clean_up_tokenization_spaces: passed to decode (None: the tokenizer's setting).
        video_loader: a video file path -> (frames, metadata or None) for the processor's `videos` /
            `video_metadata` (`lmms_nb.models._qwen_video`, `lmms_nb.video`); None: the backend picks the
            model family's default, and a family without video is refused.
        image_processor_kwargs: passed to the processor's call when a request has images (lmms-eval's qwen3_vl:
            `do_resize=False`, the images being resized by qwen_vl_utils already).
    """

    images: str = "auto"
    system_prompt: str | None = None
    image_transform: Callable[[Any], Any] | None = None
    stop_at_tokenizer_eos_only: bool = False
    apply_until: bool = True
    strip: bool = False
    clean_up_tokenization_spaces: bool | None = None
    video_loader: Callable[[str], tuple[Any, Any]] | None = None
    image_processor_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.images not in _IMAGE_PLACEMENTS:
            raise ValueError(f"images must be one of {', '.join(_IMAGE_PLACEMENTS)}, got {self.images!r}")
