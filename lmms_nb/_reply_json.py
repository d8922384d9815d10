"""The JSON inside a model's reply: models wrap it in code fences and put sentences around it.

One reader for the LLM judge (`lmms_nb.judge`: a rating object) and the live-benchmark drafting and reviewing
replies (`lmms_nb.live._parse`: an object or a list of questions).

Example:
    >>> extract_json('Sure! ```json\\n{"Rating": 8}\\n``` Bye')
    {'Rating': 8}
    >>> extract_json('[1, 2] and {"a": 1}', objects_only=True)
    {'a': 1}
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["extract_json", "quote_reply"]

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str, *, objects_only: bool = False) -> Any:
    """The first JSON object or array in `text` (only objects with `objects_only`): inside a code fence first,
    else anywhere in the text; None when there is none.

    >>> extract_json('```\\n[1, 2]\\n```')
    [1, 2]
    >>> extract_json('no json here') is None
    True
    """
    decoder = json.JSONDecoder()
    kinds = (dict,) if objects_only else (dict, list)
    starts = re.compile(r"\{" if objects_only else r"[\[{]")
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        for match in starts.finditer(candidate):
            try:
                value, _ = decoder.raw_decode(candidate, match.start())
            except ValueError:
                continue
            if isinstance(value, kinds):
                return value
    return None


def quote_reply(text: str, limit: int) -> str:
    """The reply's first `limit` characters, quoted, for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
