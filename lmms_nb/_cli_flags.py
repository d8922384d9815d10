"""lmms-eval 0.7.3's `eval` flags, spelled and abbreviated as lmms-eval's own argparse parser accepts them.

`parse_eval_argv` turns an lmms-eval command line (`--model llava_hf --model_args pretrained=DIR --tasks mme
--batch_size 1 --log_samples --output_path OUT`) into an `argparse.Namespace` with lmms-eval's destinations and
types. Abbreviations resolve against lmms-eval's option list only (`--out` is `--output_path`, `--log` is ambiguous
as in lmms-eval), so a command that lmms-eval accepts means the same here; lmms-nb's own spellings (`--output`,
`--model-args`, `--batch-size`, `--no-resume`, `--[no-]retry-errors`) match only when written in full. Flags lmms-nb does not implement
are parsed, then refused by name; an unknown flag gets a "did you mean".

Example:
    >>> try:
    ...     parse_eval_argv(["--model", "llava_hf", "--tasks", "t", "--log"])
    ... except FlagError as e:
    ...     print(e)
    ambiguous option: --log could match --log_samples, --log_samples_suffix
    >>> ns = parse_eval_argv(["--model", "llava_hf", "--tasks", "t", "-b", "8", "--out", "o", "--seed", "42"])
    >>> ns.model, ns.batch_size, ns.output_path, ns.seed
    ('llava_hf', '8', 'o', [42, 42, 42, 42])
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

__all__ = ["FlagError", "LMMS_EVAL_FLAGS", "SUPPORTED", "parse_eval_argv", "parse_kv_string"]


class FlagError(ValueError):
    """A command-line flag lmms-nb cannot accept: unknown, ambiguous, malformed or not supported."""


def _seed_list(value: str) -> list[int | None]:
    """lmms-eval's --seed: one integer for all four seeds, or 3-4 comma-separated integers / None."""
    items = []
    for item in value.split(","):
        item = item.strip().lower()
        try:
            items.append(None if item == "none" else int(item))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item} is not an integer or None") from None
    if len(items) == 1:
        return items * 4
    if not 3 <= len(items) <= 4:
        raise argparse.ArgumentTypeError("Argument requires 4 integers or None, separated by ','")
    return items + [1234] * (4 - len(items))


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


_STORE_TRUE: dict[str, Any] = {"action": "store_true", "default": False}

