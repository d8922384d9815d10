"""Property tests over generated malformed log files: strict reads return a canonical table or raise
LogFormatError (never anything else), lenient reads never raise, the two agree, and the polars fast path
reads every file it accepts exactly as the line-by-line reference does."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lmms_nb.logs import readers
from lmms_nb.logs._detect import discover, expand_results
from lmms_nb.logs._errors import LogFormatError, Problems
from lmms_nb.logs._samples import scan_fast
from lmms_nb.logs.readers import load_logs
from lmms_nb.logs.schema import FIXED_COLUMNS

FUZZ = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(string.ascii_lowercase, max_size=6), inner, max_size=3)),
    max_leaves=8,
)
texts = st.text(max_size=20)


@st.composite
def sample_lines(draw) -> list[dict]:
    """Valid lmms-eval lines of one consistent layout (the variants the readers support)."""
    n = draw(st.integers(1, 8))
    layout = draw(st.sampled_from(["list", "nested", "bare", "ours"]))
    metric_kind = draw(st.sampled_from(["float", "bool", "dict", "none"]))
    lines = []
    doc_ids = draw(st.permutations(list(range(n))))
    for doc_id in doc_ids:
        pred, raw = draw(texts), draw(texts)
        line: dict = {"doc_id": doc_id, "target": draw(st.one_of(texts, st.lists(texts, max_size=2), st.integers()))}
        if layout == "bare":
            line["filtered_resps"] = pred
            if draw(st.booleans()):
                line["resps"] = [raw]
        else:
            line["filtered_resps"] = [[pred]] if layout == "nested" else [pred]
            if draw(st.booleans()):
                line["resps"] = [[raw]]
        if metric_kind == "float":
            line["acc"] = draw(st.one_of(st.none(), st.floats(0, 1)))
        elif metric_kind == "bool":
            line["acc"] = draw(st.booleans())
        elif metric_kind == "dict":
            line["acc"] = {"question_id": draw(texts), "category": draw(st.sampled_from(["a", "b"])), "score": draw(st.floats(0, 1))}
        if draw(st.booleans()):
            line["token_counts"] = [{"output_tokens": draw(st.integers(0, 99)), "generation_seconds": draw(st.floats(0, 9))}]
        if draw(st.booleans()):
            line["input_media"] = [draw(st.sampled_from(
                ["img/a.png", "data:image/png;base64,AAAA", "x" * 600, "C:\\img\\a.png", 'q"uote\t.png', ""]))]
        line["input"] = draw(texts)
        if layout == "ours":
            line.update({"filter": "none", "run_id": "r1", "model": "m", "task": "t", "split": "test",
                         "category": draw(st.one_of(st.none(), texts)), "image_ref": None, "error": None,
                         "latency_s": draw(st.floats(0, 5)), "output_tokens": draw(st.integers(0, 50))})
        lines.append(line)
    return lines


def _object_or_none(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@st.composite
def malformed_files(draw) -> tuple[str, bytes]:
    """(file name, bytes): valid lines damaged in one or more of the ways real files get damaged."""
    lines = [json.dumps(x, ensure_ascii=draw(st.booleans())) for x in draw(sample_lines())]
    mutations = draw(st.lists(st.sampled_from([
        "truncate", "junk_bytes", "junk_line", "retype", "duplicate", "array_line", "nan", "blank_lines",
        "crlf", "bom", "deep", "empty", "no_final_newline", "drop_doc_id",
    ]), min_size=1, max_size=3))
    for mutation in mutations:
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        rec = _object_or_none(lines[i])
        if mutation == "retype" and rec:
            key = draw(st.sampled_from(sorted(rec)))
            rec[key] = draw(json_values)
            lines[i] = json.dumps(rec)
        elif mutation == "duplicate":
            lines.insert(i, lines[i])
        elif mutation == "junk_line":
            lines.insert(i, draw(st.text(max_size=30)).replace("\n", " "))
        elif mutation == "array_line":
            lines[i] = json.dumps(draw(st.lists(json_scalars, max_size=3)))
        elif mutation == "nan":
            lines[i] = lines[i].replace('"acc": 0', '"acc": NaN').replace('"doc_id": ', '"doc_id": ', 1) + ""
        elif mutation == "blank_lines":
            lines.insert(i, "   ")
        elif mutation == "deep":
            lines.insert(i, "[" * 5000 + "]" * 5000)
        elif mutation == "drop_doc_id" and rec:
            rec.pop("doc_id", None)
            lines[i] = json.dumps(rec)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if "crlf" in mutations:
        data = data.replace(b"\n", b"\r\n")
    if "bom" in mutations:
        data = b"\xef\xbb\xbf" + data
    if "junk_bytes" in mutations and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if "truncate" in mutations and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    if "no_final_newline" in mutations:
        data = data.rstrip(b"\r\n")
    if "empty" in mutations:
        data = b""
    ours = b'"run_id"' in data[:400]
    name = draw(st.sampled_from(["20250101_000000_samples_task.jsonl", "samples_task_2025-01-01T00-00-00.000001.jsonl"]))
    return ("ours:" if ours else "") + name, data


def _write(folder: Path, name: str, data: bytes) -> Path:
    ours = name.startswith("ours:")
    name = name.removeprefix("ours:")
    model_dir = folder / "org__model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if ours and not name.startswith("samples_"):
        (model_dir / "20250101_000000_results.json").write_text(json.dumps({"results": {}, "lmms_nb": {"run_id": "r1"}}))
    path = model_dir / name
    path.write_bytes(data)
    return path


def _check_canonical(df: pl.DataFrame) -> None:
    assert df.columns[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert all(df.schema[c] == t for c, t in FIXED_COLUMNS.items())
    assert df["doc_id"].null_count() == 0
    assert df.select(pl.struct("doc_id", "filter").is_duplicated().any()).item() is False


@FUZZ
@given(malformed_files())
def test_strict_raises_only_logformaterror_and_lenient_never_raises(file):
    name, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), name, data)
        df, errors = load_logs(path, strict=False)  # must not raise
        _check_canonical(df)
        assert all(isinstance(e, LogFormatError) for e in errors)
        assert all(e.path == str(path) for e in errors)
        assert all(str(e).startswith(f"{e.path}:{e.line}: " if e.line else f"{e.path}: ") for e in errors)
        hard = [e for e in errors if e.severity == "error"]
        try:
            strict = load_logs(path)
        except LogFormatError as e:
            assert hard, "strict raised where lenient saw no error"
            assert (e.path, e.line, e.problem) == (hard[0].path, hard[0].line, hard[0].problem)
        else:
            assert not hard
            assert_frame_equal(strict, df)


@FUZZ
@given(malformed_files())
def test_fast_path_equals_reference_reading_on_whatever_it_accepts(file):
    name, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), name, data)
        problems = Problems(strict=False)
        found = expand_results(discover(path, problems), problems)
        if not found:
            return
        context = readers._RunContext(problems)
        meta = context.meta(found[0])
        if scan_fast(meta) is None:
            return
        slow_problems, fast_problems = Problems(strict=False), Problems(strict=False)
        slow = readers._read_one(found[0], context, slow_problems, fast=False)
        fast = readers._read_one(found[0], context, fast_problems, fast=True)
        # clean or corrupted: the fast reader gives the reference's rows and reports the same problems (on a file
        # it cannot read exactly it must hand over to the reference, never return its own guess)
        assert_frame_equal(fast, slow)
        assert [str(e) for e in fast_problems.items] == [str(e) for e in slow_problems.items]


@FUZZ
@given(sample_lines())
def test_valid_generated_files_read_identically_both_ways(lines):
    with tempfile.TemporaryDirectory() as tmp:
        ours = "run_id" in lines[0]
        path = _write(Path(tmp), ("ours:" if ours else "") + "20250101_000000_samples_task.jsonl",
                      ("".join(json.dumps(x) + "\n" for x in lines)).encode())
        df = load_logs(path)
        _check_canonical(df)
        assert df.height == len(lines)
        assert set(df["source_format"]) == {"lmms_nb" if ours else "lmms_eval"}
        fast, slow = (readers._read_one(f, readers._RunContext(Problems(True)), Problems(True), fast=flag)
                      for f in [expand_results(discover(path, Problems(True)), Problems(True))[0]] for flag in (True, False))
        assert_frame_equal(fast, slow)
        by_id = {x["doc_id"]: x for x in lines}
        for doc_id, prediction in df.select("doc_id", "prediction").rows():
            fr = by_id[doc_id]["filtered_resps"]
            expected = fr if isinstance(fr, str) else (fr[0][0] if isinstance(fr[0], list) else fr[0])
            assert prediction == expected
