"""A prepared (`save_to_disk`) task dataset read with pyarrow gives exactly what `datasets.load_from_disk` gives,
follows the folder when it changes, falls back to `datasets` for what it does not read itself, and keeps
`lmms-nb eval` from importing `datasets` (nor pandas, scipy.stats, lmms_eval, plotly) on a YAML task."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from lmms_nb.tasks._saved_splits import SavedSplit, open_saved_splits
from lmms_nb.tasks.yaml_loader import load_tasks

REPO = Path(__file__).parents[1]


def _png(color: tuple[int, int, int], size: tuple[int, int] = (6, 4), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color[: len(mode)] if mode != "L" else color[0]).save(buf, format="PNG")
    return buf.getvalue()


def _rotated_jpeg() -> bytes:
    """A JPEG whose EXIF says 'rotate 90°': datasets returns it transposed (6x4 -> 4x6)."""
    image = Image.fromarray(np.arange(6 * 4 * 3, dtype=np.uint8).reshape(4, 6, 3))
    exif = image.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


FEATURES = datasets.Features({
    "question": datasets.Value("string"),
    "image": datasets.Image(),
    "gray": datasets.Image(mode="L"),
    "raw": datasets.Image(decode=False),
    "images": datasets.List(datasets.Image()),
    "label": datasets.ClassLabel(names=["no", "yes"]),
    "score": datasets.Value("float32"),
    "meta": {"id": datasets.Value("int64"), "tags": datasets.List(datasets.Value("string"))},
    "options": datasets.List(datasets.Value("string")),
})


def _rows(tag: str) -> dict[str, list]:
    return {
        "question": [f"{tag} one?", f"{tag} two?", None],
        "image": [{"bytes": _png((255, 0, 0)), "path": None}, {"bytes": _rotated_jpeg(), "path": None}, None],
        "gray": [{"bytes": _png((10, 200, 30)), "path": None}] * 3,
        "raw": [{"bytes": _png((1, 2, 3)), "path": None}] * 3,
        "images": [[{"bytes": _png((0, 0, 255)), "path": None}, {"bytes": _png((0, 9, 0), (3, 3)), "path": None}],
                   [], None],
        "label": [1, 0, 1],
        "score": [0.1, 2.5, -1.0],
        "meta": [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}, {"id": 3, "tags": ["b", "c"]}],
        "options": [["x", "y"], ["z"], []],
    }


def _save(folder: Path, tag: str = "v1") -> Path:
    test = datasets.Dataset.from_dict(_rows(tag), features=FEATURES)
    datasets.DatasetDict({"test": test, "train": test.select([2, 0])}).save_to_disk(str(folder))
    return folder


def _plain(value):
    """A doc with its images as (mode, size, pixels), to compare docs by value."""
    if isinstance(value, Image.Image):
        return ("image", value.mode, value.size, value.tobytes())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _assert_same_split(ours: SavedSplit, real: datasets.Dataset) -> None:
    assert len(ours) == len(real) and ours.column_names == real.column_names
    for i in [*range(len(real)), -1]:
        ours_doc, real_doc = ours[i], real[i]
        assert list(ours_doc) == list(real_doc)  # the key order too: doc_hash hashes the doc as JSON
        assert _plain(ours_doc) == _plain(real_doc), i
        assert [type(v) for v in ours_doc.values()] == [type(v) for v in real_doc.values()]
    assert ours._fingerprint == real._fingerprint  # a run's identity records it


def test_docs_equal_what_datasets_gives_for_every_plain_feature(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = _save(tmp_path / "data")
    ours, real = open_saved_splits(folder), datasets.load_from_disk(str(folder))
    assert ours is not None and sorted(ours) == sorted(real)
    for split in real:
        _assert_same_split(ours[split], real[split])
        _assert_same_split(open_saved_splits(folder)[split], real[split])  # fingerprint from the cache this time
    assert ours["test"][1]["image"].size == (4, 6)  # the EXIF orientation applied, as datasets does
    assert ours["test"].image_columns == ["image", "gray", "raw", "images"]
    text = ours["test"].select_columns(["score", "question"])
    assert text.column_names == ["score", "question"]
    assert [text[i] for i in range(3)] == [real["test"].select_columns(["score", "question"])[i] for i in range(3)]
    with pytest.raises(IndexError):
        ours["test"][3]


def test_anything_else_goes_to_the_real_dataset_loaded_from_the_same_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = _save(tmp_path / "data")
    ours, real = open_saved_splits(folder)["test"], datasets.load_from_disk(str(folder))["test"]
    assert ours.features == real.features
    assert ours["label"] == real["label"] and _plain(ours[0:2]) == _plain(real[0:2])
    assert ours.map(lambda d: {"n": len(d["options"])})["n"] == [2, 1, 0]
    assert _plain(list(ours)) == _plain(list(real))


def test_a_changed_folder_is_read_as_it_is_now(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = _save(tmp_path / "data", "v1")
    before = open_saved_splits(folder)["test"]
    assert before[0]["question"] == "v1 one?"
    fingerprint_before = before._fingerprint
    _save(tmp_path / "new", "v2")
    for name in ("test", "train"):  # replace the files, as a re-run of a preparation script does
        for f in (tmp_path / "new" / name).iterdir():
            os.replace(f, folder / name / f.name)
    after, real = open_saved_splits(folder)["test"], datasets.load_from_disk(str(folder))["test"]
    assert after[0]["question"] == "v2 one?"
    _assert_same_split(after, real)
    assert after._fingerprint != fingerprint_before


def test_folders_datasets_must_read_are_left_to_it(tmp_path):
    test = datasets.Dataset.from_dict({"q": ["a"], "m": [[[1.0, 2.0]]]},
                                      features=datasets.Features({"q": datasets.Value("string"),
                                                                  "m": datasets.Array2D((1, 2), "float32")}))
    datasets.DatasetDict({"test": test}).save_to_disk(str(tmp_path / "array"))
    assert open_saved_splits(tmp_path / "array") is None  # an extension type: datasets decodes it
    formatted = datasets.Dataset.from_dict({"q": ["a"]}).with_format("numpy")
    datasets.DatasetDict({"test": formatted}).save_to_disk(str(tmp_path / "numpy"))
    assert open_saved_splits(tmp_path / "numpy") is None  # a set_format: rows are not plain Python
    datasets.Dataset.from_dict({"q": ["a"]}).save_to_disk(str(tmp_path / "single"))
    assert open_saved_splits(tmp_path / "single") is None  # a single Dataset: datasets' error says so
    assert open_saved_splits(tmp_path / "nothing") is None


TASK_YAML = """\
task: saved_q
dataset_path: {data}
dataset_kwargs:
  load_from_disk: true
