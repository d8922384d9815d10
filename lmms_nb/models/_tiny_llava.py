"""`build_tiny_llava`: a tiny `LlavaForConditionalGeneration` (CLIP vision tower + Llama decoder), its
LLaVA-1.5-like chat template and special tokens, and the tokenizer trained on the texts it will see.

See `lmms_nb.models.tiny` for an example.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lmms_nb.models._tiny_shared import bpe_tokenizer, decoder_config, save_seeded

__all__ = ["BOS_TOKEN", "CHAT_TEMPLATE", "EOS_TOKEN", "IMAGE_TOKEN", "PAD_TOKEN", "build_tiny_llava"]

IMAGE_TOKEN = "<image>"
PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"

#: A LLaVA-1.5-like template ("USER: <image>\n... ASSISTANT:") that understands both plain-string content and the
#: content-list format [{"type": "image"}, {"type": "text", "text": ...}] used by processors' apply_chat_template.
#: The template writes the BOS token itself, so the tokenizer has no post-processor adding special tokens.
#: Newlines are written as {{ '\\n' }} because transformers renders templates with trim_blocks=True, which would
#: swallow a literal newline after a block tag.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}SYSTEM: "
    "{% elif message['role'] == 'user' %}USER: "
    "{% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)



def _train_tokenizer(vocab_texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `vocab_texts`, wrapped for transformers."""
    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN]
    # the chat template's own words are always in the vocabulary
    texts = ["USER: ", "ASSISTANT:", "SYSTEM: ", *vocab_texts]
    return bpe_tokenizer(texts, specials, vocab_size, CHAT_TEMPLATE, pad_token=PAD_TOKEN, bos_token=BOS_TOKEN,
                         eos_token=EOS_TOKEN, extra_special_tokens={"image_token": IMAGE_TOKEN})


def build_tiny_llava(
    path: str | Path,
    *,
    vocab_texts: Iterable[str],
    hidden_size: int = 64,
    num_layers: int = 2,
    image_size: int = 64,
    patch_size: int = 16,
    seed: int = 0,
    vocab_size: int = 512,
    vision_hidden_size: int | None = None,
    vision_layers: int | None = None,
    vision_feature_layer: int = -1,
    vision_config: dict | None = None,
    keep_cls: bool = False,
) -> Path:
    """Create a randomly initialised (seeded) tiny LLaVA with its processor and save both into `path`.

    The tokenizer is a byte-level BPE of at most `vocab_size` tokens trained on `vocab_texts` (questions and
    answers the model will see); the vision tower is a CLIP ViT over `image_size` px images cut into
    `patch_size` px patches (`vision_config`: `CLIPVisionConfig` fields that override the tower's defaults;
    `keep_cls`: the language model sees CLIP's CLS token too, LLaVA's "full" feature strategy). The folder
    reloads with `AutoProcessor` / `AutoModelForImageTextToText`. Returns `path`. See the module docstring for an example.
    """
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    if image_size % patch_size:
        raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_texts, vocab_size)
    strategy = "full" if keep_cls else "default"
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped again by the "default" strategy
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )
    vision_hidden = vision_hidden_size or hidden_size
    vision_config = CLIPVisionConfig(**{
        "hidden_size": vision_hidden,
        "intermediate_size": 2 * vision_hidden,
        "num_hidden_layers": vision_layers or num_layers,
        "num_attention_heads": max(1, vision_hidden // 16),
        "image_size": image_size,
        "patch_size": patch_size,
        "projection_dim": vision_hidden,
        **(vision_config or {}),
    })
    text_config = LlamaConfig(
        **decoder_config(len(tokenizer), hidden_size, num_layers, bos=tokenizer.bos_token_id,
                         eos=tokenizer.eos_token_id, pad=tokenizer.pad_token_id),
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(image_size // patch_size) ** 2 + keep_cls,
        vision_feature_select_strategy=strategy,
        # default: the last layer; with only a couple of vision layers the usual -2 would leave one unused
        vision_feature_layer=vision_feature_layer,
    )
    config.pad_token_id = tokenizer.pad_token_id
    return save_seeded(LlavaForConditionalGeneration, config, processor, path, seed=seed, pad=tokenizer.pad_token_id,
                       bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id)
