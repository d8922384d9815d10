"""synthbench: a deterministic offline benchmark of five small vision-language families, as HF datasets.

Each family imitates a public benchmark at 64x64 px, the size the offline tiny models see:

=========  ====================  ==========================================  ===================
family     imitates              question                                    metric
=========  ====================  ==========================================  ===================
count      CountBench            How many circles are in the image?          exact_match
mcq        MMBench               colour / shape / position, options A-D      choice_accuracy
ocr        TextVQA               What word is written in the image?          anls
chart      ChartQA               tallest / shortest bar, the tallest's value relaxed_accuracy
yesno      MME                   two questions per image, one yes, one no    acc, acc_plus
=========  ====================  ==========================================  ===================

`build_synthbench` writes one `datasets.DatasetDict` ("train", "test") per family with `save_to_disk`, under
``cache_dir("synthbench")/{VERSION}-seed{seed}-{n_train}-{n_test}/<family>``; the same seed gives byte-identical
images and rows. Importing this module registers the tasks ``synthbench_<family>`` (test split).

Example:
    >>> from lmms_nb.tasks.synthbench import load_synthbench, synthbench_task
    >>> ds = load_synthbench("count", n_train=20, n_test=10)
    >>> ds.num_rows, ds[0]["image"].size, ds[0]["question"].startswith("How many")
    (10, (64, 64), True)
    >>> task = synthbench_task("count", n_train=20, n_test=10)
    >>> doc = task.dataset()[0]
    >>> task.score(doc, doc["answer"])
    {'exact_match': 1.0}
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lmms_nb.config import cache_dir
from lmms_nb.metrics import (
    anls,
    choice_accuracy,
    exact_match,
    extract_choice_letter,
    mme_acc_plus,
    relaxed_accuracy,
    yes_no_accuracy,
)
from lmms_nb.tasks.registry import register_task
from lmms_nb.tasks.task import Metric, Task

if TYPE_CHECKING:  # imported where used: registering the tasks (any `lmms-nb eval`) must not cost datasets' import
    import datasets

__all__ = [
    "FAMILIES",
    "SYNTHBENCH_TASKS",
    "build_synthbench",
    "load_synthbench",
    "mc_letter_filter",
    "synthbench_path",
    "synthbench_task",
    "train_split_task",
]

FAMILIES = ("count", "mcq", "ocr", "chart", "yesno")
SYNTHBENCH_TASKS = tuple(f"synthbench_{family}" for family in FAMILIES)
SPLITS = ("train", "test")
#: bump when the generators change, so old caches are not mistaken for the new data
VERSION = "v2"
IMAGE_SIZE = 64
_MARKER = ".complete"

Row = dict[str, Any]

# Saturated, well separated colours: tell-apart-able at 64 px and by a tiny vision encoder.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
# Light backgrounds, none equal to a shape colour (the count test finds shapes as non-background pixels).
BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((255, 255, 255), (235, 235, 235), (250, 240, 220))
COUNT_SHAPES = ("circle", "square", "triangle")  # stay recognisable at 11-13 px
YESNO_SHAPES = ("circle", "square", "triangle", "diamond")
MCQ_SHAPES = ("circle", "square", "triangle", "diamond", "star")
POSITIONS = ("left", "right", "top", "bottom")
#: few, short words: a tiny model reads them in a short training budget (30 words of 3-5 letters at random
#: sizes and places were at chance after 600 steps: ~67 images per word carry no word identity it could learn)
OCR_WORDS = (
    "cat", "dog", "sun", "box", "cup", "hat",
    "bird", "fish", "tree", "door", "lamp", "moon",
)  # fmt: skip
#: light backgrounds with black ink, one dark with white ink (the planted blind spot of the slice-finding tests)
OCR_BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "yellow": (250, 225, 90),
    "black": (20, 20, 20),
}
BAR_LETTERS = "ABCD"

SHORT_ANSWER_PROMPT = "Answer with a single word or number."
YES_NO_PROMPT = "Please answer yes or no."
MCQ_PROMPT = "Answer with the option's letter from the given choices directly."


# ------------------------------------------------------------------------------------------ drawing


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, fill: tuple) -> None:
    """Draw a filled shape of "radius" r centred at (cx, cy), without anti-aliasing (pure-colour pixels)."""
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif kind == "square":
        s = r * 0.85  # same visual weight as a circle of radius r
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
    elif kind == "star":
        angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        draw.polygon([(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii)], fill=fill)
    else:  # pragma: no cover - generators only pass known kinds
        raise ValueError(f"unknown shape kind {kind!r}")


def _canvas(background: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), background)
    return image, ImageDraw.Draw(image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # fixed settings: same pixels -> same bytes; level 1 is ~2x faster than the default for flat drawings
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow >= 10.1 bundles a scalable default font: no font file or download needed.
    return ImageFont.load_default(size=size)


def _pick(rng: np.random.Generator, options, size=None, replace=True):
    """rng.choice over a tuple of strings, returned as plain Python values."""
    picked = rng.choice(len(options), size=size, replace=replace)
    if size is None:
        return options[int(picked)]
    return [options[int(i)] for i in picked]


# ---------------------------------------------------------------------------------------- generators
# Each generator yields groups of rows sharing one image (one row, or an MME yes/no pair), drawing every
# random number from the rng it is given, so a (seed, family, split) triple fixes the data.


def _gen_count(rng: np.random.Generator) -> Iterator[list[Row]]:
    cell = IMAGE_SIZE // 4  # a 4x4 grid: one shape per cell, so shapes never touch
    while True:
        n = int(rng.integers(1, 7))
        kind = _pick(rng, COUNT_SHAPES)
        color = _pick(rng, tuple(COLORS))
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image, draw = _canvas(background)
        for index in rng.choice(16, size=n, replace=False):
            row, col = divmod(int(index), 4)
            r = int(rng.integers(5, 7))
            jitter = cell // 2 - r - 1  # keeps at least one background pixel between neighbouring cells
            cx = col * cell + cell / 2 + int(rng.integers(-jitter, jitter + 1)) - 0.5
            cy = row * cell + cell / 2 + int(rng.integers(-jitter, jitter + 1)) - 0.5
            _draw_shape(draw, kind, cx, cy, r, COLORS[color])
        yield [
            {
                "image": _png(image),
                "question": f"How many {kind}s are in the image?",
                "answer": str(n),
                "category": kind,
            }
        ]


#: mcq options: always these four, in this order, per question kind. Options drawn and shuffled per question
#: make the answer a look-up (find the option naming what the image shows, answer the letter before it) that a
#: 2-layer model does not learn in a short budget; with fixed options it still reads the image to pick one of
#: four answers, and the letters stay balanced (majority ~0.25-0.3)
MCQ_OPTIONS: dict[str, tuple[str, ...]] = {
    "color": ("red", "green", "blue", "yellow"),
    "shape": ("circle", "square", "triangle", "star"),
    "position": POSITIONS,
}


def _gen_mcq(rng: np.random.Generator) -> Iterator[list[Row]]:
    while True:
        category = _pick(rng, ("color", "shape", "position"))
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image, draw = _canvas(background)
        options = MCQ_OPTIONS[category]
        if category in ("color", "shape"):
            kind = _pick(rng, MCQ_OPTIONS["shape"] if category == "shape" else MCQ_SHAPES)
            color = _pick(rng, MCQ_OPTIONS["color"] if category == "color" else tuple(COLORS))
            r = int(rng.integers(16, 22))
            cx, cy = 32 + int(rng.integers(-6, 7)), 32 + int(rng.integers(-6, 7))
            _draw_shape(draw, kind, cx, cy, r, COLORS[color])
            if category == "color":
                question, correct = "What color is the shape in the image?", color
            else:
                question, correct = "What shape is shown in the image?", kind
        else:
            # one shape, clearly on one side of the image
            where = _pick(rng, POSITIONS)
            kind = _pick(rng, YESNO_SHAPES)
            color = _pick(rng, tuple(COLORS))
            near, along = int(rng.integers(11, 16)), int(rng.integers(24, 41))
            spot = {"left": (near, along), "right": (63 - near, along), "top": (along, near),
                    "bottom": (along, 63 - near)}[where]
            _draw_shape(draw, kind, *spot, 10, COLORS[color])
            question, correct = f"Where is the {color} {kind} in the image?", where
        yield [
            {
                "image": _png(image),
                "question": question,
                "answer": "ABCD"[options.index(correct)],
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
        word = _pick(rng, OCR_WORDS)
        background_name = _pick(rng, tuple(OCR_BACKGROUNDS))
        background = OCR_BACKGROUNDS[background_name]
        # dark text on light backgrounds, white on dark (relative luminance, ITU-R BT.601 weights)
        luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        text = word.upper()  # capitals stay legible at 64 px; the answer is lower case as in TextVQA
        size = _ocr_font_size(text) - int(rng.integers(0, 3))
        font = _font(size)
        image, draw = _canvas(background)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        # a few px of jitter around the centre: big glyphs a tiny vision tower can tell apart
        x = (IMAGE_SIZE - (right - left)) // 2 - left + int(rng.integers(-2, 3))
        y = (IMAGE_SIZE - (bottom - top)) // 2 - top + int(rng.integers(-4, 5))
        draw.text((x, y), text, fill=ink, font=font)
        yield [
            {
                "image": _png(image),
                "question": "What word is written in the image?",
                "answer": word,
                "category": f"{len(word)}-letter",
            }
        ]


#: chart questions about the chart as a whole (the tallest bar, the shortest, the tallest bar's value): the
#: answer follows from the picture and the kind of question, not from binding a letter in the question to a bar
CHART_QUESTIONS = {
    "max": "Which bar is the tallest?",
    "min": "Which bar is the shortest?",
    "value": "What is the value of the tallest bar?",
}


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
        kind = _pick(rng, tuple(CHART_QUESTIONS))
        answer = {"max": letters[int(np.argmax(values))], "min": letters[int(np.argmin(values))],
                  "value": str(max(values))}[kind]
        yield [{"image": _png(image), "question": CHART_QUESTIONS[kind], "answer": answer, "category": kind}]


def _gen_yesno(rng: np.random.Generator) -> Iterator[list[Row]]:
    cell = IMAGE_SIZE // 3  # a 3x3 grid (21 px cells), one shape per cell
    while True:
        # 1-3 shapes of one kind and one colour: each question asks about one property of the picture
        n = int(rng.integers(1, 4))
        kind, color = _pick(rng, YESNO_SHAPES), _pick(rng, tuple(COLORS))
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image, draw = _canvas(background)
        for index in rng.choice(9, size=n, replace=False):
            row, col = divmod(int(index), 3)
            cx = col * cell + cell / 2 + int(rng.integers(-1, 2))
            cy = row * cell + cell / 2 + int(rng.integers(-1, 2))
            _draw_shape(draw, kind, cx, cy, 8, COLORS[color])
        category = _pick(rng, ("existence", "color", "count"))
        if category == "existence":
            absent = _pick(rng, tuple(k for k in YESNO_SHAPES if k != kind))
            yes_q, no_q = (f"Is there a {k} in the image?" for k in (kind, absent))
        elif category == "color":
            wrong = _pick(rng, tuple(c for c in COLORS if c != color))
            yes_q, no_q = (f"Is there a {c} {kind} in the image?" for c in (color, wrong))
        else:
            wrong_n = _pick(rng, tuple(m for m in range(1, 4) if m != n))
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


_GENERATORS: dict[str, Callable[[np.random.Generator], Iterator[list[Row]]]] = {
    "count": _gen_count,
    "mcq": _gen_mcq,
    "ocr": _gen_ocr,
    "chart": _gen_chart,
    "yesno": _gen_yesno,
}

#: string columns some families have besides the common ones
_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"mcq": tuple("ABCD"), "yesno": ("image_id",)}


def _features(family: str) -> datasets.Features:
    import datasets

    return datasets.Features(
        {
            "question_id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
            **{name: datasets.Value("string") for name in _EXTRA_COLUMNS.get(family, ())},
        }
    )


def _generators(version: str) -> dict[str, Callable[[np.random.Generator], Iterator[list[Row]]]]:
    if version == VERSION:
        return _GENERATORS
    if version == "v1":
        from lmms_nb.tasks._synthbench_v1 import GENERATORS_V1

        return GENERATORS_V1
    raise ValueError(f"synthbench: unknown version {version!r}; versions: 'v1', {VERSION!r}")


def _generate_splits(family: str, seed: int, n_train: int, n_test: int,
                     version: str = VERSION) -> dict[str, list[Row]]:
    """Rows of both splits. Test first, from its own stream, so the test set does not depend on n_train;
    train rows identical (same image and question) to any earlier row are skipped, so the splits are disjoint."""
    family_index = FAMILIES.index(family)
    features = _features(family)
    seen: set[bytes] = set()
    splits: dict[str, list[Row]] = {}
    for split_index, (split, n_rows) in enumerate((("test", n_test), ("train", n_train))):
        rng = np.random.default_rng([seed, family_index, split_index])
        groups = _generators(version)[family](rng)
        rows: list[Row] = []
        n_groups = 0
        attempts = 0
        while len(rows) < n_rows:
            attempts += 1
            if attempts > 50 * n_rows + 1000:
                raise RuntimeError(f"synthbench {family}: could not make {n_rows} distinct {split} rows")
            group = next(groups)
            if family == "yesno" and len(rows) + len(group) > n_rows:
                break  # an MME pair is never split: yesno has n rounded down to an even number of rows
            keys = [hashlib.sha1(r["image"] + r["question"].encode()).digest() for r in group]
            if any(k in seen for k in keys):
                continue
            seen.update(keys)
            for row in group:
                row["question_id"] = f"{family}-{split}-{len(rows)}"
                if family == "yesno":
                    row["image_id"] = f"{split}-{n_groups}"
                row["image"] = {"bytes": row["image"], "path": None}
                rows.append({name: row[name] for name in features})  # columns in the features' order
            n_groups += 1
        splits[split] = rows
    return splits


# --------------------------------------------------------------------------------------- build / load


def synthbench_path(
    *, seed: int = 0, n_train: int = 2000, n_test: int = 200, root: str | os.PathLike | None = None,
    version: str = VERSION,
) -> Path:
    """The folder `build_synthbench` writes for these parameters (it may not exist yet).

    >>> synthbench_path(seed=3, n_train=10, n_test=4, root="/data").as_posix()
    '/data/v2-seed3-10-4'
    """
    base = Path(root) if root is not None else cache_dir("synthbench")
    return base / f"{version}-seed{seed}-{n_train}-{n_test}"


def _check_sizes(n_train: int, n_test: int) -> None:
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"synthbench: {name} must be an integer >= 2 (yesno needs a question pair), got {value!r}")


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def build_synthbench(
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_test: int = 200,
    root: str | os.PathLike | None = None,
    overwrite: bool = False,
    version: str = VERSION,
) -> Path:
    """Generate every family's train/test `DatasetDict` and save it to disk; returns the folder of families.

    `version="v1"` makes synthbench v1's data (`lmms_nb.tasks._synthbench_v1`). Cached: a folder whose
    completion marker exists is returned at once. The build happens in a temporary sibling folder renamed into
    place at the end, so a crash leaves no half-built cache behind and two processes building at once do not
    mix their files.

    >>> import tempfile
    >>> path = build_synthbench(n_train=4, n_test=2, root=tempfile.mkdtemp())
    >>> sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    ['chart', 'count', 'mcq', 'ocr', 'yesno']
    """
    _check_sizes(n_train, n_test)
    _generators(version)  # an unknown version fails here, before anything is written
    final = synthbench_path(seed=seed, n_train=n_train, n_test=n_test, root=root, version=version)
    if (final / _MARKER).is_file() and not overwrite:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    import datasets

    try:
        for family in FAMILIES:
            features = _features(family)
            splits = _generate_splits(family, seed, n_train, n_test, version)
            dataset_dict = datasets.DatasetDict(
                {
                    split: datasets.Dataset.from_list(splits[split], features=features)
                    for split in SPLITS
                }
            )
            with _quiet_datasets():  # one "Saving the dataset" bar per split is noise in a notebook
                dataset_dict.save_to_disk(str(staging / family))
        params = {"version": version, "seed": seed, "n_train": n_train, "n_test": n_test, "families": FAMILIES}
        (staging / _MARKER).write_text(json.dumps(params))  # written last: its presence means complete
        if final.exists():
            # an incomplete leftover, or overwrite=True: move it aside first (a rename is atomic)
            trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            staging.rename(final)
        except OSError:
            if not (final / _MARKER).is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def load_synthbench(
    family: str,
    split: str = "test",
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_test: int = 200,
    root: str | os.PathLike | None = None,
    version: str = VERSION,
) -> datasets.Dataset:
    """One split of one family (built first if needed), memory-mapped from disk.

    >>> load_synthbench("yesno", n_train=4, n_test=4).column_names
    ['question_id', 'image', 'question', 'answer', 'category', 'image_id']
    """
    _check_family_split(family, split)
    path = build_synthbench(seed=seed, n_train=n_train, n_test=n_test, root=root, version=version)
    import datasets

    return datasets.load_from_disk(str(path / family / split))


def _check_family_split(family: str, split: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown synthbench family {family!r}; families: {', '.join(FAMILIES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown synthbench split {split!r}; splits: {', '.join(SPLITS)}")


# ---------------------------------------------------------------------------------------------- tasks


def mc_letter_filter(response: str, doc: dict[str, Any]) -> str:
    """The "mc_letter" filter: the option letter picked by a free-text answer ("" when none).

    >>> mc_letter_filter("The answer is (b).", {"A": "red", "B": "blue", "C": "green", "D": "yellow"})
    'B'
    >>> mc_letter_filter("green", {"A": "red", "B": "blue", "C": "green", "D": "yellow"})
    'C'
    """
    return extract_choice_letter(response, _mcq_choices(doc))


def _mcq_choices(doc: dict[str, Any]) -> list[str]:
    return [doc[letter] for letter in "ABCD"]


def _short_answer_text(doc: dict[str, Any]) -> str:
    return f"{doc['question']}\n{SHORT_ANSWER_PROMPT}"


def _yes_no_text(doc: dict[str, Any]) -> str:
    return f"{doc['question']} {YES_NO_PROMPT}"


def _mcq_text(doc: dict[str, Any]) -> str:
    options = "\n".join(f"{letter}. {doc[letter]}" for letter in "ABCD")
    return f"{doc['question']}\n{options}\n{MCQ_PROMPT}"


def _visual(doc: dict[str, Any]) -> list:
    return [doc["image"]]


def _target(doc: dict[str, Any]) -> str:
    return doc["answer"]


# count answers are digits: "3." or " 3" still count, as lmms-eval's exact_match with ignore_* options
_count_exact_match = functools.partial(exact_match, ignore_case=True, ignore_punctuation=True)

_FAMILY_SPECS: dict[str, dict[str, Any]] = {
    "count": {
        "metrics": lambda: [Metric("exact_match", _count_exact_match)],
        "description": "CountBench-like: count 1-6 identical shapes.",
    },
    "mcq": {
        "metrics": lambda: [Metric("choice_accuracy", choice_accuracy)],
        "doc_to_text": _mcq_text,
        "doc_to_choice": _mcq_choices,
        "filters": {"mc_letter": mc_letter_filter},
        "description": "MMBench-like: colour, shape and position questions with options A-D (a fixed four per kind).",
    },
    "ocr": {
        "metrics": lambda: [Metric("anls", anls)],
        "description": "TextVQA-like: read one of 12 short words rendered on a coloured background.",
    },
    "chart": {
        "metrics": lambda: [Metric("relaxed_accuracy", relaxed_accuracy)],
        "description": "ChartQA-like: the tallest and the shortest bar and the tallest bar's value in a 3-4 bar chart.",
    },
    "yesno": {
        "metrics": lambda: [
            Metric("acc", yes_no_accuracy),
            Metric("acc_plus", yes_no_accuracy, aggregate=mme_acc_plus, per_sample=False, source="acc"),
        ],
        "doc_to_text": _yes_no_text,
        "description": "MME-like: a yes and a no question per image (existence, colour, count); acc and acc+.",
    },
}


def synthbench_task(
    family: str,
    *,
    split: str = "test",
    seed: int = 0,
    n_train: int = 2000,
    n_test: int = 200,
    root: str | os.PathLike | None = None,
) -> Task:
    """The `Task` over one synthbench family and split (data built lazily, on the task's first `load`).

    The test split is named ``synthbench_<family>``; other splits ``synthbench_<family>_<split>``.

    >>> t = synthbench_task("mcq", split="train", n_train=6, n_test=2)
    >>> t.name, list(t.filters), [m.name for m in t.metrics]
    ('synthbench_mcq_train', ['mc_letter'], ['choice_accuracy'])
    """
    _check_family_split(family, split)
    _check_sizes(n_train, n_test)
    spec = _FAMILY_SPECS[family]
    params = {"seed": seed, "n_train": n_train, "n_test": n_test, "root": root}
    dataset_path = synthbench_path(seed=seed, n_train=n_train, n_test=n_test, root=root) / family / split
    extra: dict[str, Any] = {}
    if "filters" in spec:
        extra["filters"] = dict(spec["filters"])
    return Task(
        name=f"synthbench_{family}" if split == "test" else f"synthbench_{family}_{split}",
        load=functools.partial(load_synthbench, family, split, **params),
        doc_to_visual=_visual,
        doc_to_text=spec.get("doc_to_text", _short_answer_text),
        doc_to_target=_target,
        doc_to_choice=spec.get("doc_to_choice"),
        metrics=spec["metrics"](),
        generation_kwargs={"max_new_tokens": 8, "do_sample": False},
        category_column="category",
        split=split,
        image_column="image",
        dataset_path=str(dataset_path),
        version=VERSION,
        description=spec["description"],
        config={"family": family, "seed": seed, "n_train": n_train, "n_test": n_test},
        **extra,
    )


def train_split_task(family: str, **kwargs: Any) -> Task:
    """`synthbench_task(family, split="train", ...)`: the training rows, e.g. to fit the offline model zoo."""
    return synthbench_task(family, split="train", **kwargs)


for _family in FAMILIES:
    register_task(f"synthbench_{_family}", functools.partial(synthbench_task, _family))