test_split: test
output_type: generate_until
doc_to_visual: !function utils.visual
doc_to_text: !function utils.text
doc_to_target: label
generation_kwargs:
  max_new_tokens: 4
metric_list:
  - metric: exact_match
"""


def _yaml_task(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "utils.py").write_text("def visual(doc):\n    return [doc['image']] if doc['image'] else []\n\n\n"
                                     "def text(doc):\n    return doc['question'] or 'none?'\n")
    (folder / "saved_q.yaml").write_text(TASK_YAML.format(data=tmp_path / "data"))
    return folder


def test_a_yaml_task_on_a_prepared_folder_gives_the_docs_datasets_gives(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    _save(tmp_path / "data")
    [task] = load_tasks(_yaml_task(tmp_path))
    ds = task.dataset()
    assert isinstance(ds, SavedSplit)
    assert task.image_column == "image"  # found from dataset_info.json's features, as from datasets'
    _assert_same_split(ds, datasets.load_from_disk(str(tmp_path / "data"))["test"])


def test_eval_of_a_yaml_task_on_a_prepared_folder_imports_no_datasets_nor_pandas(tmp_path):
    """The whole `lmms-nb eval` path with a real (tiny) LLaVA, twice: the first run keeps the split's fingerprint
    in the cache; the second imports none of these (lmms-eval 0.7.3 imports them all on the same run)."""
    from lmms_nb.models.tiny import build_tiny_llava

    _save(tmp_path / "data")
    tasks = _yaml_task(tmp_path)
    model = build_tiny_llava(tmp_path / "llava", vocab_texts=["v1 one? two? yes no"] * 4, seed=0)
    # as the `lmms-nb` program runs it (program_main), recording the collector's state while the evaluation runs
    code = ("import gc, sys\nimport lmms_nb.runner as runner\nfrom lmms_nb.cli import program_main\n"
            "seen = []\nreal = runner.evaluate\n"
            "def evaluate(*a, **k):\n    seen.append((gc.isenabled(), gc.get_freeze_count() > 0))\n"
            "    return real(*a, **k)\nrunner.evaluate = evaluate\n"
            f"sys.argv = ['lmms-nb', '--model', 'llava_hf', '--model_args', 'pretrained={model},device_map=cpu', "
            f"'--tasks', 'saved_q', '--include_path', {str(tasks)!r}, '--batch_size', '2', "
            f"'--output_path', {str(tmp_path / 'out')!r}, '--log_samples', '--device', 'cpu', '--no-resume']\n"
            "assert program_main() == 0\nprint(seen)\n"
            "heavy = ('datasets', 'pandas', 'scipy.stats', 'lmms_eval', 'plotly', 'ipywidgets')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    env = {**os.environ, "LMMS_NB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(proc.stdout.strip().splitlines()[-2:])
    # the collector is back on, over the frozen start-up, for what the evaluation allocates
    assert [seen for seen, _ in outs] == ["[(True, True)]"] * 2, outs
    assert outs[1][1] == "[]", outs
    first, second = sorted((tmp_path / "out").glob("*/*_samples_saved_q.jsonl"))
    assert first.read_text().count("\n") == 3
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k not in ("run_id", "latency_s")}
                          for line in text.splitlines()]
    assert strip(first.read_text()) == strip(second.read_text())  # the same answers, fingerprint cached or not


@pytest.mark.parametrize("columns", [list(FEATURES), ["label", "question"], "score"])
def test_select_columns_gives_datasets_fingerprint_even_of_every_column(tmp_path, monkeypatch, columns):
    """datasets' select_columns derives a new fingerprint even when it keeps every column in order."""
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = _save(tmp_path / "data")
    ours, real = open_saved_splits(folder)["test"], datasets.load_from_disk(str(folder))["test"]
    picked, real_picked = ours.select_columns(columns), real.select_columns(columns)
    _assert_same_split(picked, real_picked)
    assert picked._fingerprint != real._fingerprint
    assert ours._fingerprint == real._fingerprint  # the unselected split keeps the folder's
    twice, real_twice = picked.select_columns(columns), real_picked.select_columns(columns)
    assert twice._fingerprint == real_twice._fingerprint != real_picked._fingerprint


def test_a_truncated_arrow_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = _save(tmp_path / "data")
    [arrow] = (folder / "test").glob("*.arrow")
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    split = open_saved_splits(folder)["test"]
    with pytest.raises(ValueError, match=rf"{arrow.name}: not a readable Arrow stream"):
        split[0]


def test_the_fingerprint_cache_key_follows_the_hashing_versions():
    from importlib.metadata import version

    from lmms_nb.tasks._saved_splits import _hashing_versions

    assert _hashing_versions() == (f"datasets {version('datasets')}, dill {version('dill')}, "
                                   f"python {sys.version_info[0]}.{sys.version_info[1]}")