#: every option of lmms-eval 0.7.3's `parse_eval_args` (lmms_eval/__main__.py), in its order, with its dest,
#: type and default. The `supported` ones have lmms-eval's meaning in lmms-nb; the others are refused by name.
LMMS_EVAL_FLAGS: list[tuple[tuple[str, ...], dict[str, Any], bool]] = [
    (("--config",), {"default": ""}, False),
    (("--model",), {"default": "hf"}, True),
    (("--tasks",), {"default": None}, True),
    (("--model_args",), {"default": ""}, True),
    (("--launcher_args",), {"default": None}, False),
    (("--num_fewshot",), {"type": int, "default": None}, True),
    (("--batch_size", "-b"), {"type": str, "default": "1"}, True),
    (("--max_batch_size",), {"type": int, "default": None}, True),
    (("--device",), {"type": str, "default": None}, True),
    (("--output_path",), {"type": str, "default": None}, True),
    (("--limit",), {"type": float, "default": None}, True),
    (("--offset",), {"type": int, "default": 0}, False),
    (("--use_cache", "-c"), {"type": str, "default": None}, False),
    (("--cache_requests",), {"type": str, "default": None, "choices": ["true", "refresh", "delete"]}, False),
    (("--check_integrity",), _STORE_TRUE, False),
    (("--write_out", "-w"), _STORE_TRUE, False),
    (("--log_samples",), _STORE_TRUE, True),
    (("--wandb_log_samples",), _STORE_TRUE, False),
    (("--swanlab_log_samples",), _STORE_TRUE, False),
    (("--log_samples_suffix",), {"type": str, "default": "model_outputs"}, False),
    (("--system_instruction",), {"type": str, "default": None}, True),
    (("--apply_chat_template",), _STORE_TRUE, True),
    (("--fewshot_as_multiturn",), _STORE_TRUE, True),
    (("--show_config",), _STORE_TRUE, False),
    (("--include_path",), {"type": str, "default": None}, True),
    (("--gen_kwargs",), {"default": ""}, True),
    (("--reasoning_tags",), {"type": str, "default": '[["<think>", "</think>"], ["<analysis>", "</analysis>"]]'},
     False),
    (("--verbosity",), {"type": str, "default": "INFO"}, True),
    (("--wandb_args",), {"default": ""}, False),
    (("--swanlab_args",), {"default": ""}, False),
    (("--timezone",), {"default": "Asia/Singapore"}, False),
    (("--hf_hub_log_args",), {"type": str, "default": ""}, False),
    (("--predict_only", "-x"), _STORE_TRUE, True),
    (("--seed",), {"type": _seed_list, "default": [0, 1234, 1234, 1234]}, True),
    (("--trust_remote_code",), _STORE_TRUE, False),
    (("--process_with_media",), _STORE_TRUE, False),
    (("--process-docs-parallel", "--process_docs_parallel"),
     {"dest": "process_docs_parallel", "type": _positive_int, "default": 4}, False),
    (("--agentic_trace_mode",), {"type": str, "default": "basic", "choices": ["basic", "full"]}, False),
    (("--force_simple",), _STORE_TRUE, False),
    (("--tui",), _STORE_TRUE, False),
    (("-n", "--repeats", "--num_samples"), {"dest": "repeats", "type": int, "default": 1}, False),
    (("--baseline",), {"type": str, "default": None}, False),
    (("--max_tokens",), {"type": int, "default": None}, False),
    (("--power-analysis",), _STORE_TRUE, False),
    (("--effect-size",), {"type": float, "default": 0.03}, False),
    (("--alpha",), {"type": float, "default": 0.05}, False),
    (("--power",), {"type": float, "default": 0.8}, False),
    (("--correlation",), {"type": float, "default": 0.5}, False),
    (("--std-a",), {"type": float, "default": None}, False),
    (("--std-b",), {"type": float, "default": None}, False),
]

#: lmms-nb's own spellings: exact matches only, so they never change how an lmms-eval abbreviation resolves
_OWN_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--output",), {"dest": "output_path", "type": str}),
    (("--model-args",), {"dest": "model_args"}),
    (("--batch-size",), {"dest": "batch_size", "type": str}),
    (("--no-resume",), {"action": "store_true", "default": False,
                        "help": "start a new run instead of resuming a matching one (lmms-nb only)"}),
    (("--retry-errors",), {"dest": "retry_errors", "action": "store_true", "default": True,
                           "help": "on a resumed run, ask again for the samples that failed (default; lmms-nb only)"}),
    (("--no-retry-errors",), {"dest": "retry_errors", "action": "store_false",
                              "help": "on a resumed run, keep the failed samples as they are (lmms-nb only)"}),
]

SUPPORTED: list[str] = [opts[0] for opts, _, ok in LMMS_EVAL_FLAGS if ok]
_LONG = [o for opts, _, _ in LMMS_EVAL_FLAGS for o in opts if o.startswith("--")]
_OWN = [o for opts, _ in _OWN_FLAGS for o in opts]


def _dest(opts: tuple[str, ...], kwargs: dict[str, Any]) -> str:
    return kwargs.get("dest") or next(o for o in opts if o.startswith("--"))[2:].replace("-", "_")


def build_eval_parser(prog: str = "lmms-nb eval") -> argparse.ArgumentParser:
    """lmms-eval's eval options (abbreviations are expanded beforehand by `parse_eval_argv`)."""
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False,
                                     description="Evaluate a model on tasks; accepts lmms-eval 0.7.3's flags.")
    for opts, kwargs, supported in LMMS_EVAL_FLAGS:
        help_text = "lmms-eval flag" if supported else "lmms-eval flag, not supported by lmms-nb"
        parser.add_argument(*opts, **kwargs, help=help_text)
    for opts, kwargs in _OWN_FLAGS:
        parser.add_argument(*opts, **{"default": argparse.SUPPRESS, **kwargs})
    return parser


