"""The LLaVA-NeXT repository's image and prompt handling, as lmms-eval 0.7.3's `llava_onevision` class uses it.

Ported from LLaVA-NeXT (`llava/mm_utils.py`, `llava/model/llava_arch.py`, `llava/conversation.py`) so that an
original-format LLaVA-OneVision checkpoint gets the pixels, image features and token sequence it gets there:

- `process_anyres_image`: the best grid pinpoint for the image, the image resized (PIL's default filter) and
  centred on black, cut into tiles, the whole image squashed to one tile first; each tile through SigLIP's
  preprocessing (bicubic resize, 1/255, mean 0.5, std 0.5). Sizes are (width, height) throughout, as there.
- `process_padded_image`: several images per doc, each padded square with grey and one tile, no newline.
- `pack_image_features`: tile features laid out on the grid, the padding cut off (`unpad_image`), shrunk
  bilinearly when larger than `anyres_max_N` tiles, a newline embedding after each row, the base tile first.
- `qwen_1_5_prompt` and `tokenizer_image_token`: the conversation template and the `<image>` placeholder as
  the position of the image features (LLaVA-NeXT's IMAGE_TOKEN_INDEX, never a vocabulary token).

Example:
    >>> select_best_resolution((50, 70), [[384, 384], [384, 768], [768, 384]])
    (384, 384)
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["IMAGE_TOKEN_INDEX", "pack_image_features", "process_anyres_image", "process_padded_image", "qwen_1_5_prompt",
           "select_best_resolution", "tokenizer_image_token"]

#: where LLaVA-NeXT's input ids mark an image (its llava.constants.IMAGE_TOKEN_INDEX)
IMAGE_TOKEN_INDEX = -200
DEFAULT_IMAGE_TOKEN = "<image>"
#: LLaVA-NeXT's conv_templates["qwen_1_5"] (conv_qwen, SeparatorStyle.CHATML)
_QWEN_SYSTEM = "<|im_start|>system\nYou are a helpful assistant."
_QWEN_ROLES = ("<|im_start|>user", "<|im_start|>assistant")
_QWEN_SEP = "<|im_end|>"
CONV_TEMPLATES = ("qwen_1_5", "qwen_2")  # the two names LLaVA-NeXT gives conv_qwen


def qwen_1_5_prompt(question: str, n_images: int, answer: str | None = None) -> str:
    """The prompt lmms-eval's class builds: `<image>` placeholders (space-separated, then a newline) before the
    question unless it has one, as the user turn of the qwen_1_5 template, the assistant turn opened (or, with
    `answer`, holding it and closed, as for a loglikelihood request)."""
    if n_images and DEFAULT_IMAGE_TOKEN not in question:
        question = " ".join([DEFAULT_IMAGE_TOKEN] * n_images) + "\n" + question
    ret = _QWEN_SYSTEM + _QWEN_SEP + "\n"
    ret += _QWEN_ROLES[0] + "\n" + question + _QWEN_SEP + "\n"
    if answer:  # LLaVA-NeXT's CHATML get_prompt: an empty message leaves the turn open
        return ret + _QWEN_ROLES[1] + "\n" + answer + _QWEN_SEP + "\n"
    return ret + _QWEN_ROLES[1] + "\n"


def tokenizer_image_token(prompt: str, tokenizer: Any) -> list[int]:
    """The prompt's ids with IMAGE_TOKEN_INDEX where `<image>` was (each text chunk tokenized on its own)."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(DEFAULT_IMAGE_TOKEN)]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for k, chunk in enumerate(chunks):
        if k:
            ids.extend([IMAGE_TOKEN_INDEX] * (offset + 1))
        ids.extend(chunk[offset:])
    return ids


def select_best_resolution(original_size: tuple[int, int], possible_resolutions: list) -> tuple[int, int]:
    """The (width, height) pinpoint keeping most of the image's pixels, then wasting least (first one on ties)."""
    original_width, original_height = original_size
    best_fit, max_effective, min_wasted = None, 0, float("inf")
    for width, height in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        downscaled_width, downscaled_height = int(original_width * scale), int(original_height * scale)
        effective = min(downscaled_width * downscaled_height, original_width * original_height)
        wasted = width * height - effective
        if effective > max_effective or (effective == max_effective and wasted < min_wasted):
            max_effective, min_wasted, best_fit = effective, wasted, (width, height)
    return best_fit


def grid_pinpoints(value: Any, tile: int) -> list:
    """The config's image_grid_pinpoints: a list of [width, height], or LLaVA-NeXT's "(1x1),...,(6x6)" string."""
    if isinstance(value, str) and "x" in value:
        matches = re.findall(r"\((\d+)x(\d+)\)", value)
        start, end = tuple(map(int, matches[0])), tuple(map(int, matches[-1]))
        return [[i * tile, j * tile] for i in range(start[0], end[0] + 1) for j in range(start[1], end[1] + 1)]
    if isinstance(value, str):
        import ast

        return ast.literal_eval(value)
    return value


