"""Reading lmms-eval task YAMLs: the `!function` tag, `include`, and where every key came from.

lmms-eval loads task YAMLs with a custom `!function module.name` tag and a shallow `include` merge (the
including file's keys win; of several included files the first listed wins). This module does the same
with a `yaml.SafeLoader` subclass: `!function` becomes a lazy `FunctionRef` (`_yaml_functions`), resolved
only when a task is built, by importing the module *file* that lies next to the YAML that wrote the tag.

Every key remembers its file and line, so an error can say ``tasks/x.yaml:12: metric_list[0].aggregation``.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "_base.yaml").write_text("output_type: generate_until\\ntest_split: test\\n")
    >>> _ = (d / "t.yaml").write_text("include: _base.yaml\\ntask: t\\ndoc_to_text: !function utils.prompt\\n")
    >>> cfg = read_task_yaml(d / "t.yaml")
    >>> cfg.data["test_split"], cfg.data["doc_to_text"].dotted, cfg.where("test_split").endswith("_base.yaml:2")
    ('test', 'utils.prompt', True)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmms_nb.tasks._yaml_functions import DeferredFunction, FunctionRef, TaskYamlError, resolve_deferred

__all__ = ["DeferredFunction", "FunctionRef", "TaskYaml", "TaskYamlError", "read_task_yaml", "read_yaml_file",
           "resolve_deferred"]


class _TaskLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader plus lmms-eval's `!function` tag; the file name travels with the loader. libyaml's C parser
    when PyYAML has it (same nodes, same marks, so the same lines in messages; ~3x faster than the pure-Python one).
    What it rejects is parsed again by `_PureTaskLoader` (see `_parse_yaml`)."""

    yaml_file: Path = Path("<string>")


class _PureTaskLoader(yaml.SafeLoader):
    """The same loader on PyYAML's pure-Python parser, lmms-eval's (`yaml.full_load`): libyaml rejects some text
    it accepts (a lone surrogate escape such as "\\ud800") and its messages say less ("found undefined alias"
    without the name, a control character by position only), so a file libyaml rejects is parsed again here."""

    yaml_file: Path = Path("<string>")


def _construct_function(loader: _TaskLoader, node: yaml.Node) -> FunctionRef:
    value = loader.construct_scalar(node)
    if not isinstance(value, str) or not value.strip():
        raise TaskYamlError(f"{loader.yaml_file}:{node.start_mark.line + 1}: !function needs module.function")
    return FunctionRef(value.strip(), loader.yaml_file, node.start_mark.line + 1)


_TaskLoader.add_constructor("!function", _construct_function)
_PureTaskLoader.add_constructor("!function", _construct_function)


