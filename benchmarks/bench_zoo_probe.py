"""Is the answer in what a zoo member's (frozen, random) CLIP tower hands the language model? Linear probes.

For a synthbench family, a logistic regression is fitted on the tower's patch features of the train images (the
16 patch tokens flattened, and their mean: a bag of patches) and scored on the test images, with CLIP's own
position-embedding init (std 0.02) and with the zoo's redrawn positions (std 1.0). A high test score means the
information is in the features and the language model has to learn to use it; a low one that the features do
not carry it in a form that generalizes from the training rows. Families: ocr (the word; 12 classes) and the
"max" questions of chart (the tallest bar's letter).

With `--clip-steps N`, the tower is instead the synthbench CLIP's (`ZooSpec.clip_init`: trained N steps on
`--clip-n-train` rows per family, cached) and the probes also read its CLS token, which the zoo hands over too.

Run:  python benchmarks/bench_zoo_probe.py [--family ocr chart]     (one thread; ~1-2 min per family)
      python benchmarks/bench_zoo_probe.py --family ocr --clip-steps 1000 --clip-n-train 2000
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
            out.append(model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-1].numpy())
    return np.concatenate(out), np.array(ds["answer"])


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmms_nb.lite_selection._clip_training import train_synthbench_clip
    from lmms_nb.models._zoo_train import _redraw_positions
    from lmms_nb.models._zoo_vision import CLIP_TOWER_CONFIG, load_synthbench_clip_tower
    from lmms_nb.models.tiny import build_tiny_llava

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["ocr", "chart"], choices=["ocr", "chart"])
    parser.add_argument("--clip-steps", type=int, default=0, help="probe the synthbench CLIP's tower instead")
    parser.add_argument("--clip-n-train", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # the zoo's default tower: hidden 64, 2 layers, 16 px patches, seed 0 (the tokenizer plays no part here)
    clip = args.clip_steps > 0
    path = build_tiny_llava(tempfile.mkdtemp(), vocab_texts=["a"], seed=0,
                            vision_config=CLIP_TOWER_CONFIG if clip else None, keep_cls=clip)
    processor = AutoProcessor.from_pretrained(path)
    for family in args.family:
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        for position_std in ("clip",) if clip else (None, 1.0):
            if position_std == "clip":
                clip_dir = train_synthbench_clip(steps=args.clip_steps, n_train=args.clip_n_train)
                load_synthbench_clip_tower(model.model.vision_tower, clip_dir)
            elif position_std is not None:
                _redraw_positions(model, position_std, seed=0)
            start = time.perf_counter()
            x_train, y_train = _features(model, processor, family, "train")
            x_test, y_test = _features(model, processor, family, "test")
            poolings = [("flat", x_train[:, 1:].reshape(len(x_train), -1), x_test[:, 1:].reshape(len(x_test), -1)),
                        ("mean", x_train[:, 1:].mean(1), x_test[:, 1:].mean(1))]
            if clip:
                poolings.append(("cls", x_train[:, 0], x_test[:, 0]))
            for pooling, a, b in poolings:
                probe = LogisticRegression(max_iter=300).fit(a, y_train)
                print(f"{family:5s} positions={'init' if position_std is None else position_std!s:4s} "
                      f"{pooling}: train {probe.score(a, y_train):.3f} test {probe.score(b, y_test):.3f} "
                      f"({len(y_train)} train / {len(y_test)} test rows, {len(set(y_train))} classes, "
                      f"chance {1 / len(set(y_train)):.3f}; {time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