def _resize_and_pad(image: Any, target: tuple[int, int]) -> Any:
    from PIL import Image

    original_width, original_height = image.size
    target_width, target_height = target
    scale_w, scale_h = target_width / original_width, target_height / original_height
    if scale_w < scale_h:
        new_width, new_height = target_width, min(math.ceil(original_height * scale_w), target_height)
    else:
        new_height, new_width = target_height, min(math.ceil(original_width * scale_h), target_width)
    resized = image.resize((new_width, new_height))
    padded = Image.new("RGB", (target_width, target_height), (0, 0, 0))
    padded.paste(resized, ((target_width - new_width) // 2, (target_height - new_height) // 2))
    return padded


def _siglip_preprocess(image: Any, tile: int):
    """LLaVA-NeXT's SigLipImageProcessor.preprocess of one PIL image: a (3, tile, tile) float32 array."""
    import numpy as np
    from PIL import Image

    # transformers' resize of a uint8 array goes through PIL (bicubic) and back; rescale then normalize in float32
    array = np.asarray(image.convert("RGB").resize((tile, tile), resample=Image.BICUBIC))
    array = (array.astype(np.float64) * (1 / 255)).astype(np.float32)
    array = (array - np.float32(0.5)) / np.float32(0.5)
    # C order, as the tensor transformers' BatchFeature makes of it: the same values laid out channels-last take
    # other float16 kernels downstream (the projector's output moved by up to 0.05 on the tiny model)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def process_padded_image(image: Any, tile: int = 384):
    """Several images per doc (lmms-eval's class then sets image_aspect_ratio "pad"): each one centred on a square
    of the processor's mean grey (127), then SigLIP's preprocessing: a float32 tensor (3, tile, tile)."""
    import torch
    from PIL import Image

    width, height = image.size
    if width != height:
        square = Image.new(image.mode, (max(width, height),) * 2, (127, 127, 127))
        square.paste(image, (0, (width - height) // 2) if width > height else ((height - width) // 2, 0))
        image = square
    return torch.from_numpy(_siglip_preprocess(image, tile))


def process_anyres_image(image: Any, pinpoints: Any, tile: int = 384):
    """anyres preprocessing of one PIL image: a float32 tensor (1 + tiles, 3, tile, tile), the whole image first."""
    import numpy as np
    import torch

    best = select_best_resolution(image.size, grid_pinpoints(pinpoints, tile))
    padded = _resize_and_pad(image, best)
    tiles = [padded.crop((x, y, x + tile, y + tile)) for y in range(0, padded.height, tile)
             for x in range(0, padded.width, tile)]
    squashed = image.resize((tile, tile))
    return torch.from_numpy(np.stack([_siglip_preprocess(t, tile) for t in [squashed, *tiles]]))


def unpad_image(tensor: Any, original_size: tuple[int, int]) -> Any:
    """A (C, H, W) feature map without the rows or columns that padding to the pinpoint added."""
    original_width, original_height = original_size
    current_height, current_width = tensor.shape[1:]
    if original_width / original_height > current_width / current_height:
        new_height = int(original_height * (current_width / original_width))
        padding = (current_height - new_height) // 2
        return tensor[:, padding: current_height - padding, :]
    new_width = int(original_width * (current_height / original_height))
    padding = (current_width - new_width) // 2
    return tensor[:, :, padding: current_width - padding]


def pack_image_features(features: Any, image_size: tuple[int, int], *, newline: Any, pinpoints: Any,
                        aspect_ratio: str, tile: int, patches_per_side: int):
    """One image's projected tile features (1 + tiles, patches, hidden) as the sequence LLaVA-NeXT feeds the LM
    (mm_patch_merge_type spatial_unpad, image_aspect_ratio anyres / anyres_max_N)."""
    import torch

    if features.shape[0] == 1:  # a single tile: its patches and one newline
        return torch.cat((features[0], newline[None]), dim=0)
    base, grid = features[0], features[1:]
    side = patches_per_side
    width, height = select_best_resolution(image_size, grid_pinpoints(pinpoints, tile))
    grid = grid.view(height // tile, width // tile, side, side, -1)
    grid = grid.permute(4, 0, 2, 1, 3).contiguous().flatten(1, 2).flatten(2, 3)
    grid = unpad_image(grid, image_size)
    matched = re.match(r"anyres_max_(\d+)", aspect_ratio)
    if matched:
        channels, h, w = grid.shape
        times = math.sqrt(h * w / (int(matched.group(1)) * side**2))
        if times > 1.1:
            grid = torch.nn.functional.interpolate(grid[None], [int(h // times), int(w // times)],
                                                   mode="bilinear")[0]
    grid = torch.cat((grid, newline[:, None, None].expand(*grid.shape[:-1], 1).to(grid.device)), dim=-1)
    return torch.cat((base, grid.flatten(1, 2).transpose(0, 1)), dim=0)
