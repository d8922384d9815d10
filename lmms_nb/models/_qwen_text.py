"""Qwen's processor tokenizing each prompt with one `<|image_pad|>` per image, the image's run of pad tokens put in
afterwards as ids: the same `input_ids`, `attention_mask` and `mm_token_type_ids`, without tokenizing hundreds of
pad tokens.

`Qwen2_5_VLProcessor.__call__` (and Qwen2-VL's) writes each image's placeholder out as text, `<|image_pad|>` once per
merged patch (256 of them for a 448x448 image), tokenizes that long string, counts the pad tokens back out of the ids
against the text (a regex over every prompt) and builds `mm_token_type_ids` with numpy row by row: about 4% of
`benchmarks/bench_inprocess_vs_lmms_eval.py`'s in-process run, at one CPU thread (`benchmarks/bench_host_speed.py
--ab-text` times it with and without, at equal machine speed). `<|image_pad|>` is a special added token, which the tokenizer splits out of the text
before anything else, so the text around it is tokenized the same whether it stands once or 256 times: tokenizing
the short prompt and repeating the pad id gives the same ids. `processor_inputs` does that, and uses it for a
processor only once its first call gave transformers' own output bit for bit (that call returns transformers' own);
otherwise, and for anything besides images with a prompt's plain placeholders (videos, control-token markers,
truncation, other keyword arguments), the processor runs as it is.

Example:
    >>> from lmms_nb.models._qwen_text import fits
    >>> fits(object())
    False
"""

from __future__ import annotations

import inspect
import logging
import re
import weakref
from typing import Any

__all__ = ["fits", "processor_inputs"]

log = logging.getLogger(__name__)

#: the processors whose `replace_image_token` is `image_token * (grid_thw.prod() // merge_size ** 2)` (transformers 5)
QWEN_PROCESSORS = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor")
#: the keyword arguments (besides text and images) the fast form knows: padding, tensors, the image size bounds
_KNOWN_KWARGS = frozenset({"padding", "return_tensors", "min_pixels", "max_pixels"})
#: the text keyword arguments whose merged values the fast form reproduces (the tokenizer's defaults)
_TEXT_DEFAULTS = {"add_special_tokens": True, "truncation": None, "max_length": None, "stride": 0,
                  "is_split_into_words": False, "pad_to_multiple_of": None, "return_token_type_ids": None,
                  "return_attention_mask": None, "return_overflowing_tokens": False,
                  "return_special_tokens_mask": False, "return_offsets_mapping": False, "return_length": False,
                  "verbose": True}
#: transformers marks control tokens a user typed (text, not placeholders) with characters of the Supplementary
#: Private Use Area-A (`chat_template_utils._CONTROL_TOKEN_START`, U+F0000) and leaves a marked placeholder
#: unexpanded: any text with a character of that area is left to transformers, whichever marker it uses
_PRIVATE_USE_A = re.compile("[\U000f0000-\U000ffffd]")
#: processor -> whether the fast form gave its own output (absent: not checked yet); kept off the processor, whose
#: instance attributes transformers would serialise
_VERDICTS: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()
#: `_merge_kwargs` function -> whether it is 5.x's (`_merge_kwargs_needs_no_kwargs_class`)
_SIGNATURE_VERDICTS: dict[Any, bool] = {}


def fits(processor: Any) -> bool:
    """Whether `processor` is one of Qwen's (by class name) with a tokenizer and an image processor, from a
    transformers whose processor call the fast form follows (5.x: `_merge_kwargs` needs no kwargs class,
    `unused_input_names`, `image_token_ids`; 4.x's differs, and there the processor's own call runs)."""
    if type(processor).__name__ not in QWEN_PROCESSORS or not isinstance(getattr(processor, "image_token", None), str):
        return False
    return (getattr(processor, "tokenizer", None) is not None and getattr(processor, "image_processor", None) is not None
            and _merge_kwargs_needs_no_kwargs_class(processor._merge_kwargs)
            and hasattr(processor, "unused_input_names") and hasattr(processor, "image_token_ids"))


def _merge_kwargs_needs_no_kwargs_class(merge_kwargs: Any) -> bool:
    """Whether `_merge_kwargs` is transformers 5.x's (its kwargs class optional), remembered per function: asked on
    every batch, and `inspect.signature` is not free."""
    func = getattr(merge_kwargs, "__func__", merge_kwargs)
    if func not in _SIGNATURE_VERDICTS:
        try:
            kwargs_class = inspect.signature(func).parameters.get("ModelProcessorKwargs")
            _SIGNATURE_VERDICTS[func] = kwargs_class is None or kwargs_class.default is not inspect.Parameter.empty
        except (TypeError, ValueError):
            _SIGNATURE_VERDICTS[func] = False
    return _SIGNATURE_VERDICTS[func]


