"""`rescore(df, metric)`: recompute a metric from the predictions and targets already in a sample table.

An often-asked lmms-eval wish: change the scoring (ignore case, another metric, a fixed extraction rule)
without running the model again. `metric` is a name from `lmms_nb.metrics.METRICS` (exact_match, anls,
relaxed_accuracy, yes_no_accuracy, choice_accuracy) or any callable `(prediction, target, doc) -> float`;
keyword options go to the scorer (`ignore_case=True`...). The result is the table with the metric's column
added or replaced (Float64).

Targets stored as JSON lists (several acceptable answers) are given to the scorer as lists. Rows with an
`error` (the model or scorer failed there) get null, as when the run scored them.

Speed: exact_match (without `regexes_to_ignore`, whose Python regexes polars cannot run as written) and
yes_no_accuracy run as polars string expressions on the rows whose prediction and target are ASCII and plain
strings; other rows, other metrics and callables run the Python scorer row by row (ANLS's edit distance and
choice extraction's ordered regex rules have no vectorised equivalent). Both give identical values; a test
checks it on generated strings.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"prediction": ["Paris.", "london", "B"], "target": ["paris", "London", "A"]})
    >>> rescore(df, "exact_match")["exact_match"].to_list()
    [0.0, 0.0, 0.0]
    >>> rescore(df, "exact_match", ignore_case=True, ignore_punctuation=True)["exact_match"].to_list()
    [1.0, 1.0, 0.0]
    >>> rescore(df, lambda p, t, doc: float(len(p) == len(t)), name="same_length")["same_length"].to_list()
    [0.0, 1.0, 1.0]
"""

from __future__ import annotations

import json
import string
from typing import Any, Callable

import polars as pl

__all__ = ["rescore"]

Scorer = Callable[..., float]

# Python's str.strip() whitespace within ASCII (polars' strip_chars() default leaves \x1c-\x1f)
_ASCII_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_PUNCTUATION = list(string.punctuation)
_VECTORISED = ("exact_match", "yes_no_accuracy")


def _resolve(metric: str | Scorer, name: str | None) -> tuple[str, Scorer]:
    if callable(metric):
        column = name or getattr(metric, "__name__", None)
        if not column or column == "<lambda>":
            raise ValueError("rescore: give `name=` for the column of a lambda or unnamed scorer")
        return column, metric
    if not isinstance(metric, str):
        raise TypeError(f"rescore: metric must be a metric name or a callable, got {type(metric).__name__}")
    from lmms_nb.metrics import METRICS  # imported here: the logs layer must load without the metrics layer

    if metric not in METRICS:
        raise ValueError(f"rescore: unknown metric {metric!r} (expected one of {sorted(METRICS)} or a callable)")
    return name or metric, METRICS[metric]


def _decode_target(text: Any) -> Any:
    """A target stored as a JSON list (several acceptable answers) -> that list; anything else unchanged."""
    if isinstance(text, str) and text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, list):
            return value
    return text


