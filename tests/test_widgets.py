"""Widget state without a browser: set control values, `.click()`, and check what the widgets show and call.

Expected values are computed independently of the code under test: right/wrong sets and text matches by
plain Python loops over the rows, scores by hand, image pixels by PIL, cross-checks against `compare()`.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading

import datasets
import numpy as np
import polars as pl
import pytest
from _toy import colour_of, toy_task
from PIL import Image

from lmms_nb.models.baselines import FunctionModel
from lmms_nb.widgets import (
    ALL,
    NO_CATEGORY,
    CompareDashboard,
    EvalLauncher,
    SampleBrowser,
    SampleIndex,
    SampleQuery,
    thumbnail_data_uri,
)
from lmms_nb.widgets._html import esc

XSS = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">']


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def random_table(seed: int = 0, n_docs: int = 40) -> pl.DataFrame:
    """3 models x 2 tasks; t1 exact_match 0/1 with categories, t2 anls in [0, 1]; some errors and absent rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, metric in (("t1", "exact_match"), ("t2", "anls")):
        for d in range(n_docs):
            for m in ("A", "B", "C"):
                if m == "C" and d % 7 == 3:
                    continue  # C was not run on these docs
                error = "timeout" if (m == "B" and d % 11 == 5) else None
                if metric == "exact_match":
                    value = None if error else float(rng.random() < (0.3 + 0.25 * "ABC".index(m)))
                else:
                    value = None if error else float(np.round(rng.random(), 2))
                word = ["apple", "Banana", "cherry", "date"][(d + "ABC".index(m)) % 4]
                rows.append({
                    "model": m, "task": task, "doc_id": d, "run_id": f"run-{m}",
                    "input": f"Question {d} of {task}: name the fruit", "target": "apple" if d % 2 else "pear",
                    "prediction": None if error else f"{word} {d}", "error": error,
                    "category": None if d % 5 == 0 else ("red" if d % 2 else "blue"),
                    metric: value,
                })
    return pl.DataFrame(rows, infer_schema_length=None)


def _right(row: dict, metric: str) -> bool | None:
    v = row[metric]
    if v is None:
        return None
    return v == 1.0 if metric == "exact_match" else v >= 0.5


def expected_keys(df: pl.DataFrame, *, task=None, category="all", pattern=None, text="", models=None):
    """The (task, doc_id) keys a query should return, by a Python loop over the long table."""
    metric_of = {"t1": "exact_match", "t2": "anls"}
    by_key: dict[tuple, dict[str, dict]] = {}
    for row in df.iter_rows(named=True):
        by_key.setdefault((row["task"], row["doc_id"]), {})[row["model"]] = row
    shown = models or ["A", "B", "C"]
    keys = []
    for (t, d), per_model in sorted(by_key.items()):
        any_row = next(iter(per_model.values()))
        if task is not None and t != task:
            continue
        if category != "all" and any_row["category"] != category:
            continue
        if models and not any(m in per_model for m in models):
            continue
        ok = True
        for m, want in (pattern or {}).items():
            r = per_model.get(m)
            ok &= r is not None and _right(r, metric_of[t]) is want
        if not ok:
            continue
        if text:
            hay = [any_row["input"], any_row["target"]] + [
                per_model[m]["prediction"] or "" for m in shown if m in per_model]
            if not any(text.lower() in h.lower() for h in hay):
                continue
        keys.append((t, d))
    return keys


def shown_keys(browser: SampleBrowser) -> list[tuple]:
    """Every key the browser's filter matches, page by page through the Next button, as the user sees them."""
    while browser.page_number > 0:
        browser.prev_button.click()
    keys = []
    while True:
        keys += [(r["task"], r["doc_id"]) for r in browser.page_rows.iter_rows(named=True)]
        cards = re.findall(r'data-task="([^"]*)" data-doc-id="(\d+)"', browser.samples_html.value)
        assert [(t, int(d)) for t, d in cards] == [(r["task"], r["doc_id"]) for r in browser.page_rows.iter_rows(named=True)]
        if browser.next_button.disabled:
            break
        browser.next_button.click()
    return keys


