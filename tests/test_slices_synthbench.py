"""find_slices() on real runs with planted truth: function models evaluated by lmms_nb.evaluate() on synthbench
OCR docs, made to fail where a hidden attribute holds. The attribute is the image's background colour: no
column of the sample table names it (the question is the same for every doc and the category is the word
length), only the pixels show it, so only the embedding clusters can find it. The truth is read from the
pixels here (the most common colour of each image), independently of find_slices.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

import lmms_nb
from lmms_nb.analysis import find_slices
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.tasks.synthbench import OCR_BACKGROUNDS, synthbench_task

N_TEST = 600
DARK = OCR_BACKGROUNDS["black"]  # white ink on black: the planted blind spot


def _coin(doc_id: int, salt: str) -> float:
    """A fixed pseudo-random number in [0, 1) per doc, so the models' noise is reproducible."""
    return int(hashlib.sha256(f"{salt}:{doc_id}".encode()).hexdigest()[:8], 16) / 2**32


def _background(image) -> tuple[int, ...]:
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return tuple(int(v) for v in colours[counts.argmax()])


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    task = synthbench_task("ocr", n_train=20, n_test=N_TEST)
    docs = task.dataset()
    truth = {i for i in range(len(docs)) if _background(docs[i]["image"]) == DARK}

    def reader(blind: bool, noise: float, salt: str):
        def answer(req):
            wrong = _coin(req.doc_id, salt) < noise  # a little uniform noise, as real models have
            if blind and _background(req.images[0]) == DARK:
                wrong = _coin(req.doc_id, "blind") < 0.85
            return "???" if wrong else req.doc["answer"]

        return answer

    out = tmp_path_factory.mktemp("slice_runs")
    models = {
        "dark-blind": reader(True, 0.1, "noise"),
        "reader": reader(False, 0.1, "noise"),  # differs from dark-blind only on dark backgrounds
        "coin": reader(False, 0.35, "coin"),  # fails uniformly at random
    }
    frames = [
        lmms_nb.evaluate(FunctionModel(fn, name=name), task, output_dir=out / name, progress=False).samples
        for name, fn in models.items()
    ]
    return {"task": task, "truth": truth, "df": pl.concat(frames, how="diagonal_relaxed")}


def _precision_recall(found, slice_id: int, truth: set[int]) -> tuple[float, float]:
    members = set(found.members.filter(pl.col("slice_id") == slice_id)["doc_id"].to_list())
    hit = len(members & truth)
    return hit / len(members), hit / len(truth)


def test_planted_blind_spot_is_found_from_the_images(planted):
    found = find_slices(planted["df"], "dark-blind", embeddings=[planted["task"]])
    assert found.significant.height >= 1
    top = found.significant.row(0, named=True)
    assert top["kind"] == "cluster"
    precision, recall = _precision_recall(found, top["slice_id"], planted["truth"])
    assert precision >= 0.8 and recall >= 0.8, (precision, recall, found.significant)
    assert top["fail_rate"] > 0.6 and top["rest_fail_rate"] < 0.2
    assert top["ci_low"] <= top["fail_rate"] <= top["ci_high"]
    assert top["p_adjusted"] <= 0.05 and top["p_adjusted"] >= top["p_value"]
    # examples are failures of that slice
    for example in top["examples"]:
        assert example["doc_id"] in planted["truth"] or example["prediction"] == "???"
        assert example["prediction"] == "???"
    # the search is reported: many candidates tried, few tested on the held-out half
    assert found.n_candidates > found.n_tested >= found.significant.height
    # no other reported slice is mostly outside the planted one
    for row in found.significant.iter_rows(named=True):
        assert _precision_recall(found, row["slice_id"], planted["truth"])[0] >= 0.5, found.significant


def test_a_pair_differing_only_on_the_planted_slice(planted):
    found = find_slices(planted["df"], "dark-blind", baseline="reader", embeddings=[planted["task"]])
    top = found.significant.row(0, named=True)
    precision, recall = _precision_recall(found, top["slice_id"], planted["truth"])
    assert precision >= 0.8 and recall >= 0.8, (precision, recall, found.significant)
    assert top["gap"] < -0.5 and top["rest_gap"] == 0.0
    assert top["ci_low"] <= top["gap"] <= top["ci_high"] < 0
    assert top["accuracy"] < top["baseline_accuracy"]
    # the reverse comparison has nothing to report: reader is never worse than dark-blind
    assert find_slices(planted["df"], "reader", baseline="dark-blind", embeddings=[planted["task"]]).significant.height == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_random_failures_yield_no_significant_slice(planted, seed):
    found = find_slices(planted["df"], "coin", embeddings=[planted["task"]], seed=seed)
    assert found.n_candidates > 50
    assert found.significant.height == 0, found.significant
    assert (found.table["p_adjusted"] > 0.05).all()


def test_embedding_map_coordinates_and_slice_filter(planted):
    found = find_slices(planted["df"], "dark-blind", embeddings=[planted["task"]])
    assert {"map_x", "map_y", "correct", "half"} <= set(found.samples.columns)
    assert found.samples.height == N_TEST
    top = found.significant.row(0, named=True)
    rows = found.filter(planted["df"], top["slice_id"])
    assert set(rows["model"].unique().to_list()) == {"dark-blind", "reader", "coin"}
    assert rows.height == 3 * top["size"]
