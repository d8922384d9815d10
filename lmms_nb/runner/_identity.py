"""Run identity: the key that says whether an earlier run in a model's folder is this same run.

`evaluate(..., resume=True)` resumes only a run whose key matches: same model name and args, each task's
fingerprint and selected doc ids, and seed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lmms_nb.tasks.task import Task

__all__ = ["run_key"]


def run_key(model_name: str, model_args: dict[str, Any], tasks: list[Task], doc_ids: dict[str, list[int]],
            seed: int) -> str:
    """A short hash of what makes two runs the same run.

    >>> run_key("m", {}, [], {}, 0) == run_key("m", {}, [], {}, 0) != run_key("m", {}, [], {}, 1)
    True
    """
    parts = {
        "model": model_name,
        "model_args": model_args,
        "tasks": [[t.name, t.fingerprint(), hashlib.sha256(json.dumps(doc_ids[t.name]).encode()).hexdigest()[:12]]
                  for t in tasks],
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
