"""`lmms-nb eval` start-up: the task index of a folder is cached on disk (lmms-eval's ~3,000 YAMLs are read once),
the cache is never stale, and a cold start imports neither scipy.stats nor lmms-eval."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lmms_nb.tasks import _index_cache
from lmms_nb.tasks._yaml_index import TaskIndex
from lmms_nb.tasks.catalogue import catalogue_folders


def _index(folder: Path) -> dict[str, tuple]:
    entries = TaskIndex.of_folders([folder]).entries
    return {name: (e.kind, str(e.path), sorted(e.tasks)) for name, e in entries.items()}


def test_a_cached_index_is_rebuilt_when_a_yaml_changes_and_gives_its_warnings_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    tasks = tmp_path / "tasks"
    (tasks / "sub").mkdir(parents=True)
    (tasks / "a.yaml").write_text("task: a\ntag: letters\n")
    (tasks / "sub" / "a.yaml").write_text("task: a\n")  # a name defined twice: lmms-eval's index warns
    with pytest.warns(UserWarning, match="'a' is defined in"):
        first = _index(tasks)
    assert len(list((tmp_path / "cache" / "task_index").glob("*.pkl"))) == 1
    with pytest.warns(UserWarning, match="'a' is defined in"):  # a hit gives the same warning
        assert _index(tasks) == first
    (tasks / "b.yaml").write_text("task: b\ntag: letters\n")  # a new file: a new index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second = _index(tasks)
    assert second["b"][0] == "task" and second["letters"][2] == ["a", "b"]
    (tasks / "b.yaml").write_text("task: b2\n")  # an edited file too
    os.utime(tasks / "b.yaml", ns=(1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        third = _index(tasks)
    assert "b2" in third and "b" not in third and third["letters"][2] == ["a"]


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.yaml").write_text("task: x\n")
    first = _index(tmp_path / "t")
    for cached in (tmp_path / "cache" / "task_index").glob("*.pkl"):
        cached.write_bytes(b"not a pickle")
    assert _index(tmp_path / "t") == first


def test_the_installed_catalogue_cached_equals_the_catalogue_read_in_full(tmp_path, monkeypatch):
    folders = catalogue_folders(None, True)
    if not folders:
        pytest.fail("lmms-eval's catalogue is not installed (the test extra installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = TaskIndex._of_folder(folders[0])
        monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path))
        built = _index_cache.cached_folder_index(folders[0], TaskIndex._of_folder)
        hit = _index_cache.cached_folder_index(folders[0], TaskIndex._of_folder)
    assert len(fresh.entries) > 1000
    for index in (built, hit):
        assert {n: (e.kind, e.path, e.tasks) for n, e in index.entries.items()} == {
            n: (e.kind, e.path, e.tasks) for n, e in fresh.entries.items()}
        assert [str(e) for e in index.errors] == [str(e) for e in fresh.errors]


def test_eval_start_up_imports_neither_scipy_stats_nor_lmms_eval(tmp_path):
    """What `lmms-nb eval` imports before any model loads, for a task of lmms-eval's catalogue."""
    code = ("import sys\nfrom lmms_nb._cli_eval import _plan\nfrom lmms_nb._cli_flags import parse_eval_argv\n"
            "ns = parse_eval_argv(['--model', 'majority', '--tasks', 'synthbench_count', '--limit', '2'])\n"
            "_plan(ns)\nprint(sorted(m for m in sys.modules if m in ('scipy.stats', 'lmms_eval')))\n")
    env = {**os.environ, "LMMS_NB_CACHE": os.environ.get("LMMS_NB_CACHE", str(tmp_path)),
           "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_local_model_run_does_not_import_the_api_backend_and_openai_still_resolves(tmp_path):
    """The registry imports the OpenAI-compatible backend (httpx) only when an API model is built."""
    code = ("import sys\nfrom lmms_nb._cli_eval import _plan\nfrom lmms_nb._cli_flags import parse_eval_argv\n"
            "from lmms_nb.models.registry import list_models, model_factory\n"
            "ns = parse_eval_argv(['--model', 'qwen2_5_vl', '--tasks', 'synthbench_count', '--limit', '2'])\n"
            "_plan(ns)\nmodel_factory('qwen2_5_vl')\n"
            "print(sorted(m for m in sys.modules if m in ('httpx', 'lmms_nb.models.openai_compat')))\n"
            "assert {'openai', 'openai_compatible'} <= set(list_models())\n"
            "before = model_factory('openai')\nimport lmms_nb.models.openai_compat\n"
            "print(before is model_factory('openai'), before.__name__)\n")
    env = {**os.environ, "LMMS_NB_CACHE": os.environ.get("LMMS_NB_CACHE", str(tmp_path)),
           "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-2:] == ["[]", "True openai_compatible"]


def test_the_program_lets_openmp_workers_sleep_unless_the_user_chose_a_wait_policy(tmp_path):
    """`lmms-nb eval` as a program sets OMP_WAIT_POLICY=PASSIVE before torch loads, unless it is set; a caller's
    own process (main([...])) keeps its environment."""
    code = ("import gc, os, sys\nfrom lmms_nb.cli import program_main\n"
            "sys.argv = ['lmms-nb', '--model', 'no_such_model', '--tasks', 'synthbench_count']\n"
            "status = program_main()\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), status, 'torch' in sys.modules, gc.isenabled())\n")
    in_process = ("import os, sys\nfrom lmms_nb.cli import main\n"
                  "sys.argv = ['ipykernel_launcher.py', '-f', 'kernel.json']  # a notebook kernel calling main()\n"
                  "status = main(['--model', 'no_such_model', '--tasks', 'synthbench_count'])\n"
                  "print(os.environ.get('OMP_WAIT_POLICY'), status)\n")
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    base.update(LMMS_NB_CACHE=str(tmp_path), PYTHONPATH=str(Path(__file__).parents[1]))
    outs = []
    for script, env in ((code, base), (code, {**base, "OMP_WAIT_POLICY": "ACTIVE"}), (in_process, base)):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(proc.stdout.strip().splitlines()[-1])
    # the program's start-up stopped before a model loaded: its collector is back on
    assert outs == ["PASSIVE 2 False True", "ACTIVE 2 False True", "None 2"]


def test_the_startup_garbage_is_collected_before_the_freeze_unless_the_weights_are_small(monkeypatch):
    """_cli_gc: a model whose weights are not known to be small gets one collection before the freeze, so a
    garbage cycle from its load (which could hold a tensor) is freed, not made permanent."""
    import gc
    import weakref

    import torch

    from lmms_nb import _cli_gc

    class Loaded:  # an lmms-nb model: its torch module is `.model`
        def __init__(self) -> None:
            self.model = torch.nn.Linear(4, 4, bias=False)

    class Cycle:
        pass

    def survives(model, small_bytes: int) -> bool:
        monkeypatch.setattr(_cli_gc, "SMALL_WEIGHTS_BYTES", small_bytes)
        was_enabled = gc.isenabled()
        _cli_gc.pause_until_model_loaded()
        try:
            garbage = Cycle()
            garbage.me = garbage
            alive = weakref.ref(garbage)
            del garbage
            _cli_gc.resume_with_startup_frozen(model)
            return alive() is not None
        finally:
            gc.unfreeze()
            gc.collect()
            if not was_enabled:
                gc.disable()

    assert survives(Loaded(), small_bytes=256 * 2**20)  # 64 bytes of weights: frozen as it is
    assert not survives(Loaded(), small_bytes=16)  # more than the limit: collected first
    assert not survives(None, small_bytes=256 * 2**20)  # no torch module to measure: collected first
