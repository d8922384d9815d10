"""The zoo on a very small synthbench: deterministic training, the on-disk cache, and that training teaches the
model its training answers (loss and exact match against the untrained model, computed independently here)."""

from __future__ import annotations

import dataclasses
import json

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from lmms_nb.lite_selection._clip_training import CLIP_COMPLETE_MARKER, synthbench_clip_dir
from lmms_nb.models import Request, _zoo_data, _zoo_train, get_model, zoo
from lmms_nb.models.hf import HFImageTextModel
from lmms_nb.models.zoo import (
    COMPLETE_MARKER,
    ZOO,
    ZooSpec,
    build_zoo,
    train_zoo_member,
    zoo_model_path,
)

# A small synthbench (40 training rows per family) and a model small enough to train in a few seconds.
TINY = ZooSpec(
    "unit-test",
    "hidden 32, 1 layer, 20 counting steps then 80 mixed: for the test suite only",
    hidden_size=32,
    num_layers=1,
    curriculum_steps=20,
    # 40 mixed steps answered "B" to every synthbench v2 question; after 80 each family gets its answer format
    steps=80,
    batch_size=16,
    lr=1e-2,
    synthbench_n_train=40,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMMS_NB_CACHE", str(path))
        torch.set_num_threads(1)
        yield path


@pytest.fixture(scope="module")
def trained(cache):
    return train_zoo_member(TINY, seed=0, progress=False)


def _train_docs(n_per_family: int = 8):
    from lmms_nb.tasks.synthbench import FAMILIES, synthbench_task

    docs = []
    for family in FAMILIES:
        task = synthbench_task(family, split="train", n_train=TINY.synthbench_n_train)
        for doc in task.dataset().select(range(n_per_family)):
            docs.append((task, doc))
    return docs


def _answer_loss(path, docs) -> float:
    """Mean cross-entropy of the answer tokens (+ EOS) given prompt and image, built with the processor alone."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    net = AutoModelForImageTextToText.from_pretrained(path).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for task, doc in docs:
            prompt = f"<s>USER: <image>\n{task.doc_to_text(doc)}\nASSISTANT:"
            image = task.doc_to_visual(doc)
            n_prompt = processor(text=[prompt], images=image, return_tensors="pt")["input_ids"].shape[1]
            full = processor(text=[f"{prompt} {task.doc_to_target(doc)}</s>"], images=image, return_tensors="pt")
            logits = net(**full).logits[0, n_prompt - 1 : -1]
            targets = full["input_ids"][0, n_prompt:]
            total += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
            count += len(targets)
    return total / count


def _predict(path, docs) -> list[str]:
    model = HFImageTextModel(path, max_new_tokens=6)
    reqs = [Request(i, t.name, t.doc_to_visual(d), t.doc_to_text(d)) for i, (t, d) in enumerate(docs)]
    # stripped here: the backend returns the decoded text as lmms-eval does, with the leading space of a BPE token
    return [r.text.strip() for r in model.generate(reqs)]


def _exact(predictions, docs) -> float:
    return sum(p == t.doc_to_target(d) for p, (t, d) in zip(predictions, docs)) / len(docs)


def test_zoo_has_four_distinct_members():
    assert len(ZOO) >= 4
    assert len({spec.config_hash() for spec in ZOO.values()}) == len(ZOO)
    assert all(spec.name == name for name, spec in ZOO.items())


def test_config_hash_follows_what_determines_the_weights():
    assert TINY.config_hash() == dataclasses.replace(TINY, name="other", description="x").config_hash()
    assert TINY.config_hash() != dataclasses.replace(TINY, steps=61).config_hash()
    assert TINY.config_hash() != TINY.config_hash(seed=1)


def test_config_hash_changes_with_synthbench_version(monkeypatch):
    from lmms_nb.tasks import synthbench

    before = TINY.config_hash()
    monkeypatch.setattr(synthbench, "VERSION", "v-next")
    assert TINY.config_hash() != before  # a member trained on other data is never found in the cache


def test_invalid_specs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="unknown families"):
        ZooSpec("x", "", exclude_families=("counting",))
    with pytest.raises(ValueError, match="curriculum family 'count' is excluded"):
        ZooSpec("x", "", exclude_families=("count",))
    with pytest.raises(ValueError, match="at least one step"):
        ZooSpec("x", "", steps=0, curriculum_family=None)


def test_curriculum_rows_come_first_then_every_family():
    families = ["count"] * 10 + ["mcq"] * 10 + ["yesno"] * 10
    spec = ZooSpec("x", "", curriculum_steps=3, steps=5, batch_size=4)
    order = _zoo_train._training_order(families, spec, seed=0)
    assert len(order) == spec.total_steps * spec.batch_size == 32
    assert all(families[i] == "count" for i in order[:12])
    assert {families[i] for i in order[12:]} == {"count", "mcq", "yesno"}
    # shuffled epochs: the 20 mixed rows come from one pass over the 30 rows, so none repeats
    assert len(set(order[12:])) == 20
    assert order == _zoo_train._training_order(families, spec, seed=0) != _zoo_train._training_order(families, spec, seed=1)


def test_training_is_cached_with_a_completion_marker(cache, trained):
    assert trained.parent == cache / "zoo" and trained.name == f"unit-test-{TINY.config_hash()}"
    stats = json.loads((trained / COMPLETE_MARKER).read_text())
    assert stats["steps"] == TINY.total_steps == 100 and len(stats["losses"]) == 100
    assert stats["examples"] == 5 * TINY.synthbench_n_train
    weights = trained / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert train_zoo_member(TINY, seed=0, progress=False) == trained  # found, not retrained
    assert weights.stat().st_mtime_ns == stamp
    # a folder without the marker is an interrupted build: it is rebuilt
    (trained / COMPLETE_MARKER).unlink()
    rebuilt = train_zoo_member(TINY, seed=0, progress=False)
    assert rebuilt == trained and (rebuilt / COMPLETE_MARKER).is_file()
    assert weights.stat().st_mtime_ns != stamp
    assert not [p for p in trained.parent.iterdir() if ".tmp-" in p.name]  # no leftover build folders


def test_training_is_deterministic(trained, tmp_path):
    again = train_zoo_member(TINY, seed=0, progress=False, root=tmp_path)
    first, second = load_file(trained / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (trained / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()
    docs = _train_docs(2)
    reqs = [Request(i, t.name, t.doc_to_visual(d), t.doc_to_text(d)) for i, (t, d) in enumerate(docs)]
    a = [r.text for r in HFImageTextModel(trained).generate(reqs)]
    assert a == [r.text for r in HFImageTextModel(again).generate(reqs)]
    # and a different seed gives a different model
    other = load_file(train_zoo_member(dataclasses.replace(TINY, steps=5), seed=1, root=tmp_path,
                                       progress=False) / "model.safetensors")
    assert not all(torch.equal(other[k], first[k]) for k in first)


def test_training_beats_the_untrained_model_on_training_rows(trained, tmp_path):
    stats = json.loads((trained / COMPLETE_MARKER).read_text())
    assert stats["final_loss"] < 0.5 * stats["first_loss"]
    # the same architecture and processor, freshly initialised
    from transformers import AutoConfig, AutoProcessor, LlavaForConditionalGeneration

    untrained = tmp_path / "untrained"
    torch.manual_seed(0)
    LlavaForConditionalGeneration(AutoConfig.from_pretrained(trained)).save_pretrained(untrained)
    AutoProcessor.from_pretrained(trained).save_pretrained(untrained)
    docs = _train_docs(8)
    assert _answer_loss(trained, docs) < 0.5 * _answer_loss(untrained, docs)
    trained_answers, untrained_answers = _predict(trained, docs), _predict(untrained, docs)
    assert _exact(trained_answers, docs) >= _exact(untrained_answers, docs) + 0.15
    # it learned each family's answer format: yes/no questions get "Yes" or "No", options get a letter
    by_family = {}
    for answer, (task, _) in zip(trained_answers, docs):
        by_family.setdefault(task.config["family"], []).append(answer)
    assert set(by_family["yesno"]) <= {"Yes", "No"}
    assert set(by_family["mcq"]) <= set("ABCD")
    assert not set(untrained_answers) & {"Yes", "No", "A", "B", "C", "D"}


def test_prompt_encoding_matches_the_processor(trained):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(trained)
    docs = _train_docs(1)
    encoded = _zoo_train._encode(processor, [
        {"image": t.doc_to_visual(d)[0], "prompt": t.doc_to_text(d), "answer": t.doc_to_target(d)} for t, d in docs
    ])
    model = HFImageTextModel(trained)
    for (task, doc), ex in zip(docs, encoded):
        req = Request(0, task.name, task.doc_to_visual(doc), task.doc_to_text(doc))
        # the prompt part is token for token what the evaluation backend feeds the model
        expected = processor(text=[model._prompt(req)], images=req.images, return_tensors="pt")["input_ids"][0]
        n = len(expected)
        assert ex["input_ids"][:n] == expected.tolist()
        assert ex["labels"][:n] == [-100] * n
        answer = processor.tokenizer.decode(ex["input_ids"][n:])
        assert answer == f" {task.doc_to_target(doc)}</s>" and ex["labels"][n:] == ex["input_ids"][n:]


def test_registered_member_trains_once_then_loads(cache, trained):
    zoo.register_zoo_member(TINY)
    try:
        assert zoo_model_path("unit-test") == trained
        assert build_zoo(["unit-test"], progress=False) == {"unit-test": trained}
        stamp = (trained / "model.safetensors").stat().st_mtime_ns
        model = get_model("zoo-unit-test", max_new_tokens=4)
        assert isinstance(model, HFImageTextModel) and model.name == "zoo-unit-test"
        assert model.model_args["pretrained"] == str(trained)
        assert (trained / "model.safetensors").stat().st_mtime_ns == stamp
    finally:
        ZOO.pop("unit-test", None)
    with pytest.raises(KeyError, match="known"):
        zoo_model_path("no-such-member")


def test_excluded_family_is_not_trained_on(cache, tmp_path, monkeypatch):
    from lmms_nb.tasks.synthbench import synthbench_task

    # A spy on the real encoder (it still encodes): every row the trainer turns into training examples.
    encoded = []
    real_encode = _zoo_train._encode
    monkeypatch.setattr(_zoo_train, "_encode", lambda processor, docs: encoded.extend(docs) or real_encode(processor, docs))
    spec = dataclasses.replace(TINY, steps=2, exclude_families=("ocr", "chart"))
    path = train_zoo_member(spec, root=tmp_path, progress=False)

    def rows(family):  # (prompt, answer) of a family's training split, read from the dataset itself
        task = synthbench_task(family, split="train", n_train=TINY.synthbench_n_train)
        return sorted((task.doc_to_text(d), str(task.doc_to_target(d))) for d in task.dataset())

    trained_on = sorted((d["prompt"], d["answer"]) for d in encoded)
    assert trained_on == sorted(rows("count") + rows("mcq") + rows("yesno"))
    assert not set(trained_on) & set(rows("ocr") + rows("chart"))
    assert json.loads((path / COMPLETE_MARKER).read_text())["examples"] == len(trained_on)


def test_parallel_build_gives_the_same_weights_as_training_alone(cache, tmp_path, capsys):
    run_a = dataclasses.replace(TINY, name="unit-a", steps=6)
    # a snapshot registered here only: the spawned worker that trains its run must still save it
    snap_a = dataclasses.replace(run_a, name="unit-a-s3", snapshot_step=3, run_name="unit-a")
    # a member whose tower starts from a synthbench CLIP not cached yet: the pool trains that CLIP first, once
    clip_member = dataclasses.replace(TINY, name="unit-c", curriculum_family=None, steps=3, clip_init=True,
                                      clip_steps=2, clip_n_train=TINY.synthbench_n_train)
    specs = [run_a, snap_a, dataclasses.replace(TINY, name="unit-b", steps=8), clip_member]
    for spec in specs:
        zoo.register_zoo_member(spec)
    clips_before = set((cache / "lite").glob("synthbench-clip-*"))
    try:
        paths = build_zoo([s.name for s in specs], workers=2, progress=False)  # two spawned processes
        # one CLIP made, the one the member's cache key names, finished before the member wrote its first file
        (clip,) = set((cache / "lite").glob("synthbench-clip-*")) - clips_before
        assert clip == synthbench_clip_dir(steps=2, n_train=TINY.synthbench_n_train)
        assert not list((cache / "lite").glob(".synthbench-clip-*"))  # no scratch folder left behind
        member_files = [f for f in paths["unit-c"].rglob("*") if f.is_file()]
        first_written = min(f.stat().st_mtime_ns for f in member_files)
        assert (clip / CLIP_COMPLETE_MARKER).stat().st_mtime_ns <= first_written
        # trained as the pool's own job (which queues the member once it is done), not inside the member's worker
        assert f"synthbench CLIP (2, {TINY.synthbench_n_train}) (steps, rows) ready" in capsys.readouterr().out
        # made by the worker on the way (before its run was complete), not by a rerun afterwards
        assert len(json.loads((paths["unit-a-s3"] / COMPLETE_MARKER).read_text())["losses"]) == 3
        snap_made, run_made = ((paths[n] / COMPLETE_MARKER).stat().st_mtime_ns for n in ("unit-a-s3", "unit-a"))
        assert snap_made < run_made
        assert json.loads((paths["unit-a"] / COMPLETE_MARKER).read_text())["steps"] == run_a.total_steps
        stamp = (paths["unit-a-s3"] / "model.safetensors").stat().st_mtime_ns
        assert build_zoo(["unit-a-s3"], progress=False) == {"unit-a-s3": paths["unit-a-s3"]}
        assert (paths["unit-a-s3"] / "model.safetensors").stat().st_mtime_ns == stamp
    finally:
        for spec in specs:
            ZOO.pop(spec.name, None)
    for spec in specs:
        assert paths[spec.name] == cache / "zoo" / f"{spec.name}-{spec.config_hash()}"
        alone = train_zoo_member(spec, root=tmp_path, progress=False)
        a, b = load_file(paths[spec.name] / "model.safetensors"), load_file(alone / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_snapshots_along_training_are_free_members_with_the_same_weights_as_a_rerun(cache, tmp_path):
    run = dataclasses.replace(TINY, name="unit-run", curriculum_steps=4, steps=6)
    snap = dataclasses.replace(run, name="unit-run-s4", snapshot_step=4, run_name="unit-run")
    assert snap.run.config_hash() == run.config_hash() != snap.config_hash() and snap.run.name == "unit-run"
    zoo.register_zoo_member(run)
    zoo.register_zoo_member(snap)
    try:
        # training the run writes the registered snapshot on the way, complete with its marker
        run_dir = train_zoo_member(run, root=tmp_path, progress=False)
        snap_dir = tmp_path / f"unit-run-s4-{snap.config_hash()}"
        info = json.loads((snap_dir / COMPLETE_MARKER).read_text())
        assert info["snapshot_step"] == 4 and len(info["losses"]) == 4
        stamp = (run_dir / "model.safetensors").stat().st_mtime_ns
        # the snapshot asked for first: its run is trained into the run's own folder on the way
        alone = tmp_path / "alone"
        assert train_zoo_member(snap, root=alone, progress=False) == alone / snap_dir.name
        assert (alone / run_dir.name / COMPLETE_MARKER).is_file()
        assert sorted(p.name for p in alone.iterdir()) == sorted([run_dir.name, snap_dir.name])
        # the snapshot alone, once its run is cached: retrained in scratch, the run's cache is left alone
        (alone / snap_dir.name / COMPLETE_MARKER).unlink()
        assert train_zoo_member(snap, root=alone, progress=False) == alone / snap_dir.name
    finally:
        ZOO.pop("unit-run", None)
        ZOO.pop("unit-run-s4", None)
    first, again = load_file(snap_dir / "model.safetensors"), load_file(alone / snap_dir.name / "model.safetensors")
    assert all(torch.equal(first[k], again[k]) for k in first)  # deterministic: the same weights
    final = load_file(run_dir / "model.safetensors")
    assert not all(torch.equal(first[k], final[k]) for k in first)  # 4 steps are not 10
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == stamp
    assert (snap_dir / "tokenizer.json").read_text() == (run_dir / "tokenizer.json").read_text()
    with pytest.raises(ValueError, match="snapshot_step must be in"):
        dataclasses.replace(run, snapshot_step=10)


def test_the_zoo_has_at_least_20_members_from_8_runs_with_specialists():
    runs = {spec.run.config_hash() for spec in ZOO.values()}
    assert len(ZOO) >= 20 and len(runs) == 8
    # members differ in which families they can be good at: specialists trained on one family alone
    for family in ("mcq", "chart", "ocr", "yesno"):
        assert set(ZOO[f"{family}-only"].exclude_families) == set(zoo.ZOO_FAMILIES) - {family}
    # the chart, ocr and yes/no specialists read through the synthbench CLIP's tower, the others through a random one
    assert {name for name, spec in ZOO.items() if spec.clip_init and not spec.snapshot_step} == {
        "chart-only", "ocr-only", "yesno-only"}
    # only the yes/no specialist learns from its questions' words too, in paired batches
    assert {name for name, spec in ZOO.items() if spec.question_loss and spec.paired_yesno and not spec.snapshot_step
            } == {"yesno-only"}


def test_a_member_trained_here_counts_better_than_the_majority_answer(cache, tmp_path):
    # The zoo's real behaviour, measured the way the demo measures it: a small member trained on counting alone
    # (400 training rows) and evaluated by lmms_nb.evaluate on unseen test rows against the `majority` baseline
    # (the most common count in the train split). Its images are all it can count from: the question names only
    # the kind of shape, and every count from 1 to 6 is about as common for every kind.
    import lmms_nb
    from lmms_nb.tasks.synthbench import synthbench_task

    spec = ZooSpec("unit-count", "counting alone, for the test suite", curriculum_family=None, steps=200,
                   exclude_families=("mcq", "ocr", "chart", "yesno"), synthbench_n_train=400)
    path = train_zoo_member(spec, root=tmp_path, progress=False)
    task = synthbench_task("count", n_train=400)

    def exact_match(model) -> float:
        run = lmms_nb.evaluate(model, task, limit=100, output_dir=tmp_path / model.name, progress=False)
        return float(run.scores.filter(pl.col("metric") == "exact_match")["value"][0])

    learned, majority = exact_match(HFImageTextModel(path, name="unit-count")), exact_match(get_model("majority"))
    assert majority < 0.3
    assert learned >= majority + 0.2, (learned, majority)


def test_training_pixels_are_what_the_image_processor_makes(trained):
    # training normalises uint8 arrays itself (the processor is ~80x slower); evaluation goes through the processor
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(trained)
    images = [t.doc_to_visual(d)[0] for t, d in _train_docs(2)]
    expected = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    ours = _zoo_data._pixel_values([_zoo_data._rgb(im) for im in images], processor.image_processor)
    assert ours.shape == expected.shape and torch.allclose(ours, expected, atol=1e-5)


def test_every_answer_is_one_token(trained):
    # reading a word is one 30-way decision, not spelling it: the tokenizer learned " cat" as one token
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(trained)
    answers = {str(t.doc_to_target(d)) for t, d in _train_docs(8)}
    assert {"Yes", "No"} <= answers and len(answers) > 10  # words, digits, letters, yes and no
    assert all(len(tokenizer(" " + a, add_special_tokens=False)["input_ids"]) == 1 for a in answers), answers


def test_position_embeddings_redrawn_at_the_asked_scale(cache, tmp_path):
    # CLIP's init draws them at std 0.02, ~50x smaller than a patch's embedding: the zoo can redraw them
    spec = dataclasses.replace(TINY, name="unit-pos", curriculum_family=None, steps=1, vision_position_std=1.0,
                               vision_lr_mult=0.0)
    weights = load_file(train_zoo_member(spec, root=tmp_path, progress=False) / "model.safetensors")
    (key,) = [k for k in weights if k.endswith("embeddings.position_embedding.weight")]
    assert 0.8 < float(weights[key].std()) < 1.2  # frozen tower: saved as drawn
    plain = load_file(train_zoo_member(TINY, seed=0, progress=False) / "model.safetensors")
    assert float(plain[key].std()) < 0.05


def test_clip_tower_weights_give_open_clips_own_image_embedding(tmp_path):
    # the converted tower is the same function as open_clip's: ln_post(CLS) @ proj equals encode_image
    import open_clip
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from lmms_nb.lite_selection._offline_models import build_tiny_clip
    from lmms_nb.models._zoo_vision import CLIP_TOWER_CONFIG, load_synthbench_clip_tower
    from lmms_nb.tasks.synthbench import synthbench_task

    clip_dir = build_tiny_clip(tmp_path / "clip", seed=3)
    reference, _, preprocess = open_clip.create_model_and_transforms(clip_dir, device="cpu")
    tower = CLIPVisionModel(CLIPVisionConfig(image_size=64, patch_size=16, **CLIP_TOWER_CONFIG)).eval()
    load_synthbench_clip_tower(tower, clip_dir)
    task = synthbench_task("ocr", split="train", n_train=TINY.synthbench_n_train)
    images = [task.doc_to_visual(d)[0] for d in task.dataset().select(range(4))]
    pixels = torch.stack([preprocess(im) for im in images])
    with torch.no_grad():
        expected = reference.encode_image(pixels)
        cls = tower(pixels, output_hidden_states=True).hidden_states[-1][:, 0]
        ours = tower.post_layernorm(cls) @ reference.visual.proj
    assert torch.allclose(ours, expected, atol=1e-5)
    smaller = CLIPVisionModel(CLIPVisionConfig(image_size=64, patch_size=16, hidden_size=32, intermediate_size=64,
                                               num_attention_heads=2, num_hidden_layers=2))
    with pytest.raises(ValueError, match="shapes differ"):
        load_synthbench_clip_tower(smaller, clip_dir)


def test_clip_initialised_member_starts_from_the_synthbench_clip_and_sees_its_cls_token(cache, tmp_path):
    from lmms_nb.lite_selection._clip_training import train_synthbench_clip
    from lmms_nb.models._zoo_vision import load_synthbench_clip_tower

    spec = dataclasses.replace(TINY, name="unit-clip", curriculum_family=None, steps=2, clip_init=True,
                               clip_steps=3, clip_n_train=TINY.synthbench_n_train)
    assert spec.config_hash() != dataclasses.replace(spec, clip_steps=4).config_hash()
    assert TINY.config_hash() == dataclasses.replace(TINY, clip_steps=4).config_hash()  # a random tower: no CLIP
    path = train_zoo_member(spec, root=tmp_path, progress=False)
    from transformers import AutoModelForImageTextToText

    net = AutoModelForImageTextToText.from_pretrained(path)
    expected = AutoModelForImageTextToText.from_pretrained(path).model.vision_tower
    load_synthbench_clip_tower(expected, train_synthbench_clip(steps=3, n_train=TINY.synthbench_n_train))
    saved, clip = net.model.vision_tower.state_dict(), expected.state_dict()
    assert all(torch.equal(saved[k], clip[k]) for k in saved)  # frozen (vision_lr_mult 0): saved as loaded
    assert net.config.vision_feature_select_strategy == "full"
    docs = _train_docs(1)
    (prediction,) = _predict(path, docs[:1])  # generation works with 16 patches + CLS as image tokens
    assert isinstance(prediction, str)
    with pytest.raises(ValueError, match="clip_init"):
        dataclasses.replace(spec, vision_position_std=1.0)


def test_registered_members_keep_their_cache_keys():
    """Keys pinned as they were before the yes/no options (question_first, yesno_attribute_rows, paired_yesno,
    question_loss) existed: an option left off must not rename, and so retrain, a member that does not use it."""
    from lmms_nb.models.zoo import ZOO

    assert {n: ZOO[n].config_hash() for n in ("base", "chart-only", "base-s150", "ocr-only", "large-s600")} == {
        "base": "70a54f3996", "chart-only": "e827e31fb1", "base-s150": "bd414546bc", "ocr-only": "9ff618a12a",
        "large-s600": "e3cd328ba5"}


def test_question_first_member_keeps_the_question_before_the_image_in_training_and_evaluation(cache, tmp_path):
    from transformers import AutoProcessor

    spec = dataclasses.replace(TINY, name="unit-qf", curriculum_family=None, steps=2, question_first=True)
    assert spec.config_hash() != dataclasses.replace(spec, question_first=False).config_hash()
    assert dataclasses.replace(spec, question_first=False).config_hash() == dataclasses.replace(
        TINY, curriculum_family=None, steps=2).config_hash()  # off: the key members had before the field
    path = train_zoo_member(spec, root=tmp_path, progress=False)
    processor = AutoProcessor.from_pretrained(path)
    ((task, doc),) = _train_docs(1)[:1]
    req = Request(0, task.name, task.doc_to_visual(doc), task.doc_to_text(doc))
    prompt = HFImageTextModel(path)._prompt(req)  # what the evaluation backend feeds the saved member
    assert prompt.index(task.doc_to_text(doc)) < prompt.index("<image>") < prompt.index("ASSISTANT:")
    (encoded,) = _zoo_train._encode(processor, [{"image": req.images[0], "prompt": task.doc_to_text(doc),
                                                   "answer": task.doc_to_target(doc)}])
    expected = processor(text=[prompt], images=req.images, return_tensors="pt")["input_ids"][0].tolist()
    assert encoded["input_ids"][: len(expected)] == expected  # trained on exactly that layout


def test_yes_no_attribute_rows_ask_for_what_the_yes_question_names(cache):
    from lmms_nb.tasks.synthbench import COLORS, YESNO_SHAPES, synthbench_task

    task = synthbench_task("yesno", split="train", n_train=TINY.synthbench_n_train)
    spec = dataclasses.replace(TINY, exclude_families=("count", "mcq", "ocr", "chart"), curriculum_family=None)
    plain = _zoo_data._training_docs([task], spec)
    with_rows = _zoo_data._training_docs([task], dataclasses.replace(spec, yesno_attribute_rows=True))
    assert dataclasses.replace(spec, yesno_attribute_rows=True).config_hash() != spec.config_hash()
    extra = [d for d in with_rows if d["answer"] not in ("Yes", "No")]
    assert len(extra) == len(plain) // 2 and len(with_rows) == len(plain) + len(extra)  # one per image
    for doc in task.dataset():
        if doc["answer"] != "Yes":
            continue
        row = next(d for d in extra if d["image"].tobytes() == task.doc_to_visual(doc)[0].tobytes())
        q = doc["question"]
        if doc["category"] == "count":
            assert row["prompt"].startswith("How many shapes") and f"exactly {row['answer']} shape" in q
        elif doc["category"] == "color":
            assert row["prompt"].startswith("What color") and row["answer"] in COLORS and f"a {row['answer']} " in q
        else:
            assert row["prompt"].startswith("What shape") and row["answer"] in YESNO_SHAPES and q.endswith(
                f"a {row['answer']} in the image?")


def test_paired_yes_no_rows_stay_together_in_the_training_order():
    groups = ["a", "a", "b", "b", "c", "c", 6, 7]
    spec = ZooSpec("x", "", curriculum_family=None, steps=6, batch_size=4, paired_yesno=True)
    order = _zoo_train._training_order(["yesno"] * 6 + ["count"] * 2, spec, seed=0, groups=groups)
    assert len(order) == spec.total_steps * spec.batch_size
    for i, row in enumerate(order[:-1]):  # a pair's first row is always followed by its second
        if row in (0, 2, 4):
            assert order[i + 1] == row + 1
    assert dataclasses.replace(spec, paired_yesno=False).config_hash() != spec.config_hash()


def test_question_loss_puts_targets_on_the_question_words_but_not_the_image(trained):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(trained)
    (task, doc), = [(t, d) for t, d in _train_docs(1) if "yesno" in t.name]
    base = {"image": task.doc_to_visual(doc)[0], "prompt": task.doc_to_text(doc), "answer": doc["answer"]}
    plain, with_loss = _zoo_data._encode(processor, [base, {**base, "question_loss": True}])
    assert plain["input_ids"] == with_loss["input_ids"]
    labelled = [t for t, lab in zip(with_loss["input_ids"], with_loss["labels"]) if lab != -100]
    assert processor.tokenizer.decode(labelled).startswith("USER:") and doc["question"] in processor.tokenizer.decode(labelled)
    assert processor.image_token_id not in labelled and with_loss["labels"][0] == -100
    assert plain["labels"][-2:] == with_loss["labels"][-2:] != [-100, -100]  # the answer and EOS stay targets
