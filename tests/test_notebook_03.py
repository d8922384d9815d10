"""notebooks/03_build_lite.ipynb, executed end to end by papermill with small parameters, in a kernel of this
environment, then checked against what it wrote.

A cell appended by the test saves a few of the notebook's variables to JSON. The expected values are computed
here without the code under test's shortcuts: model scores from the JSONL logs read with plain `json`, the
k-center picks and cells by a float64 farthest-first reference over the same embeddings with scipy's `cdist`,
rank correlations with `scipy.stats`.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import datasets
import nbformat
import numpy as np
import pytest
import torch
import yaml
from scipy import stats

from _kcenter_ref import cells_of, farthest_first

pytestmark = pytest.mark.timeout(900)  # may train the offline CLIP
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "03_build_lite.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PARAMS = {"n_train": 40, "n_test": 60, "seed": 0, "budget": 6, "fidelity_budgets": [3, 6, 12, 24], "n_random": 20}
PROBES = {
    "scores": "scores.to_dicts()",
    "subset_doc_ids": "subset.doc_ids.tolist()",
    "subset_cells": "subset.cell_sizes.tolist()",
    "estimates": "estimates.to_dicts()",
    "summary": "fidelity.summary.to_dicts()",
    "paths": "[str(subset_path), str(dataset_path), str(yaml_path)]",
    "lite_run_docs": "sorted(lite_run.samples['doc_id'].to_list())",
    "lite_run_score": "lite_run.score(lite.name)",
    "best": "best",
    "widget_picked": "[int(d) for d in builder.map.data[1].customdata]",
    "widget_points": "len(builder.map.data[0].x)",
    "widget_curves": "[t.name for t in builder.fidelity_figure.data if t.name]",
    "image_model": "image_model",
    "text_model": "text_model",
}


def read_logs(folder: Path) -> dict[str, dict[int, float]]:
    """{model: {doc_id: exact_match}} from the samples files, with nothing but `json`."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for path in folder.rglob("*_samples_*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["model"]][rec["doc_id"]] = rec["exact_match"]
    return out


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    papermill = pytest.importorskip("papermill")
    work = tmp_path_factory.mktemp("nb03")
    # a kernel of this interpreter in a temp JUPYTER_PATH entry, importing this checkout
    spec = work / "kernels" / "kernels" / "lmms-nb-03"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lmms-nb", "language": "python"}))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    probe = work / "probe.json"
    body = ", ".join(f"{k!r}: {v}" for k, v in PROBES.items())
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _json\nopen({str(probe)!r}, 'w').write(_json.dumps({{{body}}}, default=str))"))
    source = work / "03_probed.ipynb"
    nbformat.write(nb, source)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(work / "kernels"))
        mp.setenv("PYTHONPATH", str(REPO))
        # the session cache: the offline synthbench CLIP is trained once per session, not per module
        mp.setenv("LMMS_NB_CACHE", os.environ["LMMS_NB_CACHE"])
        mp.setenv("OMP_NUM_THREADS", "1")
        papermill.execute_notebook(str(source), str(work / "executed.ipynb"), kernel_name="lmms-nb-03",
                                   parameters={**PARAMS, "out_dir": str(work / "out")}, cwd=str(work),
                                   progress_bar=False, execution_timeout=800)
        yield work, json.loads(probe.read_text()), nbformat.read(work / "executed.ipynb", as_version=4)


@pytest.fixture(scope="module")
def vectors(executed):
    """The notebook's embeddings, recomputed here with the same models (read back from the shared cache)."""
    work, probe, _ = executed
    from lmms_nb.lite_selection import embed_task
    from lmms_nb.tasks.synthbench import synthbench_task

    with pytest.MonkeyPatch.context():
        task = synthbench_task("count", n_train=PARAMS["n_train"], n_test=PARAMS["n_test"], seed=0)
        emb = embed_task(task, image_model=probe["image_model"], text_model=probe["text_model"], progress=False)
        return emb.vectors, task.dataset()


