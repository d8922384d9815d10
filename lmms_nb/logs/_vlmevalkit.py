"""VLMEvalKit outputs: per-sample prediction tables and per-model score tables.

- Prediction files `<model>_<dataset>.xlsx|tsv|csv` (in `outputs/<model>/`, newer versions one folder deeper):
  one row per question with `index`, `question`, `answer`, `prediction`, often `category`, and, once judged,
  per-sample `hit`/`score` columns. They become canonical rows (source_format "vlmevalkit").
- Score tables `<model>_<dataset>_score.csv` (or `_acc.csv`): one row of aggregate numbers per model. They are
  not per-sample, so `load_logs` leaves them out and `load_scores` reads them (`_vlmevalkit_scores`).

Example:
    >>> split_model_dataset(Path("outputs/InternVL2-2B/InternVL2-2B_MME_score.csv"))
    ('InternVL2-2B', 'MME')
    >>> split_model_dataset(Path("preds/GPT4o_MMBench_DEV_EN.xlsx"))
    ('GPT4o', 'MMBench_DEV_EN')
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs.schema import FIXED_COLUMNS

TABLE_SUFFIXES = (".xlsx", ".tsv", ".csv")
#: Per-sample score columns VLMEvalKit (and its judges) write.
SCORE_COLUMNS = ("hit", "score", "correct", "match", "acc", "accuracy", "rating", "is_correct", "judge_score")
CATEGORY_COLUMNS = ("category", "l2-category", "l2_category", "type", "subtask", "task", "question_type")
_SCORE_TABLE = re.compile(r"_(score|acc|accuracy|prefetch|acc_all|rating)$", re.IGNORECASE)
#: Suffixes VLMEvalKit appends to a prediction file once a judge (an LLM, or its own rules) has scored it:
#: `_openai_result`, `_gpt4_result`, `_exact_matching_result` (multiple choice), `_auxmatch` (Yes/No),
#: `_gpt-4-turbo` / `_gpt4` / `_chatgpt-0125` (LLM-judged VQA), `_results` (VQA details).
_JUDGED = re.compile(
    r"_(?P<judge>auxmatch|results|exact_matching_result|[A-Za-z0-9.-]+_result|(?:gpt|chatgpt)[A-Za-z0-9.-]*)$",
    re.IGNORECASE,
)
_EXPECT_PRED = "a VLMEvalKit prediction table with `index` and `prediction` columns"


def is_score_table(path: Path) -> bool:
    """`<model>_<dataset>_score.csv`, `_acc.csv`, `_acc.json`, `_prefetch.xlsx`...: aggregate scores of a run."""
    return path.suffix.lower() in TABLE_SUFFIXES + (".json",) and bool(_SCORE_TABLE.search(path.stem))


def judge_of(path: Path) -> str | None:
    """The judge a judged prediction file names (`X_openai_result.xlsx` -> "openai"), or None for a plain one.

    >>> judge_of(Path("M_MMBench_DEV_EN_gpt4_result.xlsx")), judge_of(Path("M_MME_auxmatch.xlsx"))
    ('gpt4', 'auxmatch')
    """
    match = _JUDGED.search(path.stem)
    if not match:
        return None
    judge = match.group("judge")
    return judge[: -len("_result")] if judge.lower().endswith("_result") else judge


def judged_base(path: Path, siblings: set[Path]) -> Path | None:
    """The prediction file that `path` is a judged copy of: a sibling table whose stem `path`'s stem extends."""
    stem = path.stem
    best = None
    for other in siblings:
        if other == path or other.parent != path.parent or not stem.startswith(other.stem + "_"):
            continue
        if not _JUDGED.fullmatch(stem[len(other.stem):]):
            continue  # `M_MMBench_DEV_EN_V11` is another dataset, not a judged `M_MMBench_DEV_EN`
        if best is None or len(other.stem) > len(best.stem):
            best = other
    return best


def split_model_dataset(path: Path) -> tuple[str, str]:
    """(model, dataset) from `<model>_<dataset>[_judged suffix][_score]`; the enclosing folder names the model."""
    stem = _SCORE_TABLE.sub("", path.stem)
    stem = _JUDGED.sub("", stem)
    for folder in path.parents:
        name = folder.name
        if name and stem.startswith(name + "_") and len(stem) > len(name) + 1:
            return name, stem[len(name) + 1 :]
    model, _, dataset = stem.partition("_")
    return model, dataset or stem


