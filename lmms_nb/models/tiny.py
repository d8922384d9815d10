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

from collections.abc import Iterable
from pathlib import Path

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


def _byte_level_bpe(texts: Iterable[str], specials: list[str], vocab_size: int):
    """A `tokenizers` byte-level BPE of at most `vocab_size` tokens trained on `texts`, `specials` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    # add_prefix_space=False: "ASSISTANT: 3" must tokenize the answer the same way in training and generation.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        # the full byte alphabet, so any text (an OCR answer never seen in training) still tokenizes
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    return backend


def _train_tokenizer(vocab_texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `vocab_texts`, wrapped for transformers."""
    from transformers import PreTrainedTokenizerFast

    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN]
    # the chat template's own words are always in the vocabulary
    texts = ["USER: ", "ASSISTANT:", "SYSTEM: ", *vocab_texts]
    backend = _byte_level_bpe(texts, specials, vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


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
    import torch
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
    heads = max(1, hidden_size // 16)
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
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
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
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# -- Qwen2.5-VL ------------------------------------------------------------------------------------------------

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
    import torch
    import transformers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    prefix = {"2": "Qwen2VL", "2.5": "Qwen2_5_VL"}[generation]
    config_class = getattr(transformers, f"{prefix}Config")
    model_class = getattr(transformers, f"{prefix}ForConditionalGeneration")
    processor_class = getattr(transformers, f"{prefix}Processor")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = [QWEN_PAD_TOKEN, QWEN_IM_START, QWEN_IM_END, QWEN_VISION_START, QWEN_VISION_END, QWEN_IMAGE_PAD,
                QWEN_VIDEO_PAD]
    texts = ["system\nYou are a helpful assistant.", "user\n", "assistant\n", *vocab_texts]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(texts, specials, vocab_size),
        pad_token=QWEN_PAD_TOKEN,
        eos_token=QWEN_IM_END,  # an Instruct checkpoint stops at the end of its turn
        extra_special_tokens={"image_token": QWEN_IMAGE_PAD, "video_token": QWEN_VIDEO_PAD},
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
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
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": 512,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section},
            "bos_token_id": ids[QWEN_IM_START],
            "eos_token_id": ids[QWEN_IM_END],
            "pad_token_id": ids[QWEN_PAD_TOKEN],
        },
        vision_config=vision_config,
        image_token_id=ids[QWEN_IMAGE_PAD],
        video_token_id=ids[QWEN_VIDEO_PAD],
        vision_start_token_id=ids[QWEN_VISION_START],
        vision_end_token_id=ids[QWEN_VISION_END],
    )
    torch.manual_seed(seed)
    model = model_class(config)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = ids[QWEN_PAD_TOKEN], None, ids[QWEN_IM_END]
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# -- Idefics3 / SmolVLM ----------------------------------------------------------------------------------------

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
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )

    if image_size % (patch_size * scale_factor):
        raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size * scale_factor "
                         f"({patch_size} * {scale_factor})")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = [IDEFICS3_PAD_TOKEN, IDEFICS3_BOS_TOKEN, IDEFICS3_END_OF_UTTERANCE, IDEFICS3_FAKE_IMAGE_TOKEN,
                IMAGE_TOKEN, IDEFICS3_GLOBAL_IMAGE_TOKEN]
    texts = ["User: ", "User:", "Assistant:", *vocab_texts]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(texts, specials, vocab_size),
        bos_token=IDEFICS3_BOS_TOKEN,
        eos_token=IDEFICS3_END_OF_UTTERANCE,  # SmolVLM ends its turn with <end_of_utterance>
        pad_token=IDEFICS3_PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = IDEFICS3_CHAT_TEMPLATE
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
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": 512,
            "bos_token_id": ids[IDEFICS3_BOS_TOKEN],
            "eos_token_id": ids[IDEFICS3_END_OF_UTTERANCE],
            "pad_token_id": ids[IDEFICS3_PAD_TOKEN],
        },
        image_token_id=ids[IMAGE_TOKEN],
        scale_factor=scale_factor,
        pad_token_id=ids[IDEFICS3_PAD_TOKEN],
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = (
        ids[IDEFICS3_PAD_TOKEN],
        ids[IDEFICS3_BOS_TOKEN],
        ids[IDEFICS3_END_OF_UTTERANCE],
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
