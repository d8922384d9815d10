"""The embedding models: open_clip image features (`ImageEmbedder`) and sentence-transformers text features
(`TextEmbedder`), each L2-normalised and loaded on first use, with an id that changes when their weights do."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmms_nb._image_input import as_pil_image
from lmms_nb.lite_selection._task_embeddings import l2_normalise

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_IMAGE_PRETRAINED",
    "DEFAULT_TEXT_MODEL",
    "HF_HUB",
    "LOCAL_DIR",
    "ImageEmbedder",
    "TextEmbedder",
    "weight_files",
]

#: open_clip model used when none is given (LMMs-Eval-Lite used CLIP ViT-L/14: "ViT-L-14", "openai").
DEFAULT_IMAGE_MODEL = "ViT-B-32"
DEFAULT_IMAGE_PRETRAINED = "openai"
#: sentence-transformers model used when none is given (LMMs-Eval-Lite used "BAAI/bge-m3").
DEFAULT_TEXT_MODEL = "BAAI/bge-small-en-v1.5"

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"


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
        if not name.startswith((LOCAL_DIR, HF_HUB)) and Path(name).is_dir():
            name = LOCAL_DIR + name
        if name.startswith(LOCAL_DIR):
            folder = Path(name[len(LOCAL_DIR):])
            if pretrained is not None:
                raise ValueError(f"image model {model!r} is a folder with its own weights; pass pretrained=None")
            if not (folder / "open_clip_config.json").is_file():
                raise FileNotFoundError(f"image model folder {folder} has no open_clip_config.json")
            if not weight_files(folder):
                raise FileNotFoundError(
                    f"image model folder {folder} has no weights (*.safetensors, *.bin or *.pth); "
                    "open_clip would use random weights"
                )
            self.model_id = f"{LOCAL_DIR}{folder.resolve()}@{files_stamp(folder)}"
        elif name.startswith(HF_HUB):
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
                self.model_id = f"{name}@{Path(pretrained).resolve()}@{files_stamp(Path(pretrained))}"
            else:
                self.model_id = f"{name}@{pretrained}"
        self.name = name
        self.pretrained = pretrained
        self.device = device or default_device()
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
            chunk = [self._preprocess(as_pil_image(im, f"image {s + i}", mode="RGB")) for i, im in enumerate(images[s:s + batch_size])]
            with torch.inference_mode():
                feats = self._model.encode_image(torch.stack(chunk).to(self.device))
            out.append(feats.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(out))


class TextEmbedder:
    """sentence-transformers text features, L2-normalised. `model` is a hub name or a local folder."""

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, *, device: str | None = None) -> None:
        self.name = str(model)
        path = Path(self.name)
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"text model {self.name!r} is a file; give a sentence-transformers folder")
            self.model_id = f"{path.resolve()}@{files_stamp(path)}"
        else:
            self.model_id = self.name
        self.device = device or default_device()
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
        return l2_normalise(np.asarray(emb, dtype=np.float32))


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for ext in ("*.safetensors", "*.bin", "*.pth") for p in folder.glob(ext))


def files_stamp(path: Path) -> str:
    """Size and mtime of a file or of every file under a folder: changes when the weights are rebuilt."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = [(str(p.relative_to(path)) if p != path else p.name, p.stat().st_size, p.stat().st_mtime_ns)
             for p in files]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