# ---- SampleBrowser: filters, pattern, text, paging ----------------------------------------------------------
def test_filters_match_a_python_loop():
    df = random_table()
    browser = SampleBrowser(df, page_size=7)
    assert browser.index.metrics == {"t1": "exact_match", "t2": "anls"}
    assert shown_keys(browser) == expected_keys(df)

    browser.task_select.value = "t1"
    browser.category_select.value = "red"
    assert shown_keys(browser) == expected_keys(df, task="t1", category="red")

    browser.pattern_buttons["A"].value = "right"
    browser.pattern_buttons["B"].value = "wrong"
    want = expected_keys(df, task="t1", category="red", pattern={"A": True, "B": False})
    assert want and shown_keys(browser) == want

    assert browser.task_select.label == "t1" and browser.category_select.label == "red"
    browser.task_select.value = ALL  # pattern over both tasks: anls counts as right at >= 0.5
    browser.category_select.value = ALL
    assert browser.category_select.label == "all categories"
    assert shown_keys(browser) == expected_keys(df, pattern={"A": True, "B": False})

    browser.category_select.value = NO_CATEGORY
    assert shown_keys(browser) == expected_keys(df, category=None, pattern={"A": True, "B": False})


def test_pattern_counts_agree_with_compare():
    from lmms_nb.analysis import compare

    df = random_table(seed=3)
    cmp = compare(df, n_resamples=200)
    browser = SampleBrowser(df)
    for row in cmp.pairwise.iter_rows(named=True):
        browser.set_filter(task=row["task"], pattern={row["model_a"]: True, row["model_b"]: False})
        assert browser.n_matches == row["a_right_b_wrong"], row
        browser.set_filter(task=row["task"], pattern={row["model_a"]: False, row["model_b"]: True})
        assert browser.n_matches == row["b_right_a_wrong"], row


def test_text_search_is_case_insensitive_and_follows_shown_models():
    df = random_table()
    browser = SampleBrowser(df, page_size=50)
    browser.search_box.value = "BANANA 1"
    want = expected_keys(df, text="banana 1")
    assert want and shown_keys(browser) == want
    browser.model_select.value = ("A",)  # only A's answers are searched (and shown)
    want_a = expected_keys(df, text="banana 1", models=["A"])
    assert shown_keys(browser) == want_a and len(want_a) < len(want)
    assert 'data-model="B"' not in browser.samples_html.value
    browser.search_box.value = "question 13 of t2"
    assert shown_keys(browser) == [("t2", 13)]
    browser.search_box.value = "no such text"
    assert browser.n_matches == 0 and "No sample matches" in browser.samples_html.value
    assert browser.page_label.value == "no sample matches"


def test_paging_labels_and_buttons():
    df = random_table(n_docs=12)  # 24 samples
    browser = SampleBrowser(df, page_size=10)
    assert browser.page_label.value == "samples 1–10 of 24 · page 1 of 3"
    assert browser.prev_button.disabled and not browser.next_button.disabled
    browser.next_button.click()
    browser.next_button.click()
    assert browser.page_label.value == "samples 21–24 of 24 · page 3 of 3"
    assert browser.next_button.disabled and browser.page_rows.height == 4
    browser.next_button.click()  # disabled in the page; clicking from code changes nothing
    assert browser.page_number == 2
    browser.page_size_select.value = 20  # a filter change goes back to page 1
    assert browser.page_label.value == "samples 1–20 of 24 · page 1 of 2"
    browser.task_select.value = "t2"
    assert [r["doc_id"] for r in browser.page_rows.iter_rows(named=True)] == list(range(12))