def _key_lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Line (1-based) of every mapping key and sequence item, by its path from the document root."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            out[path + (key,)] = key_node.start_mark.line + 1
            _key_lines(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _key_lines(item, path + (i,), out)
    return out


#: (path, sha256 of the file's bytes) -> what `_parse_yaml` gave; bounded, oldest dropped first
_PARSED: OrderedDict[tuple[str, bytes], tuple[Any, dict[tuple, int]]] = OrderedDict()
_PARSED_MAX = 1024
_PARSED_LOCK = threading.Lock()


def read_yaml_file(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse one YAML file with `!function` support: (data, line of each key path).

    A notebook loads the same task files run after run: the parse is kept per process, keyed by the file's path and
    the hash of its bytes (read every call, so an edit, even one that keeps the size and mtime, is a new parse), and
    each call gets its own copy of the data and of the line map. Errors are never kept: a bad file raises every time.

    Example:
        >>> import pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.yaml"
        >>> _ = f.write_text("task: t\\nmetric_list:\\n  - metric: exact_match\\n")
        >>> data, lines = read_yaml_file(f)
        >>> data["metric_list"][0]["metric"], lines[("metric_list", 0)]
        ('exact_match', 3)
    """
    data, lines, _ = _read_yaml_bytes(path)
    return data, lines


def _read_yaml_bytes(path: Path) -> tuple[Any, dict[tuple, int], bytes]:
    """`read_yaml_file`, plus the bytes that were parsed (what a fingerprint of the file must hash)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TaskYamlError(f"{path}: cannot read: {e}") from e
    key = (str(path), hashlib.sha256(raw).digest())
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
    if hit is None:
        hit = _parse_yaml(_decode(raw, path), path)
        with _PARSED_LOCK:
            _PARSED[key] = hit
            while len(_PARSED) > _PARSED_MAX:
                _PARSED.popitem(last=False)
    return _fresh_copy(hit[0], {}), dict(hit[1]), raw


def _decode(raw: bytes, path: Path) -> str:
    """UTF-8 with universal newlines, as Path.read_text; a byte that is not UTF-8 is named by its line and offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise TaskYamlError(f"{path}:{line}: not UTF-8 text (byte {e.start} is {raw[e.start:e.start + 1]!r}: "
                            f"{e.reason}); save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _fresh_copy(value: Any, memo: dict[int, Any]) -> Any:
    """A copy of parsed YAML whose dicts, lists and sets are new, as are tuples holding them (shared ones, YAML
    aliases, stay shared, as with `copy.deepcopy`); everything else a safe loader makes (str, numbers, dates,
    bytes, `FunctionRef`) is immutable.
    Five times faster than `copy.deepcopy`, which a task build paid once per file."""
    kind = type(value)
    if kind is tuple:  # !!omap and !!pairs give (key, value) tuples whose values may be dicts or lists
        return tuple(_fresh_copy(item, memo) for item in value) if value else value
    if kind not in (dict, list, set):
        return value
    kept = memo.get(id(value))
    if kept is not None:
        return kept
    out: Any
    if kind is dict:
        out = memo[id(value)] = {}
        for key, item in value.items():
            out[key] = _fresh_copy(item, memo)
    elif kind is list:
        out = memo[id(value)] = []
        out.extend(_fresh_copy(item, memo) for item in value)
    else:
        out = memo[id(value)] = set(value)
    return out


def _parse_yaml(text: str, path: Path) -> tuple[Any, dict[tuple, int]]:
    try:
        return _parse_with(_TaskLoader, text, path)
    except yaml.YAMLError:
        pass
    # libyaml said no: what the pure-Python parser gives is the answer, its data or its (more precise) error
    try:
        return _parse_with(_PureTaskLoader, text, path)
    except yaml.YAMLError as e:
        raise TaskYamlError(_yaml_error_message(e, text, path)) from e


def _parse_with(loader_class: type, text: str, path: Path) -> tuple[Any, dict[tuple, int]]:
    loader = loader_class(text)
    loader.yaml_file = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        return loader.construct_document(node), _key_lines(node)
    finally:
        loader.dispose()


def _yaml_error_message(e: yaml.YAMLError, text: str, path: Path) -> str:
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow: its position in the text
        line = text.count("\n", 0, e.position) + 1
        what = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        return f"{path}:{line}: invalid YAML: unacceptable character {what}: {e.reason}"
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(e, "problem", None) or str(e)
    return f"{where}: invalid YAML: {problem}"


@dataclass
class TaskYaml:
    """One task (or group) YAML after `include` resolution: the merged keys and where each came from."""

    path: Path
    data: dict[str, Any]
    #: top-level key -> (file that set it, that file's key-path -> line map, the key's path prefix in that file)
    origins: dict[str, tuple[Path, dict[tuple, int], tuple]] = field(default_factory=dict)
    #: every YAML file read to build this one (the file itself and its includes), for fingerprints
    files: list[Path] = field(default_factory=list)
    #: each of `files` -> the bytes that were parsed (so `digest` hashes what was read, never a later edit)
    sources: dict[Path, bytes] = field(default_factory=dict, repr=False)

    def where(self, *key_path: Any) -> str:
        """`file:line` of a key path such as ("metric_list", 0, "aggregation"), or the file alone."""
        if not key_path or key_path[0] not in self.origins:
            return str(self.path)
        file, lines, prefix = self.origins[key_path[0]]
        for depth in range(len(key_path), 0, -1):
            line = lines.get(prefix + tuple(key_path[:depth]))
            if line is not None:
                return f"{file}:{line}"
        return str(file)

    def with_overrides(self, overrides: dict[str, Any], source: TaskYaml, prefix: tuple = ()) -> TaskYaml:
        """A copy with `overrides` on top, written in `source` under key path `prefix` (e.g. ("task", 2) for a
        group's third task entry; () for top-level keys of a group file applied to all its subtasks)."""
        origins = dict(self.origins)
        for key in overrides:
            if prefix:
                file, lines, base = source.origins.get(prefix[0], (source.path, {}, ()))
                origins[key] = (file, lines, base + prefix)
            else:
                origins[key] = source.origins.get(key, (source.path, {}, ()))
        files = self.files + [f for f in source.files if f not in self.files]
        return TaskYaml(path=self.path, data={**self.data, **overrides}, origins=origins, files=files,
                        sources={**source.sources, **self.sources})

    def digest(self) -> str:
        """A hash of every YAML file this config was read from: of the bytes that were parsed."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(self.sources[f] if f in self.sources else f.read_bytes())
        return h.hexdigest()[:16]


def read_task_yaml(path: str | Path, _stack: tuple[Path, ...] = ()) -> TaskYaml:
    """Read a task YAML and merge its `include`s as lmms-eval does (shallow; this file's keys win).

    Relative include paths are looked up next to the including file (lmms-eval also tries the current
    directory; lmms-nb does not, so a task folder reads the same wherever it is run from).
    """
    path = Path(path).absolute()
    if path in _stack:
        chain = " -> ".join(str(p) for p in (*_stack, path))
        raise TaskYamlError(f"{path}: include cycle: {chain}")
    data, lines, raw = _read_yaml_bytes(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TaskYamlError(f"{path}: a task YAML must be a mapping of keys, got {type(data).__name__}")
    own = dict(data)
    include = own.pop("include", None)
    merged: dict[str, Any] = {}
    origins: dict[str, tuple[Path, dict[tuple, int], tuple]] = {}
    files = [path]
    sources = {path: raw}
    if include is not None:
        includes = [include] if isinstance(include, str) else include
        if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
            raise TaskYamlError(f"{path}:{lines.get(('include',), 1)}: include must be a file name or a list of them")
        # lmms-eval applies the last include first, so the first one listed wins over later ones.
        for i, name in reversed(list(enumerate(includes))):
            target = _include_target(path, name, lines.get(("include", i)) or lines.get(("include",), 1))
            sub = read_task_yaml(target, (*_stack, path))
            merged.update(sub.data)
            origins.update(sub.origins)
            files.extend(f for f in sub.files if f not in files)
            sources.update({f: b for f, b in sub.sources.items() if f not in sources})
    merged.update(own)
    origins.update({k: (path, lines, ()) for k in own})
    return TaskYaml(path=path, data=merged, origins=origins, files=files, sources=sources)


def _include_target(path: Path, name: str, line: int) -> Path:
    # an absolute name stays absolute under `/`; a relative one is looked up next to the including file only
    candidate = path.parent / name
    if candidate.is_file():
        return candidate.absolute()
    raise TaskYamlError(f"{path}:{line}: include {name!r}: no such file next to {path.name}")
