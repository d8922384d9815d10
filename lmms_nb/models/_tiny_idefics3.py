"""`build_tiny_idefics3`: a tiny `Idefics3ForConditionalGeneration` (SmolVLM's architecture) with Idefics3's
special tokens and SmolVLM's chat template. Example in the function's docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lmms_nb.models._tiny_llava import IMAGE_TOKEN
from lmms_nb.models._tiny_shared import bpe_tokenizer, decoder_config, save_seeded

__all__ = ["IDEFICS3_CHAT_TEMPLATE", "build_tiny_idefics3"]

IDEFICS3_BOS_TOKEN = "<|im_start|>"
IDEFICS3_PAD_TOKEN = "<|endoftext|>"
IDEFICS3_END_OF_UTTERANCE = "<end_of_utterance>"
IDEFICS3_FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
IDEFICS3_GLOBAL_IMAGE_TOKEN = "<global-img>"

#: SmolVLM's chat template ("<|im_start|>User:<image>How many?<end_of_utterance>\nAssistant:"), which also
#: accepts plain-string content. The processor expands each <image> into
#: <fake_token_around_image><global-img><image>*image_seq_len<fake_token_around_image>.
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' }}{{ message['content'] }}"
    "{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{ line['text'] }}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_tiny_idefics3(
    path: str | Path,
    *,
    vocab_texts: Iterable[str],
    hidden_size: int = 64,
    num_layers: int = 2,
    image_size: int = 64,
    patch_size: int = 16,
    scale_factor: int = 2,
    seed: int = 0,
    vocab_size: int = 512,
) -> Path:
    """Create a seeded random tiny `Idefics3ForConditionalGeneration` (SmolVLM's architecture) and its processor.

    Images are resized to `image_size` px squares (no splitting into tiles), cut into `patch_size` px patches by
    the SigLIP-like vision tower, and pixel-shuffled by `scale_factor`, so each image becomes
    (image_size / patch_size / scale_factor) ** 2 `<image>` tokens (4 by default). The tokenizer is a byte-level
    BPE trained on `vocab_texts` with Idefics3's special tokens and SmolVLM's chat template.

    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText, AutoProcessor
    >>> path = build_tiny_idefics3(tempfile.mkdtemp(), vocab_texts=["How many circles are there?", "3"])
    >>> type(AutoModelForImageTextToText.from_pretrained(path)).__name__
    'Idefics3ForConditionalGeneration'
    >>> AutoProcessor.from_pretrained(path).image_seq_len
    4
    """
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    if image_size % (patch_size * scale_factor):
        raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size * scale_factor "
                         f"({patch_size} * {scale_factor})")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = [IDEFICS3_PAD_TOKEN, IDEFICS3_BOS_TOKEN, IDEFICS3_END_OF_UTTERANCE, IDEFICS3_FAKE_IMAGE_TOKEN,
                IMAGE_TOKEN, IDEFICS3_GLOBAL_IMAGE_TOKEN]
    texts = ["User: ", "User:", "Assistant:", *vocab_texts]
    tokenizer = bpe_tokenizer(
        texts, specials, vocab_size, IDEFICS3_CHAT_TEMPLATE,
        bos_token=IDEFICS3_BOS_TOKEN,
        eos_token=IDEFICS3_END_OF_UTTERANCE,  # SmolVLM ends its turn with <end_of_utterance>
        pad_token=IDEFICS3_PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
        do_image_splitting=False,
    )
    image_seq_len = (image_size // patch_size // scale_factor) ** 2
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )
    heads = max(1, hidden_size // 16)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in specials}
    config = Idefics3Config(
        vision_config={
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": heads,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        text_config={
            "model_type": "llama",
            **decoder_config(len(tokenizer), hidden_size, num_layers, bos=ids[IDEFICS3_BOS_TOKEN],
                             eos=ids[IDEFICS3_END_OF_UTTERANCE], pad=ids[IDEFICS3_PAD_TOKEN]),
        },
        image_token_id=ids[IMAGE_TOKEN],
        scale_factor=scale_factor,
        pad_token_id=ids[IDEFICS3_PAD_TOKEN],
    )
    return save_seeded(Idefics3ForConditionalGeneration, config, processor, path, seed=seed,
                       pad=ids[IDEFICS3_PAD_TOKEN], bos=ids[IDEFICS3_BOS_TOKEN], eos=ids[IDEFICS3_END_OF_UTTERANCE])
