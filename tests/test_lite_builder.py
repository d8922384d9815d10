"""`LiteBuilder` without a browser: set control values, `.click()`, and check what the widget shows and writes.

Expected values are computed here independently of `lmms_nb.lite_selection`: farthest-first picks and cells
with scipy's `cdist`, the 2-D map with numpy's SVD, model scores from the rules that define the models
(not from their logs), correlations with `scipy.stats`. The task is a small synthbench (60 docs), embedded
with the offline models (a small CLIP trained on synthbench and MiniLM).
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import polars as pl
import pytest
import torch
import yaml
from PIL import Image
from scipy import stats

from _kcenter_ref import cells_of, farthest_first

import lmms_nb
from lmms_nb.lite_selection import (
    DifficultySubset,
    TaskEmbeddings,
    build_difficulty_subset,
    build_lite_subset,
    build_tiny_clip,
    embed_task,
    load_difficulty_subset,
    load_lite_subset,
    local_embedding_models,
)
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.tasks import Task
from lmms_nb.tasks.synthbench import synthbench_task
from lmms_nb.tasks.yaml_loader import load_task
from lmms_nb.widgets._lite_builder import CUSTOM, HUB, SUBSET_METHODS, LiteBuilder

torch.set_num_threads(1)
pytestmark = pytest.mark.timeout(900)  # the first test may train the offline CLIP

N = 60
#: model name -> whether it answers doc `d` (row `d` of the dataset) right; when wrong it answers "0"
RULES = {
    "oracle": lambda d, row: True,
    "circles": lambda d, row: row["category"] == "circle",
    "even-docs": lambda d, row: d % 2 == 0,
    "small-counts": lambda d, row: int(row["answer"]) <= 4,
}
YAML_FIXTURE = Path(__file__).parent / "yaml_tasks" / "colours"


@pytest.fixture(scope="module")
def cache():
    """The session's cache (conftest): the synthbench CLIP the offline preset needs is trained once per session
    (test_lite_clip trains the same one), not once per module."""
    return Path(os.environ["LMMS_NB_CACHE"])


@pytest.fixture(scope="module")
def task(cache) -> Task:
    return synthbench_task("count", n_train=20, n_test=N)


def model_of(name: str) -> FunctionModel:
    rule = RULES[name]
    return FunctionModel(lambda r: r.doc["answer"] if rule(r.doc_id, r.doc) else "0", name=name)


@pytest.fixture(scope="module")
def correct(task) -> np.ndarray:
    """(models x docs) right/wrong, from the rules and the dataset (a rule's "0" is right only if the answer is 0)."""
    rows = task.dataset()
    return np.array([[float(rule(d, rows[d]) or rows[d]["answer"] == "0") for d in range(N)]
                     for rule in RULES.values()])


@pytest.fixture(scope="module")
def logs_dir(task, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("logs")
    for name in RULES:
        lmms_nb.evaluate(model_of(name), task, output_dir=out, progress=False)
    return out


@pytest.fixture(scope="module")
def builder(task, logs_dir, tmp_path_factory) -> LiteBuilder:
    b = LiteBuilder(task, tasks=[], logs=logs_dir, budget=6, max_budget=30, fidelity_budgets=(3, 6, 12, 24),
                    n_random=30, export_dir=tmp_path_factory.mktemp("export"))
    b.embed_button.click()
    assert b.error is None, b.status_html.value
    return b


# ---------------------------------------------------------------------------------------------------------------


def test_embed_button_embeds_with_the_offline_models(builder, task) -> None:
    image, text = local_embedding_models()
    direct = embed_task(task, image_model=image, text_model=text, progress=False)
    emb = builder.embeddings
    assert emb.doc_ids.tolist() == list(range(N))
    np.testing.assert_allclose(emb.vectors, direct.vectors, atol=1e-6)
    # both parts normalised and weighted 1/2-1/2: every doc (all have an image) has norm 1
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    assert builder.budget_slider.max == 30 and builder.budget_slider.value == 6 and not builder.budget_slider.disabled
    assert "60 docs embedded" in builder.status_html.value


@pytest.mark.parametrize("k", [1, 6, 17, 30])
def test_slider_shows_the_kcenter_subset_on_the_map(builder, k) -> None:
    builder.budget_slider.value = k
    emb = builder.embeddings
    picked, everyone = builder.map.data[1], builder.map.data[0]
    direct = build_lite_subset(emb, k)  # without the widget's precomputed k-center result
    assert len(picked.x) == len(picked.y) == k
    assert list(picked.customdata) == direct.doc_ids.tolist() == builder.subset.doc_ids.tolist()
    # independently: farthest-first in float64 and nearest-pick cells with scipy
    ref = farthest_first(emb.vectors, k)
    assert direct.doc_ids.tolist() == emb.doc_ids[ref].tolist()
    assert list(picked.marker.color) == cells_of(emb.vectors, ref).tolist()
    assert sum(picked.marker.color) == N
    # picked points sit where the same docs sit in the grey layer
    at = {int(d): (x, y) for d, x, y in zip(everyone.customdata, everyone.x, everyone.y)}
    assert [at[int(d)] for d in picked.customdata] == list(zip(picked.x, picked.y))
    assert f"{k} of {N} docs" in builder.summary_html.value
    # a picked doc's hover names its cell: how many docs it stands for, and its weight
    cells = cells_of(emb.vectors, ref)
    assert [h.split("<br><b>cell</b> ")[1] for h in picked.hovertext] == [f"{c} docs (weight {c / N:.3f})" for c in cells]
    assert f"largest cell {cells.max()} docs" in builder.summary_html.value


def test_the_map_is_the_pca_of_the_embeddings(builder) -> None:
    x = builder.embeddings.vectors.astype(np.float64)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    shown = np.column_stack([builder.map.data[0].x, builder.map.data[0].y])
    assert len(shown) == N and [t.type for t in builder.map.data] == ["scatter", "scatter"]  # SVG: few docs
    for j in range(2):  # a principal axis is defined up to its sign
        sign = np.sign(ref[:, j] @ shown[:, j])
        np.testing.assert_allclose(shown[:, j], sign * ref[:, j], atol=1e-5)


def test_hover_text_is_the_docs_prompt(builder, task) -> None:
    rows = task.dataset()
    hover = builder.map.data[0].hovertext
    for d in (0, 7, 59):
        first_line = task.doc_to_text(rows[d]).splitlines()[0]
        assert hover[d].startswith(f"<b>doc {d}</b><br>") and html.escape(first_line) in hover[d]


def test_hovering_a_point_shows_the_docs_image(builder, task) -> None:
    import base64
    import io

    from plotly.callbacks import Points

    trace = builder.map.data[0]
    trace._dispatch_on_hover(Points(point_inds=[7], xs=[0.0], ys=[0.0], trace_name=trace.name, trace_index=0), None)
    doc_id = int(trace.customdata[7])
    shown = builder.doc_preview.value
    assert f"<b>doc {doc_id}</b>" in shown and html.escape(task.doc_to_text(task.dataset()[doc_id])) in shown
    encoded = shown.split("data:image/png;base64,")[1].split("'")[0]
    picture = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    expected = task.doc_to_visual(task.dataset()[doc_id])[0].convert("RGB")
    assert np.array_equal(np.asarray(picture), np.asarray(expected))  # the doc's own pixels, losslessly


def test_fidelity_curves_match_scipy(builder, correct) -> None:
    fig = builder.fidelity_figure
    names = [t.name for t in fig.data]
    assert {"k-center (plain mean)", "k-center (cell-weighted)", "random (mean ± sd)",
            "stratified (mean ± sd)"} <= set(names)
    by_name = {t.name: t for t in fig.data if t.name}
    budgets = [3 / N, 6 / N, 12 / N, 24 / N]
    for name in ("k-center (plain mean)", "random (mean ± sd)"):
        assert list(by_name[name].x) == pytest.approx(budgets)
    assert all(-1 <= y <= 1 for y in by_name["random (mean ± sd)"].y)
    vectors = builder.embeddings.vectors
    full = correct.mean(axis=1) * 100
    plain, weighted, mae = [], [], []
    for k in (3, 6, 12, 24):
        picks = farthest_first(vectors, k)
        est = correct[:, picks].mean(axis=1) * 100
        est_w = correct[:, picks] @ cells_of(vectors, picks) / N * 100
        plain.append(stats.spearmanr(full, est).statistic)
        weighted.append(stats.spearmanr(full, est_w).statistic)
        mae.append(np.abs(est - full).mean())

    def same(shown, expected):  # a subset where every model ties has no ranking: NaN here, a gap in the curve
        return [None if y is None or np.isnan(y) else pytest.approx(y) for y in shown] == \
            [None if np.isnan(e) else pytest.approx(e) for e in expected]

    assert same(by_name["k-center (plain mean)"].y, plain)
    assert same(by_name["k-center (cell-weighted)"].y, weighted)
    assert "spearman" in fig.layout.title.text
    builder.stat_select.value = "mae_points"
    try:
        mae_trace = next(t for t in builder.fidelity_figure.data if t.name == "k-center (plain mean)")
        assert list(mae_trace.y) == pytest.approx(mae)
    finally:
        builder.stat_select.value = "spearman"


def test_current_budget_is_marked_and_estimated(builder, correct) -> None:
    builder.budget_slider.value = 12
    shapes = builder.fidelity_figure.layout.shapes
    assert [s.x0 for s in shapes if s.line.dash == "dash"] == [pytest.approx(12 / N)]
    picks = farthest_first(builder.embeddings.vectors, 12)
    est = builder.estimates.sort("model")
    order = np.argsort(list(RULES))  # the table sorts models by name
    names = [list(RULES)[i] for i in order]
    assert est["model"].to_list() == names
    assert est["full_points"].to_list() == pytest.approx((correct.mean(axis=1) * 100)[order].tolist())
    assert est["lite_points"].to_list() == pytest.approx((correct[:, picks].mean(axis=1) * 100)[order].tolist())
    assert "full set vs this subset" in builder.estimates_html.value
    # the plain verdict: this subset against random subsets of 12 docs, recomputed here from the answers
    full = correct.mean(axis=1) * 100
    mae = np.abs(correct[:, picks].mean(axis=1) * 100 - full).mean()
    rng = np.random.default_rng(0)
    idx = np.argsort(rng.random((100, N)), axis=1)[:, :12]
    rand_mae = np.abs(correct[:, idx].mean(axis=2).T * 100 - full).mean(axis=1)
    plain = builder.verdict.filter(pl.col("estimator") == "plain mean").row(0, named=True)
    assert plain["mae_points"] == pytest.approx(mae)
    assert plain["beats_random_mae"] == pytest.approx(np.mean(rand_mae > mae + 1e-9))  # exact ties do not count
    share = plain["beats_random_mae"]
    words = ("better than random" if share >= 0.8 else "worse than random" if share <= 0.2
             else "no better than random")
    assert plain["verdict"] == words
    assert "plain mean is <b style='color:" in builder.estimates_html.value
    assert f">{words}</b>" in builder.estimates_html.value


def test_difficulty_method_draws_the_subset_from_the_logs(builder, task, logs_dir, correct, tmp_path) -> None:
    """With logs, `method_select` switches the subset to `build_difficulty_subset` over the earlier models' answers,
    and the estimates to `difficulty_estimates`; back to k-center gives the k-center subset again."""
    b = LiteBuilder(task, tasks=[], logs=logs_dir, embeddings=builder.embeddings, budget=12, max_budget=30,
                    fidelity_budgets=(6, 12), n_random=5)
    assert dict(b.method_select.options) == SUBSET_METHODS
    assert b.method_select.value == "kcenter" and not b.method_select.disabled
    b.method_select.value = "difficulty"
    assert b.error is None, b.summary_html.value
    sub = b.subset
    assert isinstance(sub, DifficultySubset) and len(sub) == 12 and sub.n_full == N
    assert sorted(sub.train_models) == sorted(RULES)
    expected = build_difficulty_subset(b.logs, 12, task=task.name, metric=b.metric_select.value,
                                       doc_ids=builder.embeddings.doc_ids)
    assert sub.doc_ids.tolist() == expected.doc_ids.tolist()
    assert list(b.map.data[1].customdata) == sub.doc_ids.tolist()
    assert "difficulty strata of 4 earlier models" in b.summary_html.value
    # no cells in this mode: a pick's hover and the summary say what share of its stratum it stands for
    hover = list(b.map.data[1].hovertext)
    assert not any("cell" in h for h in hover) and "cell" not in b.summary_html.value
    assert "cell" not in b.map.data[1].name and "cell" not in b.map.data[1].marker.colorbar.title.text
    assert [h.split("<br><b>stratum share</b> ")[1] for h in hover] == [
        f"{w * N:.1f} docs (weight {w:.3f})" for w in sub.design_weights]
    assert f"one pick stands for up to {sub.design_weights.max() * N:.1f} docs" in b.summary_html.value
    # estimates per model: plain mean of the drawn docs and full score, recomputed from the rules
    order = np.argsort(list(RULES))
    est = b.estimates.sort("model")
    assert est["full_points"].to_list() == pytest.approx((correct.mean(axis=1) * 100)[order].tolist())
    assert est["lite_points"].to_list() == pytest.approx((correct[:, sub.doc_ids].mean(axis=1) * 100)[order].tolist())
    assert est["in_training"].all() and est["lite_difficulty_points"].is_finite().all()
    assert "difficulty estimate" in b.estimates_html.value and b.verdict is None
    # every model here built the subset: no error is shown as if it were held out, and with 4 models lite_fidelity
    # has no held-out difficulty_cv rows, so no verdict either
    assert est["lite_difficulty_error_points"].null_count() == est["lite_error_points"].null_count() == est.height
    assert "lmms-nb-lite-verdict" not in b.estimates_html.value
    b.budget_slider.value = 6
    assert isinstance(b.subset, DifficultySubset) and len(b.subset) == 6
    # the export keeps the estimator beside the doc ids: a new model is estimated the same in a later session
    written = b.export(tmp_path, ["json"])
    assert load_lite_subset(written["json"]).doc_ids.tolist() == b.subset.doc_ids.tolist()
    answers = correct[0, b.subset.doc_ids]
    assert load_difficulty_subset(written["estimator"]).estimate(answers) == b.subset.estimate(answers)
    assert "estimator" in b.export_html.value
    b.method_select.value = "kcenter"
    assert b.subset.doc_ids.tolist() == build_lite_subset(builder.embeddings, 6).doc_ids.tolist()
    assert not isinstance(b.subset, DifficultySubset)


def test_difficulty_method_needs_logs(task, builder) -> None:
    b = LiteBuilder(task, tasks=[], embeddings=builder.embeddings, budget=6)
    assert b.method_select.disabled and b.method_select.value == "kcenter"
    with pytest.raises(ValueError, match="method='difficulty' draws the subset from earlier models' answers: give logs="):
        LiteBuilder(task, tasks=[], method="difficulty")
    with pytest.raises(ValueError, match="method must be one of"):
        LiteBuilder(task, tasks=[], method="anchors")


def test_export_writes_files_that_load_back(builder, task, tmp_path) -> None:
    builder.budget_slider.value = 12
    got = []
    builder.on_export(got.append)
    folder = tmp_path / "lite <b>out</b>"
    builder.export_dir_text.value = str(folder)
    builder.export_button.click()
    assert builder.error is None, builder.status_html.value
    sub = builder.subset
    assert got == [sub] and len(sub) == 12

    back = load_lite_subset(builder.exported["json"])
    assert back.doc_ids.tolist() == sub.doc_ids.tolist() and back.cell_sizes.tolist() == sub.cell_sizes.tolist()
    assert back.n_full == N and back.task == task.name

    saved = datasets.load_from_disk(str(builder.exported["dataset"]))["test"]
    full = task.dataset()
    assert saved["lite_source_doc_id"] == sub.doc_ids.tolist()
    assert saved["question_id"] == [full[int(d)]["question_id"] for d in sub.doc_ids]
    assert saved["lite_weight"] == pytest.approx((sub.cell_sizes / N).tolist())

    doc = yaml.safe_load(builder.exported["yaml"].read_text())
    assert doc["task"] == f"{task.name}_lite" and doc["dataset_path"] == str(builder.exported["dataset"])
    assert doc["metadata"]["lite"]["doc_ids"] == sub.doc_ids.tolist()

    # the written paths are shown, escaped: the folder name's markup is text
    shown = builder.export_html.value
    assert "lite &lt;b&gt;out&lt;/b&gt;" in shown and "<b>out</b>" not in shown

    # the Lite task evaluates exactly the picked docs, with their full-set doc ids
    run = lmms_nb.evaluate(model_of("even-docs"), builder.exported_task, output_dir=tmp_path / "runs", progress=False)
    assert sorted(run.samples["doc_id"].to_list()) == sorted(sub.doc_ids.tolist())
    assert run.score(f"{task.name}_lite") == pytest.approx(np.mean([d % 2 == 0 or full[int(d)]["answer"] == "0"
                                                                    for d in sub.doc_ids]))


def test_export_errors_are_shown_in_the_widget(builder, tmp_path) -> None:
    not_a_folder = tmp_path / "<i>notes.txt"
    not_a_folder.write_text("x")
    builder.export_dir_text.value = str(not_a_folder)
    builder.export_button.click()
    assert isinstance(builder.error, NotADirectoryError)
    assert html.escape(str(not_a_folder)) in builder.status_html.value and "<i>" not in builder.status_html.value
    with pytest.raises(ValueError, match="tick at least one export format"):
        builder.export(tmp_path / "x", formats=[])
    with pytest.raises(ValueError, match=r"unknown export format\(s\) \['csv'\]"):
        builder.export(tmp_path / "x", formats=["csv"])


def xss_task(n: int = 6) -> Task:
    rows = {"image": [Image.new("RGB", (16, 16), (40 * i, 0, 0)) for i in range(n)],
            "question": [f'<img src=x onerror="alert({i})"> how red?' for i in range(n)],
            "answer": [str(i) for i in range(n)]}
    ds = datasets.Dataset.from_dict(rows)
    return Task(name="xss_colours", load=lambda: ds, doc_to_visual=lambda d: [d["image"]],
                doc_to_text=lambda d: d["question"], doc_to_target=lambda d: d["answer"], metrics=[])


def test_hover_text_escapes_markup_in_questions() -> None:
    task = xss_task()
    emb = TaskEmbeddings(task=task.name, doc_ids=np.arange(6),
                         vectors=np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))
    b = LiteBuilder(task, tasks=[], embeddings=emb, budget=3)
    texts = list(b.map.data[0].hovertext) + list(b.map.data[1].hovertext)
    assert len(texts) == 9
    assert all("<img" not in t and "&lt;img src=x onerror=&quot;alert(" in t for t in texts)


def test_switching_task_clears_the_subset_and_explains_missing_logs(task, logs_dir) -> None:
    other = xss_task()
    b = LiteBuilder(task, tasks=[other], logs=logs_dir, budget=4, n_random=5)
    assert b.task_select.options == ("synthbench_count", "xss_colours") and b.subset is None
    assert b.budget_slider.disabled and b.export_button.disabled
    with pytest.raises(ValueError, match="press Embed & pick first"):
        b.export()
    b.task_select.value = "xss_colours"
    b.embed_button.click()
    assert b.error is None, b.status_html.value
    # budget 4 is capped by max_budget (default half the task: 3 of 6 docs)
    assert b.budget_slider.max == b.budget_slider.value == 3
    assert len(b.map.data[1].x) == 3 and b.subset.task == "xss_colours"
    # the logs are of synthbench_count only: no curves, and the widget says why
    assert b.fidelity is None and b.fidelity_figure is None
    assert "no samples of task &#x27;xss_colours&#x27;" in b.fidelity_html.value
    b.task_select.value = "synthbench_count"
    assert b.subset is None and b.embeddings is None and len(b.map.data[1].x) == 0 and b.budget_slider.disabled


def test_bad_arguments_fail_clearly(task) -> None:
    with pytest.raises(KeyError, match="unknown task 'synthbench_cuont'"):
        LiteBuilder("synthbench_cuont", tasks=[])
    with pytest.raises(FileNotFoundError, match="no such task YAML: missing.yaml"):
        LiteBuilder("missing.yaml", tasks=[])
    emb = TaskEmbeddings(task="other", doc_ids=np.arange(3), vectors=np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="embeddings are of task 'other', not 'synthbench_count'"):
        LiteBuilder(task, tasks=[], embeddings=emb)


def test_custom_models_and_weights(task, tmp_path) -> None:
    image_only = build_tiny_clip(tmp_path / "clip", seed=3)
    b = LiteBuilder(task, tasks=[], image_model=image_only, budget=5)
    assert b.embedding_select.value == CUSTOM and not b.image_model_text.disabled
    b.embed_button.click()
    assert b.error is None, b.status_html.value
    assert b.embeddings.text is None and b.embeddings.vectors.shape == (N, 64)
    assert len(b.map.data[1].x) == 5

    # both parts, image weight 0.8: the vectors are [sqrt(.8) * image, sqrt(.2) * text] of unit parts
    _, text = local_embedding_models()
    b.text_model_text.value = text
    b.image_weight_slider.value = 0.8
    assert "settings changed" in b.status_html.value
    b.embed_button.click()
    emb = b.embeddings
    img = emb.image / np.linalg.norm(emb.image, axis=1, keepdims=True)
    txt = emb.text / np.linalg.norm(emb.text, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors, np.hstack([np.sqrt(0.8) * img, np.sqrt(0.2) * txt]), atol=1e-5)

    # the hub preset names the default models; offline, embedding fails with a message naming the model
    b.embedding_select.value = HUB
    assert b.image_model_text.value == "ViT-B-32" and b.image_model_text.disabled
    b.embed_button.click()
    assert b.error is not None and "ViT-B-32" in b.status_html.value
    b.embedding_select.value = CUSTOM
    b.image_model_text.value = b.text_model_text.value = ""
    b.embed_button.click()
    assert "give an image model, a text model or both" in b.status_html.value


def colours_folder(tmp_path: Path) -> Path:
    """The lmms-eval `colours` fixture tasks next to a generated dataset of 12 one-colour images."""
    folder = tmp_path / "colours"
    shutil.copytree(YAML_FIXTURE, folder)
    rgb = {"red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
    names = [list(rgb)[i % 4] for i in range(12)]
    rows = {"image": [Image.new("RGB", (16, 16), rgb[c]) for c in names],
            "question": [f"What colour is square {i}?" for i in range(12)], "answer": names,
            "choices": [list(rgb)] * 12, "answer_idx": [list(rgb).index(c) for c in names],
            "category": ["warm" if c in ("red", "yellow") else "cool" for c in names]}
    ds = datasets.Dataset.from_dict(rows)
    datasets.DatasetDict({"test": ds, "train": ds.select(range(4))}).save_to_disk(str(folder / "data"))
    return folder


def test_a_yaml_task_path_with_two_filters(task, cache, tmp_path) -> None:
    folder = colours_folder(tmp_path)
    path = folder / "colours_open.yaml"
    colours = load_task(path)
    answers = {"good": lambda r: r.doc["answer"] + " indeed", "half": lambda r: r.doc["answer"] if r.doc_id % 2 else "no",
               "bad": lambda r: "purple"}
    for name, fn in answers.items():
        lmms_nb.evaluate(FunctionModel(fn, name=name), colours, output_dir=tmp_path / "logs", progress=False)
    b = LiteBuilder(task, tasks=[], logs=tmp_path / "logs", budget=4, max_budget=8, fidelity_budgets=(2, 4, 8),
                    n_random=10)
    assert b.filter_select.layout.display == "none"  # synthbench_count has one filter
    b.task_path_text.value = str(path)
    b.add_task_button.click()
    assert b.error is None and b.task_select.value == "colours_open"
    assert b.filter_select.options == ("first_word", "raw") and b.filter_select.layout.display == ""
    assert set(b.metric_select.options) == {"exact_match", "anls"} and b.metric_select.value == "exact_match"
    b.embed_button.click()
    assert b.error is None, b.status_html.value
    assert len(b.subset) == 4 and b.fidelity is not None
    # first_word: "red indeed" -> "red" is right; raw: "red indeed" is wrong (exact match)
    assert b.estimates["model"].to_list() == ["bad", "good", "half"]
    assert b.estimates["full_points"].to_list() == pytest.approx([0.0, 100.0, 50.0])
    b.filter_select.value = "raw"
    assert b.estimates["full_points"].to_list() == pytest.approx([0.0, 0.0, 50.0])
    half_on_subset = np.mean([d % 2 == 1 for d in b.subset.doc_ids]) * 100
    assert b.estimates["lite_points"].to_list() == pytest.approx([0.0, 0.0, half_on_subset])

    written = b.export(tmp_path / "export", formats=["yaml"])
    assert set(written) == {"dataset", "yaml"}
    assert yaml.safe_load(written["yaml"].read_text())["include"] == str(path)
    lite = load_task(written["yaml"])  # prompts and metrics from the included YAML, rows from the export
    rows, full = lite.dataset(), colours.dataset()
    assert lite.name == "colours_open_lite" and len(rows) == 4
    assert [lite.doc_to_text(rows[j]) for j in range(4)] == [colours.doc_to_text(full[int(d)]) for d in b.subset.doc_ids]


def test_large_tasks_are_drawn_with_webgl() -> None:
    n = 3500  # above WEBGL_ABOVE: SVG markers would slow the page down
    ds = datasets.Dataset.from_dict({"question": [f"question {i} <b>?</b>" for i in range(n)]})
    big = Task(name="many_questions", load=lambda: ds, doc_to_visual=lambda d: [], doc_to_text=lambda d: d["question"],
               doc_to_target=lambda d: "", metrics=[], image_column=None)
    vectors = np.random.default_rng(1).normal(size=(n, 5)).astype(np.float32)
    b = LiteBuilder(big, tasks=[xss_task()], budget=40, max_budget=40,
                    embeddings=TaskEmbeddings(task=big.name, doc_ids=np.arange(n), vectors=vectors))
    assert [t.type for t in b.map.data] == ["scattergl", "scattergl"]
    assert len(b.map.data[0].x) == n and len(b.map.data[1].x) == 40
    assert b.map.data[0].hovertext[7] == "<b>doc 7</b><br>question 7 &lt;b&gt;?&lt;/b&gt;"
    assert list(b.map.data[1].customdata) == build_lite_subset(b.embeddings, 40).doc_ids.tolist()
    # many docs, few dimensions: the map comes from the covariance's eigenvectors; same axes as an SVD
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    ref = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    shown = np.column_stack([b.map.data[0].x, b.map.data[0].y])
    np.testing.assert_allclose(np.abs(shown), np.abs(ref), atol=1e-6)


def test_difficulty_panel_shows_the_held_out_difficulty_cv_verdict() -> None:
    """With enough models for lite_fidelity's held-out difficulty_cv rows, the fidelity panel's difficulty estimates
    come under that method's verdict at the nearest budget (`fidelity_verdicts`), and in-training models show no
    error."""
    from lmms_nb.lite_selection import fidelity_verdicts
    from lmms_nb.lite_selection._verdict import PICKED_ON_THESE_MODELS
    from lmms_nb.logs.schema import conform
    from lmms_nb.widgets._lite_fidelity import FidelityPanel

    rng = np.random.default_rng(7)
    skill, hard = rng.normal(size=10), rng.normal(-0.5, 2.0, size=200)
    correct = (rng.random((10, 200)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
    logs = conform(pl.DataFrame({"model": np.repeat([f"m{i}" for i in range(10)], 200), "task": "t",
                                 "doc_id": np.tile(np.arange(200), 10), "acc": correct.ravel()}))
    panel = FidelityPanel((20,), n_random=10)
    panel.compute(logs, logs, (np.arange(200), rng.normal(size=(200, 4))), task="t", metric="acc", filter=None)
    sub = build_difficulty_subset(logs, 20)
    panel.estimate(logs, sub, task="t", metric="acc", filter=None)
    lines = fidelity_verdicts(panel.fidelity, 20, methods=[sub.meta["method"]])
    assert all(html.escape(line) in panel.estimates_html.value for line in lines)
    # the estimator was picked by comparing errors on these same models: the verdict says its row is optimistic
    assert sub.meta["estimator_picked"] is True
    assert html.escape(PICKED_ON_THESE_MODELS) in panel.estimates_html.value
    asked = build_difficulty_subset(logs, 20, estimator=sub.meta["method"])  # asked for, not picked: no caveat
    panel.estimate(logs, asked, task="t", metric="acc", filter=None)
    assert asked.meta["estimator_picked"] is False and "lmms-nb-lite-verdict" in panel.estimates_html.value
    assert html.escape(PICKED_ON_THESE_MODELS) not in panel.estimates_html.value
    assert panel.estimates["lite_difficulty_error_points"].null_count() == 10


def test_a_task_name_with_markup_is_shown_as_text() -> None:
    """A task's name comes from a YAML file: the status line shows it escaped."""
    first, named = xss_task(), xss_task()
    named.name = '<img src=x onerror="alert(1)">'
    b = LiteBuilder(first, tasks=[named], budget=3)
    b.task_select.value = named.name
    assert "&lt;img src=x" in b.status_html.value and "<img" not in b.status_html.value
