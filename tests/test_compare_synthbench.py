"""compare() and flips() on real runs: lmms_nb.evaluate() of function models on a synthbench task, with the
expected disagreements known by construction (which doc ids each model is made to get wrong)."""

from __future__ import annotations

import polars as pl
import pytest
import scipy.stats

import lmms_nb
from lmms_nb.analysis import compare, flips
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.tasks.synthbench import synthbench_task

N_TEST = 40


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("bench")
    task = synthbench_task("yesno", n_train=10, n_test=N_TEST, root=root)
    docs = task.load()
    target = {i: task.doc_to_target(docs[i]) for i in range(len(docs))}

    def oracle_except(wrong_ids):
        def answer(req):
            right = target[req.doc_id]
            return ("no" if right.lower() == "yes" else "yes") if req.doc_id in wrong_ids else right

        return answer

    out = tmp_path_factory.mktemp("runs")
    wrong_v1 = {i for i in target if i % 4 == 0}
    wrong_v2 = {i for i in target if i % 5 == 0}
    made = {
        "yes": lmms_nb.evaluate(
            FunctionModel(lambda req: "yes", name="always-yes"), task, output_dir=out, progress=False
        ),
        "v1": lmms_nb.evaluate(
            FunctionModel(oracle_except(wrong_v1), name="oracle"), task, output_dir=out, progress=False
        ),
        "v2": lmms_nb.evaluate(
            FunctionModel(oracle_except(wrong_v2), name="oracle"), task, output_dir=out / "b", progress=False
        ),
    }
    return {"task": task.name, "target": target, "wrong_v1": wrong_v1, "wrong_v2": wrong_v2, **made}


def test_compare_two_synthbench_runs(runs):
    df = pl.concat([runs["yes"].samples, runs["v1"].samples], how="diagonal_relaxed")
    cmp = compare(df)
    assert cmp.models == ["always-yes", "oracle"] and cmp.metrics == {runs["task"]: "acc"}
    target = runs["target"]
    yes_right = {i for i, t in target.items() if t.lower() == "yes"}  # targets are "Yes"/"No"; scoring ignores case
    oracle_right = set(target) - runs["wrong_v1"]
    scores = {r["model"]: r["score"] for r in cmp.scores.iter_rows(named=True)}
    assert scores["always-yes"] == pytest.approx(len(yes_right) / N_TEST)
    assert scores["oracle"] == pytest.approx(runs["v1"].score(runs["task"], "acc"))
    assert scores["oracle"] == pytest.approx(len(oracle_right) / N_TEST)
    row = cmp.pairwise.row(0, named=True)
    b, c = len(yes_right - oracle_right), len(oracle_right - yes_right)
    assert (row["n_both"], row["a_right_b_wrong"], row["b_right_a_wrong"]) == (N_TEST, b, c)
    assert row["p_value"] == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue)
    assert set(cmp.b_right_a_wrong("always-yes", "oracle")["doc_id"].to_list()) == oracle_right - yes_right
    # synthbench has categories: per-category scores and the image reference of each sample come through
    assert cmp.by == ["category"] and cmp.scores_by_group.height > 2
    assert cmp.a_right_b_wrong("always-yes", "oracle")["image_ref"].null_count() == 0


def test_two_runs_of_a_checkpoint_need_a_choice_and_flips_show_the_change(runs):
    df = pl.concat([runs["yes"].samples, runs["v1"].samples, runs["v2"].samples], how="diagonal_relaxed")
    with pytest.raises(ValueError, match="model 'oracle' has rows from 2 runs"):
        compare(df)
    v1, v2 = runs["v1"].run_id, runs["v2"].run_id
    latest = compare(df, runs="latest")
    assert latest.samples.filter(pl.col("model") == "oracle")["run_id"].unique().to_list() == [max(v1, v2)]
    f = flips(df, v1, v2)
    fixed = runs["wrong_v1"] - runs["wrong_v2"]
    broken = runs["wrong_v2"] - runs["wrong_v1"]
    assert set(f.fixed["doc_id"].to_list()) == fixed and set(f.broken["doc_id"].to_list()) == broken
    s = f.summary.row(0, named=True)
    assert (s["fixed"], s["broken"], s["net"]) == (len(fixed), len(broken), len(fixed) - len(broken))
    assert s["p_value"] == pytest.approx(scipy.stats.binomtest(len(fixed), len(fixed) + len(broken), 0.5).pvalue)
    assert f.model_a == f.model_b == "oracle"
