"""`build_tiny_qwen2_5_vl` / `build_tiny_qwen2_vl`: tiny Qwen2.5-VL and Qwen2-VL models (multimodal RoPE,
`Qwen2VLImageProcessor`) with Qwen's special tokens and chat template. Examples in the functions' docstrings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lmms_nb.models._tiny_shared import bpe_tokenizer, decoder_config, save_seeded

__all__ = ["QWEN_CHAT_TEMPLATE", "build_tiny_qwen2_5_vl", "build_tiny_qwen2_vl"]

QWEN_PAD_TOKEN = "<|endoftext|>"
QWEN_IM_START = "<|im_start|>"
QWEN_IM_END = "<|im_end|>"
QWEN_VISION_START = "<|vision_start|>"
QWEN_VISION_END = "<|vision_end|>"
QWEN_IMAGE_PAD = "<|image_pad|>"
QWEN_VIDEO_PAD = "<|video_pad|>"

#: Qwen2-VL / Qwen2.5-VL's own chat template (the one their Instruct checkpoints ship): a default system turn, then
#: <|im_start|>role\n ... <|im_end|>, each image as <|vision_start|><|image_pad|><|vision_end|> where it stands (a
#: video as <|vision_start|><|video_pad|><|vision_end|>).
#: Newlines sit right before block tags, where transformers' trim_blocks=True leaves them alone.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_qwen2_5_vl(
    path: str | Path,
    *,
    vocab_texts: Iterable[str],
    hidden_size: int = 64,
    num_layers: int = 2,
    patch_size: int = 14,
    min_pixels: int = 28 * 28,
    max_pixels: int = 56 * 56,
    seed: int = 0,
    vocab_size: int = 512,
) -> Path:
    """Create a seeded random tiny `Qwen2_5_VLForConditionalGeneration` with its processor and save both into `path`.

    The vision tower cuts each image into `patch_size` px patches after `Qwen2VLImageProcessor` has resized it to
    between `min_pixels` and `max_pixels` pixels (sides multiples of 2 * patch_size); every 2x2 patches merge into
    one `<|image_pad|>` token, so an image costs (pixels / (2 * patch_size) ** 2) tokens (1 to 4 by default).
    The tokenizer is a byte-level BPE trained on `vocab_texts` with Qwen's special tokens and chat template.

    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText, AutoProcessor
    >>> path = build_tiny_qwen2_5_vl(tempfile.mkdtemp(), vocab_texts=["How many circles are there?", "3"])
    >>> type(AutoModelForImageTextToText.from_pretrained(path)).__name__
    'Qwen2_5_VLForConditionalGeneration'
    >>> type(AutoProcessor.from_pretrained(path)).__name__
    'Qwen2_5_VLProcessor'
    """
    return _build_tiny_qwen(
        "2.5", path, vocab_texts=vocab_texts, hidden_size=hidden_size, num_layers=num_layers, patch_size=patch_size,
        min_pixels=min_pixels, max_pixels=max_pixels, seed=seed, vocab_size=vocab_size,
    )


def build_tiny_qwen2_vl(
    path: str | Path,
    *,
    vocab_texts: Iterable[str],
    hidden_size: int = 64,
    num_layers: int = 2,
    patch_size: int = 14,
    min_pixels: int = 28 * 28,
    max_pixels: int = 56 * 56,
    seed: int = 0,
    vocab_size: int = 512,
) -> Path:
    """As `build_tiny_qwen2_5_vl`, for the first generation: `Qwen2VLForConditionalGeneration` + `Qwen2VLProcessor`.

    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText
    >>> path = build_tiny_qwen2_vl(tempfile.mkdtemp(), vocab_texts=["How many circles are there?", "3"])
    >>> type(AutoModelForImageTextToText.from_pretrained(path)).__name__
    'Qwen2VLForConditionalGeneration'
    """
    return _build_tiny_qwen(
        "2", path, vocab_texts=vocab_texts, hidden_size=hidden_size, num_layers=num_layers, patch_size=patch_size,
        min_pixels=min_pixels, max_pixels=max_pixels, seed=seed, vocab_size=vocab_size,
    )


def _build_tiny_qwen(
    generation: str,
    path: str | Path,
    *,
    vocab_texts: Iterable[str],
    hidden_size: int,
    num_layers: int,
    patch_size: int,
    min_pixels: int,
    max_pixels: int,
    seed: int,
    vocab_size: int,
) -> Path:
    """Qwen2-VL ("2") or Qwen2.5-VL ("2.5"): same tokenizer, template and image processor, different towers."""
    import transformers
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    prefix = {"2": "Qwen2VL", "2.5": "Qwen2_5_VL"}[generation]
    config_class = getattr(transformers, f"{prefix}Config")
    model_class = getattr(transformers, f"{prefix}ForConditionalGeneration")
    processor_class = getattr(transformers, f"{prefix}Processor")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = [QWEN_PAD_TOKEN, QWEN_IM_START, QWEN_IM_END, QWEN_VISION_START, QWEN_VISION_END, QWEN_IMAGE_PAD,
                QWEN_VIDEO_PAD]
    texts = ["system\nYou are a helpful assistant.", "user\n", "assistant\n", *vocab_texts]
    tokenizer = bpe_tokenizer(
        texts, specials, vocab_size, QWEN_CHAT_TEMPLATE,
        pad_token=QWEN_PAD_TOKEN,
        eos_token=QWEN_IM_END,  # an Instruct checkpoint stops at the end of its turn
        extra_special_tokens={"image_token": QWEN_IMAGE_PAD, "video_token": QWEN_VIDEO_PAD},
    )
    merge_size = 2
    image_processor = Qwen2VLImageProcessor(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size, merge_size=merge_size
    )
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size, merge_size=merge_size
    )
    processor = processor_class(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    heads = max(1, hidden_size // 16)
    head_dim = hidden_size // heads
    # multimodal RoPE splits each head's head_dim / 2 rotary frequencies into time, height and width sections
    third = head_dim // 2 // 3
    mrope_section = [head_dim // 2 - 2 * third, third, third]
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in specials}
    vision_common = {
        "depth": num_layers,
        "num_heads": heads,
        "patch_size": patch_size,
        "spatial_merge_size": merge_size,
        "temporal_patch_size": image_processor.temporal_patch_size,
    }
    if generation == "2":
        # Qwen2-VL: `embed_dim` is the tower's width, `hidden_size` what the merger hands the language model
        vision_config = {**vision_common, "embed_dim": hidden_size, "hidden_size": hidden_size, "mlp_ratio": 2}
    else:
        vision_config = {
            **vision_common,
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "out_hidden_size": hidden_size,
            # window attention over 2x2 merged cells, full attention in the last layer (as 7, 15, 23, 31 of 32)
            "window_size": 2 * merge_size * patch_size,
            "fullatt_block_indexes": [num_layers - 1],
        }
    config = config_class(
        text_config={
            **decoder_config(len(tokenizer), hidden_size, num_layers, bos=ids[QWEN_IM_START], eos=ids[QWEN_IM_END],
                             pad=ids[QWEN_PAD_TOKEN]),
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section},
        },
        vision_config=vision_config,
        image_token_id=ids[QWEN_IMAGE_PAD],
        video_token_id=ids[QWEN_VIDEO_PAD],
        vision_start_token_id=ids[QWEN_VISION_START],
        vision_end_token_id=ids[QWEN_VISION_END],
    )
    return save_seeded(model_class, config, processor, path, seed=seed, pad=ids[QWEN_PAD_TOKEN], bos=None,
                       eos=ids[QWEN_IM_END])
