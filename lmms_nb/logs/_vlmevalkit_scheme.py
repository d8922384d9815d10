"""`rescore(df, scheme="vlmevalkit")`: score each row the way VLMEvalKit's own evaluation scores its dataset.

The dataset is the row's `task` (VLMEvalKit's dataset name), and the rule is chosen as VLMEvalKit chooses it:
- multiple choice (the prediction file has option columns A, B, ...): option letter or option text
  (`can_infer`), MMMU's open questions turned into two options (the answer vs "Other Answers"), and circular
  evaluation for MMBench / CCBench / `*circular*` sets (a question counts once, right only when every rotation
  is): column `hit`;
- Yes/No sets (MME, HallusionBench, POPE, AMBER, ... or answers that are all Yes/No): `score`;
- OCRBench, MTVQA, and VQA accuracy (TextVQA, the default), ANLS (DocVQA, InfoVQA), relaxed accuracy (ChartQA),
  exact accuracy (OCRVQA, GQA): `score`.

A row the rules cannot settle (no option found, both or neither of yes/no, a dataset VLMEvalKit scores only with
an LLM judge) gets a null score and `error` = "needs an LLM judge: ..."; where an LLM judge's verdict is already
in the column (a merged `*_openai_result.xlsx`), that verdict is kept. VLMEvalKit's `exact_matching` mode counts
such rows as 0: `df["hit"].fill_null(0).mean()` is its number.

Option texts are not part of the canonical table: they are read again from each row's VLMEvalKit source file.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import polars as pl

from lmms_nb.logs._vlmevalkit_rules import (
    match_option,
    mtvqa_hit,
    ocrbench_hit,
    vqa_match,
    yes_or_no,
)

__all__ = ["rescore_vlmevalkit", "score_vlmevalkit", "dataset_rule"]

_YES_NO_SETS = ("MME", "Hallusion", "POPE", "AMBER", "VSR-zeroshot", "MMVP_YORN", "Q-Bench-YORN", "A-Bench-YORN")
_JUDGE_ONLY = ("MathVista", "MMVet", "LLaVABench", "MathVerse", "MathVision", "DynaMath", "LogicVista", "MMDU",
               "WildVision", "MIA-Bench", "CreationMMBench", "MMAlignBench", "VDC", "MMBench-Video", "Video-MME")


def _listinstr(words: tuple[str, ...], text: str) -> bool:
    return any(w in text for w in words)


def dataset_rule(dataset: str, *, has_options: bool, targets: list[str]) -> str:
    """Which VLMEvalKit rule scores `dataset`: mcq, mcq_circular, yes_no, ocrbench, mtvqa, vqa:<method>, or judge.

    >>> dataset_rule("MMBench_DEV_EN", has_options=True, targets=["A"])
    'mcq_circular'
    >>> dataset_rule("DocVQA_VAL", has_options=False, targets=["x"])
    'vqa:anls'
    """
    if has_options:
        circular = _listinstr(("mmbench", "ccbench", "circular", "mmcr"), dataset.lower())
        return "mcq_circular" if circular else "mcq"
    if "OCRBench" in dataset and "v2" not in dataset.lower():
        return "ocrbench"
    if "MTVQA" in dataset:
        return "mtvqa"
    if _listinstr(_JUDGE_ONLY, dataset):
        return "judge"
    if _listinstr(_YES_NO_SETS, dataset) or (targets and all(t in ("Yes", "No") for t in targets)):
        return "yes_no"
    if "TextVQA" in dataset:
        return "vqa:vqa_score"
    if "ChartQA" in dataset:
        return "vqa:relaxed_accuracy"
    if _listinstr(("OCRVQA", "GQA"), dataset):
        return "vqa:accuracy"
    if _listinstr(("DocVQA", "InfoVQA"), dataset):
        return "vqa:anls"
    return "vqa:vqa_score"  # VLMEvalKit's default for an ImageVQADataset


def _mmmu_choices(choices: dict[str, str], target: str) -> tuple[dict[str, str], str]:
    # vlmeval multiple_choice.MMMU_preproc and mcq_vanilla_eval's answer map
    if "A" not in choices:
        choices = {"A": target, "B": "Other Answers"}
    gold = target if re.fullmatch(r"[A-Z]", target or "") else "A"
    return choices, gold


def _mcq_row(row: dict[str, Any], choices: dict[str, str], dataset: str) -> tuple[float | None, str | None]:
    target = row["target"] if row["target"] is not None else ""
    if "MMMU" in dataset:
        choices, target = _mmmu_choices(choices, target)
    letter = match_option(row["prediction"], choices)
    if letter is None:
        return None, "needs an LLM judge: no option could be read from the prediction (VLMEvalKit can_infer)"
    return float(letter == target), None


def _row_scorer(rule: str) -> Callable[[dict[str, Any]], tuple[float | None, str | None]]:
    if rule == "yes_no":
        def score(row: dict[str, Any]) -> tuple[float | None, str | None]:
            said = yes_or_no(row["prediction"])
            if said is None:
                return None, "needs an LLM judge: the answer says both or neither of yes and no (VLMEvalKit YOrN)"
            target = row["target"] or ""
            if "AMBER" in (row["task"] or ""):
                return float(said.lower() == target.lower()), None
            return float(said == target), None
        return score
    if rule == "ocrbench":
        return lambda row: (ocrbench_hit(row["prediction"], row["target"], row["category"]), None)
    if rule == "mtvqa":
        return lambda row: (mtvqa_hit(row["prediction"], row["target"]), None)
    if rule.startswith("vqa:"):
        method = rule.split(":", 1)[1]
        return lambda row: (vqa_match(row["prediction"], row["target"], method=method), None)
    return lambda row: (None, f"needs an LLM judge: VLMEvalKit scores {row['task']} with one")


def score_vlmevalkit(df: pl.DataFrame, options: Callable[[str], dict[int, dict[str, Any]]]) -> pl.DataFrame:
    """`df` with `hit` (multiple choice) and `score` (the others) recomputed by VLMEvalKit's rules.

    `options(source_file)` returns {doc_id: {"choices": {"A": ...}, "g_index": int}} for a VLMEvalKit file.
    """
    rows = df.select(
        pl.int_range(pl.len()).alias("_i"), "task", "doc_id", "target", "prediction", "category", "source_file",
        "source_format",
    ).to_dicts()
    hit: list[float | None] = [None] * df.height
    score: list[float | None] = [None] * df.height
    reason: list[str | None] = [None] * df.height
    tasks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        extra = {}
        if row["source_format"] == "vlmevalkit" and row["source_file"]:
            extra = options(row["source_file"]).get(row["doc_id"], {})
        row["choices"] = extra.get("choices") or {}
        row["g_index"] = extra.get("g_index", row["doc_id"])
        tasks.setdefault(row["task"] or "", []).append(row)

    rules_used: set[str] = set()
    for dataset, task_rows in tasks.items():
        rule = dataset_rule(dataset, has_options=any(r["choices"] for r in task_rows),
                            targets=[r["target"] for r in task_rows if r["target"] is not None])
        rules_used.add(rule)
        if rule.startswith("mcq"):
            verdicts = {r["_i"]: _mcq_row(r, r["choices"], dataset) for r in task_rows}
            if rule == "mcq_circular":
                verdicts = _circular(task_rows, verdicts)
            for i, (value, why) in verdicts.items():
                hit[i], reason[i] = value, why
        else:
            scorer = _row_scorer(rule)
            for r in task_rows:
                score[r["_i"]], reason[r["_i"]] = scorer(r)

    out = df
    kept = pl.Series([False] * df.height, dtype=pl.Boolean)
    if any(r.startswith("mcq") for r in rules_used):
        out, kept_hit = _merge_column(out, "hit", pl.Series("hit", hit, dtype=pl.Float64), reason)
        kept = kept | kept_hit
    if any(not r.startswith("mcq") for r in rules_used):
        out, kept_score = _merge_column(out, "score", pl.Series("score", score, dtype=pl.Float64), reason)
        kept = kept | kept_score
    error = out["error"] if "error" in out.columns else pl.Series("error", [None] * out.height, dtype=pl.String)
    mine = pl.Series("_reason", reason, dtype=pl.String)
    needs = mine.is_not_null() & ~kept
    return out.with_columns(pl.when(error.is_null() & needs).then(mine).otherwise(error).alias("error"))


#: Judged files whose verdicts are VLMEvalKit's rules again (their unsettled rows hold 0, not a judgement):
#: `_exact_matching_result`, and `_auxmatch`, which does not say whether an LLM settled a row.
RULE_JUDGES = ("exact_matching", "auxmatch", "results")


def _judged(df: pl.DataFrame) -> pl.Series:
    """Rows whose verdict came from an LLM judge (kept where the rules cannot settle the row)."""
    if "judge" not in df.columns:
        return pl.Series([False] * df.height, dtype=pl.Boolean)
    return df["judge"].is_not_null() & ~df["judge"].is_in(list(RULE_JUDGES))


def _merge_column(
    df: pl.DataFrame, name: str, new: pl.Series, reason: list[str | None]
) -> tuple[pl.DataFrame, pl.Series]:
    """Set `name` to the rules' values; where the rules could not settle a row, an LLM judge's verdict already
    there stays. Returns the table and which rows kept a judge's verdict."""
    kept = pl.Series([False] * df.height, dtype=pl.Boolean)
    if name in df.columns:
        old = df[name].cast(pl.Float64, strict=False)
        unsettled = pl.Series([r is not None for r in reason], dtype=pl.Boolean) & _judged(df)
        kept = unsettled & old.is_not_null()
        new = old.zip_with(kept, new)
    return df.with_columns(new.alias(name)), kept


