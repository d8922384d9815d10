"""Side-by-side error analysis of models: scores with bootstrap CIs, paired tests, slices, figures.

`compare(df)` takes the canonical sample table and returns a `Comparison`; `flips(df, run_a, run_b)` shows
what a new run (checkpoint) fixed and broke. The statistics helpers are public for reuse in reports.

Example:
    >>> import polars as pl
    >>> from lmms_nb.analysis import compare
    >>> df = pl.DataFrame({"model": ["A"] * 4 + ["B"] * 4, "task": ["t"] * 8,
    ...                    "doc_id": [0, 1, 2, 3] * 2, "acc": [1, 1, 1, 0, 0, 0, 0, 1]})
    >>> compare(df).pairwise["p_value"].to_list()
    [0.625]
"""

from lmms_nb.analysis._compare import compare
from lmms_nb.analysis._comparison import Comparison
from lmms_nb.analysis._flips import Flips, flips
from lmms_nb.analysis._slices import Slices, find_slices
from lmms_nb.analysis._prepare import CONTINUOUS_CORRECT_THRESHOLD, as_canonical, prepare
from lmms_nb.analysis._palette import (
    MODEL_PALETTE,
    PARTIAL_THRESHOLD,
    RIGHT_THRESHOLD,
    STATE_COLORS,
    STATE_ICONS,
    answer_state,
    model_colors,
)
from lmms_nb.analysis._figures import plotly_template
from lmms_nb.analysis._summary import Summary, chance_levels, format_p, summarize
from lmms_nb.analysis._stats import (
    binary_mean_ci,
    holm_adjust,
    mcnemar_exact,
    paired_binary_diff_ci,
    paired_t_pvalue,
    shared_bootstrap_ci,
    wilson_ci,
)

__all__ = [
    "CONTINUOUS_CORRECT_THRESHOLD",
    "MODEL_PALETTE",
    "PARTIAL_THRESHOLD",
    "RIGHT_THRESHOLD",
    "STATE_COLORS",
    "STATE_ICONS",
    "Summary",
    "answer_state",
    "chance_levels",
    "plotly_template",
    "format_p",
    "model_colors",
    "summarize",
    "wilson_ci",
    "Comparison",
    "Flips",
    "Slices",
    "as_canonical",
    "prepare",
    "binary_mean_ci",
    "compare",
    "find_slices",
    "flips",
    "holm_adjust",
    "mcnemar_exact",
    "paired_binary_diff_ci",
    "paired_t_pvalue",
    "shared_bootstrap_ci",
]