def _eligible(processor: Any, text: Any, images: Any, kwargs: dict[str, Any]) -> bool:
    if (not fits(processor) or _VERDICTS.get(processor) is False
            or not isinstance(images, (list, tuple)) or not images
            or not isinstance(text, list) or not all(isinstance(t, str) for t in text)
            or not set(kwargs) <= _KNOWN_KWARGS or kwargs.get("return_tensors") != "pt"):
        return False
    video_token = getattr(processor, "video_token", None)
    return (sum(t.count(processor.image_token) for t in text) == len(images)
            and not any(_PRIVATE_USE_A.search(t) or (video_token and video_token in t) for t in text))


def _fast(processor: Any, text: list[str], images: list[Any], kwargs: dict[str, Any]) -> Any:
    """transformers' `ProcessorMixin.__call__` for images and text, the pad tokens put in as ids (module doc)."""
    import torch
    from transformers import BatchFeature

    merged = processor._merge_kwargs(tokenizer_init_kwargs=processor.tokenizer.init_kwargs, **kwargs)
    text_kwargs = dict(merged["text_kwargs"])
    return_tensors = text_kwargs.pop("return_tensors", None)
    padding = text_kwargs.pop("padding", False)
    type_ids = text_kwargs.pop("return_mm_token_type_ids", merged.get("return_mm_token_type_ids"))
    text_kwargs.pop("return_text_replacement_offsets", None)
    padding_side = text_kwargs.pop("padding_side", None)  # the tokenizer's own (init kwargs), passed on to pad
    if any(text_kwargs.get(k, v) != v for k, v in _TEXT_DEFAULTS.items()) or set(text_kwargs) - set(_TEXT_DEFAULTS):
        return None  # truncation, max length, extra outputs...: the tokenizer's own handling of the long text
    image_inputs = processor.image_processor(processor.image_processor.fetch_images(images),
                                             **merged["images_kwargs"])
    merge = processor.image_processor.merge_size ** 2
    counts = iter((image_inputs["image_grid_thw"].prod(-1) // merge).tolist())
    pad_id = processor.image_token_id
    encoded = processor.tokenizer(text, add_special_tokens=text_kwargs.get("add_special_tokens", True))
    rows = []
    for ids in encoded["input_ids"]:
        row: list[int] = []
        for token in ids:
            if token == pad_id:
                row.extend([pad_id] * next(counts))
            else:
                row.append(token)
        rows.append(row)
    if next(counts, None) is not None:
        return None  # fewer pad ids than images: a placeholder the tokenizer did not keep whole
    text_inputs = processor.tokenizer.pad({"input_ids": rows}, padding=padding, padding_side=padding_side,
                                          return_tensors=return_tensors)
    data = dict(text_inputs)
    if type_ids:
        ids = data["input_ids"]
        types = torch.zeros_like(ids)
        for kind, token_ids in ((1, processor.image_token_ids), (2, getattr(processor, "video_token_ids", ()))):
            known = [i for i in token_ids or () if i is not None]  # a tokenizer without video pads has None
            if known:
                types[torch.isin(ids, torch.tensor(known))] = kind
        data["mm_token_type_ids"] = types
    data.update(image_inputs)
    data = {k: v for k, v in data.items() if k not in processor.unused_input_names}
    return BatchFeature(data, tensor_type=return_tensors)


def _same(mine: Any, expected: Any) -> bool:
    import torch

    return set(mine) == set(expected) and all(
        isinstance(mine[k], torch.Tensor) and isinstance(expected[k], torch.Tensor)
        and mine[k].dtype == expected[k].dtype and torch.equal(mine[k], expected[k]) for k in expected)


def processor_inputs(processor: Any, *, text: Any, images: Any = None, **kwargs: Any) -> Any:
    """`processor(text=text, images=images, **kwargs)`, with the pad tokens put in as ids where that was found to
    give the processor's own output (module doc); the first eligible call checks it and returns the processor's
    own. Anything not eligible (another processor, videos, other keyword arguments) is the processor's own call."""
    if not _eligible(processor, text, images, kwargs):
        return processor(text=text, images=images, **kwargs)
    try:
        mine = _fast(processor, text, images, kwargs)
    except Exception as error:  # noqa: BLE001  transformers' private API moved: its own call, from now on
        log.debug("Qwen processor, pad tokens put in as ids: failed (%r), not used", error)
        _VERDICTS[processor] = False
        return processor(text=text, images=images, **kwargs)
    if mine is None:
        return processor(text=text, images=images, **kwargs)
    if processor not in _VERDICTS:
        expected = processor(text=text, images=images, **kwargs)
        _VERDICTS[processor] = _same(mine, expected)
        log.debug("Qwen processor, pad tokens put in as ids: %s",
                  "identical, used from now on" if _VERDICTS[processor] else "differs, not used")
        return expected
    return mine
