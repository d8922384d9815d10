"""What every tiny model builder of `lmms_nb.models.tiny` shares: the byte-level BPE each tokenizer is trained as
(`byte_level_bpe`, wrapped for transformers by `bpe_tokenizer`), the Llama-like decoder's config fields
(`decoder_config`), and building, seeding and saving the model with its processor (`save_seeded`).

Example:
    >>> bpe = byte_level_bpe(["How many circles are there?", "3"], ["<pad>", "<image>"], 300)
    >>> bpe.token_to_id("<pad>"), bpe.token_to_id("<image>")
    (0, 1)
    >>> bpe.decode(bpe.encode("How many?").ids)
    'How many?'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["bpe_tokenizer", "byte_level_bpe", "decoder_config", "save_seeded"]


def byte_level_bpe(texts: Iterable[str], specials: list[str], vocab_size: int):
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


def bpe_tokenizer(texts: Iterable[str], specials: list[str], vocab_size: int, chat_template: str, **tokens: Any):
    """`byte_level_bpe` of `texts` wrapped for transformers, with the family's special `tokens` (pad_token,
    bos_token, eos_token, extra_special_tokens...) and chat template; padded on the left, as batched generation
    wants, and 512 positions long."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=byte_level_bpe(texts, specials, vocab_size),
        **tokens,
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def decoder_config(vocab_size: int, hidden_size: int, num_layers: int, *, bos: int | None, eos: int,
                   pad: int) -> dict[str, Any]:
    """The language model's config fields: `num_layers` Llama-like layers of width `hidden_size`, heads 16 wide,
    an MLP twice as wide, 512 positions, the given bos / eos / pad token ids."""
    heads = max(1, hidden_size // 16)
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": 512,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
    }


def save_seeded(model_class: Any, config: Any, processor: Any, path: Path, *, seed: int, pad: int | None,
                bos: int | None, eos: int | None) -> Path:
    """`model_class(config)` with random weights seeded by `seed` and generation tokens pad / bos / eos, saved
    with `processor` into `path`; returns `path`."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = pad, bos, eos
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
