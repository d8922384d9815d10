"""Tests of lmms_nb.tasks.synthbench: determinism, that the pictures really show the answers (measured from
pixels with scipy.ndimage), disjoint splits, caching, and the registered tasks' scoring."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from scipy import ndimage

from lmms_nb.metrics import mme_acc_plus
from lmms_nb.tasks import Task, get_task, list_tasks
from lmms_nb.tasks.synthbench import (
    CHART_QUESTIONS,
    COLORS,
    MCQ_OPTIONS,
    FAMILIES,
    OCR_WORDS,
    SYNTHBENCH_TASKS,
    build_synthbench,
    load_synthbench,
    synthbench_path,
    synthbench_task,
    train_split_task,
)

N_TRAIN, N_TEST = 100, 200
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=int)


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthbench")
    build_synthbench(n_train=N_TRAIN, n_test=N_TEST, root=root)
    return root


def load(family: str, split: str, root: Path) -> datasets.Dataset:
    return load_synthbench(family, split, n_train=N_TRAIN, n_test=N_TEST, root=root)


def raw_rows(ds: datasets.Dataset) -> list[dict]:
    """Rows with the image as its stored PNG bytes (no decoding), for byte-level comparisons."""
    return ds.cast_column("image", datasets.Image(decode=False)).to_list()


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)


def background_of(array: np.ndarray) -> np.ndarray:
    colours, counts = np.unique(array.reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def shapes_of(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (8-neighbour) of the non-background pixels."""
    mask = (array != background_of(array)).any(axis=-1)
    return ndimage.label(mask, structure=EIGHT_NEIGHBOURS)


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_rows_and_image_bytes(tmp_path):
    first = build_synthbench(seed=7, n_train=12, n_test=8, root=tmp_path / "one")
    second = build_synthbench(seed=7, n_train=12, n_test=8, root=tmp_path / "two")
    other = build_synthbench(seed=8, n_train=12, n_test=8, root=tmp_path / "three")
    for family in FAMILIES:
        for split in ("train", "test"):
            a = raw_rows(datasets.load_from_disk(str(first / family / split)))
            b = raw_rows(datasets.load_from_disk(str(second / family / split)))
            c = raw_rows(datasets.load_from_disk(str(other / family / split)))
            assert a == b, (family, split)  # includes the PNG bytes
            assert [r["image"]["bytes"] for r in a] != [r["image"]["bytes"] for r in c], (family, split)


def test_test_split_does_not_depend_on_train_size(tmp_path, bench_root):
    smaller = build_synthbench(n_train=40, n_test=N_TEST, root=tmp_path)
    for family in FAMILIES:
        assert raw_rows(datasets.load_from_disk(str(smaller / family / "test"))) == raw_rows(
            load(family, "test", bench_root)
        )


