"""synthbench v1's generators, kept so that data generated from v1 can be made again byte for byte.

v2 (`lmms_nb.tasks.synthbench`) made mcq, ocr, chart and yes/no learnable by a tiny VLM in a short budget; the
committed lmms-eval 0.7.3 fixtures (tests/fixtures/lmms_eval_073) were recorded on v1 count and mcq rows, so
`build_synthbench(version="v1")` still makes them. count is the same in both versions.

Example:
    >>> from lmms_nb.tasks._synthbench_v1 import GENERATORS_V1
    >>> sorted(GENERATORS_V1)
    ['chart', 'count', 'mcq', 'ocr', 'yesno']
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

from lmms_nb.tasks.synthbench import (
    BACKGROUNDS,
    BAR_LETTERS,
    COLORS,
    IMAGE_SIZE,
    MCQ_SHAPES,
    POSITIONS,
    YESNO_SHAPES,
    Row,
    _canvas,
    _draw_shape,
    _font,
    _gen_count,
    _pick,
    _png,
)

__all__ = ["GENERATORS_V1"]

OCR_WORDS_V1 = (
    "cat", "dog", "sun", "box", "cup", "hat", "key", "pen", "map", "bus",
    "bird", "fish", "tree", "door", "lamp", "ship", "book", "moon", "star", "rain",
    "apple", "house", "water", "light", "chair", "table", "plant", "clock", "bread", "train",
)  # fmt: skip
OCR_BACKGROUNDS_V1: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "yellow": (250, 225, 90),
    "blue": (40, 70, 190),
    "black": (20, 20, 20),
    "green": (40, 140, 60),
    "pink": (250, 190, 200),
}


def _shuffled_options(rng: np.random.Generator, correct: str, pool) -> tuple[list[str], str]:
    """Four options: the correct one and three distractors from `pool`, shuffled; returns (options, letter)."""
    distractors = _pick(rng, tuple(p for p in pool if p != correct), size=3, replace=False)
    options = [correct, *distractors]
    order = rng.permutation(4)
    options = [options[int(i)] for i in order]
    return options, "ABCD"[options.index(correct)]



def _gen_mcq(rng: np.random.Generator) -> Iterator[list[Row]]:
    while True:
        category = _pick(rng, ("color", "shape", "position"))
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image, draw = _canvas(background)
        if category in ("color", "shape"):
            kind = _pick(rng, MCQ_SHAPES)
            color = _pick(rng, tuple(COLORS))
            r = int(rng.integers(16, 22))
            cx, cy = 32 + int(rng.integers(-6, 7)), 32 + int(rng.integers(-6, 7))
            _draw_shape(draw, kind, cx, cy, r, COLORS[color])
            if category == "color":
                question = "What color is the shape in the image?"
                options, letter = _shuffled_options(rng, color, tuple(COLORS))
            else:
                question = "What shape is shown in the image?"
                options, letter = _shuffled_options(rng, kind, MCQ_SHAPES)
        else:
            # the named shape on one side, a shape of another colour on the opposite side
            where = _pick(rng, POSITIONS)
            kind, other_kind = _pick(rng, YESNO_SHAPES, size=2)
            color, other_color = _pick(rng, tuple(COLORS), size=2, replace=False)
            near, far = int(rng.integers(12, 17)), int(rng.integers(47, 52))
            along, across = int(rng.integers(22, 43)), int(rng.integers(22, 43))
            spots = {
                "left": ((near, along), (far, across)),
                "right": ((far, along), (near, across)),
                "top": ((along, near), (across, far)),
                "bottom": ((along, far), (across, near)),
            }[where]
            _draw_shape(draw, kind, *spots[0], 9, COLORS[color])
            _draw_shape(draw, other_kind, *spots[1], 9, COLORS[other_color])
            question = f"Where is the {color} {kind} in the image?"
            options, letter = _shuffled_options(rng, where, POSITIONS)
        yield [
            {
                "image": _png(image),
                "question": question,
                "answer": letter,
                "category": category,
                **dict(zip("ABCD", options)),
            }
        ]


@functools.lru_cache(maxsize=None)
def _ocr_font_size(word: str, max_width: int = IMAGE_SIZE - 6, largest: int = 30) -> int:
    """The largest default-font size at which `word` fits the image width."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for size in range(largest, 9, -1):
        left, _, right, _ = probe.textbbox((0, 0), word, font=_font(size))
        if right - left <= max_width:
            return size
    return 10


