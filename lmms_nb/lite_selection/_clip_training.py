"""A small CLIP trained offline on synthbench: real image embeddings for Lite subsets with no download.

`train_synthbench_clip` builds the tiny open_clip architecture of `build_tiny_clip` and trains it
contrastively (open_clip's `ClipLoss`, as CLIP was trained) on the synthbench train images and captions made
from their questions and answers ("count: How many stars are in the image? 4"), so images that differ in what
the questions ask about (how many shapes, which word, which bar is tallest) land apart. Training is
deterministic (seeded init and data order, one CPU thread) and cached like the zoo: the folder appears,
complete with a marker file, only at the end (`cache_dir("lite", "synthbench-clip-<config hash>")`).

Example:
    >>> from lmms_nb.lite_selection._clip_training import clip_config_hash
    >>> len(clip_config_hash(steps=10))
    10
    >>> # train_synthbench_clip()  -> "local-dir:.../lite/synthbench-clip-1a2b3c4d5e"  (about a minute, once)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmms_nb.config import cache_dir

__all__ = ["CLIP_COMPLETE_MARKER", "SynthbenchClipSettings", "clip_config_hash", "synthbench_captions",
           "synthbench_clip_dir", "train_synthbench_clip"]

CLIP_COMPLETE_MARKER = "clip_complete.json"
#: bump when the recipe changes, so a cached model is retrained
_RECIPE_VERSION = 1
#: tokens per caption: the longest synthbench caption is under 25 tokens
_CONTEXT = 32


def clip_config_hash(**config: Any) -> str:
    """A short hash of the training settings, the recipe version and synthbench's data version (a CLIP trained
    on older synthbench images is never reused after the generators change)."""
    from lmms_nb.tasks import synthbench

    keyed = {**config, "recipe": _RECIPE_VERSION, "synthbench": synthbench.VERSION}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def synthbench_captions(family: str, doc: dict[str, Any]) -> str:
    """A caption of a synthbench doc: its family, its question and the answer in words (for mcq, the option's
    text, not its letter)."""
    answer = doc["answer"]
    if family == "mcq" and answer in doc and doc[answer]:
        answer = doc[answer]
    return f"{family}: {doc['question']} {answer}"


@dataclass(frozen=True)
class SynthbenchClipSettings:
    """Everything that determines a synthbench CLIP's weights; the one place their defaults live.

    `synthbench_clip_dir` (the cache key, read by the zoo's member hashes) and `train_synthbench_clip` (what is
    trained) both build their settings here, so a default edited once changes both: a member's key can never name
    one CLIP while it trains from another.

    Example:
        >>> SynthbenchClipSettings(steps=3).n_train
        400
    """

    seed: int = 0
    steps: int = 250
    batch_size: int = 64
    lr: float = 2e-3
    n_train: int = 400

    def folder(self) -> Path:
        """The cache folder of the CLIP trained with these settings (named by their hash)."""
        return cache_dir("lite") / f"synthbench-clip-{clip_config_hash(**asdict(self))}"


def synthbench_clip_dir(**settings: Any) -> Path:
    """The cache folder of the synthbench CLIP trained with `settings` (`SynthbenchClipSettings`' fields; the
    others at their defaults), as `train_synthbench_clip(**settings)` writes it."""
    return SynthbenchClipSettings(**settings).folder()


def train_synthbench_clip(*, progress: bool = False, **settings: Any) -> str:
    """Train (or find in the cache) the synthbench CLIP with `settings` (`SynthbenchClipSettings`' fields: seed,
    steps, batch_size, lr, n_train; the others at their defaults); returns its ``"local-dir:PATH"`` model name."""
    chosen = SynthbenchClipSettings(**settings)
    config, final = asdict(chosen), chosen.folder()
    if (final / CLIP_COMPLETE_MARKER).is_file():
        return f"local-dir:{final}"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        stats = _train(tmp, progress=progress, **config)
        (tmp / CLIP_COMPLETE_MARKER).write_text(json.dumps({**config, **stats}, indent=1))
        if final.exists():
            if (final / CLIP_COMPLETE_MARKER).is_file():  # a concurrent build finished first
                return f"local-dir:{final}"
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"local-dir:{final}"


def _train(folder: Path, *, seed: int, steps: int, batch_size: int, lr: float, n_train: int,
           progress: bool) -> dict[str, Any]:
    import numpy as np
    import open_clip
    import torch
    from open_clip.loss import ClipLoss
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from lmms_nb.lite_selection._offline_models import build_tiny_clip
    from lmms_nb.tasks.synthbench import FAMILIES, load_synthbench

    build_tiny_clip(folder, seed=seed, context_length=_CONTEXT)
    images, captions = [], []
    for family in FAMILIES:
        for doc in load_synthbench(family, split="train", seed=seed, n_train=n_train):
            images.append(doc["image"])
            captions.append(synthbench_captions(family, doc))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: float reductions in one fixed order, so the weights are reproducible
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}", device="cpu")
            tokens = open_clip.tokenize(captions, context_length=_CONTEXT)
            # the 49408 x width token table stays at its seeded random init: fixed random word vectors are
            # enough for captions of a few dozen words, and updating it would be most of each step's cost
            model.token_embedding.requires_grad_(False)
            pixels = torch.stack([preprocess(im.convert("RGB")) for im in images])
            loss_fn = ClipLoss()
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                          weight_decay=0.1)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
            rng = np.random.default_rng(seed)
            order = np.concatenate([rng.permutation(len(captions)) for _ in range(steps * batch_size // len(captions) + 1)])
            losses = []
            start = time.perf_counter()
            model.train()
            for step in tqdm(range(steps), desc="synthbench CLIP", disable=not progress, leave=False):
                idx = torch.from_numpy(order[step * batch_size:(step + 1) * batch_size].copy())
                image_features, text_features, scale = model(pixels[idx], tokens[idx])[:3]
                loss = loss_fn(image_features, text_features, scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            model.eval()
    finally:
        torch.set_num_threads(before)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return {"train_seconds": round(time.perf_counter() - start, 1), "examples": len(captions),
            "first_loss": float(np.mean(losses[:10])), "final_loss": float(np.mean(losses[-10:]))}
