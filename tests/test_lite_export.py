"""Export: JSON doc-id lists, a Lite `Task` run by the real runner, a saved `datasets` folder, an lmms-eval YAML
loaded back by our lmms-eval YAML loader."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import datasets
import numpy as np
import polars as pl
import pytest
import torch
import yaml
from PIL import Image

from lmms_nb.lite_selection import (
    LiteSubset,
    TaskEmbeddings,
    build_lite_subset,
    lite_estimates,
    lite_task,
    load_lite_subset,
    save_lite_dataset,
    save_lite_subset,
    write_lmms_eval_yaml,
)
from lmms_nb.metrics import exact_match
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.runner import evaluate
from lmms_nb.tasks import Metric, Task

torch.set_num_threads(1)
COLOURS = {"red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}
N = 40


def colour_rows() -> dict[str, list]:
    rng = np.random.default_rng(0)
    names = list(COLOURS)
    rows: dict[str, list] = {"image": [], "question": [], "answer": [], "category": []}
    for i in range(N):
        c = names[int(rng.integers(4))]
        rows["image"].append(Image.new("RGB", (12, 12), COLOURS[c]))
        rows["question"].append(f"Q{i}: what colour is the image?")
        rows["answer"].append(c)
        rows["category"].append("light" if c == "white" else "dark")
    return rows


def colour_task() -> Task:
    ds = datasets.Dataset.from_dict(colour_rows(), features=datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"), "answer": datasets.Value("string"),
        "category": datasets.Value("string")}))
    return Task(name="colours", load=lambda: ds, doc_to_visual=lambda d: [d["image"]],
                doc_to_text=lambda d: d["question"], doc_to_target=lambda d: d["answer"],
                metrics=[Metric("exact_match", lambda p, t, d: exact_match(p, t))], category_column="category")


def reader(blind_to: str):
    """A 'model' that reads the pixel colour but answers 'red' for one colour it cannot see."""
    def answer(images, prompt):
        rgb = images[0].convert("RGB").getpixel((0, 0))
        name = {v: k for k, v in COLOURS.items()}[rgb]
        return "red" if name == blind_to else name
    answer.__name__ = f"blind_to_{blind_to}"
    return answer


def pixel_embeddings(task: Task) -> TaskEmbeddings:
    ds = task.dataset()
    vecs = np.array([np.asarray(d["image"].convert("RGB"), dtype=np.float32).mean((0, 1)) / 255 for d in ds])
    vecs = vecs + np.random.default_rng(1).normal(scale=0.05, size=vecs.shape).astype(np.float32)
    return TaskEmbeddings(task=task.name, doc_ids=np.arange(len(ds)), vectors=vecs)


def test_json_round_trip(tmp_path) -> None:
    task = colour_task()
    sub = build_lite_subset(pixel_embeddings(task), 8)
    path = save_lite_subset(sub, tmp_path / "sub" / "colours_lite.json")
    back = load_lite_subset(path)
    assert back.doc_ids.tolist() == sub.doc_ids.tolist()
    assert back.cell_sizes.tolist() == sub.cell_sizes.tolist()
    assert back.weights.tolist() == pytest.approx(sub.weights.tolist())
    assert back.radius == pytest.approx(sub.radius) and back.meta["method"] == "kcenter_greedy"
    data = json.loads(path.read_text())
    assert data["weights"] == pytest.approx((sub.cell_sizes / N).tolist())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("doc_ids"), "missing field 'doc_ids'"),
        (lambda d: d.update(doc_ids="1,2"), "field 'doc_ids' must be list"),
        (lambda d: d["doc_ids"].__setitem__(1, "x"), "field 'doc_ids' item 1 is 'x'"),
        (lambda d: d["cell_sizes"].__setitem__(0, d["cell_sizes"][0] + 1), "sums to 6, not n_full=5"),
        (lambda d: d.update(format="csv"), "not a Lite subset file"),
        (lambda d: d.update(n_full=True), "field 'n_full' must be int"),
        (lambda d: d.update(doc_ids=[1, 1], cell_sizes=[3, 2]), "doc_ids repeat"),
    ],
)
def test_bad_subset_files_name_file_and_field(tmp_path, edit, message) -> None:
    path = save_lite_subset(LiteSubset(task="t", doc_ids=[3, 1], cell_sizes=[3, 2], n_full=5), tmp_path / "s.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{path}: .*{message}".replace("(", r"\(").replace(")", r"\)")):
        load_lite_subset(path)


def test_broken_json_names_the_line(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"format": "lmms_nb.lite_subset",\n "task": "t",\n "doc_ids": [1, 2,\n')
    with pytest.raises(ValueError, match=rf"{path}: not valid JSON \(line 4"):
        load_lite_subset(path)


def test_lite_task_runs_only_the_subset_and_matches_the_estimate(tmp_path) -> None:
    task = colour_task()
    sub = build_lite_subset(pixel_embeddings(task), 0.25)
    models = [FunctionModel(reader(c)) for c in ("green", "blue", "white", "none")]
    full_runs = [evaluate(m, task, output_dir=tmp_path / "full", progress=False) for m in models]
    full = pl.concat([r.samples for r in full_runs], how="diagonal_relaxed")
    lt = lite_task(task, sub)
    assert lt.name == "colours_lite" and lt.config["lite"]["doc_ids"] == sub.doc_ids.tolist()
    with pytest.raises(ValueError, match="built for task 'colours', not 'other'"):
        lite_task(dataclasses.replace(task, name="other"), sub)
    est = lite_estimates(full, sub, metric="exact_match")
    for m, r in zip(models, full_runs):
        run = evaluate(m, lt, output_dir=tmp_path / "lite", progress=False)
        assert sorted(run.samples["doc_id"].to_list()) == sorted(sub.doc_ids.tolist())
        row = est.filter(pl.col("model") == m.name).row(0, named=True)
        assert row["lite_points"] == pytest.approx(run.score("colours_lite", "exact_match") * 100)
        assert row["full_points"] == pytest.approx(r.score("colours", "exact_match") * 100)
        # the weighted estimate from the Lite run's own samples and the weights it carries
        w = dict(zip(lt.config["lite"]["doc_ids"], lt.config["lite"]["weights"]))
        lite_rows = run.samples.select("doc_id", "exact_match").rows()
        weighted = sum(w[d] * s for d, s in lite_rows) * 100
        assert row["lite_weighted_points"] == pytest.approx(weighted)


def test_saved_dataset_and_lmms_eval_yaml_load_back(tmp_path) -> None:
    from lmms_nb.tasks.yaml_loader import load_task

    # an lmms-eval task folder: data saved to disk, prompts in utils.py, the task YAML
    folder = tmp_path / "tasks"
    folder.mkdir()
    datasets.DatasetDict({"test": colour_task().dataset()}).save_to_disk(str(folder / "data"))
    (folder / "utils.py").write_text(textwrap.dedent("""
        def visual(doc):
            return [doc["image"].convert("RGB")]

        def text(doc, lmms_eval_specific_kwargs=None):
            return doc["question"] + " Answer with one word."
    """))
    (folder / "colours.yaml").write_text(textwrap.dedent("""
        task: colours
        dataset_path: data
        dataset_kwargs: {load_from_disk: true}
        test_split: test
        output_type: generate_until
        doc_to_visual: !function utils.visual
        doc_to_text: !function utils.text
        doc_to_target: answer
        metric_list:
          - {metric: exact_match, aggregation: mean, higher_is_better: true}
        metadata: {version: 2}
    """))
    task = load_task(folder / "colours.yaml")
    sub = build_lite_subset(pixel_embeddings(task), 10)

    save_lite_dataset(task, sub, folder / "colours_lite_data")
    saved = datasets.load_from_disk(str(folder / "colours_lite_data"))["test"]
    full = task.dataset()
    assert saved["lite_source_doc_id"] == sub.doc_ids.tolist()
    assert saved["lite_weight"] == pytest.approx(sub.weights.tolist())
    assert saved["question"] == [full[int(d)]["question"] for d in sub.doc_ids]

    yaml_path = write_lmms_eval_yaml(task, sub, folder / "colours_lite.yaml", dataset_path="colours_lite_data",
                                     include="colours.yaml")
    doc = yaml.safe_load(yaml_path.read_text())
    assert doc["task"] == "colours_lite" and doc["dataset_kwargs"] == {"load_from_disk": True}
    assert doc["metadata"]["lite"]["doc_ids"] == sub.doc_ids.tolist()
    assert doc["metadata"]["lite"]["weights"] == pytest.approx(sub.weights.tolist())

    lite = load_task(yaml_path)
    lite_rows = lite.dataset()
    assert lite.name == "colours_lite" and len(lite_rows) == 10
    for j, d in enumerate(sub.doc_ids):  # same prompts (from the included YAML), in pick order
        assert lite.doc_to_text(lite_rows[j]) == task.doc_to_text(full[int(d)])
    run = evaluate(FunctionModel(reader("blue")), lite, output_dir=tmp_path / "out", progress=False)
    truth = np.mean([full[int(d)]["answer"] != "blue" for d in sub.doc_ids])  # blind to blue: wrong on blue
    assert run.score("colours_lite", "exact_match") == pytest.approx(truth)


def test_dataset_export_refuses_a_mismatched_subset(tmp_path) -> None:
    task = colour_task()
    with pytest.raises(ValueError, match="built over 30 docs, task 'colours' has 40"):
        save_lite_dataset(task, LiteSubset(task="colours", doc_ids=[0], cell_sizes=[30], n_full=30), tmp_path / "x")
    with pytest.raises(ValueError, match=r"doc ids \[99\] are out of range"):
        save_lite_dataset(task, LiteSubset(task="colours", doc_ids=[99], cell_sizes=[40], n_full=40), tmp_path / "y")
