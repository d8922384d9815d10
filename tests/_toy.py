"""A small real task for runner tests: a `datasets.Dataset` of generated images, questions and answers."""

from __future__ import annotations

from pathlib import Path

import datasets
from PIL import Image

from lmms_nb.metrics import exact_match, extract_choice_letter
from lmms_nb.tasks import Metric, Task


def toy_dataset(n: int = 24) -> datasets.Dataset:
    colours = ["red", "green", "blue"]
    rows = {"image": [], "question": [], "answer": [], "category": []}
    for i in range(n):
        c = colours[i % 3]
        rows["image"].append(Image.new("RGB", (16, 16), c))
        rows["question"].append(f"Q{i}: what colour is the image?")
        rows["answer"].append(c)
        rows["category"].append("warm" if c == "red" else "cool")
    return datasets.Dataset.from_dict(rows, features=datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"),
        "answer": datasets.Value("string"), "category": datasets.Value("string")}))


def toy_task(n: int = 24, *, name: str = "toy_colour", path: Path | None = None, two_filters: bool = False) -> Task:
    """The toy task; with `path`, the dataset is saved there and reloaded from disk like a real benchmark."""
    if path is not None:
        if not (path / "dataset_info.json").exists():
            toy_dataset(n).save_to_disk(str(path))
        load = lambda: datasets.load_from_disk(str(path))  # noqa: E731
    else:
        ds = toy_dataset(n)
        load = lambda: ds  # noqa: E731
    filters = {"none": lambda r, d: r}
    if two_filters:
        filters["first_word"] = lambda r, d: r.split()[0] if r.split() else ""
    return Task(
        name=name, load=load, doc_to_visual=lambda d: [d["image"]], doc_to_text=lambda d: d["question"],
        doc_to_target=lambda d: d["answer"], metrics=[Metric("exact_match", lambda p, t, d: exact_match(p, t, ignore_case=True))],
        filters=filters, category_column="category", dataset_path=str(path) if path else None,
    )


def colour_of(images, prompt) -> str:
    """A perfect 'model' for the toy task: reads the pixel colour."""
    r, g, b = images[0].convert("RGB").getpixel((0, 0))
    return {(255, 0, 0): "red", (0, 128, 0): "green", (0, 0, 255): "blue"}[(r, g, b)]


_ = extract_choice_letter  # re-exported for tests that build MC toy tasks
