"""find_slices() on tables whose truth is known by construction: metadata slices, pairs, pruning of merges,
the honesty of the held-out half, and clear errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import lmms_nb
from lmms_nb.analysis import Slices, find_slices


def _table(n: int, fail_prob, seed: int = 0, model: str = "m") -> pl.DataFrame:
    """n docs with a group g0..g7, a family (A = g0+g1, B = the rest), an answer letter and a prompt;
    each doc fails with fail_prob(row) (a seeded draw)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {"model": model, "task": "t", "doc_id": i, "group": f"g{i % 8}", "family": "A" if i % 8 < 2 else "B",
               "target": "ABCD"[(i // 8) % 4], "input": f"Question {i} about {['cats', 'dogs', 'birds'][i % 3]}?"}
        row["acc"] = float(rng.random() >= fail_prob(row))
        rows.append(row)
    return pl.DataFrame(rows)


def test_a_column_slice_and_a_pair_are_found_with_their_rates():
    df = _table(2400, lambda r: 0.7 if (r["group"] == "g3" and r["target"] == "B") else 0.1)
    found = find_slices(df, "m", by=["group", "family"])
    assert isinstance(found, Slices)
    top = found.significant.row(0, named=True)
    assert top["rule"] in ("group = g3 & answer = B", "answer = B & group = g3") and top["kind"] == "pair"
    members = found.filter(df, top["slice_id"])
    assert set(members["group"].to_list()) == {"g3"} and set(members["target"].to_list()) == {"B"}
    assert top["size"] == members.height == 75
    # the rates are read on the held-out half: recompute them from the samples' halves
    half = found.samples.filter(pl.col("half") == "confirm").join(members.select("doc_id"), on="doc_id", how="left")
    inside = half.join(members.select("doc_id"), on="doc_id", how="semi")
    assert top["n_confirm"] == inside.height
    assert top["fail_rate"] == pytest.approx(1 - inside["correct"].mean())
    assert 0.5 < top["fail_rate"] <= 1 and top["rest_fail_rate"] < 0.2
    assert top["ci_low"] < top["fail_rate"] < top["ci_high"]


def test_a_slice_that_merely_merges_two_reported_ones_is_pruned():
    # g0 and g1 fail differently; "family = A" is exactly their union and adds nothing
    df = _table(4000, lambda r: {"g0": 0.9, "g1": 0.45}.get(r["group"], 0.1), seed=1)
    found = find_slices(df, "m", by=["group", "family"])
    rules = found.significant["rule"].to_list()
    assert rules[:2] == ["group = g0", "group = g1"], rules
    assert "family = A" not in rules
    assert found.n_pruned >= 1


def test_parts_that_fail_alike_are_reported_as_their_union():
    # g0 and g1 fail alike: "family = A" says it in one slice, and the parts are the ones pruned
    df = _table(4000, lambda r: 0.6 if r["group"] in ("g0", "g1") else 0.1, seed=1)
    found = find_slices(df, "m", by=["group", "family"])
    rules = found.significant["rule"].to_list()
    assert rules[0] == "family = A" and "group = g0" not in rules and "group = g1" not in rules, rules


def test_uniform_failures_yield_nothing_on_any_seed():
    df = _table(3000, lambda r: 0.3, seed=7)
    for seed in range(5):
        found = find_slices(df, "m", by=["group", "family"], seed=seed)
        assert found.significant.height == 0, found.significant
        assert found.n_candidates > 20


def test_a_baseline_turns_rates_into_gaps():
    a = _table(2400, lambda r: 0.6 if r["group"] == "g5" else 0.2, seed=3, model="a")
    b = a.with_columns(pl.lit("b").alias("model"),
                       pl.when(pl.col("group") == "g5").then(pl.lit(1.0)).otherwise(pl.col("acc")).alias("acc"))
    found = lmms_nb.find_slices(pl.concat([a, b]), "a", baseline="b", by="group")
    top = found.significant.row(0, named=True)
    assert top["rule"] == "group = g5"
    assert top["baseline_accuracy"] == 1.0 and top["gap"] == pytest.approx(top["accuracy"] - 1.0)
    assert top["ci_low"] <= top["gap"] <= top["ci_high"] < 0 and top["rest_gap"] == 0.0
    lost = set(a.filter((pl.col("acc") == 0.0) & (pl.col("group") == "g5"))["doc_id"].to_list())
    assert top["examples"] and {e["doc_id"] for e in top["examples"]} <= lost


def test_clear_errors():
    df = _table(400, lambda r: 0.2)
    with pytest.raises(ValueError, match="baseline must differ"):
        find_slices(df, "m", baseline="m")
    with pytest.raises(ValueError, match=r"model\(s\) \['nope'\]"):
        find_slices(df, "nope")
    with pytest.raises(ValueError, match="too few"):
        find_slices(df.head(50), "m")
    with pytest.raises(ValueError, match="not in the sample table"):
        find_slices(df, "m", by="shoe_size")
    found = find_slices(df, "m")
    with pytest.raises(ValueError, match="no slice"):
        found.filter(df, 999)


def test_text_embeddings_of_the_prompts_find_a_topic_no_word_names_alone():
    # two topics written with varied words: no single word covers a topic, the sentence embeddings do
    animals = ["Is the kitten asleep?", "How many puppies play here?", "What colour is the parrot?",
               "Where does the hamster hide?", "Which horse runs fastest?", "Is the goldfish eating?"]
    sums = ["What is seven plus two?", "Compute 12 minus 5.", "How much is three times four?",
            "Divide twenty by four.", "What is the square of nine?", "Add eleven and six."]
    rng = np.random.default_rng(2)
    rows = []
    for i in range(480):
        maths = i % 4 == 0
        prompt = (sums if maths else animals)[i // 4 % 6] + f" (item {i})"
        rows.append({"model": "m", "task": "t", "doc_id": i, "input": prompt,
                     "acc": float(rng.random() >= (0.75 if maths else 0.1))})
    df = pl.DataFrame(rows)
    found = find_slices(df, "m", embeddings="text")
    maths_docs = {i for i in range(480) if i % 4 == 0}
    found_docs: set[int] = set()
    assert found.significant.height >= 1
    for row in found.significant.iter_rows(named=True):  # the topic may come as one cluster or in parts
        assert row["kind"] == "cluster" and row["rule"].startswith("text cluster")
        members = set(found.members.filter(pl.col("slice_id") == row["slice_id"])["doc_id"].to_list())
        assert len(members & maths_docs) >= 0.8 * len(members), row
        found_docs |= members
    assert len(found_docs & maths_docs) >= 0.8 * len(maths_docs)
    assert {"map_x", "map_y"} <= set(found.samples.columns)
    # the prompts' embeddings are cached: a second search reads them back and finds the same slices
    from lmms_nb.config import cache_dir

    assert list(cache_dir("slice_text_embeddings").glob("*.npy"))
    again = find_slices(df, "m", embeddings="text")
    assert again.table.drop("examples").equals(found.table.drop("examples"))