def test_answers_are_coloured_by_correctness():
    df = random_table(n_docs=10)
    browser = SampleBrowser(df, page_size=50)
    html = browser.samples_html.value
    # card by card: each card lists its answers with their state
    cards = re.split(r'<div class="lmms-nb-card" ', html)[1:]
    metric_of = {"t1": "exact_match", "t2": "anls"}
    long = {(r["task"], r["doc_id"], r["model"]): r for r in df.iter_rows(named=True)}
    seen = 0
    for card in cards:
        t, d = re.search(r'data-task="([^"]*)" data-doc-id="(\d+)"', card).groups()
        for m, state, value in re.findall(r'data-model="([^"]*)" data-state="(\w+)"(?: data-value="([^"]*)")?', card):
            row = long.get((t, int(d), m))
            if row is None:
                want = "absent"
            elif row["error"] is not None:
                want = "unscored"
            elif metric_of[t] == "anls" and 0.5 <= row["anls"] < 1.0:  # continuous: right at 1, partial from 0.5
                want = "partial"
            else:
                want = "right" if _right(row, metric_of[t]) else "wrong"
            assert state == want, (t, d, m)
            if want in ("right", "partial", "wrong"):  # the chip shows the metric value
                assert float(value) == pytest.approx(row[metric_of[t]], abs=1e-5), (t, d, m)
            seen += 1
    assert seen == len(long) + sum(1 for t in ("t1", "t2") for d in range(10) if d % 7 == 3)
    assert "error: timeout" in html and "not run on this sample" in html


def test_everything_from_data_is_escaped():
    df = pl.DataFrame({
        "model": ["<b>evil</b>", "good"], "task": ['t"><script>x()</script>'] * 2, "doc_id": [0, 0],
        "input": ["Is 1 < 2 & 3 > 2?"] * 2, "target": ["<i>yes</i>"] * 2, "prediction": XSS,
        "category": ["<u>cat</u>"] * 2, "exact_match": [0.0, 1.0],
    })
    browser = SampleBrowser(df)
    html = browser.samples_html.value + browser.info_html.value
    for raw in [*XSS, "<b>evil</b>", "<script>x()</script>", "<i>yes</i>", "<u>cat</u>", "1 < 2 &"]:
        assert raw not in html
    for text in [*XSS, "<b>evil</b>", "<i>yes</i>", "Is 1 < 2 & 3 > 2?"]:
        assert esc(text) in html
    # the only tags in the page are ours
    tags = set(re.findall(r"<\s*([a-zA-Z]+)", html))
    assert tags <= {"style", "div", "span", "b", "small", "img", "details", "summary", "table", "thead", "tbody",
                    "tr", "th", "td", "label", "input", "br"}, tags
    assert "<img" not in html.replace('<img src="data:image/png;base64,', "")


def test_set_filter_and_doc_ids_and_errors():
    df = random_table()
    browser = SampleBrowser(df)
    browser.set_filter(task="t2", doc_ids=[4, 9, 33], models=["C", "A"])
    assert [r["doc_id"] for r in browser.page_rows.iter_rows(named=True)] == [4, 9, 33]
    assert browser.model_select.value == ("A", "C")  # display order is the table's
    assert set(browser.pattern_buttons) == {"A", "C"}
    assert browser.clear_doc_ids_button.layout.display == ""
    browser.clear_doc_ids_button.click()
    assert browser.n_matches == 40 and browser.clear_doc_ids_button.layout.display == "none"
    with pytest.raises(ValueError, match="unknown model 'Z'"):
        browser.set_filter(pattern={"Z": True})
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        browser.set_filter(task="nope")
    with pytest.raises(ValueError, match="several metric columns"):
        SampleBrowser(df.with_columns(pl.lit(1.0).alias("other")))
    assert SampleBrowser(df.with_columns(pl.lit(1.0).alias("other")), metric={"t1": "exact_match", "t2": "anls"}).n_matches == 80


def test_predictions_without_metrics_can_be_browsed():
    df = random_table(n_docs=4).drop("exact_match", "anls")
    browser = SampleBrowser(df)
    assert browser.n_matches == 8 and browser.index.metrics == {}
    assert all(b.disabled for b in browser.pattern_buttons.values())
    assert 'data-state="unscored"' in browser.samples_html.value