def test_the_notebook_runs_without_errors(executed):
    _, _, nb = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_scores_are_the_logs_means(executed):
    work, probe, _ = executed
    logs = read_logs(work / "out" / "runs")
    assert sorted(logs) == sorted(r["model"] for r in probe["scores"])
    assert {"blobs-64px", "blobs-8px", "quarters", "majority"} <= set(logs)
    for row in probe["scores"]:
        values = list(logs[row["model"]].values())
        assert row["docs"] == len(values) == PARAMS["n_test"]
        assert row["points"] == pytest.approx(100 * np.mean(values))
    # the blob counter that sees every pixel is exact on shapes that never touch
    assert np.mean(list(logs["blobs-64px"].values())) == 1.0
    assert probe["best"] == "blobs-64px"


def test_subset_is_the_kcenter_picks_and_estimates_match_the_logs(executed, vectors):
    work, probe, _ = executed
    x, _ = vectors
    picks = farthest_first(x, PARAMS["budget"])
    assert probe["subset_doc_ids"] == picks  # doc ids are row numbers here
    assert probe["subset_cells"] == cells_of(x, picks).tolist()
    logs = read_logs(work / "out" / "runs")
    for row in probe["estimates"]:
        per_doc = logs[row["model"]]
        assert row["full_points"] == pytest.approx(100 * np.mean(list(per_doc.values())))
        assert row["lite_points"] == pytest.approx(100 * np.mean([per_doc[d] for d in picks]))
        weighted = sum(per_doc[d] * c for d, c in zip(picks, probe["subset_cells"])) / PARAMS["n_test"]
        assert row["lite_weighted_points"] == pytest.approx(100 * weighted)


def test_fidelity_table_matches_scipy(executed, vectors):
    work, probe, _ = executed
    x, _ = vectors
    logs = read_logs(work / "out" / "runs")
    models = sorted(logs)
    scores = np.array([[logs[m][d] for d in range(PARAMS["n_test"])] for m in models]) * 100
    full = scores.mean(axis=1)
    rows = {(r["k"], r["method"]): r for r in probe["summary"]}
    for k in PARAMS["fidelity_budgets"]:
        est = scores[:, farthest_first(x, k)].mean(axis=1)
        rho = stats.spearmanr(full, est).statistic
        shown = rows[(k, "kcenter")]
        assert shown["spearman"] == (None if np.isnan(rho) else pytest.approx(rho))
        assert shown["mae_points"] == pytest.approx(np.abs(est - full).mean())
        assert rows[(k, "random")]["n_draws"] == PARAMS["n_random"]
        assert (k, "stratified") in rows  # the count task has categories (the kind of shape)


def test_exports_load_back_and_the_lite_run_covers_the_subset(executed, vectors):
    work, probe, _ = executed
    _, rows = vectors
    from lmms_nb.lite_selection import load_lite_subset

    subset_path, dataset_path, yaml_path = map(Path, probe["paths"])
    assert subset_path.parent == dataset_path.parent == yaml_path.parent == work / "out" / "export"
    back = load_lite_subset(subset_path)
    assert back.doc_ids.tolist() == probe["subset_doc_ids"] and back.cell_sizes.tolist() == probe["subset_cells"]
    saved = datasets.load_from_disk(str(dataset_path))["test"]
    assert saved["lite_source_doc_id"] == probe["subset_doc_ids"]
    assert saved["question"] == [rows[d]["question"] for d in probe["subset_doc_ids"]]
    meta = yaml.safe_load(yaml_path.read_text())["metadata"]["lite"]
    assert meta["doc_ids"] == probe["subset_doc_ids"]
    # the best model evaluated on the Lite task: exactly the picked docs, and its (perfect) score
    assert probe["lite_run_docs"] == sorted(probe["subset_doc_ids"])
    assert probe["lite_run_score"] == 1.0


def test_the_widget_is_shown_with_the_same_subset(executed):
    _, probe, nb = executed
    assert probe["widget_picked"] == probe["subset_doc_ids"]
    assert probe["widget_points"] == PARAMS["n_test"]
    assert {"k-center (plain mean)", "random (mean ± sd)"} <= set(probe["widget_curves"])
    last = [c for c in nb.cells if c.cell_type == "code"][-2]  # before the probe cell
    assert "LiteBuilder(" in last.source
    assert any(WIDGET_VIEW in o.get("data", {}) for o in last.outputs)