def _expand(arg: str) -> str:
    """`--out=x` / `--out` -> the full lmms-eval option lmms-eval's parser would pick (or our exact spelling)."""
    if not arg.startswith("--") or arg == "--":
        return arg
    name, eq, value = arg.partition("=")
    if name in _LONG or name in _OWN or name == "--help":
        return arg
    matches = [o for o in _LONG if o.startswith(name)]
    if len(matches) == 1:
        return matches[0] + eq + value
    if len(matches) > 1:
        raise FlagError(f"ambiguous option: {name} could match {', '.join(matches)}")
    close = difflib.get_close_matches(name, _LONG + _OWN, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise FlagError(f"unknown flag {name}.{hint} `lmms-nb eval --help` lists the flags")


def parse_eval_argv(argv: Sequence[str], prog: str = "lmms-nb eval") -> argparse.Namespace:
    """Parse lmms-eval eval flags; raise `FlagError` for unknown, ambiguous or unsupported ones (see module)."""
    argv = list(argv)
    expanded, given = [], set()
    lookup = {o: _dest(opts, kw) for opts, kw, _ in LMMS_EVAL_FLAGS for o in opts}
    for i, arg in enumerate(argv):
        if arg == "--":  # everything after is positional (argparse rejects it: eval takes no positionals)
            expanded.extend(argv[i:])
            break
        if arg.startswith("--"):
            arg = _expand(arg)
            given.add(lookup.get(arg.partition("=")[0], ""))
        elif arg.startswith("-") and len(arg) >= 2 and arg[1] != "-" and not _is_number(arg):
            given.add(lookup.get(arg[:2], ""))
        expanded.append(arg)
    parser = build_eval_parser(prog)
    ns, unknown = parser.parse_known_args(expanded)
    if unknown:
        close = difflib.get_close_matches(unknown[0], _LONG + _OWN, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise FlagError(f"unrecognized argument(s): {' '.join(unknown)}.{hint}")
    refused = [opts[0] for opts, kw, ok in LMMS_EVAL_FLAGS if not ok and _dest(opts, kw) in given]
    if refused:
        raise FlagError(
            f"{', '.join(refused)}: lmms-eval flag(s) that lmms-nb does not support. Supported lmms-eval flags: "
            f"{' '.join(SUPPORTED)} (and lmms-nb's own --no-resume)")
    return ns


def _is_number(arg: str) -> bool:
    try:
        float(arg)
        return True
    except ValueError:
        return False


def parse_kv_string(text: str | None) -> dict[str, Any]:
    """lmms-eval's `k=v,k2=v2` (--model_args, --gen_kwargs): commas inside quotes or brackets do not split;
    "true"/"false" become bools, digit strings ints, other numbers floats (lmms-eval's handle_arg_string).

    >>> parse_kv_string('pretrained=a/b,max_pixels=12845056,use_cache=False,t=0.5,x={"a": 1, "b": 2}')
    {'pretrained': 'a/b', 'max_pixels': 12845056, 'use_cache': False, 't': 0.5, 'x': '{"a": 1, "b": 2}'}
    """
    out: dict[str, Any] = {}
    for part in _smart_comma_split((text or "").strip()):
        if "=" not in part:
            raise FlagError(f"expected key=value, got {part!r} in {text!r}")
        key, value = part.split("=", 1)
        out[key.strip()] = _convert(value.strip())
    return out


def _convert(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.isnumeric():
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


def _smart_comma_split(text: str) -> list[str]:
    parts, current, depth, quote = [], [], 0, None
    for i, ch in enumerate(text):
        if ch in "\"'" and (i == 0 or text[i - 1] != "\\"):
            quote = ch if quote is None else (None if ch == quote else quote)
        elif quote is None:
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
            elif ch == "," and depth == 0:
                if "".join(current).strip():
                    parts.append("".join(current).strip())
                current = []
                continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts
