"""One name per model, whatever tool wrote the log: `org/name`, `org__name`, a path, or a bare `name`.

lmms-eval names a model by the last two parts of its `pretrained` (folder `org__name`), lmms-nb by `org/name`,
VLMEvalKit by the bare name, and a local checkpoint may appear as a whole path. `unify_model_names` gives them
all lmms-eval's folder form, `org__name`; a bare name then joins the one `org__name` in the table that ends with
it (when exactly one does), so compare() lines up the runs of one model by several tools.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["Qwen/Qwen2-VL-2B", "Qwen__Qwen2-VL-2B", "Qwen2-VL-2B", "/ckpt/anchor/tiny/"]})
    >>> unify_model_names(df)["model"].to_list()
    ['Qwen__Qwen2-VL-2B', 'Qwen__Qwen2-VL-2B', 'Qwen__Qwen2-VL-2B', 'anchor__tiny']
"""

from __future__ import annotations

import polars as pl

from lmms_nb.logs._runinfo import model_from_model_args, sanitize

__all__ = ["canonical_model_name", "unify_model_names"]


def canonical_model_name(name: str | None) -> str | None:
    """`org/name`, a path or a Hugging Face cache folder -> `org__name` (lmms-eval's folder name)."""
    if name is None or not name.strip():
        return name
    name = name.strip()
    if "models--" in name:  # a Hugging Face cache folder names its model
        return model_from_model_args({"pretrained": name}) or sanitize(name)
    if "/" in name or "\\" in name:  # lmms-eval: the last two parts, sanitized
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..", "~")]
        return sanitize("/".join(parts[-2:])) if parts else name
    return name


def unify_model_names(df: pl.DataFrame) -> pl.DataFrame:
    """The `model` column in canonical form, bare names joined to their unique `org__name` (see the module)."""
    if "model" not in df.columns or df.height == 0:
        return df
    names = [n for n in df["model"].unique().to_list() if n is not None]
    canonical = {n: canonical_model_name(n) for n in names}
    qualified = {c for c in canonical.values() if c and "__" in c}
    for raw, c in canonical.items():
        if c and "__" not in c:
            owners = [q for q in qualified if q.rsplit("__", 1)[-1] == c]
            if len(owners) == 1:
                canonical[raw] = owners[0]
    if all(k == v for k, v in canonical.items()):
        return df
    return df.with_columns(pl.col("model").replace_strict(canonical, default=pl.col("model")))
