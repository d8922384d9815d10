"""VLMEvalKit outputs: per-sample prediction tables and per-model score tables.

- Prediction files `<model>_<dataset>.xlsx|tsv|csv` (in `outputs/<model>/`, newer versions one folder deeper):
  one row per question with `index`, `question`, `answer`, `prediction`, often `category`, and, once judged,
  per-sample `hit`/`score` columns. They become canonical rows (source_format "vlmevalkit").
- Score tables `<model>_<dataset>_score.csv` (or `_acc.csv`): one row of aggregate numbers per model. They are
  not per-sample, so `load_logs` leaves them out and `load_scores` reads them (source_format "vlmevalkit_score").

Example:
    >>> split_model_dataset(Path("outputs/InternVL2-2B/InternVL2-2B_MME_score.csv"))
    ('InternVL2-2B', 'MME')
    >>> split_model_dataset(Path("preds/GPT4o_MMBench_DEV_EN.xlsx"))
    ('GPT4o', 'MMBench_DEV_EN')
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from lmms_nb.logs._errors import Problems
from lmms_nb.logs.schema import FIXED_COLUMNS

TABLE_SUFFIXES = (".xlsx", ".tsv", ".csv")
#: Per-sample score columns VLMEvalKit (and its judges) write.
SCORE_COLUMNS = ("hit", "score", "correct", "match", "acc", "accuracy", "rating", "is_correct", "judge_score")
CATEGORY_COLUMNS = ("category", "l2-category", "l2_category", "type", "subtask", "task", "question_type")
_SCORE_TABLE = re.compile(r"_(score|acc|accuracy)$", re.IGNORECASE)
# suffixes VLMEvalKit appends to a prediction file once a judge has scored it
_JUDGED = re.compile(r"_(?:auxmatch|exact_matching_result|openai_result|(?:gpt|chatgpt)[\w.-]*_result|result)$")
_EXPECT_PRED = "a VLMEvalKit prediction table with `index` and `prediction` columns"


def is_score_table(path: Path) -> bool:
    return path.suffix.lower() in TABLE_SUFFIXES and bool(_SCORE_TABLE.search(path.stem))


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


def read_predictions(path: Path, problems: Problems) -> pl.DataFrame | None:
    """Canonical rows of a prediction table; None (after reporting) when it is not one."""
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
    model, dataset = split_model_dataset(path)
    # row r of the data is line r + 2 of a CSV/TSV (after the header) and row r + 2 of a spreadsheet
    frame = frame.with_row_index("__row", offset=2)
    doc_id = pl.col("index").cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)
    bad = frame.filter(doc_id.is_null())
    keep = frame.filter(doc_id.is_not_null())
    for row, value in bad.select("__row", "index").iter_rows():
        problems.error(path, row, f"index is {value!r}", "an integer index")
    duplicated = keep.filter(doc_id.is_duplicated() & (pl.col("__row") > pl.col("__row").min().over(doc_id)))
    for row, value in duplicated.select("__row", "index").iter_rows():
        problems.error(path, row, f"duplicate index {value}", "one row per index")
    keep = keep.filter(~pl.col("__row").is_in(duplicated["__row"].to_list()))

    category = next((c for c in CATEGORY_COLUMNS if c in keep.columns), None)
    image = None
    if "image_path" in keep.columns:
        image = pl.format("file:{}", pl.col("image_path").cast(pl.String))
    elif "image" in keep.columns:  # base64 in the TSV: point at it, never copy it
        image = pl.when(pl.col("image").is_not_null()).then(pl.format("b64:{}#{}", pl.lit(str(path)), pl.col("__row")))
    columns = {
        "run_id": pl.lit(f"{path.parent.name}/{path.stem}"),
        "model": pl.lit(model),
        "task": pl.lit(dataset),
        "doc_id": doc_id,
        "filter": pl.lit("none"),
        "split": _text(keep, "split"),
        "input": _text(keep, "question"),
        "target": _text(keep, "answer"),
        "prediction": _text(keep, "prediction"),
        "raw_response": _text(keep, "prediction"),
        "category": _text(keep, category) if category else pl.lit(None, pl.String),
        "image_ref": image if image is not None else pl.lit(None, pl.String),
        "source_format": pl.lit("vlmevalkit"),
        "source_file": pl.lit(str(path)),
    }
    exprs = [columns[name].cast(dtype).alias(name) if name in columns else pl.lit(None, dtype).alias(name)
             for name, dtype in FIXED_COLUMNS.items()]
    for name in SCORE_COLUMNS:
        if name in keep.columns:
            text = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
            value = (
                pl.when(text.is_in(["true", "yes"])).then(1.0)
                .when(text.is_in(["false", "no"])).then(0.0)
                .otherwise(text.cast(pl.Float64, strict=False))
            )
            exprs.append(value.alias(name))
    return keep.select(exprs).sort("doc_id", maintain_order=True)


def read_score_table(path: Path, problems: Problems) -> pl.DataFrame | None:
    """Long rows (model, task, metric, value) of a per-model score table."""
    expected = "a VLMEvalKit score table (a header row and rows of numbers)"
    try:
        frame = read_table(path)
    except Exception as e:  # noqa: BLE001
        problems.error(path, None, f"cannot read the table ({type(e).__name__}: {str(e)[:200]})", expected)
        return None
    if frame.height == 0:
        problems.error(path, None, "empty table", expected)
        return None
    model, dataset = split_model_dataset(path)
    rows = []
    # tables with a `split` column (MMBench-style) have one row per split; others have one row
    split_col = next((c for c in frame.columns if c.lower() == "split"), None)
    for r, record in enumerate(frame.iter_rows(named=True), start=2):
        split = record.get(split_col) if split_col else None
        for metric, text in record.items():
            if metric == split_col or text is None:
                continue
            try:
                value = float(str(text).strip())
            except ValueError:
                continue  # a label column, not a score
            name = metric if split is None else f"{metric}/{split}"
            rows.append((model, dataset, name, value, r))
    if not rows:
        problems.error(path, None, "no numeric cell", expected)
        return None
    return pl.DataFrame(
        rows, schema={"model": pl.String, "task": pl.String, "metric": pl.String, "value": pl.Float64, "row": pl.Int64},
        orient="row",
    ).drop("row")
