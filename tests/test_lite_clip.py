"""The offline CLIP trained on synthbench: cached, deterministic, and it sees what the questions ask about."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lmms_nb.lite_selection import ImageEmbedder, local_embedding_models
from lmms_nb.lite_selection._clip_training import (
    CLIP_COMPLETE_MARKER,
    SynthbenchClipSettings,
    clip_config_hash,
    synthbench_clip_dir,
    train_synthbench_clip,
)
from lmms_nb.tasks.synthbench import load_synthbench

torch.set_num_threads(1)
pytestmark = pytest.mark.timeout(900)


def test_clip_cache_key_changes_with_synthbench_version(monkeypatch):
    from lmms_nb.tasks import synthbench

    before = clip_config_hash(seed=0, steps=250)
    monkeypatch.setattr(synthbench, "VERSION", "v-next")
    assert clip_config_hash(seed=0, steps=250) != before  # a CLIP trained on older images is never reused


def one_nn_accuracy(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy (cosine) of `labels` from `vectors`."""
    sim = vectors @ vectors.T
    np.fill_diagonal(sim, -np.inf)
    return float(np.mean(labels[sim.argmax(axis=1)] == labels))


def test_trained_clip_is_the_offline_default_and_sees_counts_and_words():
    image, _ = local_embedding_models()
    folder = Path(image.removeprefix("local-dir:"))
    info = json.loads((folder / CLIP_COMPLETE_MARKER).read_text())
    assert info["final_loss"] < info["first_loss"] - 0.5
    assert train_synthbench_clip() == image  # cached: found, not retrained
    random_image, _ = local_embedding_models(image="random")
    trained_enc, random_enc = ImageEmbedder(image, device="cpu"), ImageEmbedder(random_image, device="cpu")
    # on the test split (never trained on), nearest neighbours share what the captions name far more often
    # with the trained encoder: the family, and the kind of shape that is counted. (Not everything: the random
    # encoder's raw-pixel features still match *how many* shapes better; measured, and said in the README.)
    families, vectors = [], {"trained": [], "random": []}
    for family in ("count", "mcq", "chart"):
        ds = load_synthbench(family)
        pics = [doc["image"] for doc in ds]
        v_trained, v_random = trained_enc.encode(pics), random_enc.encode(pics)
        vectors["trained"].append(v_trained)
        vectors["random"].append(v_random)
        families += [family] * len(pics)
        if family == "count":
            kinds = np.array(ds["category"])
            assert one_nn_accuracy(v_trained, kinds) > one_nn_accuracy(v_random, kinds) + 0.15
    labels = np.array(families)
    assert one_nn_accuracy(np.concatenate(vectors["trained"]), labels) > \
        one_nn_accuracy(np.concatenate(vectors["random"]), labels)
    with pytest.raises(ValueError, match="image must be 'trained' or 'random'"):
        local_embedding_models(image="pretty")


def test_training_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "a"))
    first = Path(train_synthbench_clip(steps=3, n_train=20).removeprefix("local-dir:"))
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "b"))
    second = Path(train_synthbench_clip(steps=3, n_train=20).removeprefix("local-dir:"))
    a, b = (load_file(p / "open_clip_model.safetensors") for p in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert first.name == second.name and not [p for p in first.parent.iterdir() if ".tmp-" in p.name]
    # the folder the cache key names (what a zoo member's hash reads) is the one trained, with the same defaults
    assert second == synthbench_clip_dir(steps=3, n_train=20)
    recorded = json.loads((second / CLIP_COMPLETE_MARKER).read_text())
    trained_with = {k: recorded[k] for k in ("seed", "steps", "batch_size", "lr", "n_train")}
    assert trained_with == dataclasses.asdict(SynthbenchClipSettings(steps=3, n_train=20))