def _gen_ocr(rng: np.random.Generator) -> Iterator[list[Row]]:
    while True:
        word = _pick(rng, OCR_WORDS_V1)
        background_name = _pick(rng, tuple(OCR_BACKGROUNDS_V1))
        background = OCR_BACKGROUNDS_V1[background_name]
        # dark text on light backgrounds, white on dark (relative luminance, ITU-R BT.601 weights)
        luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        text = word.upper()  # capitals stay legible at 64 px; the answer is lower case as in TextVQA
        size = _ocr_font_size(text) - int(rng.integers(0, 4))
        font = _font(size)
        image, draw = _canvas(background)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        slack_x = max(0, IMAGE_SIZE - (right - left) - 4)
        slack_y = max(0, IMAGE_SIZE - (bottom - top) - 4)
        x = 2 - left + int(rng.integers(0, slack_x + 1))
        y = 2 - top + int(rng.integers(0, slack_y + 1))
        draw.text((x, y), text, fill=ink, font=font)
        yield [
            {
                "image": _png(image),
                "question": "What word is written in the image?",
                "answer": word,
                "category": f"{len(word)}-letter",
            }
        ]


def _gen_chart(rng: np.random.Generator) -> Iterator[list[Row]]:
    label_font = _font(10)
    base_y, unit = 53, 4  # bars stand on y=53; a value v is v*4 px tall (9 -> 36 px)
    while True:
        n_bars = int(rng.integers(3, 5))
        values = [int(v) for v in rng.choice(np.arange(1, 10), size=n_bars, replace=False)]  # distinct
        letters = BAR_LETTERS[:n_bars]
        color = COLORS[_pick(rng, tuple(COLORS))]
        image, draw = _canvas((255, 255, 255))
        slot = IMAGE_SIZE / n_bars
        width = 10 if n_bars == 4 else 12
        draw.line((0, base_y, IMAGE_SIZE - 1, base_y), fill=(120, 120, 120))
        for i, (letter, value) in enumerate(zip(letters, values)):
            cx = slot * i + slot / 2
            top = base_y - value * unit
            draw.rectangle((cx - width / 2, top, cx + width / 2 - 1, base_y - 1), fill=color)
            draw.text((cx, top - 1), str(value), fill=(0, 0, 0), font=label_font, anchor="md")
            draw.text((cx, base_y + 1), letter, fill=(0, 0, 0), font=label_font, anchor="mt")
        kind = _pick(rng, ("value", "max", "diff"))
        if kind == "value":
            i = int(rng.integers(n_bars))
            question, answer = f"What is the value of bar {letters[i]}?", str(values[i])
        elif kind == "max":
            question, answer = "Which bar is the tallest?", letters[int(np.argmax(values))]
        else:
            i, j = (int(k) for k in rng.choice(n_bars, size=2, replace=False))
            if values[i] < values[j]:
                i, j = j, i  # name the larger bar first so the difference is positive
            question = f"What is the difference between bar {letters[i]} and bar {letters[j]}?"
            answer = str(values[i] - values[j])
        yield [{"image": _png(image), "question": question, "answer": answer, "category": kind}]


def _gen_yesno(rng: np.random.Generator) -> Iterator[list[Row]]:
    cell = IMAGE_SIZE // 3  # a 3x3 grid (21 px cells), one shape per cell
    while True:
        n = int(rng.integers(1, 4))
        shapes = []  # (kind, colour name)
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image, draw = _canvas(background)
        for index in rng.choice(9, size=n, replace=False):
            row, col = divmod(int(index), 3)
            kind, color = _pick(rng, YESNO_SHAPES), _pick(rng, tuple(COLORS))
            cx = col * cell + cell / 2 + int(rng.integers(-1, 2))
            cy = row * cell + cell / 2 + int(rng.integers(-1, 2))
            _draw_shape(draw, kind, cx, cy, int(rng.integers(6, 9)), COLORS[color])
            shapes.append((kind, color))
        kinds = {k for k, _ in shapes}
        category = _pick(rng, ("existence", "color", "count"))
        if category == "existence":
            present = _pick(rng, tuple(sorted(kinds)))
            absent = _pick(rng, tuple(k for k in YESNO_SHAPES if k not in kinds))  # <= 3 of 4 kinds drawn
            yes_q, no_q = (f"Is there a {k} in the image?" for k in (present, absent))
        elif category == "color":
            kind, color = shapes[int(rng.integers(n))]
            colors_of_kind = {c for k, c in shapes if k == kind}
            wrong = _pick(rng, tuple(c for c in COLORS if c not in colors_of_kind))
            yes_q, no_q = (f"Is there a {c} {kind} in the image?" for c in (color, wrong))
        else:
            wrong_n = _pick(rng, tuple(m for m in range(1, 5) if m != n))
            yes_q, no_q = (
                "Is there exactly 1 shape in the image?" if m == 1 else f"Are there exactly {m} shapes in the image?"
                for m in (n, wrong_n)
            )
        png = _png(image)
        pair = [
            {"image": png, "question": yes_q, "answer": "Yes", "category": category},
            {"image": png, "question": no_q, "answer": "No", "category": category},
        ]
        if rng.integers(2):  # the "no" question first half of the time: order carries no signal
            pair.reverse()
        yield pair


GENERATORS_V1: dict[str, Callable[[np.random.Generator], Iterator[list[Row]]]] = {
    "count": _gen_count,
    "mcq": _gen_mcq,
    "ocr": _gen_ocr,
    "chart": _gen_chart,
    "yesno": _gen_yesno,
}
