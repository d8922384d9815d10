"""Reading lmms-eval task YAMLs: the `!function` tag, `include`, and where every key came from.

lmms-eval loads task YAMLs with a custom `!function module.name` tag and a shallow `include` merge (the
including file's keys win; of several included files the first listed wins). This module does the same
with a `yaml.SafeLoader` subclass: `!function` becomes a lazy `FunctionRef`, resolved only when a task is
built, by importing the module *file* that lies next to the YAML that wrote the tag; as lmms-eval, a
name with no such file (``!function lmms_eval.tasks.x.utils.f``) is imported from installed packages.
No folder is ever added to `sys.path`. While a task file is imported, environment variables that
lmms-eval's task files read at import (``HF_HOME``) get lmms-eval's defaults, and a file that builds an
API client at import (and so needs a key now) gives lazy functions that import it when a run starts.

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

import contextlib
import contextvars
import hashlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

__all__ = ["DeferredFunction", "FunctionRef", "TaskYaml", "TaskYamlError", "read_task_yaml", "read_yaml_file",
           "resolve_deferred"]


class TaskYamlError(ValueError):
    """A task YAML (or the code or data it points at) is invalid; the message names the file, line and key."""


@dataclass(frozen=True)
class FunctionRef:
    """A `!function module.name` reference, resolved lazily relative to the folder of the YAML that wrote it."""

    dotted: str
    yaml_file: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.yaml_file}:{self.line}"

    def _local_file(self) -> Path | None:
        parts = self.dotted.split(".")
        if len(parts) < 2 or not all(parts):
            raise TaskYamlError(f"{self.where}: !function {self.dotted!r} must look like module.function")
        folder = self.yaml_file.parent
        for candidate in (folder.joinpath(*parts[:-1]).with_suffix(".py"), folder / (".".join(parts[:-1]) + ".py")):
            if candidate.is_file():
                return candidate
        return None

    def module_file(self) -> Path:
        """The Python file that holds the function: `a.b.fn` -> `<yaml folder>/a/b.py` (or `a.b.py`, as lmms-eval),
        else the file of the installed module `a.b` (lmms-eval's fallback for package paths)."""
        local = self._local_file()
        if local is not None:
            return local
        module_name = self.dotted.rsplit(".", 1)[0]
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError) as e:
            spec = None
            why = f"{type(e).__name__}: {e}"
        else:
            why = "no such installed module"
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            raise TaskYamlError(
                f"{self.where}: !function {self.dotted}: no file {module_name.split('.')[-1]}.py next to "
                f"{self.yaml_file.name} and no installed module {module_name!r} ({why})")
        return Path(spec.origin)

    def resolve(self) -> Callable[..., Any]:
        """Import the module (once per file content) and return the named attribute.

        A module that cannot be imported now only because it builds an API client at import (no key set)
        gives a `DeferredFunction` with the function's signature: the task loads, and the import is tried
        again, asking for the key, when a run starts (`resolve_deferred`).
        """
        name = self.dotted.rsplit(".", 1)[1]
        local = self._local_file()
        try:
            if local is not None:
                path, module = local, _import_file(local, self)
            else:
                module_name = self.dotted.rsplit(".", 1)[0]
                path = self.module_file()
                module = _import_installed(module_name, self)
        except _NeedsApiKey as e:
            return DeferredFunction(self, e.path, name, str(e))
        try:
            return getattr(module, name)
        except AttributeError:
            public = sorted(n for n in vars(module) if not n.startswith("_"))
            raise TaskYamlError(
                f"{self.where}: !function {self.dotted}: {path.name} has no {name!r} (it defines: {', '.join(public)})"
            ) from None


class _NeedsApiKey(Exception):
    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def _needs_api_key(error: BaseException) -> bool:
    """True for an error that says the module needs a run-time resource at import: an API client (openai,
    azure, ...) built with no key, or a file fetched from the Hugging Face hub while offline."""
    import re

    text = f"{type(error).__module__}.{type(error).__name__}: {error}"
    return bool(re.search(r"api[_ ]?key|OPENAI_API|AZURE_|credential|LocalEntryNotFoundError|OfflineModeIsEnabled",
                          text, re.IGNORECASE))


#: module files whose import was deferred (they need an API key or the hub at import) -> why
DEFERRED_FILES: dict[Path, str] = {}


class DeferredFunction:
    """A task function whose module needs an API key (or the hub) at import: imported when a run starts.

    It has the real function's signature (read from the source with `ast`), so a task is built exactly as
    with the real function; calling it (or `resolve_deferred`) imports the module, and fails with a clear
    message naming what the module asked for while the key is still missing.
    """

    def __init__(self, ref: FunctionRef, path: Path, name: str, why: str) -> None:
        self.ref, self.path, self.__name__, self.why = ref, path, name, why
        DEFERRED_FILES[path.resolve()] = why
        self.__qualname__ = name
        self.__signature__ = _signature_from_source(path, name, ref)
        self._real: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        if self._real is None:
            real = self.ref.resolve()
            if isinstance(real, DeferredFunction):
                raise TaskYamlError(f"{self.ref.where}: !function {self.ref.dotted}: {self.path} needs an API "
                                    f"key (or the Hugging Face hub) when it is imported, and importing it still "
                                    f"fails: {real.why}. Set the key (e.g. OPENAI_API_KEY, or API_TYPE/AZURE_* "
                                    "for azure), or put the file in the hub cache, before the run")
            self._real = real
        return self._real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


