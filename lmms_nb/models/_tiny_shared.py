"""What every tiny model builder of `lmms_nb.models.tiny` shares: the byte-level BPE each tokenizer is trained as.

Example:
    >>> bpe = byte_level_bpe(["How many circles are there?", "3"], ["<pad>", "<image>"], 300)
    >>> bpe.token_to_id("<pad>"), bpe.token_to_id("<image>")
    (0, 1)
    >>> bpe.decode(bpe.encode("How many?").ids)
    'How many?'
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["byte_level_bpe"]


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
