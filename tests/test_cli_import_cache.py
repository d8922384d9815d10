"""transformers' import structure kept on disk for the `lmms-nb` program (`lmms_nb._cli_import_cache`): the stored
map equals the one transformers builds from its real models folder; an edited file, a corrupt cache file or
another folder rebuilds it; a real `import transformers` in a fresh process, once storing and once reading the map,
resolves its names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import transformers
from transformers.utils import import_utils

from lmms_nb._cli_import_cache import _cached, _listing

REPO = Path(__file__).resolve().parents[1]


def BUILD(module_path, prefix=None):  # noqa: N802 - stands for transformers' function
    """transformers' own function without its lru_caches (a folder's map is built again, as in a fresh process;
    the cached answer for the models folder is one transformers' __init__ updated in place)."""
    import_utils.create_import_structure_from_path.cache_clear()
    return import_utils.define_import_structure.__wrapped__(module_path, prefix=prefix)


def _fake_models(root: Path, names: list[str]) -> Path:
    folder = root / "models" / "foo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text("")
    (folder / "modeling_foo.py").write_text(f"__all__ = {names!r}\n")
    return root / "models"


def test_the_stored_map_of_the_real_models_folder_is_transformers_own(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path))
    models = os.path.realpath(Path(transformers.__file__).parent / "models")
    define = _cached(BUILD, transformers.__version__, models)
    expected = BUILD(models, prefix="models")
    assert define(models, prefix="models") == expected  # built, then stored
    [stored] = list((tmp_path / "transformers_imports").glob("*.json"))
    assert json.loads(stored.read_text())["listing"] == _listing(models)
    assert define(models, prefix="models") == expected  # read back from the file
    assert len(expected[frozenset()]) > 100


def test_an_edited_file_or_a_corrupt_cache_rebuilds_the_map(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    models = _fake_models(tmp_path, ["FooModel"])
    define = _cached(BUILD, "test", os.path.realpath(models))
    assert define(models, prefix="models") == {frozenset({"torch"}): {"models.foo.modeling_foo": {"FooModel"}}}
    _fake_models(tmp_path, ["FooModel", "FooForCausalLM"])  # an edit: another size and modification time
    assert define(models, prefix="models")[frozenset({"torch"})]["models.foo.modeling_foo"] == {
        "FooModel", "FooForCausalLM"}
    [stored] = list((tmp_path / "cache" / "transformers_imports").glob("*.json"))
    for garbage in ('{"listing": ', "[]", json.dumps({"listing": _listing(models), "structure": 7}),
                    json.dumps({"listing": _listing(models), "structure": [[[], []]]})):  # valid JSON, wrong shape
        stored.write_text(garbage)
        assert define(models, prefix="models")[frozenset({"torch"})]["models.foo.modeling_foo"] == {
            "FooModel", "FooForCausalLM"}
    assert json.loads(stored.read_text())["listing"] == _listing(models)  # rewritten
    other = _fake_models(tmp_path / "other", ["BarModel"])  # any other folder: transformers' function, not the cache
    assert define(other, prefix="models")[frozenset({"torch"})] == {"models.foo.modeling_foo": {"BarModel"}}


def test_a_fresh_process_imports_transformers_through_the_cache(tmp_path):
    code = ("import sys\nfrom lmms_nb._cli_import_cache import install\n"
            "assert install() and not install()\n"
            "import transformers\n"
            "from transformers import AutoModelForImageTextToText, Qwen2_5_VLForConditionalGeneration, AutoProcessor\n"
            "from transformers.utils import import_utils\n"
            "print(hasattr(import_utils.define_import_structure, '__wrapped__'),"
            " Qwen2_5_VLForConditionalGeneration.__module__)\n")
    env = {**os.environ, "LMMS_NB_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    outs = []
    for _ in range(2):  # the first stores the map, the second reads it
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(proc.stdout.split())
    assert outs == [["True", "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl"]] * 2
    assert len(list((tmp_path / "transformers_imports").glob("*.json"))) == 1
