"""Part files an interrupted data-parallel run left behind: merged when that run is resumed, never looked for by a
new run (its timestamp was just claimed, so no earlier run's files can carry it). A fast, single-process check of
what the torchrun test (`test_data_parallel.py`) covers end to end."""

from __future__ import annotations

import json

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.runner import _evaluate
from lmms_nb.runner._distributed import shard_path

from _toy import colour_of, toy_task


def test_a_resumed_run_merges_left_over_part_files_and_a_new_run_does_not_look(tmp_path, monkeypatch):
    merges: list[list[str]] = []
    real_merge = _evaluate.merge_shards
    monkeypatch.setattr(_evaluate, "merge_shards",
                        lambda file, shards, filters: merges.append([s.name for s in shards])
                        or real_merge(file, shards, filters))
    asked: list[int] = []

    def answer(images, prompt):
        asked.append(1)
        return colour_of(images, prompt)

    task = toy_task(6)
    first = lmms_nb.evaluate(FunctionModel(answer, name="m"), task, output_dir=tmp_path, progress=False)
    assert merges == [] and len(asked) == 6  # a new run: no merge, not even a listing for part files
    samples = first.sample_files[task.name]
    lines = samples.read_text().splitlines()
    # as a 2-rank run killed before rank 0's final merge leaves it: docs 4 and 5 only in rank 1's part file
    kept = [ln for ln in lines if json.loads(ln)["doc_id"] < 4]
    moved = [ln for ln in lines if json.loads(ln)["doc_id"] >= 4]
    samples.write_text("".join(ln + "\n" for ln in kept))
    shard_path(samples, 1).write_text("".join(ln + "\n" for ln in moved))
    asked.clear()
    resumed = lmms_nb.evaluate(FunctionModel(answer, name="m"), task, output_dir=tmp_path, progress=False)
    assert resumed.run_id == first.run_id
    assert merges == [[shard_path(samples, 1).name]] and not shard_path(samples, 1).exists()
    assert asked == []  # the part file's docs were merged, not asked again
    assert sorted(json.loads(ln)["doc_id"] for ln in samples.read_text().splitlines()) == list(range(6))
