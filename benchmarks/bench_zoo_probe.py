"""Is the answer in what a zoo member's (frozen, random) CLIP tower hands the language model? Linear probes.

For a synthbench family, a logistic regression is fitted on the tower's patch features of the train images (the
16 patch tokens flattened, and their mean: a bag of patches) and scored on the test images, with CLIP's own
position-embedding init (std 0.02) and with the zoo's redrawn positions (std 1.0). A high test score means the
information is in the features and the language model has to learn to use it; a low one that the features do
not carry it in a form that generalizes from the training rows. Families: ocr (the word; 12 classes) and the
"max" questions of chart (the tallest bar's letter).

Run:  python benchmarks/bench_zoo_probe.py [--family ocr chart]     (one thread; ~1-2 min per family)
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch


def _features(model, processor, family: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    from lmms_nb.models._zoo_data import _pixel_values, _rgb
    from lmms_nb.tasks.synthbench import synthbench_task

    task = synthbench_task(family, split=split)
    ds = task.dataset()
    if family == "chart":
        ds = ds.filter(lambda c: c == "max", input_columns="category")
    images = [_rgb(task.doc_to_visual(d)[0]) for d in ds]
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            pixels = _pixel_values(images[i : i + 256], processor.image_processor)
            out.append(model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-1][:, 1:].numpy())
    return np.concatenate(out), np.array(ds["answer"])


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmms_nb.models._zoo_train import _redraw_positions
    from lmms_nb.models.tiny import build_tiny_llava

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["ocr", "chart"], choices=["ocr", "chart"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    # the zoo's default tower: hidden 64, 2 layers, 16 px patches, seed 0 (the tokenizer plays no part here)
    path = build_tiny_llava(tempfile.mkdtemp(), vocab_texts=["a"], seed=0)
    processor = AutoProcessor.from_pretrained(path)
    for family in args.family:
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        for position_std in (None, 1.0):
            if position_std is not None:
                _redraw_positions(model, position_std, seed=0)
            start = time.perf_counter()
            x_train, y_train = _features(model, processor, family, "train")
            x_test, y_test = _features(model, processor, family, "test")
            for pooling, a, b in (("flat", x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)),
                                  ("mean", x_train.mean(1), x_test.mean(1))):
                probe = LogisticRegression(max_iter=300).fit(a, y_train)
                print(f"{family:5s} positions={'clip' if position_std is None else position_std!s:4s} "
                      f"{pooling}: train {probe.score(a, y_train):.3f} test {probe.score(b, y_test):.3f} "
                      f"({len(y_train)} train / {len(y_test)} test rows, {len(set(y_train))} classes, "
                      f"chance {1 / len(set(y_train)):.3f}; {time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