def test_several_runs_keep_the_latest_and_duplicates_are_named():
    df = random_table(n_docs=5)
    newer = df.filter(pl.col("model") == "A").with_columns(run_id=pl.lit("run-A2"), prediction=pl.lit("NEW"))
    browser = SampleBrowser(pl.concat([df, newer], how="diagonal_relaxed"), page_size=50)
    assert set(browser.page_rows["prediction_0"].to_list()) == {"NEW"}
    with pytest.raises(ValueError, match="runs"):
        SampleBrowser(pl.concat([df, newer], how="diagonal_relaxed"), runs=None)


# ---- inputs: Run, log folder, pandas ------------------------------------------------------------------------
def test_browser_reads_a_run_and_its_logs(tmp_path):
    import lmms_nb

    task = toy_task(12, path=tmp_path / "toy_ds")
    perfect = FunctionModel(colour_of, name="perfect")
    red_only = FunctionModel(lambda images, prompt: "red", name="red-only")
    runs = [lmms_nb.evaluate(m, task, output_dir=tmp_path / "out", progress=False) for m in (perfect, red_only)]
    from_run = SampleBrowser(runs[1], page_size=12)
    assert from_run.n_matches == 12 and from_run.index.models == ["red-only"]
    from_logs = SampleBrowser(tmp_path / "out", page_size=12)
    assert from_logs.index.models == ["perfect", "red-only"]
    from_logs.pattern_buttons["perfect"].value = "right"
    from_logs.pattern_buttons["red-only"].value = "wrong"
    ds = datasets.load_from_disk(str(tmp_path / "toy_ds"))
    assert [r["doc_id"] for r in from_logs.page_rows.iter_rows(named=True)] == [i for i in range(12) if ds[i]["answer"] != "red"]
    # every card shows the doc's own image: decode the thumbnails and compare pixels with the dataset
    for row, uri in zip(from_logs.page_rows.iter_rows(named=True),
                        re.findall(r'<img src="data:image/png;base64,([^"]+)"', from_logs.samples_html.value)):
        thumb = Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB")
        assert thumb.getpixel((0, 0)) == ds[row["doc_id"]]["image"].convert("RGB").getpixel((0, 0))
    pandas_browser = SampleBrowser(runs[0].samples.to_pandas())
    assert pandas_browser.n_matches == 12


