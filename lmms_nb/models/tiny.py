"""Build tiny vision-language models (about 250k-400k parameters) entirely offline, one per transformers family.

`build_tiny_llava` makes a real `LlavaForConditionalGeneration` (CLIP vision tower + Llama decoder),
`build_tiny_qwen2_5_vl` a `Qwen2_5_VLForConditionalGeneration` (Qwen2VLImageProcessor, multimodal RoPE) and
`build_tiny_idefics3` an `Idefics3ForConditionalGeneration` (SmolVLM's architecture), each with a byte-level BPE
tokenizer trained locally on the texts it will see, the family's special tokens and its chat template, so the whole
transformers loading path (`AutoProcessor` / `AutoModelForImageTextToText` / chat template / `generate`) is
exercised without a download. Weights are random (seeded): train a model (see `lmms_nb.models.zoo`) before
expecting sensible answers.

Example:
    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText, AutoProcessor
    >>> from lmms_nb.models.tiny import build_tiny_llava
    >>> path = build_tiny_llava(tempfile.mkdtemp(), vocab_texts=["How many circles are there?", "3"])
    >>> model = AutoModelForImageTextToText.from_pretrained(path)
    >>> type(model).__name__, 150_000 < model.num_parameters() < 400_000
    ('LlavaForConditionalGeneration', True)
    >>> AutoProcessor.from_pretrained(path).tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    True
"""

from __future__ import annotations

# One module per family. The token constants and the BPE trainer (`_byte_level_bpe`) are re-exported too: the
# test fixtures build their own tiny models (other families, other templates) from them.
from lmms_nb.models._tiny_idefics3 import (  # noqa: F401
    IDEFICS3_BOS_TOKEN,
    IDEFICS3_CHAT_TEMPLATE,
    IDEFICS3_END_OF_UTTERANCE,
    IDEFICS3_FAKE_IMAGE_TOKEN,
    IDEFICS3_GLOBAL_IMAGE_TOKEN,
    IDEFICS3_PAD_TOKEN,
    build_tiny_idefics3,
)
from lmms_nb.models._tiny_llava import BOS_TOKEN, CHAT_TEMPLATE, EOS_TOKEN, IMAGE_TOKEN, PAD_TOKEN, build_tiny_llava
from lmms_nb.models._tiny_qwen import (  # noqa: F401
    QWEN_CHAT_TEMPLATE,
    QWEN_IM_END,
    QWEN_IM_START,
    QWEN_IMAGE_PAD,
    QWEN_PAD_TOKEN,
    QWEN_VIDEO_PAD,
    QWEN_VISION_END,
    QWEN_VISION_START,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
)
from lmms_nb.models._tiny_shared import byte_level_bpe as _byte_level_bpe  # noqa: F401

__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "IDEFICS3_CHAT_TEMPLATE",
    "IMAGE_TOKEN",
    "PAD_TOKEN",
    "QWEN_CHAT_TEMPLATE",
    "build_tiny_idefics3",
    "build_tiny_llava",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_vl",
]