def _is_ascii(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(r"^[\x00-\x7F]*$")


def _normalize_exact(expr: pl.Expr, *, ignore_case: bool, ignore_punctuation: bool, ignore_numbers: bool) -> pl.Expr:
    # the order of lmms_nb.metrics.exact_match (Hugging Face `evaluate`'s): case, punctuation, numbers, strip
    if ignore_case:
        expr = expr.str.to_lowercase()
    if ignore_punctuation:
        expr = expr.str.replace_many(_PUNCTUATION, [""] * len(_PUNCTUATION))
    if ignore_numbers:
        expr = expr.str.replace_all("[0-9]", "")
    return expr.str.strip_chars(_ASCII_WHITESPACE)


def _yes_no(expr: pl.Expr) -> pl.Expr:
    # lmms_nb.metrics.normalize_yes_no: lower, strip, drop dots; whole answer, one letter, then 4-char prefix
    text = expr.str.to_lowercase().str.strip_chars(_ASCII_WHITESPACE).str.replace_all(".", "", literal=True)
    prefix = text.str.slice(0, 4)
    return (
        pl.when(text.is_in(["yes", "no"])).then(text)
        .when(text.str.len_chars() == 1)
        .then(pl.when(text == "y").then(pl.lit("yes")).when(text == "n").then(pl.lit("no")).otherwise(pl.lit("other")))
        .when(prefix.str.contains("yes", literal=True)).then(pl.lit("yes"))
        .when(prefix.str.contains("no", literal=True)).then(pl.lit("no"))
        .otherwise(pl.lit("other"))
    )


def _vectorised(metric: str, prediction: pl.Expr, target: pl.Expr, options: dict[str, Any]) -> pl.Expr | None:
    """A polars expression equal to the Python scorer on ASCII plain-string rows, or None when there is none."""
    if metric == "exact_match":
        allowed = {"ignore_case", "ignore_punctuation", "ignore_numbers", "regexes_to_ignore"}
        if set(options) - allowed or options.get("regexes_to_ignore"):
            return None
        flags = {k: bool(options.get(k, False)) for k in ("ignore_case", "ignore_punctuation", "ignore_numbers")}
        pred = _normalize_exact(prediction.fill_null(""), **flags)
        gold = _normalize_exact(target.fill_null(""), **flags)
        return (pred == gold).cast(pl.Float64)
    if metric == "yes_no_accuracy" and not options:
        parsed = _yes_no(prediction.fill_null(""))
        return ((parsed != "other") & (parsed == _yes_no(target.fill_null("")))).cast(pl.Float64)
    return None


SCHEMES = ("vlmevalkit",)


def rescore(
    df: pl.DataFrame,
    metric: str | Scorer | None = None,
    *,
    scheme: str | None = None,
    name: str | None = None,
    prediction: str = "prediction",
    target: str = "target",
    **options: Any,
) -> pl.DataFrame:
    """`df` with the column `name` (default: the metric's name) recomputed from `prediction` and `target`.

    The scorer is called as `scorer(prediction, target, doc, **options)` where `doc` is the row as a dict (so a
    custom scorer can read `input`, `category` or any extra column).

    `scheme="vlmevalkit"` (instead of a metric) scores every row as VLMEvalKit's own evaluation scores its dataset
    (the row's `task`): `hit` for multiple choice, `score` for Yes/No and VQA-style sets; rows its rules cannot
    settle get null and `error` "needs an LLM judge: ..." (see `lmms_nb.logs._vlmevalkit_scheme`). With neither a
    metric nor a scheme, the rows read from VLMEvalKit files are rescored with that scheme (the others are left as
    they are).
    """
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"rescore: expected a polars DataFrame (the canonical sample table), got {type(df).__name__}")
    if scheme is not None or metric is None:
        if metric is not None:
            raise ValueError("rescore: give a metric or a scheme, not both")
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"rescore: unknown scheme {scheme!r} (expected one of {list(SCHEMES)})")
        from lmms_nb.logs._vlmevalkit_scheme import rescore_vlmevalkit

        rows = None
        if scheme is None:  # the default: VLMEvalKit's rules for the rows read from VLMEvalKit files
            if "source_format" not in df.columns or not (df["source_format"] == "vlmevalkit").any():
                raise ValueError(
                    "rescore: give a metric (a name from lmms_nb.metrics.METRICS or a callable) or "
                    "scheme='vlmevalkit'; only rows read from VLMEvalKit files have a default scheme")
            rows = df["source_format"] == "vlmevalkit"
        return rescore_vlmevalkit(df, prediction=prediction, target=target, rows=rows)
    missing = [c for c in (prediction, target) if c not in df.columns]
    if missing:
        raise ValueError(f"rescore: the table has no column {missing[0]!r} (columns: {df.columns})")
    column, scorer = _resolve(metric, name)

    values = pl.Series(column, [None] * df.height, dtype=pl.Float64)
    errors = df["error"].is_not_null() if "error" in df.columns else pl.Series([False] * df.height, dtype=pl.Boolean)
    pred, gold = pl.col(prediction).cast(pl.String), pl.col(target).cast(pl.String)
    fast = _vectorised(metric, pred, gold, options) if isinstance(metric, str) else None
    if fast is not None:
        # plain-string ASCII rows: polars; JSON-list targets and non-ASCII text (whose case mapping differs
        # between Python's and Rust's Unicode tables) go to the Python scorer below
        plain_gold = ~gold.fill_null("").str.starts_with("[")
        eligible = _is_ascii(pred.fill_null("")) & _is_ascii(gold.fill_null("")) & plain_gold
        frame = df.select(eligible.alias("eligible"), fast.alias("value"))
        done = frame["eligible"] & ~errors
        values = frame["value"].zip_with(done, values)
    else:
        done = pl.Series([False] * df.height, dtype=pl.Boolean)

    rows_to_score = ~done & ~errors
    if rows_to_score.any():
        subset = df.filter(rows_to_score)
        scored = [
            float(scorer(row[prediction], _decode_target(row[target]), row, **options))
            for row in subset.iter_rows(named=True)
        ]
        index = rows_to_score.arg_true()
        values = values.scatter(index, pl.Series(scored, dtype=pl.Float64))
    return df.with_columns(values.alias(column))