def _circular(rows: list[dict[str, Any]], verdicts: dict[int, tuple[float | None, str | None]]):
    """VLMEvalKit's circular evaluation: one verdict per question group (`g_index`), put on its main row."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["g_index"], []).append(r)
    out: dict[int, tuple[float | None, str | None]] = {}
    for g_index, members in groups.items():
        values = [verdicts[m["_i"]][0] for m in members]
        if any(v == 0.0 for v in values):
            group = (0.0, None)  # a settled wrong rotation fails the group (prefetch_circular_group)
        elif all(v == 1.0 for v in values):
            group = (1.0, None)
        else:
            group = (None, "needs an LLM judge: a rotation of this circular question has no readable option")
        for m in members:
            main = m["doc_id"] == g_index
            out[m["_i"]] = group if main else (None, f"circular rotation of question {g_index}: scored on that row")
    return out


def rescore_vlmevalkit(
    df: pl.DataFrame, *, prediction: str = "prediction", target: str = "target", rows: pl.Series | None = None
) -> pl.DataFrame:
    """`rescore(df, scheme="vlmevalkit")`: `df` with `hit` / `score` / `error` set by VLMEvalKit's rules on `rows`
    (a boolean mask; all rows when None), the other rows unchanged."""
    from lmms_nb.logs._vlmevalkit import prediction_extras
    from lmms_nb.logs.schema import FIXED_COLUMNS

    absent = [c for c in ("task", "doc_id", prediction, target) if c not in df.columns]
    if absent:
        raise ValueError(f"rescore: the table has no column {absent[0]!r} (columns: {df.columns})")
    frame = df.drop([c for c in ("prediction", "target") if c in df.columns and c not in (prediction, target)])
    frame = frame.rename({prediction: "prediction", target: "target"})
    for column in ("category", "source_file", "source_format", "error", "judge"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, FIXED_COLUMNS[column]).alias(column))
    if rows is not None:
        frame = frame.with_columns(source_format=pl.when(rows).then(pl.col("source_format")))  # no extras elsewhere
    scored = score_vlmevalkit(frame, prediction_extras)
    updates = []
    for name in ("hit", "score", "error"):
        if name not in scored.columns:
            continue
        new = scored[name]
        if rows is not None:
            old = df[name] if name in df.columns else pl.Series(name, [None] * df.height, dtype=new.dtype)
            new = new.zip_with(rows, old.cast(new.dtype, strict=False))
        updates.append(new.alias(name))
    return df.with_columns(updates)
