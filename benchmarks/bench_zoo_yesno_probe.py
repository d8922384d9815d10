"""Why does no zoo member answer synthbench's yes/no questions? Probes on the frozen features a member sees.

A yes/no row asks whether a property named in the question (a shape: "Is there a circle...?", a colour and shape:
"Is there a red square...?", a count: "Are there exactly 2 shapes...?") holds for the picture; every image comes
with one "yes" and one "no" question (MME's pairs), so neither the image alone nor the question alone tells the
answer: it is the match of the two. This prints, for the synthbench CLIP tower a member starts from:
- attribute probes: does the CLS token (and the mean / flattened patch tokens) tell the image's shape kind,
  colour and shape count (logistic regressions, train images -> test images)?
- yes/no probes on (image features, question's words as a bag of words): a linear one on their concatenation (it
  cannot compare: expected ~0.5), and a bilinear one (logistic regression on their outer product: it can);
- the tiny tokenizer: whether each attribute word of the questions is one token of its own.

Run:  python benchmarks/bench_zoo_yesno_probe.py [--clip-steps 250 --clip-n-train 400]   (one thread; ~1 min)
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time

import numpy as np
import torch


def _rows(split: str) -> list[dict]:
    from lmms_nb.tasks.synthbench import synthbench_task

    task = synthbench_task("yesno", split=split)
    return [{"image": task.doc_to_visual(d)[0], "question": d["question"], "answer": d["answer"],
             "category": d["category"], "text": task.doc_to_text(d)} for d in task.dataset()]


def _attribute(row: dict) -> tuple[str, str]:
    """(attribute kind, value) the "yes" question of a pair names: the image's own shape, colour or count."""
    q = row["question"]
    if row["category"] == "count":
        return "count", re.search(r"exactly (\d)", q).group(1)
    words = q.removeprefix("Is there a ").removesuffix(" in the image?").split()
    return ("color", words[0]) if row["category"] == "color" else ("shape", words[-1])


def _image_features(model, processor, rows: list[dict]) -> np.ndarray:
    from lmms_nb.models._zoo_data import _pixel_values, _rgb

    out = []
    with torch.no_grad():
        for i in range(0, len(rows), 256):
            pixels = _pixel_values([_rgb(r["image"]) for r in rows[i : i + 256]], processor.image_processor)
            out.append(model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-1].numpy())
    return np.concatenate(out)


def main() -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmms_nb.lite_selection._clip_training import train_synthbench_clip
    from lmms_nb.models._zoo_data import _vocab_texts
    from lmms_nb.models._zoo_vision import CLIP_TOWER_CONFIG, load_synthbench_clip_tower
    from lmms_nb.models.tiny import build_tiny_llava
    from lmms_nb.tasks.synthbench import FAMILIES, synthbench_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-steps", type=int, default=250)
    parser.add_argument("--clip-n-train", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    # the zoo's tokenizer (trained on every family's prompts and answers, 768 tokens at most) and CLIP tower
    vocab = _vocab_texts([synthbench_task(f, split="train") for f in FAMILIES])
    path = build_tiny_llava(tempfile.mkdtemp(), vocab_texts=vocab, seed=0, vocab_size=768,
                            vision_config=CLIP_TOWER_CONFIG, keep_cls=True)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    load_synthbench_clip_tower(model.model.vision_tower, train_synthbench_clip(steps=args.clip_steps,
                                                                               n_train=args.clip_n_train))
    train, test = _rows("train"), _rows("test")
    tok = processor.tokenizer
    words = sorted({v for r in train for _, v in [_attribute(r)]})
    print("tokens of each attribute word as it follows in the question:",
          {w: tok.tokenize(" " + w) for w in words}, flush=True)
    print("a prompt is", len(tok(train[0]["text"])["input_ids"]), "text tokens after",
          model.config.image_seq_length if hasattr(model.config, "image_seq_length") else "?", "image tokens")

    f_train, f_test = _image_features(model, processor, train), _image_features(model, processor, test)
    poolings = {"cls": (f_train[:, 0], f_test[:, 0]), "mean": (f_train[:, 1:].mean(1), f_test[:, 1:].mean(1)),
                "flat": (f_train[:, 1:].reshape(len(train), -1), f_test[:, 1:].reshape(len(test), -1))}
    yes_train = [i for i, r in enumerate(train) if r["answer"] == "Yes"]
    yes_test = [i for i, r in enumerate(test) if r["answer"] == "Yes"]
    for attr in ("shape", "color", "count"):
        tr = [i for i in yes_train if _attribute(train[i])[0] == attr]
        te = [i for i in yes_test if _attribute(test[i])[0] == attr]
        for name, (a, b) in poolings.items():
            probe = LogisticRegression(max_iter=500).fit(a[tr], [_attribute(train[i])[1] for i in tr])
            print(f"attribute {attr:5s} from {name:4s}: test {probe.score(b[te], [_attribute(test[i])[1] for i in te]):.3f}"
                  f" ({len(tr)} train images, {len(set(_attribute(train[i])[1] for i in tr))} classes)", flush=True)

    bow = CountVectorizer(token_pattern=r"[a-z0-9]+", binary=True).fit([r["question"] for r in train])
    q_train = bow.transform([r["question"] for r in train]).toarray().astype(np.float32)
    q_test = bow.transform([r["question"] for r in test]).toarray().astype(np.float32)
    y_train = np.array([r["answer"] for r in train])
    y_test = np.array([r["answer"] for r in test])
    for name in ("cls", "mean"):
        a, b = poolings[name]
        scaler = StandardScaler().fit(a)
        a, b = scaler.transform(a), scaler.transform(b)
        linear = LogisticRegression(max_iter=1000).fit(np.hstack([a, q_train]), y_train)
        outer = lambda x, q: np.einsum("ni,nj->nij", np.hstack([x, np.ones((len(x), 1))]), q).reshape(len(x), -1)
        bilinear = LogisticRegression(max_iter=1000, C=0.1).fit(outer(a, q_train), y_train)
        print(f"yes/no from {name:4s} + question words: linear test {linear.score(np.hstack([b, q_test]), y_test):.3f}"
              f", bilinear train {bilinear.score(outer(a, q_train), y_train):.3f} test "
              f"{bilinear.score(outer(b, q_test), y_test):.3f} ({len(train)} / {len(test)} rows)", flush=True)
    print(f"({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