def _signature_from_source(path: Path, name: str, ref: FunctionRef) -> Any:
    import ast
    import inspect

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            a = node.args
            kind = inspect.Parameter
            params = [kind(p.arg, kind.POSITIONAL_OR_KEYWORD) for p in a.posonlyargs + a.args]
            if a.vararg:
                params.append(kind(a.vararg.arg, kind.VAR_POSITIONAL))
            params += [kind(p.arg, kind.KEYWORD_ONLY) for p in a.kwonlyargs]
            if a.kwarg:
                params.append(kind(a.kwarg.arg, kind.VAR_KEYWORD))
            return inspect.Signature(params)
    raise TaskYamlError(f"{ref.where}: !function {ref.dotted}: {path.name} defines no function {name!r}")


def resolve_deferred(value: Any) -> None:
    """Import the modules of every deferred function a task config names: raises while a key is still missing."""
    if isinstance(value, DeferredFunction):
        value.load()
    elif isinstance(value, FunctionRef):
        try:
            deferred = value.module_file().resolve() in DEFERRED_FILES
        except TaskYamlError:
            return
        if deferred:
            resolved = value.resolve()
            if isinstance(resolved, DeferredFunction):
                resolved.load()
    elif isinstance(value, dict):
        for v in value.values():
            resolve_deferred(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            resolve_deferred(v)


#: environment variables that lmms-eval task files read at import without a default, with the default that
#: lmms-eval's other task files use (lmms-eval itself leaves them unset, and those files then fail there)
_IMPORT_ENV_DEFAULTS = {"HF_HOME": "~/.cache/huggingface"}


class _import_env:
    """Set lmms-eval's defaults for the variables task files read at import, only while one is imported."""

    def __enter__(self) -> None:
        import os

        self.added = [k for k in _IMPORT_ENV_DEFAULTS if k not in os.environ]
        for k in self.added:
            os.environ[k] = os.path.expanduser(_IMPORT_ENV_DEFAULTS[k])

    def __exit__(self, *exc: Any) -> None:
        import os

        for k in self.added:
            os.environ.pop(k, None)


def _import_installed(module_name: str, ref: FunctionRef) -> ModuleType:
    try:
        with _import_env():
            return importlib.import_module(module_name)
    except Exception as e:
        if _needs_api_key(e):
            raise _NeedsApiKey(f"{type(e).__name__}: {e}", ref.module_file()) from e
        raise TaskYamlError(f"{ref.where}: !function {ref.dotted}: importing the installed module {module_name!r} "
                            f"failed: {type(e).__name__}: {e}") from e


_MODULES: dict[tuple[str, str], ModuleType] = {}
_MODULES_LOCK = threading.Lock()
#: while a task is built, the modules its functions come from (a fresh import per build; see `fresh_modules`)
_BUILD_MODULES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lmms_nb_build_modules", default=None)


@contextlib.contextmanager
def fresh_modules() -> Any:
    """Import the task files anew for what is built inside: module-level state starts fresh for every task.

    lmms-eval imports a task file anew for each `!function` and runs once per process; some task files keep
    scores in module globals (OCRBench's aggregation adds every run's results to a module-level dict), so a
    module shared between runs in one notebook would carry one run's scores into the next.
    """
    token = _BUILD_MODULES.set({})
    try:
        yield
    finally:
        _BUILD_MODULES.reset(token)


class _TaskFileLoader(importlib.machinery.SourceFileLoader):
    """Python's own loader for a task file, executing exactly the bytes `_import_file` read and hashed: never a
    `__pycache__` .pyc (whose recorded mtime and size an edit within the same second can keep, so the old code
    would run) and never writing one. Each source's compiled code is kept per process (`fresh_modules` executes
    the file anew for every task build, and compiling it each time cost more than running it); a code object is
    immutable, so sharing it is safe. The key holds the optimize level (-O strips asserts and docstrings)."""

    _CODE: dict[tuple[str, bytes, int], Any] = {}

    def __init__(self, fullname: str, path: str, source: bytes, digest: bytes) -> None:
        super().__init__(fullname, path)
        self._source, self._digest = source, digest

    def get_source(self, fullname: str) -> str:
        return importlib.util.decode_source(self._source)

    def get_code(self, fullname: str) -> Any:
        key = (self.path, self._digest, sys.flags.optimize)
        code = self._CODE.get(key)
        if code is None:
            code = compile(self._source, self.path, "exec", dont_inherit=True)
            if len(self._CODE) < 1024:
                self._CODE[key] = code
        return code


def _import_file(path: Path, ref: FunctionRef) -> ModuleType:
    """Import a task's utils file under a unique module name, once per task build (else cached by content)."""
    source = path.read_bytes()
    digest = hashlib.sha256(source).digest()
    key = (str(path.resolve()), digest.hex())
    scope = _BUILD_MODULES.get()
    cache = _MODULES if scope is None else scope
    with _MODULES_LOCK:
        if key in cache:
            return cache[key]
        # unique per file and content: two task folders may both have a utils.py
        name = f"lmms_nb_yaml_tasks.{path.stem}_{key[1][:12]}"
        spec = importlib.util.spec_from_file_location(name, path, loader=_TaskFileLoader(name, str(path), source, digest))
        if spec is None or spec.loader is None:
            raise TaskYamlError(f"{ref.where}: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        # registered so that dataclasses, pickling and tracebacks inside the module work
        sys.modules[name] = module
        try:
            with _import_env():
                spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            if _needs_api_key(e):
                raise _NeedsApiKey(f"{type(e).__name__}: {e}", path) from e
            raise TaskYamlError(
                f"{ref.where}: !function {ref.dotted}: importing {path} failed: {type(e).__name__}: {e}"
            ) from e
        cache[key] = module
        return module


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
