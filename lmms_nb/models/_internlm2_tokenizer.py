# Ported from InternLM2's tokenization_internlm2.py (OpenGVLab/InternVL at 2410d1d,
# internvl_chat/internvl/model/internlm2/tokenization_internlm2.py, itself based on transformers' LlamaTokenizer):
#     Copyright (c) The InternLM team and The HuggingFace Inc. team. All rights reserved.
#     Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file except in compliance
#     with the License. You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
# Modified for lmms-nb (Apache-2.0 as well): type hints, the remote-code loading hooks dropped, `is_internlm2_tokenizer`
# and `load_internlm2_tokenizer` added.
"""InternLM2's tokenizer (`InternLM2Tokenizer`, the remote code of internlm/internlm2-* and of OpenGVLab's InternVL2-2B /
8B / 26B, Mini-InternVL-Chat-2B), written here so that those checkpoints load with no remote code run: a
sentencepiece model (`tokenizer.model`) behind transformers' Python tokenizer, BOS prepended, decoding as that code
decodes (its `convert_tokens_to_string`, leading character dropped included). Ported from OpenGVLab's copy
(internvl_chat/internvl/model/internlm2/tokenization_internlm2.py, Apache-2.0, after InternLM's and transformers'
LlamaTokenizer); `tests/test_vs_lmms_eval_073.py` compares it with that code run by lmms-eval 0.7.3.

Example:
    >>> is_internlm2_tokenizer({"tokenizer_class": "InternLM2Tokenizer"}), is_internlm2_tokenizer({})
    (True, False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizer

__all__ = ["InternLM2Tokenizer", "check_slow_internlm2", "is_internlm2_tokenizer", "load_internlm2_tokenizer"]


def is_internlm2_tokenizer(tokenizer_config: dict[str, Any]) -> bool:
    """True where tokenizer_config.json names InternLM2's remote-code tokenizer (slow or fast)."""
    return tokenizer_config.get("tokenizer_class") in ("InternLM2Tokenizer", "InternLM2TokenizerFast")


def check_slow_internlm2(tokenizer_config: dict[str, Any], path: Path, *, use_fast: bool) -> None:
    """A ValueError naming tokenizer_config.json's `auto_map.AutoTokenizer` where `AutoTokenizer.from_pretrained(
    trust_remote_code=True, use_fast=use_fast)` (what lmms-eval runs) would load `InternLM2TokenizerFast`, which
    lmms-nb does not port: it is not the slow class under another name. Its tokens come from a `tokenizers` BPE
    whose merges are re-derived from tokenizer.model (sentencepiece segments by itself), and its decoder (`▁` to
    space, byte fallback, one leading space stripped) has no counterpart of the slow class's space before special
    tokens in `convert_tokens_to_string`; so the two can give different ids and texts, and answers would differ.

    >>> check_slow_internlm2({"auto_map": {"AutoTokenizer": ["t.InternLM2Tokenizer", None]}}, Path("t.json"),
    ...                      use_fast=True)
    >>> check_slow_internlm2({"auto_map": {"AutoTokenizer": ["t.InternLM2Tokenizer", "t.InternLM2TokenizerFast"]}},
    ...                      Path("t.json"), use_fast=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: t.json: field 'auto_map.AutoTokenizer' is [...]: AutoTokenizer would load the fast class ...
    """
    auto = (tokenizer_config.get("auto_map") or {}).get("AutoTokenizer")
    slow, fast = ([*auto, None][:2] if isinstance(auto, (list, tuple)) else (auto, None))
    chosen = fast if use_fast and fast is not None else slow  # transformers' AutoTokenizer rule
    if str(chosen).rsplit(".", 1)[-1] != "InternLM2Tokenizer":
        raise ValueError(f"{path}: field 'auto_map.AutoTokenizer' is {auto!r}: AutoTokenizer would load the fast "
                         f"class {str(chosen).rsplit('.', 1)[-1]} there; lmms-nb only has InternLM2Tokenizer "
                         "(the slow one)")


class InternLM2Tokenizer(PreTrainedTokenizer):
    """InternLM2's sentencepiece tokenizer (see module)."""

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str, unk_token: str = "<unk>", bos_token: str = "<s>", eos_token: str = "</s>",
                 pad_token: str = "</s>", sp_model_kwargs: dict[str, Any] | None = None, add_bos_token: bool = True,
                 add_eos_token: bool = False, decode_with_prefix_space: bool = False,
                 clean_up_tokenization_spaces: bool = False, **kwargs: Any) -> None:
        import sentencepiece as spm

        self.sp_model_kwargs = sp_model_kwargs or {}
        self.vocab_file, self.add_bos_token, self.add_eos_token = vocab_file, add_bos_token, add_eos_token
        self.decode_with_prefix_space = decode_with_prefix_space
        self.sp_model = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        self.sp_model.Load(vocab_file)
        self._no_prefix_space_tokens: set[int] | None = None
        kwargs.pop("auto_map", None)
        super().__init__(bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, pad_token=pad_token,
                         clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)

    @property
    def no_prefix_space_tokens(self) -> set[int]:
        if self._no_prefix_space_tokens is None:
            vocab = self.convert_ids_to_tokens(list(range(self.vocab_size)))
            self._no_prefix_space_tokens = {i for i, tok in enumerate(vocab) if not tok.startswith("▁")}
        return self._no_prefix_space_tokens

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    @property
    def bos_token_id(self) -> int | None:
        return self.sp_model.bos_id()

    @property
    def eos_token_id(self) -> int | None:
        return self.sp_model.eos_id()

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.convert_ids_to_tokens(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self.sp_model.IdToPiece(index)

    def _maybe_add_prefix_space(self, tokens: list[str], decoded: str) -> str:
        # as the original: `tokens[0]` (a string) looked up among ids, so the space is always added
        return " " + decoded if tokens and tokens[0] not in self.no_prefix_space_tokens else decoded

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        current: list[str] = []
        out, prev_is_special = "", False
        for token in tokens:
            if token in self.all_special_tokens:
                if not prev_is_special:
                    out += " "
                out += self.sp_model.decode(current) + token
                prev_is_special, current = True, []
            else:
                current.append(token)
                prev_is_special = False
        out += self.sp_model.decode(current)
        out = self._maybe_add_prefix_space(tokens=tokens, decoded=self.clean_up_tokenization(out))
        return out[1:]

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None
                                         ) -> list[int]:
        output = ([self.bos_token_id] if self.add_bos_token else []) + token_ids_0
        if token_ids_1 is not None:
            output = output + token_ids_1
        return output + ([self.eos_token_id] if self.add_eos_token else [])

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0=token_ids_0, token_ids_1=token_ids_1,
                                                   already_has_special_tokens=True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None
                                             ) -> list[int]:
        eos = [self.eos_token_id]
        if token_ids_1 is None:
            return len(token_ids_0 + eos) * [0]
        return len(token_ids_0 + eos + token_ids_1 + eos) * [0]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        out = Path(save_directory) / ((filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        out.write_bytes(self.sp_model.serialized_model_proto())
        return (str(out),)


def load_internlm2_tokenizer(folder: str | Path) -> InternLM2Tokenizer:
    """The checkpoint's InternLM2 tokenizer (tokenizer.model, tokenizer_config.json's added tokens and settings)."""
    return InternLM2Tokenizer.from_pretrained(str(folder))
