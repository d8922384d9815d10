"""lmms-eval's `!function module.name` tag: the reference a task YAML holds, and the import of the file it names.

A `FunctionRef` is resolved only when a task is built, by importing the module *file* that lies next to the YAML
that wrote the tag; as lmms-eval, a name with no such file (``!function lmms_eval.tasks.x.utils.f``) is imported
from installed packages. No folder is ever added to `sys.path`. While a task file is imported, environment
variables that lmms-eval's task files read at import (``HF_HOME``) get lmms-eval's defaults, and a file that
builds an API client at import (and so needs a key now) gives lazy functions that import it when a run starts.
A task file runs from exactly the bytes read (never a `__pycache__` .pyc), anew for every task build.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "utils.py").write_text("def prompt(doc):\\n    return 'Q: ' + doc['q']\\n")
    >>> FunctionRef("utils.prompt", d / "t.yaml", 3).resolve()({"q": "2+2?"})
    'Q: 2+2?'
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["DEFERRED_FILES", "DeferredFunction", "FunctionRef", "TaskYamlError", "fresh_modules", "resolve_deferred"]


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