# ---- thumbnails -------------------------------------------------------------------------------------------
def _png_b64(colour, size=(40, 20)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def test_thumbnails_from_every_kind_of_image_ref(tmp_path):
    Image.new("RGB", (300, 150), (10, 20, 30)).save(tmp_path / "a.png")
    ds = datasets.Dataset.from_dict({"q": ["x", "y"], "img": [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")]},
                                    features=datasets.Features({"q": datasets.Value("string"), "img": datasets.Image()}))
    ds.save_to_disk(str(tmp_path / "ds"))
    log = tmp_path / "samples.jsonl"
    log.write_text(json.dumps({"doc_id": 0}) + "\n" + json.dumps({"doc_id": 1, "input_media": [_png_b64("green")]}) + "\n")
    from lmms_nb.images import allow_image_roots

    allow_image_roots(tmp_path)  # references are read only under allowed roots (tests/test_image_roots.py)
    big = _decode(thumbnail_data_uri(f"file:{tmp_path / 'a.png'}", 96))
    assert big.size == (96, 48) and big.getpixel((5, 5)) == (10, 20, 30)
    small = _decode(thumbnail_data_uri(f"dataset:{tmp_path / 'ds'}#1", 96))
    assert small.size == (96, 96) and small.getpixel((50, 50)) == (0, 0, 255)  # 8 px enlarged x12
    assert _decode(thumbnail_data_uri(f"b64:{log}#2", 64)).getpixel((1, 1)) == (0, 128, 0)
    assert _decode(thumbnail_data_uri("b64:" + _png_b64("yellow"), 64)).getpixel((1, 1)) == (255, 255, 0)
    assert _decode(thumbnail_data_uri("b64:data:image/png;base64," + _png_b64("red"), 64)).getpixel((1, 1)) == (255, 0, 0)

    from lmms_nb.widgets import ImageRefError

    for ref, message in [(f"file:{tmp_path / 'gone.png'}", "no such file"), (f"dataset:{tmp_path / 'ds'}#9", "past the end"),
                         (f"b64:{log}#1", "holds no base64 image"), ("b64:!!!", "not valid base64"),
                         ("http://x/y.png", "unknown scheme"), (f"dataset:{tmp_path}#0", "no saved dataset")]:
        with pytest.raises(ImageRefError, match=message):
            thumbnail_data_uri(ref, 32)

    df = pl.DataFrame({"model": ["m"] * 3, "task": ["t"] * 3, "doc_id": [0, 1, 2], "acc": [1.0, 0.0, 1.0],
                       "image_ref": [f"dataset:{tmp_path / 'ds'}#0", f"file:{tmp_path / 'gone.png'}", None]})
    html = SampleBrowser(df).samples_html.value
    assert html.count('<img src="data:image/png;base64,') == 1
    assert "image unavailable" in html and "no such file" in html and "no image" in html


# ---- EvalLauncher -----------------------------------------------------------------------------------------
def _launcher(tmp_path, models, n=24, **kwargs):
    task = toy_task(n, path=tmp_path / "toy_ds")
    launcher = EvalLauncher(models=models, tasks=[task], output_dir=str(tmp_path / "out"), **kwargs)
    launcher.task_select.value = (task.name,)
    return launcher, task


def test_launcher_runs_and_hands_back_the_run(tmp_path):
    half = FunctionModel(lambda images, prompt: "red" if "Q1" in prompt else colour_of(images, prompt), name="half")
    perfect = FunctionModel(colour_of, name="perfect")
    got = []
    launcher, task = _launcher(tmp_path, [perfect, half], on_finished=got.append)
    launcher.model_select.value = "half"
    launcher.batch_size_input.value = 5
    launcher.limit_input.value = 20
    launcher.run_button.click()
    run = launcher.wait(60)
    assert launcher.error is None and run is got[0] and run.completed
    # hand count: docs 0..19; "Q1" is in Q1 and Q10..Q19; those answer red, right only when the colour is red
    wrong = [i for i in [1] + list(range(10, 20)) if ["red", "green", "blue"][i % 3] != "red"]
    assert run.score(task.name) == pytest.approx(1 - len(wrong) / 20)
    bar = launcher.bars[task.name]
    assert (bar.value, bar.max, bar.bar_style) == (20, 20, "success")
    assert f"exact_match {1 - len(wrong) / 20:.3f}" in launcher.score_labels[task.name].value
    assert "complete" in launcher.status_html.value and f"{1 - len(wrong) / 20:.3f}" in launcher.scores_html.value
    assert not launcher.run_button.disabled and launcher.stop_button.disabled


def test_launcher_stop_keeps_what_was_written_and_run_resumes(tmp_path):
    gate, first_batch_done = threading.Event(), threading.Event()

    class Slow(FunctionModel):  # the call count is the model's state, not its code: no part of its identity
        calls: list[str] = []

        def generate(self, requests):
            self.calls.extend(r.prompt for r in requests)
            if len(self.calls) > 4:  # the second batch waits until the test has pressed Stop
                first_batch_done.set()
                assert gate.wait(30)
            return super().generate(requests)

    model = Slow(colour_of, name="slow")
    calls = model.calls
    launcher, task = _launcher(tmp_path, [model], batch_size=4)
    partial_scores = []
    launcher.run_button.click()
    assert first_batch_done.wait(30)
    partial_scores.append(launcher.score_labels[task.name].value)
    launcher.stop_button.click()
    assert launcher.stop_button.disabled and "stopping" in launcher.status_html.value
    gate.set()
    stopped = launcher.wait(60)
    assert partial_scores == ["4/24 · exact_match 1.000"]
    assert not stopped.completed and stopped.samples.height == 8  # the batch in flight was finished and kept
    assert launcher.bars[task.name].value == 8 and launcher.bars[task.name].bar_style == "warning"
    assert "Run again to resume" in launcher.status_html.value
    lines = stopped.sample_files[task.name].read_text().splitlines()
    assert len(lines) == 8

    launcher.run_button.click()  # resumes: only the 16 missing docs are asked
    resumed = launcher.wait(60)
    assert resumed.completed and resumed.run_id == stopped.run_id
    assert len(calls) == 8 + 16 and resumed.samples["doc_id"].sort().to_list() == list(range(24))
    assert resumed.score(task.name) == 1.0 and launcher.bars[task.name].value == 24


def test_launcher_shows_errors(tmp_path):
    launcher, _ = _launcher(tmp_path, ["majority", FunctionModel(colour_of, name="p")])
    launcher.model_args_text.value = "{not json"
    launcher.run_button.click()
    assert launcher._thread is None and "model args: not valid JSON" in launcher.status_html.value
    launcher.model_select.value = "p"
    launcher.model_args_text.value = ""
    launcher.task_select.value = ()
    launcher.run_button.click()
    assert "choose at least one task" in launcher.status_html.value

    def broken_load():
        raise FileNotFoundError("data/<missing>.parquet")

    bad = toy_task(4)
    bad.name, bad.load = "broken", broken_load
    launcher = EvalLauncher(models=[FunctionModel(colour_of, name="p")], tasks=[bad], output_dir=str(tmp_path / "o"))
    launcher.task_select.value = ("broken",)
    launcher.run_button.click()
    assert launcher.wait(30) is None and isinstance(launcher.error, FileNotFoundError)
    assert "FileNotFoundError: data/&lt;missing&gt;.parquet" in launcher.status_html.value
    assert not launcher.run_button.disabled


def test_launcher_reports_a_failing_callback(tmp_path):
    def explode(run):
        raise RuntimeError("<b>callback bug</b>")

    launcher, _ = _launcher(tmp_path, [FunctionModel(colour_of, name="p")], n=4, on_finished=explode)
    launcher.run_button.click()
    run = launcher.wait(60)
    assert run.completed and isinstance(launcher.error, RuntimeError)
    assert "on_finished callback explode failed: RuntimeError: &lt;b&gt;callback bug&lt;/b&gt;" in launcher.status_html.value


def test_launcher_lists_registered_models_and_tasks():
    import lmms_nb

    launcher = EvalLauncher()
    assert list(launcher.model_select.options) == lmms_nb.list_models()
    assert list(launcher.task_select.options) == lmms_nb.list_tasks()


def test_sample_index_rejects_bad_input():
    with pytest.raises(TypeError, match="expected a sample table"):
        SampleIndex(42)
    with pytest.raises(ValueError, match="page_size"):
        SampleIndex(random_table(n_docs=2)).page(SampleQuery(), 0, 0)


# ---- CompareDashboard ---------------------------------------------------------------------------------------
def frontend_click(figure, trace_index: int, point_index) -> None:
    """What plotly's frontend sends over the comm when a point is clicked (the real path to `on_click`)."""
    figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [trace_index], "point_indexes": [point_index], "xs": [None], "ys": [None]},
        "device_state": None,
        "selector": None,
    }


def test_dashboard_shows_compare_and_clicks_open_the_browser():
    from lmms_nb.analysis import compare

    df = random_table(seed=5)
    dash = CompareDashboard(df, n_resamples=300)
    cmp = compare(df, n_resamples=300, runs="latest")
    from polars.testing import assert_frame_equal

    assert_frame_equal(dash.comparison.scores, cmp.scores)  # to float rounding: the sums may run in another order
    assert_frame_equal(dash.comparison.pairwise, cmp.pairwise)
    for row in cmp.scores.iter_rows(named=True):  # the table shows each score with its CI
        assert all(f"{row[c]:.3f}" in dash.scores_html.value for c in ("score", "ci_low", "ci_high"))
    assert set(dash.figures) == {"bar", "category", "samples"}
    assert dash.browser.layout.display == "none"

    bar = dash.figures["bar"]
    trace_b = [t.name for t in bar.data].index("B")
    point_t2 = [c[1] for c in bar.data[trace_b].customdata].index("t2")
    frontend_click(bar, trace_b, point_t2)
    assert dash.last_click == {"model": "B", "task": "t2", "group": None, "doc_id": None}
    assert dash.browser.layout.display == "" and dash.browser.task_select.value == "t2"
    n_b = cmp.scores.filter((pl.col("model") == "B") & (pl.col("task") == "t2"))
    # the clicked model is outlined and "B wrong" preselected; the browser opens right under the bar chart
    assert dash.browser.highlight == "B" and dash.browser.pattern_buttons["B"].value == "wrong"
    kids = list(dash.figures_box.children)
    assert kids.index(dash.browser_box) == kids.index(dash.figures["bar"]) + 1
    assert shown_keys(dash.browser) == expected_keys(df, task="t2", pattern={"B": False})
    dash.browser.pattern_buttons["B"].value = "any"
    assert shown_keys(dash.browser) == expected_keys(df, task="t2")
    assert sum(1 for r in df.iter_rows(named=True) if r["model"] == "B" and r["task"] == "t2" and r["anls"] is not None) == n_b["n"][0]

    heat = dash.figures["category"]  # [row = model, column = task/group]
    cells = heat.data[0].customdata
    i, j = next((i, j) for i in range(len(cells)) for j in range(len(cells[i]))
                if cells[i][j][0] == "A" and cells[i][j][1] == "t1" and cells[i][j][2] == "red")
    frontend_click(heat, 0, [i, j])
    assert dash.last_click["group"] == "red" and dash.browser.category_select.value == "red"
    assert shown_keys(dash.browser) == expected_keys(df, task="t1", category="red", pattern={"A": False})
    kids = list(dash.figures_box.children)
    assert kids.index(dash.browser_box) == kids.index(dash.figures["category"]) + 1
    by_group = cmp.scores_by_group.filter((pl.col("model") == "A") & (pl.col("task") == "t1") & (pl.col("category") == "red"))
    assert by_group["n"][0] == sum(1 for r in df.iter_rows(named=True) if (r["model"], r["task"], r["category"]) == ("A", "t1", "red"))

    samples = dash.figures["samples"]
    model, task, doc_id, _ = samples.data[0].customdata[1][7]
    frontend_click(samples, 0, [1, 7])
    assert dash.last_click["doc_id"] == doc_id and dash.last_click["model"] == model
    assert [(r["task"], r["doc_id"]) for r in dash.browser.page_rows.iter_rows(named=True)] == [(task, doc_id)]
    assert "Samples behind" in dash.browser_title.value

    dash.close_browser_button.click()
    assert dash.browser.layout.display == "none"


def test_browser_and_dashboard_accept_a_comparison():
    from lmms_nb.analysis import compare

    df = random_table(seed=4)
    cmp = compare(df, models=["C", "A"], n_resamples=100)
    browser = SampleBrowser(cmp)
    assert browser.index.models == ["C", "A"] and 'data-model="B"' not in browser.samples_html.value
    browser.set_filter(pattern={"C": True, "A": False})
    row = cmp.pairwise.group_by("model_a").agg(pl.col("a_right_b_wrong").sum()).row(0)
    assert row[0] == "C" and browser.n_matches == row[1]
    dash = CompareDashboard(cmp, n_resamples=100)
    assert dash.index.models == ["A", "B", "C"]  # the dashboard starts from the comparison's source table


def test_dashboard_selection_reruns_compare_and_reports_errors():
    df = random_table(seed=2)
    dash = CompareDashboard(df, n_resamples=200)
    dash.model_select.value = ("A", "C")
    dash.task_select.value = ("t1",)
    assert dash.comparison.models == ["A", "C"] and dash.comparison.tasks == ["t1"]
    assert dash.comparison.pairwise.height == 1 and [t.name for t in dash.figures["bar"].data] == ["A", "C"]
    dash.model_select.value = ()
    assert dash.comparison is None and "choose at least one model" in dash.status_html.value
    assert dash.figures == {}
    evil = df.with_columns(pl.when(pl.col("model") == "A").then(pl.lit("<img src=x onerror=alert(1)>")).otherwise("model").alias("model"))
    dash = CompareDashboard(evil, n_resamples=100)
    assert "<img src=x" not in dash.scores_html.value + dash.pairwise_html.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in dash.scores_html.value


def test_dashboard_updates_figures_in_place_with_fixed_colours_and_a_summary():
    df = random_table(seed=3)
    dash = CompareDashboard(df, n_resamples=100)
    bar = dash.figures["bar"]
    colour = {t.name: t.marker.color for t in bar.data}
    assert len(set(colour.values())) == 3
    for selection in [("B", "C"), ("C",), ("A", "C"), ("A", "B", "C")]:
        dash.model_select.value = selection
        assert dash.figures["bar"] is bar  # the same widget, updated in place
        plotted = [t.name for t in bar.data]
        tabled = dash.summary.grid["model"].to_list()
        assert sorted(plotted) == sorted(tabled) == sorted(selection)
        assert {t.name: t.marker.color for t in bar.data} == {m: colour[m] for m in selection}
        assert [t.name for t in dash.figures["samples"].data[:1]] and len(dash.figures["samples"].data[0].y) == len(selection)
        assert all(f'data-model="{m}"' in dash.summary_html.value for m in selection)
    assert "Best overall" in dash.summary_html.value and dash.busy_html.value == ""
    assert "CI method" in dash.scores_html.value and "wilson" in dash.scores_html.value


def test_launcher_form_per_backend_and_one_line_errors(tmp_path):
    launcher = EvalLauncher(models=["openai", "hf", "majority", "function"], tasks=[toy_task(4)],
                            output_dir=str(tmp_path / "o"))
    launcher.task_select.value = ("toy_colour",)
    launcher.model_select.value = "hf"
    fields = launcher.arg_widgets
    assert list(fields)[0] == "pretrained"  # required first
    assert fields["pretrained"].description == "pretrained *" and fields["pretrained"].placeholder.startswith("required")
    assert fields["dtype"].value == "float32" and fields["max_new_tokens"].value == 32
    assert "hub id or a local folder" in launcher.args_box.children[0].children[1].value  # the help beside the field
    launcher.run_button.click()  # no checkpoint: said in one line, naming the field and its help, no TypeError
    status = launcher.status_html.value
    assert launcher._thread is None and "cannot run: hf needs pretrained (pretrained: a hub id" in status
    assert "TypeError" not in status and "\n" not in status
    fields["max_new_tokens"].value = 7
    fields["pretrained"].value = "some/model"
    assert launcher._chosen_model() == ("hf", {"pretrained": "some/model", "max_new_tokens": 7})
    launcher.model_select.value = "openai"  # every backend gets its own form, with its defaults
    assert set(launcher.arg_widgets) >= {"model", "base_url", "api_key_env"} and "pretrained" not in launcher.arg_widgets
    launcher.model_select.value = "function"
    launcher.run_button.click()
    assert "function needs fn (a Python object)" in launcher.status_html.value
    launcher.model_select.value = "majority"
    assert launcher._chosen_model() == ("majority", None)



def test_browser_sorts_and_exports_the_filtered_rows(tmp_path):
    df = random_table(n_docs=10)
    browser = SampleBrowser(df, page_size=3)
    browser.task_select.value = "t2"
    browser.sort_select.value = ("value_0", True)  # A's score, high first
    values = [v for v in browser.to_frame()["value:A"].to_list() if v is not None]
    assert values == sorted(values, reverse=True) and browser.page_rows["value_0"][0] == values[0]
    assert browser.to_frame().height == browser.n_matches == 10
    csv, parquet = browser.to_csv(tmp_path / "s.csv"), browser.to_parquet(tmp_path / "s.parquet")
    assert pl.read_csv(csv).height == pl.read_parquet(parquet).height == 10
    assert {"prediction:A", "raw_response:B", "latency_s:C", "error:A"} <= set(pl.read_parquet(parquet).columns)
    browser.sort_select.value = ""
    assert browser.query.sort is None
