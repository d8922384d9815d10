"""What a run's command line sets on every task it builds, as lmms-eval's evaluator does after building them.

lmms-eval 0.7.3 applies `--num_fewshot N` to every task (`set_config("num_fewshot", N)`), except a task whose YAML
says `num_fewshot: 0` (it keeps 0: "Manual configuration will be ignored"), and seeds every task's few-shot
sampler with the fourth value of `--seed` (1234 by default). `lmms-nb eval` builds its tasks inside
`run_overrides(...)`, so the YAML loader builds them so (the value lands in the task's config, as `n-shot` in
the results JSON).

Example:
    >>> with run_overrides(num_fewshot=2, fewshot_seed=7):
    ...     current()
    {'num_fewshot': 2, 'fewshot_seed': 7}
    >>> current()
    {}
    >>> apply_num_fewshot({"num_fewshot": 0}, 2), apply_num_fewshot({}, 2), apply_num_fewshot({"num_fewshot": 3}, None)
    (0, 2, 3)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["apply_num_fewshot", "current", "run_overrides"]

_OVERRIDES: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("lmms_nb_run_overrides", default={})


@contextlib.contextmanager
def run_overrides(*, num_fewshot: int | None = None, fewshot_seed: int | None = None) -> Iterator[None]:
    """Tasks built inside this block take the command line's `num_fewshot` and few-shot seed (see module)."""
    values = {k: v for k, v in {"num_fewshot": num_fewshot, "fewshot_seed": fewshot_seed}.items() if v is not None}
    token = _OVERRIDES.set(values)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def current() -> dict[str, Any]:
    """The overrides in force (empty outside `run_overrides`)."""
    return dict(_OVERRIDES.get())


def apply_num_fewshot(data: Mapping[str, Any], num_fewshot: int | None) -> Any:
    """The task's num_fewshot after lmms-eval's rule: the command line's unless the YAML says 0."""
    if num_fewshot is None or data.get("num_fewshot") == 0:
        return data.get("num_fewshot")
    return num_fewshot