# -------------------------------------------------------------------------------- structure of every row


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_are_complete_and_images_are_64px_rgb(family, bench_root):
    for split, n_rows in (("train", N_TRAIN), ("test", N_TEST)):
        ds = load(family, split, bench_root)
        assert ds.num_rows == n_rows
        assert isinstance(ds.features["image"], datasets.Image)
        assert {"image", "question", "answer", "category", "question_id"} <= set(ds.column_names)
        table = ds.remove_columns("image").to_polars()
        assert table["question_id"].n_unique() == n_rows
        for column in ("question", "answer", "category"):
            assert table[column].str.len_chars().min() > 0, (family, split, column)
        image = ds[0]["image"]
        assert image.mode == "RGB" and image.size == (64, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_train_and_test_share_no_row(family, bench_root):
    def keys(ds):
        return {(hashlib.sha1(r["image"]["bytes"]).hexdigest(), r["question"]) for r in raw_rows(ds)}

    train, test = keys(load(family, "train", bench_root)), keys(load(family, "test", bench_root))
    assert len(train) == N_TRAIN and len(test) == N_TEST  # no duplicates inside a split either
    assert not train & test


@pytest.mark.parametrize("family, ceiling", [("count", 0.35), ("mcq", 0.4), ("chart", 0.3), ("yesno", 0.5)])
def test_majority_answer_is_a_weak_baseline(family, ceiling, bench_root):
    answers = load(family, "test", bench_root)["answer"]
    majority_rate = Counter(answers).most_common(1)[0][1] / len(answers)
    assert 0.1 <= majority_rate <= ceiling


# ------------------------------------------------------------------------ the images show the answers


def test_count_images_show_that_many_shapes_of_that_kind(bench_root):
    for split in ("train", "test"):
        for doc in load("count", split, bench_root):
            array = pixels(doc["image"])
            assert len(np.unique(array.reshape(-1, 3), axis=0)) == 2  # background + one shape colour
            labels, n_shapes = shapes_of(array)
            assert n_shapes == int(doc["answer"]), doc["question_id"]
            assert doc["question"] == f"How many {doc['category']}s are in the image?"
            # how much of its bounding box a shape fills tells the kind: square 1, circle ~pi/4, triangle ~1/2
            for box in ndimage.find_objects(labels):
                fill = float((labels[box] > 0).mean())
                kind = "square" if fill > 0.95 else "circle" if fill > 0.65 else "triangle"
                assert kind == doc["category"], (doc["question_id"], fill)


def test_mcq_options_hold_the_answer_and_the_image_agrees(bench_root):
    ds = load("mcq", "test", bench_root)
    assert set(ds["category"]) == {"color", "shape", "position"}
    for doc in ds:
        options = [doc[letter] for letter in "ABCD"]
        assert tuple(options) == MCQ_OPTIONS[doc["category"]] and doc["answer"] in "ABCD"
        correct = doc[doc["answer"]]
        array = pixels(doc["image"])
        background = background_of(array)
        if doc["category"] == "color":
            colours, counts = np.unique(array.reshape(-1, 3), axis=0, return_counts=True)
            shape_colour = [c for c, _ in sorted(zip(colours.tolist(), counts), key=lambda t: -t[1])
                            if c != background.tolist()][0]
            assert tuple(shape_colour) == COLORS[correct], doc["question_id"]
        elif doc["category"] == "position":
            # the centroid of the named colour's pixels lies on the answered side of the image centre
            named_colour = doc["question"].split()[3]  # "Where is the <colour> <shape> in the image?"
            ys, xs = np.nonzero((array == COLORS[named_colour]).all(axis=-1))
            dx, dy = xs.mean() - 31.5, ys.mean() - 31.5
            measured = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("bottom" if dy > 0 else "top")
            assert measured == correct, doc["question_id"]
        else:
            assert correct in {"circle", "square", "triangle", "diamond", "star"}
            assert shapes_of(array)[1] == 1


def test_ocr_rows_use_the_vocabulary_and_show_ink(bench_root):
    ds = load("ocr", "test", bench_root)
    for doc in ds:
        assert doc["answer"] in OCR_WORDS
        assert doc["category"] == f"{len(doc['answer'])}-letter"
        array = pixels(doc["image"])
        ink = (np.abs(array - background_of(array)).sum(axis=-1) > 200)  # strongly contrasting pixels
        _, n_blobs = ndimage.label(ink, structure=EIGHT_NEIGHBOURS)
        # capital letters are one blob each, except where neighbours touch: at least 1, at most the length
        assert 1 <= n_blobs <= len(doc["answer"]) + 1, doc["question_id"]
    assert set(ds["answer"]) == set(OCR_WORDS)  # the vocabulary is really used


def bar_values(array: np.ndarray) -> list[int]:
    """Bar values measured from the pixels: each bar is a run of columns of the bar colour, 4 px per unit."""
    saturated = (array.max(axis=-1) - array.min(axis=-1)) > 100  # bars are coloured; text and axis are grey
    colours, counts = np.unique(array[saturated], axis=0, return_counts=True)
    bar = (array == colours[counts.argmax()]).all(axis=-1)
    column_heights = bar.sum(axis=0)
    runs, _ = ndimage.label(column_heights > 0)
    return [int(column_heights[runs == k].max()) // 4 for k in range(1, runs.max() + 1)]


def test_chart_answers_follow_from_the_drawn_bars(bench_root):
    ds = load("chart", "test", bench_root)
    assert set(ds["category"]) == {"value", "max", "min"}
    for doc in ds:
        values = dict(zip("ABCD", bar_values(pixels(doc["image"]))))
        assert 3 <= len(values) <= 4
        expected = {"value": max(values.values()), "max": max(values, key=values.get),
                    "min": min(values, key=values.get)}[doc["category"]]
        assert doc["question"] == CHART_QUESTIONS[doc["category"]]
        assert doc["answer"] == str(expected), (doc["question_id"], values, doc["question"])


def test_yesno_pairs_share_an_image_with_one_yes_and_one_no(bench_root):
    ds = load("yesno", "test", bench_root)
    rows = raw_rows(ds)
    pairs: dict[str, list[dict]] = {}
    for row in rows:
        pairs.setdefault(row["image_id"], []).append(row)
    assert len(pairs) == N_TEST // 2
    for image_id, pair in pairs.items():
        assert len(pair) == 2, image_id
        assert sorted(r["answer"] for r in pair) == ["No", "Yes"]
        assert pair[0]["image"]["bytes"] == pair[1]["image"]["bytes"]
        assert pair[0]["category"] == pair[1]["category"]
        assert pair[0]["question"] != pair[1]["question"]
    # pair order carries no signal: "Yes" first about half of the time
    yes_first = sum(pair[0]["answer"] == "Yes" for pair in pairs.values()) / len(pairs)
    assert 0.3 < yes_first < 0.7
    assert set(ds["category"]) == {"existence", "color", "count"}


def test_yesno_count_questions_match_the_number_of_shapes(bench_root):
    ds = load("yesno", "test", bench_root).filter(lambda d: d["category"] == "count")
    assert ds.num_rows > 10
    for doc in ds:
        asked = int(doc["question"].split("exactly ")[1].split()[0])
        n_shapes = shapes_of(pixels(doc["image"]))[1]
        assert (asked == n_shapes) == (doc["answer"] == "Yes"), doc["question_id"]


# ------------------------------------------------------------------------------------------------ cache


def test_second_build_reuses_the_cache_and_incomplete_builds_are_redone(tmp_path):
    path = build_synthbench(n_train=6, n_test=4, root=tmp_path)
    assert path == synthbench_path(n_train=6, n_test=4, root=tmp_path) == tmp_path / "v2-seed0-6-4"
    marker = path / ".complete"
    first_mtime = marker.stat().st_mtime_ns
    assert build_synthbench(n_train=6, n_test=4, root=tmp_path) == path
    assert marker.stat().st_mtime_ns == first_mtime  # not rebuilt

    # a crash before the marker: the folder is rebuilt, and gives the same data
    before = raw_rows(datasets.load_from_disk(str(path / "count" / "test")))
    marker.unlink()
    (path / "count" / "test" / "dataset_info.json").unlink()  # and some damage
    build_synthbench(n_train=6, n_test=4, root=tmp_path)
    assert marker.is_file()
    assert raw_rows(datasets.load_from_disk(str(path / "count" / "test"))) == before

    rebuilt_mtime = marker.stat().st_mtime_ns
    build_synthbench(n_train=6, n_test=4, root=tmp_path, overwrite=True)
    assert marker.stat().st_mtime_ns != rebuilt_mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left behind


def test_version_v1_still_makes_the_v1_data(tmp_path):
    # the committed lmms-eval fixtures were recorded on v1 rows: v1's 30-word ocr and shuffled mcq options
    path = build_synthbench(n_train=40, n_test=40, root=tmp_path, version="v1")
    assert path.name == "v1-seed0-40-40"
    v1 = load_synthbench("ocr", n_train=40, n_test=40, root=tmp_path, version="v1")
    assert not set(v1["answer"]) <= set(OCR_WORDS) and "train" not in set(OCR_WORDS)
    mcq = load_synthbench("mcq", n_train=40, n_test=40, root=tmp_path, version="v1")
    assert len({tuple(d[k] for k in "ABCD") for d in mcq.select_columns(list("ABCD"))}) > 5
    with pytest.raises(ValueError, match="unknown version 'v9'"):
        build_synthbench(n_train=4, n_test=2, root=tmp_path, version="v9")


def test_default_root_is_the_lmms_nb_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path))
    path = build_synthbench(n_train=4, n_test=2)
    assert path == tmp_path / "synthbench" / "v2-seed0-4-2"
    assert load_synthbench("ocr", n_train=4, n_test=2).num_rows == 2


def test_bad_arguments_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="unknown synthbench family 'counting'.*count, mcq"):
        load_synthbench("counting", root=tmp_path)
    with pytest.raises(ValueError, match="unknown synthbench split 'validation'"):
        load_synthbench("count", "validation", root=tmp_path)
    with pytest.raises(ValueError, match="n_test must be an integer >= 2"):
        build_synthbench(n_test=1, root=tmp_path)


# ------------------------------------------------------------------------------------------------ tasks


def test_the_five_tasks_are_registered():
    assert SYNTHBENCH_TASKS == tuple(f"synthbench_{f}" for f in FAMILIES)
    assert set(SYNTHBENCH_TASKS) <= set(list_tasks())
    expected_metrics = {
        "synthbench_count": ["exact_match"],
        "synthbench_mcq": ["choice_accuracy"],
        "synthbench_ocr": ["anls"],
        "synthbench_chart": ["relaxed_accuracy"],
        "synthbench_yesno": ["acc", "acc_plus"],
    }
    for name in SYNTHBENCH_TASKS:
        task = get_task(name)  # not loaded: building the default-size data is not needed here
        assert isinstance(task, Task) and task.name == name and task.split == "test"
        assert [m.name for m in task.metrics] == expected_metrics[name]
        assert task.category_column == "category" and task.image_column == "image"
        assert task.generation_kwargs == {"max_new_tokens": 8, "do_sample": False}
        assert task.dataset_path.endswith(f"v2-seed0-2000-200/{name.removeprefix('synthbench_')}/test")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_correct_answer_scores_one_and_a_wrong_one_zero(family, bench_root):
    task = synthbench_task(family, n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
    ds = task.dataset()
    assert Path(task.dataset_path).is_dir()
    assert datasets.load_from_disk(task.dataset_path).num_rows == ds.num_rows  # image_ref can reopen it
    (filter_name, apply_filter), = task.filters.items()
    for doc in ds.select(range(20)):
        target = task.doc_to_target(doc)
        assert task.doc_to_visual(doc) == [doc["image"]]
        right = apply_filter(target, doc)
        wrong = apply_filter("B" if target == "A" else "A" if family == "mcq" else "zzzzzzzz", doc)
        if family == "yesno":
            wrong = "No" if target == "Yes" else "Yes"
        assert set(task.score(doc, right).values()) == {1.0}, (family, target)
        assert set(task.score(doc, wrong).values()) == {0.0}, (family, target, wrong)


def test_mcq_prompt_lists_the_options_and_the_filter_extracts_letters(bench_root):
    task = synthbench_task("mcq", n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
    doc = task.dataset()[0]
    prompt = task.doc_to_text(doc)
    assert prompt.startswith(doc["question"] + "\n")
    assert "\n".join(f"{letter}. {doc[letter]}" for letter in "ABCD") in prompt
    assert prompt.endswith("Answer with the option's letter from the given choices directly.")
    assert task.doc_to_choice(doc) == [doc[letter] for letter in "ABCD"]
    mc_letter = task.filters["mc_letter"]
    correct_text = doc[doc["answer"]]
    for response in (doc["answer"], f"({doc['answer'].lower()})", f"The answer is {doc['answer']}.", correct_text):
        assert mc_letter(response, doc) == doc["answer"], response
        assert task.score(doc, mc_letter(response, doc)) == {"choice_accuracy": 1.0}


def test_yesno_acc_plus_aggregates_over_image_pairs(bench_root):
    task = synthbench_task("yesno", n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
    docs = task.dataset().remove_columns("image").to_list()
    acc_plus = next(m for m in task.metrics if m.name == "acc_plus")
    assert not acc_plus.per_sample and acc_plus.source == "acc"
    all_right = [1.0] * len(docs)
    only_yes_right = [float(d["answer"] == "Yes") for d in docs]  # an always-"yes" model
    assert acc_plus.aggregate(all_right, docs)[0] == 1.0
    assert acc_plus.aggregate(only_yes_right, docs) == (0.0, 0.0)
    assert mme_acc_plus(only_yes_right, docs)[0] == 0.0
    acc = next(m for m in task.metrics if m.name == "acc")
    assert acc.aggregate(only_yes_right, docs)[0] == pytest.approx(0.5)


def test_other_prompts_end_with_a_short_answer_instruction(bench_root):
    for family in ("count", "ocr", "chart"):
        task = synthbench_task(family, n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
        doc = task.dataset()[0]
        assert task.doc_to_text(doc) == f"{doc['question']}\nAnswer with a single word or number."
    yesno = synthbench_task("yesno", n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
    assert yesno.doc_to_text(yesno.dataset()[0]).endswith("Please answer yes or no.")


def test_train_split_task_reads_the_train_rows(bench_root):
    task = train_split_task("chart", n_train=N_TRAIN, n_test=N_TEST, root=bench_root)
    assert task.name == "synthbench_chart_train" and task.split == "train"
    assert task.dataset().num_rows == N_TRAIN
    assert task.fingerprint() != synthbench_task("chart", n_train=N_TRAIN, n_test=N_TEST, root=bench_root).fingerprint()


def test_rows_repeating_across_splits_are_skipped(monkeypatch):
    # Real generators almost never repeat a row, so drive the split logic with one drawing from 5 rows only.
    from lmms_nb.tasks import synthbench

    def five_rows(rng):
        while True:
            k = int(rng.integers(5))
            yield [{"image": bytes([k]), "question": f"q{k}", "answer": str(k), "category": "c"}]

    monkeypatch.setitem(synthbench._GENERATORS, "count", five_rows)
    splits = synthbench._generate_splits("count", 0, n_train=3, n_test=2)
    test_keys = {r["question"] for r in splits["test"]}
    train_keys = {r["question"] for r in splits["train"]}
    assert len(test_keys) == 2 and len(train_keys) == 3 and not test_keys & train_keys
    with pytest.raises(RuntimeError, match="could not make 4 distinct train rows"):
        synthbench._generate_splits("count", 0, n_train=4, n_test=2)
