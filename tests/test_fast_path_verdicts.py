"""The fast paths' verdicts kept on disk (`lmms_nb.models._fast_path_verdicts`): a real tiny Qwen2.5-VL in bfloat16
whose second load takes the stored verdicts instead of checking, answering as transformers' own forward does;
corrupt, foreign and contradicted files; another thread count; concurrent writers; a folder that cannot be
written."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import torch

from lmms_nb.models import get_model
from lmms_nb.models._fast_path_verdicts import VerdictStore
from _tiny_qwen_pair import tiny_qwen_pair

CHECKED = ("_lmms_nb_grid_checked", "_lmms_nb_batched_checked")


def _verdicts(model) -> dict:
    """{(module name, in-process key): verdict} of every fast path in `model`."""
    return {(name, key): same for name, module in model.model.named_modules() for attr in CHECKED
            for key, same in getattr(module, attr, {}).items()}


def _how(caplog) -> set[str]:
    """How the verdicts logged since the last clear were reached: "checked" and/or "stored verdict"."""
    return {how for record in caplog.records for how in ("(checked)", "checked;", "(stored verdict)")
            if how in record.getMessage()}


@pytest.fixture
def qwen(tmp_path, monkeypatch, caplog):
    """(path, plain model, requests, texts): the verdict store in a fresh cache dir; `plain` has transformers' own
    forward everywhere."""
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG, logger="lmms_nb.models")
    fast, plain, requests = tiny_qwen_pair(tmp_path / "qwen", seed=3, size_step=(16, 8), checked_attr=CHECKED[0])
    for module in plain.model.modules():
        if hasattr(module, CHECKED[1]):
            del module.forward
    texts = [r.text for r in plain.generate(requests)]
    assert [r.text for r in fast.generate(requests)] == texts  # the first model checks, and stores the verdicts
    assert _how(caplog) == {"(checked)", "checked;"} and _verdicts(fast)
    return tmp_path / "qwen", plain, requests, texts, _verdicts(fast)


def _fresh(path, requests, caplog):
    """A new load of the tiny Qwen, its answers to `requests`, and how its verdicts were reached."""
    caplog.clear()
    model = get_model("qwen2_5_vl", pretrained=str(path), device_map="cpu")
    texts = [r.text for r in model.generate(requests)]
    return model, texts, _how(caplog)


def _files(tmp_path) -> list:
    files = sorted((tmp_path / "cache" / "fast_path_verdicts").glob("*.json"))
    assert [f.name.split("-")[0] for f in files] == ["patch_embed", "vision_attention"]
    return files


def test_a_fresh_load_takes_the_stored_verdicts_and_answers_the_same(qwen, tmp_path, caplog):
    path, _, requests, texts, first = qwen
    for file in _files(tmp_path):
        data = json.loads(file.read_text())
        assert data["environment"]["torch"] == torch.__version__ and data["verdicts"]
        assert all(isinstance(same, bool) for same in data["verdicts"].values())
    model, got, how = _fresh(path, requests, caplog)
    assert how == {"(stored verdict)"}  # no check ran: both forms were not computed again
    assert got == texts and _verdicts(model) == first
    assert any(first.values())  # the fast forms are in use (identical here), not only looked up


def test_a_corrupt_or_foreign_file_is_ignored_and_rewritten(qwen, tmp_path, caplog):
    path, _, requests, texts, first = qwen
    patch_file, attention_file = _files(tmp_path)
    patch_file.write_text('{"environment": {"torch": ')  # cut short, as by a crash in a non-atomic write
    foreign = json.loads(attention_file.read_text())
    foreign["environment"]["cpu"]["flags"] = "another machine"  # copied from elsewhere, under this machine's name
    foreign["verdicts"] = {key: True for key in foreign["verdicts"]}
    attention_file.write_text(json.dumps(foreign))
    model, got, how = _fresh(path, requests, caplog)
    assert how == {"(checked)", "checked;"} and got == texts and _verdicts(model) == first
    for file in (patch_file, attention_file):  # rewritten whole, for this environment
        data = json.loads(file.read_text())
        assert data["environment"]["cpu"].get("flags") != "another machine" and data["verdicts"]
    for garbage in ("", "[1, 2]", '{"environment": {}, "verdicts": {"k": "yes"}}'):
        patch_file.write_text(garbage)
        store = VerdictStore(patch_file.parent, "patch_embed", "x")
        assert store.get("k") is None


def test_a_stored_false_verdict_keeps_the_plain_form(qwen, tmp_path, caplog):
    path, _, requests, texts, first = qwen
    for file in _files(tmp_path):
        kind = file.name.split("-")[0]
        source = __import__(f"lmms_nb.models._{kind}", fromlist=["x"]).__file__
        store = VerdictStore(file.parent, kind, source)
        keys = json.loads(file.read_text())["verdicts"]
        store.put({key: False for key in keys})  # disagreeing verdicts: false wins, whichever came first
        store.put({key: True for key in keys})
        assert set(json.loads(file.read_text())["verdicts"].values()) == {False}
    model, got, how = _fresh(path, requests, caplog)
    assert how == {"(stored verdict)"} and got == texts
    assert set(_verdicts(model)) == set(first) and not any(_verdicts(model).values())


def test_another_thread_count_is_checked_on_its_own(qwen, tmp_path, caplog):
    path, _, requests, texts, first = qwen
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        model, got, how = _fresh(path, requests, caplog)
    finally:
        torch.set_num_threads(threads)
    assert how == {"(checked)", "checked;"} and got == texts
    assert {key[1][0] for key in _verdicts(model)} == {threads + 1}
    stored = [json.loads(file.read_text())["verdicts"] for file in _files(tmp_path)]
    assert {f"{threads} threads", f"{threads + 1} threads"} <= {part for v in stored for key in v
                                                                for part in key.split("|")}


def test_concurrent_writers_never_leave_a_half_written_file(tmp_path):
    store = VerdictStore(tmp_path, "patch_embed", __file__)
    reads, errors = [0], []

    def write(name: str) -> None:
        for k in range(40):
            store.put({f"{name} {k}": True})

    writers = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    while any(writer.is_alive() for writer in writers):
        if store.path().exists():
            try:
                json.loads(store.path().read_text())
                reads[0] += 1
            except ValueError as e:  # pragma: no cover - what the atomic replace prevents
                errors.append(e)
    for writer in writers:
        writer.join()
    assert not errors and reads[0] > 0
    assert store.get("a 39") is True or store.get("b 39") is True  # the last write of each survives unless raced
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_a_folder_that_cannot_be_written_only_costs_the_checks(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the folder should be")
    store = VerdictStore(blocker / "verdicts", "patch_embed", __file__)
    store.put({"k": True})  # logged, not raised
    assert store.get("k") is None
