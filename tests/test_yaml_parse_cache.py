"""The per-process cache of parsed task YAMLs (`_yaml_config.read_yaml_file`): edits are always seen.

A notebook calls `load_tasks` run after run on the same folder; the parse is kept by the file's path and the hash of
its bytes. These tests edit a task file, an included template and the utils.py a `!function` points at between two
loads, the edit keeping the size and the mtime (what a stat-keyed cache would miss), and check the second load sees it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import datasets
import pytest

from lmms_nb.tasks import _yaml_config, _yaml_functions
from lmms_nb.tasks._yaml_config import TaskYamlError, read_task_yaml, read_yaml_file
from lmms_nb.tasks.yaml_loader import load_task, load_tasks


def _rewrite_keeping_stat(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` (same length) and put the size and mtime back as they were."""
    assert len(old) == len(new)
    st = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.fixture()
def task_dir(tmp_path: Path) -> Path:
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"q": ["2+2?"], "a": ["4"]})}).save_to_disk(
        str(tmp_path / "data"))
    (tmp_path / "utils.py").write_text("def prompt(doc):\n    return 'AAA ' + doc['q']\n")
    (tmp_path / "_base.yaml").write_text("test_split: test\ndataset_path: data\n"
                                         "dataset_kwargs: {load_from_disk: true}\ndoc_to_target: a\n"
                                         "generation_kwargs: {max_new_tokens: 11}\n")
    (tmp_path / "add.yaml").write_text("include: _base.yaml\ntask: add\ndoc_to_text: !function utils.prompt\n"
                                       "metric_list: [{metric: exact_match, aggregation: mean, "
                                       "higher_is_better: true}]\n")
    return tmp_path


def test_a_second_load_reuses_the_parse_and_gets_its_own_copy(task_dir: Path, monkeypatch) -> None:
    parses = []
    real = _yaml_config._parse_yaml
    monkeypatch.setattr(_yaml_config, "_parse_yaml", lambda text, path: parses.append(path) or real(text, path))
    first = load_task(task_dir / "add.yaml")
    n = len(parses)
    data, lines = read_yaml_file((task_dir / "add.yaml").absolute())
    data["metric_list"][0]["metric"] = "changed by a caller"
    second = load_task(task_dir / "add.yaml")
    assert len(parses) == n  # nothing parsed again
    assert read_yaml_file((task_dir / "add.yaml").absolute())[0]["metric_list"][0]["metric"] == "exact_match"
    assert [m.name for m in second.metrics] == [m.name for m in first.metrics] == ["exact_match"]
    assert lines[("doc_to_text",)] == 3


def test_an_edit_of_the_task_file_is_seen_even_with_the_same_size_and_mtime(task_dir: Path) -> None:
    assert load_task(task_dir / "add.yaml").name == "add"
    _rewrite_keeping_stat(task_dir / "add.yaml", "task: add", "task: sub")
    assert load_task(task_dir / "add.yaml").name == "sub"
    assert [t.name for t in load_tasks(task_dir)] == ["sub"]


def test_an_edit_of_an_included_template_is_seen(task_dir: Path) -> None:
    assert load_task(task_dir / "add.yaml").generation_kwargs["max_new_tokens"] == 11
    _rewrite_keeping_stat(task_dir / "_base.yaml", "max_new_tokens: 11", "max_new_tokens: 99")
    task = load_task(task_dir / "add.yaml")
    assert task.generation_kwargs["max_new_tokens"] == 99
    assert read_task_yaml(task_dir / "add.yaml").where("generation_kwargs").endswith("_base.yaml:5")


def test_an_edit_of_the_function_file_is_seen(task_dir: Path, monkeypatch) -> None:
    # bytecode writing on (CI's env may set PYTHONDONTWRITEBYTECODE): Python's own loader would run a .pyc whose
    # recorded mtime and size the edit kept, i.e. the old code
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    task = load_task(task_dir / "add.yaml")
    assert task.doc_to_text(task.dataset()[0]) == "AAA 2+2?"
    _rewrite_keeping_stat(task_dir / "utils.py", "'AAA '", "'BBB '")
    task = load_task(task_dir / "add.yaml")
    assert task.doc_to_text(task.dataset()[0]) == "BBB 2+2?"
    assert not (task_dir / "__pycache__").exists()  # task files never read nor write bytecode


def test_a_bad_file_fails_with_its_line_on_every_load_and_a_fix_is_seen(task_dir: Path) -> None:
    path = task_dir / "add.yaml"
    good = path.read_text()
    path.write_text("task: add\nmetric_list: [unclosed\n")
    for _ in range(2):  # errors are not kept: the second load raises the same message
        with pytest.raises(TaskYamlError, match=r"add.yaml:3: invalid YAML"):
            load_task(path)
    path.write_text("task: add\ndoc_to_text: !function\n")
    with pytest.raises(TaskYamlError, match=r"add.yaml:2: !function needs module.function"):
        read_yaml_file(path)
    path.write_text(good)
    assert load_task(path).name == "add"


def test_each_load_runs_the_function_file_anew_though_its_compiled_code_is_kept(task_dir: Path) -> None:
    """Module state starts fresh for every task build (lmms-eval imports task files anew; OCRBench keeps scores
    in a module global), whatever is kept between loads."""
    (task_dir / "utils.py").write_text("CALLS = []\n\ndef prompt(doc):\n    CALLS.append(1)\n"
                                       "    return f'call {len(CALLS)}: ' + doc['q']\n")
    for _ in range(3):
        task = load_task(task_dir / "add.yaml")
        assert task.doc_to_text(task.dataset()[0]) == "call 1: 2+2?"
    # kept by path, hash of the bytes and optimize level (-O strips asserts and docstrings from what is compiled)
    source = (task_dir / "utils.py").read_bytes()
    assert (str(task_dir / "utils.py"), hashlib.sha256(source).digest(), sys.flags.optimize) in \
        _yaml_functions._TaskFileLoader._CODE


def test_a_template_edit_is_seen_and_aliases_stay_shared(task_dir: Path) -> None:
    path = task_dir / "add.yaml"
    path.write_text(path.read_text().replace("doc_to_text: !function utils.prompt", "doc_to_text: 'Q {{q}}'"))
    task = load_task(path)
    assert task.doc_to_text(task.dataset()[0]) == "Q 2+2?"
    _rewrite_keeping_stat(path, "'Q {{q}}'", "'R {{q}}'")
    task = load_task(path)
    assert task.doc_to_text(task.dataset()[0]) == "R 2+2?"
    (task_dir / "alias.yaml").write_text("a: &shared {k: [1, 2]}\nb: *shared\n")
    for _ in range(2):  # parsed, then from the kept parse: the two keys hold one mapping, as PyYAML gives it
        data, _ = read_yaml_file(task_dir / "alias.yaml")
        assert data["a"] is data["b"] and data["a"] == {"k": [1, 2]}


def test_a_task_by_catalogue_name_sees_edits_and_records_the_hash_of_what_it_parsed(task_dir: Path) -> None:
    """The catalogue is indexed once per process; the task a name points at is read anew on every build, and the
    `yaml_sha256` it records is the hash of the bytes that build parsed (the task file, then its include)."""
    import hashlib

    from lmms_nb.tasks.yaml_loader import resolve_tasks

    def sha(*names: str) -> str:
        return hashlib.sha256(b"".join((task_dir / n).read_bytes() for n in names)).hexdigest()[:16]

    (task_dir / "add.yaml").write_text((task_dir / "add.yaml").read_text().replace("task: add", "task: add_cat_x"))
    [task] = resolve_tasks("add_cat_x", include_path=task_dir)
    assert task.generation_kwargs["max_new_tokens"] == 11
    assert task.config["yaml_sha256"] == sha("add.yaml", "_base.yaml")
    _rewrite_keeping_stat(task_dir / "add.yaml", "utils.prompt", "utils.prompX")  # a name utils.py lacks
    with pytest.raises(TaskYamlError, match="has no 'prompX'"):
        resolve_tasks("add_cat_x", include_path=task_dir)
    _rewrite_keeping_stat(task_dir / "add.yaml", "utils.prompX", "utils.prompt")
    _rewrite_keeping_stat(task_dir / "_base.yaml", "max_new_tokens: 11", "max_new_tokens: 99")
    [task] = resolve_tasks("add_cat_x", include_path=task_dir)
    assert task.generation_kwargs["max_new_tokens"] == 99
    assert task.config["yaml_sha256"] == sha("add.yaml", "_base.yaml")


def test_the_digest_is_of_the_bytes_parsed_not_of_a_later_edit(task_dir: Path) -> None:
    import hashlib

    before = b"".join((task_dir / n).read_bytes() for n in ("add.yaml", "_base.yaml"))
    cfg = read_task_yaml(task_dir / "add.yaml")
    (task_dir / "_base.yaml").write_text("test_split: other\n")  # edited after the parse, before the hash
    assert cfg.data["test_split"] == "test"
    assert cfg.digest() == hashlib.sha256(before).hexdigest()[:16]


def test_the_names_index_sees_an_edit_of_an_included_file(task_dir: Path) -> None:
    from lmms_nb.tasks._yaml_index import _names_of

    (task_dir / "_tags.yaml").write_text("tag: [aaa]\n")
    (task_dir / "t.yaml").write_text("include: _tags.yaml\ntask: t\n")
    assert _names_of(task_dir / "t.yaml")["tag"] == ["aaa"]
    _rewrite_keeping_stat(task_dir / "_tags.yaml", "aaa", "bbb")
    assert _names_of(task_dir / "t.yaml")["tag"] == ["bbb"]


def test_the_parse_cache_hands_out_no_shared_mutable_object(task_dir: Path) -> None:
    path = task_dir / "pairs.yaml"
    path.write_text("o: !!omap [{a: {k: 1}}, {b: [1]}]\np: !!pairs [{c: {k: 2}}]\n")
    data, lines = read_yaml_file(path)
    data["o"][0][1]["k"] = "changed"
    data["o"][1][1].append("changed")
    data["p"][0][1]["k"] = "changed"
    lines[("o",)] = 999
    again, lines_again = read_yaml_file(path)
    assert again == {"o": [("a", {"k": 1}), ("b", [1])], "p": [("c", {"k": 2})]}
    assert lines_again[("o",)] == 1


def test_a_file_that_is_not_utf8_is_named_with_its_line(task_dir: Path) -> None:
    path = task_dir / "latin1.yaml"
    path.write_bytes("task: t\ndoc_to_text: 'caf\u00e9'\n".encode("latin-1"))
    with pytest.raises(TaskYamlError, match=r"latin1.yaml:2: not UTF-8 text \(byte 25 is "):
        read_yaml_file(path)
    with pytest.raises(TaskYamlError, match=r"latin1.yaml:2: not UTF-8"):
        load_task(path)


@pytest.mark.parametrize("text", [
    "task: t\na: *nope\n",  # libyaml: "found undefined alias" without the name
    "task: t\na: 1\n\tb: 2\n",  # a tab: libyaml names no character
    "task: t\nb: 'x\x01y'\n",  # a control character: libyaml gives a position in "<unicode string>", no line
    "task: t\nmetric_list: [unclosed\n",
    "task: t\na:\n  - b\n c: d\n",
    'task: t\na: "\\ud800"\n',  # a lone surrogate escape: libyaml rejects it, lmms-eval's yaml.full_load accepts it
    "task: t\nkeep: [1, 2]\n",
])
def test_what_libyaml_rejects_reads_as_the_pure_python_parser_reads_it(tmp_path: Path, text: str) -> None:
    """lmms-eval parses with PyYAML's pure-Python parser: same acceptance, same problem text, the line it names."""
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        expected = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        if isinstance(e, yaml.reader.ReaderError):
            line = text.count("\n", 0, e.position) + 1
            problem = f"unacceptable character #x{e.character:04x}: {e.reason}"
        else:
            line, problem = e.problem_mark.line + 1, e.problem
        with pytest.raises(TaskYamlError) as raised:
            read_yaml_file(path)
        assert str(raised.value) == f"{path}:{line}: invalid YAML: {problem}"
    else:
        assert read_yaml_file(path)[0] == expected
        assert read_task_yaml(path).data == expected


def test_a_task_added_or_renamed_in_an_include_path_folder_is_found_by_name(task_dir: Path) -> None:
    from lmms_nb.tasks.yaml_loader import resolve_tasks

    (task_dir / "add.yaml").write_text((task_dir / "add.yaml").read_text().replace("task: add", "task: add_cat_y"))
    assert [t.name for t in resolve_tasks("add_cat_y", include_path=task_dir)] == ["add_cat_y"]
    (task_dir / "add.yaml").write_text((task_dir / "add.yaml").read_text().replace("add_cat_y", "add_cat_renamed"))
    (task_dir / "more.yaml").write_text((task_dir / "add.yaml").read_text().replace("add_cat_renamed", "add_cat_z"))
    assert [t.name for t in resolve_tasks(["add_cat_renamed", "add_cat_z"], include_path=task_dir)] == [
        "add_cat_renamed", "add_cat_z"]
    with pytest.raises(Exception, match="add_cat_y"):
        resolve_tasks("add_cat_y", include_path=task_dir)