def read_table(path: Path, *, header_only: bool = False) -> pl.DataFrame:
    """A CSV/TSV/XLSX table with every column as text (raises on unreadable input)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        frame = pl.read_excel(path, engine="openpyxl", infer_schema_length=0, raise_if_empty=False)
        return frame.head(0) if header_only else frame
    return pl.read_csv(
        path,
        separator="\t" if suffix == ".tsv" else ",",
        infer_schema=False,
        n_rows=0 if header_only else None,
        truncate_ragged_lines=False,
        encoding="utf8",
    )


def looks_like_predictions(columns: list[str]) -> bool:
    lowered = {c.lower() for c in columns}
    return "prediction" in lowered and "index" in lowered


def _text(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String) if name in frame.columns else pl.lit(None, pl.String)


def _prediction_rows(path: Path, problems: Problems) -> pl.DataFrame | None:
    """The rows of a prediction table with lower-case column names, `__row` (its line) and an integer `__doc_id`;
    bad and duplicate indexes are reported and dropped. None (after reporting) when it is not a prediction table."""
    try:
        frame = read_table(path)
    except Exception as e:  # noqa: BLE001 - any parser failure is this file's format error
        problems.error(path, None, f"cannot read the table ({type(e).__name__}: {str(e)[:200]})", _EXPECT_PRED)
        return None
    lowered = [c.strip().lower() for c in frame.columns]
    if len(set(lowered)) == len(lowered):  # VLMEvalKit writes lower-case names; accept "Prediction" too
        frame.columns = lowered
    if frame.height == 0:
        problems.error(path, None, "empty table", _EXPECT_PRED)
        return None
    if not looks_like_predictions(frame.columns):
        problems.error(path, None, f"columns {frame.columns[:12]}", _EXPECT_PRED)
        return None
    # row r of the data is line r + 2 of a CSV/TSV (after the header) and row r + 2 of a spreadsheet
    frame = frame.with_row_index("__row", offset=2)
    doc_id = pl.col("index").cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)
    frame = frame.with_columns(doc_id.alias("__doc_id"))
    bad = frame.filter(pl.col("__doc_id").is_null())
    keep = frame.filter(pl.col("__doc_id").is_not_null())
    for row, value in bad.select("__row", "index").iter_rows():
        problems.error(path, row, f"index is {value!r}", "an integer index")
    first = pl.col("__row") > pl.col("__row").min().over("__doc_id")
    duplicated = keep.filter(pl.col("__doc_id").is_duplicated() & first)
    for row, value in duplicated.select("__row", "index").iter_rows():
        problems.error(path, row, f"duplicate index {value}", "one row per index")
    return keep.filter(~pl.col("__row").is_in(duplicated["__row"].to_list()))


def _verdict_exprs(frame: pl.DataFrame) -> list[pl.Expr]:
    exprs = []
    for name in SCORE_COLUMNS:
        if name in frame.columns:
            text = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
            value = (
                pl.when(text.is_in(["true", "yes"])).then(1.0)
                .when(text.is_in(["false", "no"])).then(0.0)
                .otherwise(text.cast(pl.Float64, strict=False))
            )
            exprs.append(value.alias(name))
    return exprs


def _judge_rank(path: Path) -> tuple[int, str]:
    # an LLM judge's verdicts take the plain column names before VLMEvalKit's own rules' (exact matching)
    judge = (judge_of(path) or "").lower()
    return (2 if judge in ("results", "auxmatch") else 1 if judge == "exact_matching" else 0, path.name)


def read_predictions(path: Path, problems: Problems, judged: tuple[Path, ...] = ()) -> pl.DataFrame | None:
    """Canonical rows of a prediction table, with the verdicts of its judged copies (`judged`) merged in.

    Each judged file adds its per-sample verdict columns (`hit`, `score`, ...); where two judges give the same
    column, the later one goes in as `<column>.<judge>` with a warning. `judge` names the judge of the plain
    verdict columns of each row ("openai", "gpt4", "exact_matching", "auxmatch"...).
    """
    keep = _prediction_rows(path, problems)
    if keep is None:
        return None
    model, dataset = split_model_dataset(path)
    category = next((c for c in CATEGORY_COLUMNS if c in keep.columns), None)
    image = None
    if "image_path" in keep.columns:
        image = pl.format("file:{}", pl.col("image_path").cast(pl.String))
    elif "image" in keep.columns:  # base64 in the TSV: point at it, never copy it
        image = pl.when(pl.col("image").is_not_null()).then(pl.format("b64:{}#{}", pl.lit(str(path)), pl.col("__row")))
    own_verdicts = _verdict_exprs(keep)
    own_judge = judge_of(path) if own_verdicts else None
    columns = {
        "run_id": pl.lit(f"{path.parent.name}/{path.stem}"),
        "model": pl.lit(model),
        "task": pl.lit(dataset),
        "doc_id": pl.col("__doc_id"),
        "filter": pl.lit("none"),
        "split": _text(keep, "split"),
        "input": _text(keep, "question"),
        "target": _text(keep, "answer"),
        "prediction": _text(keep, "prediction"),
        "raw_response": _text(keep, "prediction"),
        "category": _text(keep, category) if category else pl.lit(None, pl.String),
        "image_ref": image if image is not None else pl.lit(None, pl.String),
        "judge": pl.lit(own_judge, pl.String),
        "source_format": pl.lit("vlmevalkit"),
        "source_file": pl.lit(str(path)),
    }
    exprs = [columns[name].cast(dtype).alias(name) if name in columns else pl.lit(None, dtype).alias(name)
             for name, dtype in FIXED_COLUMNS.items()]
    out = keep.select(exprs + own_verdicts).sort("doc_id", maintain_order=True)
    for judged_path in sorted(judged, key=_judge_rank):
        out = _merge_judged(out, judged_path, problems)
    return out


def _merge_judged(out: pl.DataFrame, path: Path, problems: Problems) -> pl.DataFrame:
    judge = judge_of(path) or path.stem
    if judge == "exact_matching" and "judge" in out.columns and out["judge"].is_not_null().any():
        problems.warning(path, None, "VLMEvalKit's exact matching verdicts set aside: an LLM judge's verdicts of the "
                         "same run are merged (rescore(df, scheme='vlmevalkit') recomputes the exact matching ones)",
                         "one judge per run")
        return out
    rows = _prediction_rows(path, problems)
    if rows is None:
        return out
    verdicts = rows.select(pl.col("__doc_id").alias("doc_id"), *_verdict_exprs(rows))
    if verdicts.width == 1:
        return out  # a details file without per-sample verdicts (VQA `_results`)
    renames = {}
    for name in verdicts.columns[1:]:
        if name in out.columns:
            renames[name] = f"{name}.{judge}"
            problems.warning(path, None, f"verdict column {name!r} is already given by another judge; "
                             f"kept as {renames[name]!r}", "one judge per verdict column")
    verdicts = verdicts.rename(renames)
    plain = [c for c in verdicts.columns[1:] if c not in renames.values()]
    out = out.join(verdicts, on="doc_id", how="left")
    if plain:
        judged_rows = pl.any_horizontal(pl.col(c).is_not_null() for c in plain)
        out = out.with_columns(pl.when(judged_rows & pl.col("judge").is_null()).then(pl.lit(judge))
                               .otherwise(pl.col("judge")).alias("judge"))
    return out


_EXTRAS_CACHE: dict[tuple[str, int, int], dict[int, dict[str, object]]] = {}


def prediction_extras(source_file: str) -> dict[int, dict[str, object]]:
    """{index: {"choices": {"A": text, ...}, "g_index": int}} of a VLMEvalKit prediction table: what its rules need
    and the canonical table does not hold. Cached per file (path, size, modification time)."""
    path = Path(source_file)
    try:
        stat = path.stat()
    except OSError as e:
        raise FileNotFoundError(
            f"{source_file}: the VLMEvalKit file these rows were read from is gone ({e.strerror}); "
            "rescoring multiple choice needs its option columns A, B, ..."
        ) from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _EXTRAS_CACHE:
        frame = read_table(path)
        letters = [c for c in frame.columns if len(c) == 1 and c in string.ascii_uppercase]
        lower = {c.lower(): c for c in frame.columns}
        extras: dict[int, dict[str, object]] = {}
        for rec in frame.iter_rows(named=True):
            try:
                index = int(float(str(rec[lower["index"]]).strip()))
            except (KeyError, ValueError):
                continue
            choices = {c: rec[c] for c in sorted(letters) if rec[c] is not None and str(rec[c]) != ""}
            g_index = rec.get(lower.get("g_index", ""))
            try:
                group = int(float(g_index)) if g_index not in (None, "") else int(index % 1_000_000)
            except ValueError:
                group = int(index % 1_000_000)
            extras[index] = {"choices": choices, "g_index": group}
        if len(_EXTRAS_CACHE) > 64:
            _EXTRAS_CACHE.clear()
        _EXTRAS_CACHE[key] = extras
    return _EXTRAS_CACHE[key]
