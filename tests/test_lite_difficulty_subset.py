"""`build_difficulty_subset` / `DifficultySubset.estimate` / `difficulty_estimates`: a difficulty-stratified Lite
subset built from earlier models' logs, and a new model's full score estimated from its subset answers alone.

The population is drawn from a known 2PL item response model (as in test_lite_difficulty_cv), so the
held-out models' true full scores are known and the estimator is compared with the subset's plain mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from _irt import irt_population, model_names
from _irt import samples_of as irt_samples

import lmms_nb
from lmms_nb.lite_selection import (
    DifficultySubset,
    LiteSubset,
    build_difficulty_subset,
    difficulty_estimates,
    load_difficulty_subset,
    load_lite_subset,
    save_difficulty_subset,
    save_lite_subset,
)
from lmms_nb.lite_selection._corrections import neighbour_control_variate

N_MODELS, N_DOCS = 30, 400


def samples_of(correct: np.ndarray, doc_ids: np.ndarray | None = None) -> pl.DataFrame:
    n_docs = correct.shape[1]
    return irt_samples(correct, np.arange(n_docs) * 3 + 5 if doc_ids is None else doc_ids)  # ids that are not row positions


@pytest.fixture(scope="module")
def correct() -> np.ndarray:
    return irt_population(N_MODELS, N_DOCS, seed=3)


def test_held_out_estimates_beat_the_subsets_plain_mean(correct) -> None:
    """Each held-out model: a subset built from the other models only, its estimate from its subset answers only.
    The estimate is closer to the true full score than the subset's plain mean, on average and by a margin."""
    logs = samples_of(correct)
    ids = np.arange(N_DOCS) * 3 + 5
    errors_est, errors_plain = [], []
    for held in range(0, N_MODELS, 3):  # 10 held-out models
        name = model_names(N_MODELS)[held]
        sub = build_difficulty_subset(logs.filter(pl.col("model") != name), 40, seed=held, estimator="difficulty_cv")
        assert isinstance(sub, DifficultySubset) and isinstance(sub, LiteSubset)
        assert len(sub) == 40 and name not in sub.train_models and len(sub.train_models) == N_MODELS - 1
        answers = correct[held, np.searchsorted(ids, sub.doc_ids)]
        truth = correct[held].mean()
        errors_est.append(abs(sub.estimate(answers) - truth))
        errors_plain.append(abs(answers.mean() - truth))
    mae_est, mae_plain = float(np.mean(errors_est)), float(np.mean(errors_plain))
    print(f"held-out MAE (points): difficulty_cv {100 * mae_est:.2f}, plain mean {100 * mae_plain:.2f}")
    assert mae_est < 0.6 * mae_plain
    assert sum(e < p for e, p in zip(errors_est, errors_plain, strict=True)) >= 7


def test_estimate_is_the_control_variate_of_the_training_models(correct) -> None:
    """The estimate is `neighbour_control_variate` over the earlier models with the design's weights, and reads
    nothing of the new model off the subset."""
    logs = samples_of(correct[:20])
    sub = build_difficulty_subset(logs, 0.1, seed=1, estimator="difficulty_cv")
    ids = np.arange(N_DOCS) * 3 + 5
    assert sub.n_full == N_DOCS and len(sub) == 40 and sub.cell_sizes.sum() == N_DOCS
    assert np.array_equal(sub.train, correct[:20]) and np.array_equal(sub.all_doc_ids, ids)
    cols = np.searchsorted(ids, sub.doc_ids)
    w = np.zeros(N_DOCS)
    w[cols] = sub.design_weights
    new = correct[25]
    expected = neighbour_control_variate(correct[:20], w > 0, new, w, design_weights=True,
                                         group_prior=sub.group_prior)[0]
    assert sub.estimate(new[cols]) == pytest.approx(expected)
    # two models at once, one per row
    assert sub.estimate(correct[[25, 26]][:, cols]) == pytest.approx(
        [expected, sub.estimate(correct[26, cols])])
    # a budget of every doc takes every doc, and the estimate is the full score
    everything = build_difficulty_subset(logs, 1.0, estimator="difficulty_cv")
    assert sorted(everything.doc_ids.tolist()) == ids.tolist()
    assert everything.estimate(new[np.searchsorted(ids, everything.doc_ids)]) == pytest.approx(new.mean())


def test_held_out_models_data_never_reaches_the_subset(correct) -> None:
    """Built without model m29 (by `models=` or by leaving its rows out), the subset and every estimate are the
    same whatever m29 answered."""
    others = model_names(N_MODELS)[:-1]
    flipped = correct.copy()
    flipped[-1] = 1 - flipped[-1]
    a = build_difficulty_subset(samples_of(correct), 30, models=others, seed=2)
    b = build_difficulty_subset(samples_of(flipped), 30, models=others, seed=2)
    c = build_difficulty_subset(samples_of(correct).filter(pl.col("model") != "m29"), 30, seed=2)
    for sub in (b, c):
        assert np.array_equal(sub.doc_ids, a.doc_ids) and np.array_equal(sub.design_weights, a.design_weights)
        assert np.array_equal(sub.train, a.train) and sub.group_prior == a.group_prior
    assert "m29" not in a.train_models
    cols = np.searchsorted(np.arange(N_DOCS) * 3 + 5, a.doc_ids)
    assert b.estimate(correct[-1, cols]) == a.estimate(correct[-1, cols])


def test_difficulty_estimates_table(correct) -> None:
    """A new model with answers on the subset only gets an estimate and no full score; an earlier model is
    estimated with itself left out of the neighbours."""
    ids = np.arange(N_DOCS) * 3 + 5
    logs = samples_of(correct[:20])
    sub = build_difficulty_subset(logs, 40)
    new = samples_of(correct[20:22]).with_columns(pl.col("model").replace({"m00": "new-a", "m01": "new-b"}))
    only_subset = new.filter(pl.col("model") == "new-a", pl.col("doc_id").is_in(sub.doc_ids.tolist()))
    table = difficulty_estimates(pl.concat([logs, only_subset, new.filter(pl.col("model") == "new-b")]), sub)
    rows = {r["model"]: r for r in table.iter_rows(named=True)}
    cols = np.searchsorted(ids, sub.doc_ids)
    assert rows["new-a"]["full_points"] is None and not rows["new-a"]["in_training"]
    assert rows["new-a"]["lite_difficulty_points"] == pytest.approx(100 * sub.estimate(correct[20, cols]))
    assert rows["new-b"]["full_points"] == pytest.approx(100 * correct[21].mean())
    assert rows["m03"]["in_training"] and rows["m03"]["full_points"] == pytest.approx(100 * correct[3].mean())
    # its own answers built the subset: no error is reported as if it were held out
    assert rows["m03"]["lite_error_points"] is None and rows["m03"]["lite_difficulty_error_points"] is None
    assert rows["new-b"]["lite_difficulty_error_points"] == pytest.approx(
        rows["new-b"]["lite_difficulty_points"] - rows["new-b"]["full_points"])
    left_out = neighbour_control_variate(np.delete(correct[:20], 3, axis=0), np.isin(np.arange(N_DOCS), cols),
                                         np.where(np.isin(np.arange(N_DOCS), cols), correct[3], 0.0),
                                         _design_w(sub), design_weights=True, group_prior=sub.group_prior)[0]
    assert rows["m03"]["lite_difficulty_points"] == pytest.approx(100 * left_out)
    assert rows["m03"]["lite_points"] == pytest.approx(100 * correct[3, cols].mean())


def _design_w(sub: DifficultySubset) -> np.ndarray:
    w = np.zeros(len(sub.all_doc_ids))
    w[np.searchsorted(sub.all_doc_ids, sub.doc_ids)] = sub.design_weights
    return w


def test_public_api_and_export(correct, tmp_path) -> None:
    assert lmms_nb.build_difficulty_subset is build_difficulty_subset
    assert lmms_nb.difficulty_estimates is difficulty_estimates
    sub = build_difficulty_subset(samples_of(correct[:10]), 25, estimator="difficulty_cv")
    back = load_lite_subset(save_lite_subset(sub, tmp_path / "sub.json"))  # written as a plain LiteSubset
    assert back.doc_ids.tolist() == sub.doc_ids.tolist() and back.meta["method"] == "difficulty_cv"
    # the whole subset, estimator included, round-trips through one .npz: the same estimates in a later session
    grouped = samples_of(correct[:10]).with_columns((pl.col("doc_id") % 4).cast(pl.Utf8).alias("category"))
    for original in (sub, build_difficulty_subset(grouped, 25, seed=4)):
        loaded = load_difficulty_subset(save_difficulty_subset(original, tmp_path / "sub.npz"))
        assert loaded.doc_ids.tolist() == original.doc_ids.tolist() and loaded.train_models == original.train_models
        assert (loaded.groups is None) == (original.groups is None) and loaded.group_prior == original.group_prior
        answers = correct[15, np.searchsorted(np.arange(N_DOCS) * 3 + 5, original.doc_ids)]
        assert loaded.estimate(answers) == original.estimate(answers)
    assert grouped["category"].n_unique() == 4 and original.groups is not None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz: not a difficulty subset file"):
        load_difficulty_subset(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", doc_ids=np.arange(3))
    with pytest.raises(ValueError, match=r"other.npz: not a difficulty subset file \(no field\(s\) \['header'"):
        load_difficulty_subset(tmp_path / "other.npz")


def test_bad_input_names_the_field(correct) -> None:
    logs = samples_of(correct[:10])
    with pytest.raises(ValueError, match=r"budget 401 asks for 401 docs but the task has 400"):
        build_difficulty_subset(logs, 401)
    with pytest.raises(ValueError, match=r"doc_ids \[1, 2\] \(2 of 4\) have no scores in the logs"):
        build_difficulty_subset(logs, 2, doc_ids=[1, 2, 5, 8])
    with pytest.raises(ValueError, match=r"task 'vqa' is not in the sample table"):
        build_difficulty_subset(logs, 10, task="vqa")
    with pytest.raises(ValueError, match=r"model 'm04' has no score for 1 doc\(s\), e.g. doc_id \[5\]"):
        build_difficulty_subset(logs.filter((pl.col("model") != "m04") | (pl.col("doc_id") != 5)), 10)
    with pytest.raises(ValueError, match=r"models \['nope'\] are not in the logs"):
        build_difficulty_subset(logs, 10, models=["m00", "nope"])
    with pytest.raises(ValueError, match=r"at least 3 earlier models"):
        build_difficulty_subset(logs, 10, models=["m00", "m01"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        build_difficulty_subset(logs.with_columns(pl.col("acc") * 100), 10)
    sub = build_difficulty_subset(logs, 10)
    with pytest.raises(ValueError, match=r"answers have 9 columns for 10 subset doc_ids"):
        sub.estimate(np.zeros(9))
    answers = np.zeros(10)
    answers[4] = np.nan
    with pytest.raises(ValueError, match=rf"no score for doc_id \[{sub.doc_ids[4]}\]"):
        sub.estimate(answers)
    with pytest.raises(ValueError, match=r"subset doc_ids \[.*\] are not in the sample table"):
        difficulty_estimates(logs.filter(pl.col("doc_id") != int(sub.doc_ids[0])), sub)


def test_malformed_subset_files_name_the_file_and_field(correct, tmp_path) -> None:
    sub = build_difficulty_subset(samples_of(correct[:10]), 25)
    saved = save_difficulty_subset(sub, tmp_path / "sub.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["sub.npz"]  # no temporary file left behind
    with np.load(saved, allow_pickle=False) as data:
        good = {name: data[name] for name in data.files}
    header = json.loads(str(good["header"]))

    def broken(name: str, **changes) -> Path:
        np.savez(tmp_path / name, **{**good, **changes})
        return tmp_path / name

    cases = [
        (broken("reversed.npz", all_doc_ids=good["all_doc_ids"][::-1]), r"field 'all_doc_ids' must be sorted"),
        (broken("models.npz", train_models=good["train_models"][:-1]),
         r"field 'train_models' names 9 models for 10 rows of 'train'"),
        (broken("weights.npz", design_weights=good["design_weights"][:-1]), r"field 'design_weights' has 24 values"),
        (broken("range.npz", train=good["train"] * 100), r"field 'train' must hold finite scores in \[0, 1\]"),
        (broken("nojson.npz", header=np.array("{oops")), r"field 'header' is not JSON"),
        (broken("notask.npz", header=np.array(json.dumps({k: v for k, v in header.items() if k != "task"}))),
         r"header has no field\(s\) \['task'\]"),
        (broken("version.npz", header=np.array(json.dumps({**header, "version": 3}))),
         r"field 'version' must be one of \[1, 2\] .*got 3; the file was written by a newer lmms-nb"),
        (broken("version0.npz", header=np.array(json.dumps({**header, "version": "x"}))),
         r"field 'version' must be one of \[1, 2\] .*got 'x'$"),
    ]
    for path, message in cases:
        with pytest.raises(ValueError, match=rf"{path.name}: .*{message}"):
            load_difficulty_subset(path)
    # written as version 2 (its meta names the estimator); a version 1 file was a difficulty_cv subset
    assert header["version"] == 2 and header["meta"]["method"] == sub.meta["method"]
    v1_meta = {k: v for k, v in header["meta"].items() if k != "method"}
    v1 = load_difficulty_subset(broken("v1.npz", header=np.array(json.dumps({**header, "version": 1, "meta": v1_meta}))))
    assert v1.meta == {**v1_meta, "method": "difficulty_cv"}


def test_estimate_refuses_unknown_leave_out_and_out_of_range_answers(correct) -> None:
    logs = samples_of(correct[:10])
    sub = build_difficulty_subset(logs, 10)
    assert sub.meta["filter"] is None
    with pytest.raises(ValueError, match=r"leave_out 'm99' is not an earlier model"):
        sub.estimate(np.zeros(10), leave_out="m99")
    with pytest.raises(ValueError, match=r"metric 'acc' has scores outside \[0, 1\]"):
        sub.estimate(np.full(10, 2.0))
    with pytest.raises(ValueError, match=r"metric 'acc' has scores outside \[0, 1\]"):
        difficulty_estimates(logs.with_columns(pl.col("acc") * 100), sub)
