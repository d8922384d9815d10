"""One fixed colour (and a marker) per model, and the answer states with their icons: shared by every figure,
widget and report, so a model keeps its colour whatever else is selected.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), ordered so
the first ones also read on a dark background; past eight models Paul Tol's "muted" set continues. A model's
colour is fixed by its position in the *full* model list (`model_colors(all_models)`), never by the current
selection.

Example:
    >>> model_colors(["a", "b"])
    {'a': '#0072B2', 'b': '#E69F00'}
    >>> answer_state(0.5, binary=False), answer_state(1.0, binary=True), STATE_ICONS["partial"]
    ('partial', 'right', '◐')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lmms_nb.analysis._prepare import CONTINUOUS_CORRECT_THRESHOLD

__all__ = [
    "MODEL_PALETTE",
    "PARTIAL_THRESHOLD",
    "RIGHT_THRESHOLD",
    "STATE_COLORS",
    "STATE_ICONS",
    "answer_state",
    "model_colors",
]

#: Okabe-Ito (minus black, which vanishes on a dark theme) then Tol muted.
MODEL_PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
)  # fmt: skip

#: A continuous metric's value (ANLS, F1...) at or above which an answer is "right" / "partial".
RIGHT_THRESHOLD = 1.0
PARTIAL_THRESHOLD = CONTINUOUS_CORRECT_THRESHOLD

#: Answer states: colour-blind-safe colours (blue / orange / vermillion) plus an icon, never colour alone.
STATE_COLORS = {"right": "#0072B2", "partial": "#E69F00", "wrong": "#D55E00", "error": "#CC79A7",
                "unscored": "#999999", "absent": "#999999"}  # fmt: skip
STATE_ICONS = {"right": "✓", "partial": "◐", "wrong": "✗", "error": "⚠", "unscored": "?", "absent": "–"}


def model_colors(models: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """{model: colour}: `fixed` where it names the model, else by the model's position in `models`."""
    fixed = fixed or {}
    return {m: fixed.get(m) or MODEL_PALETTE[i % len(MODEL_PALETTE)] for i, m in enumerate(models)}


def answer_state(value: float | None, *, binary: bool) -> str:
    """"right", "partial" (continuous metrics only), "wrong", or "unscored" (no value)."""
    if value is None or value != value:  # None or NaN
        return "unscored"
    if binary:
        return "right" if value >= 1.0 else "wrong"
    if value >= RIGHT_THRESHOLD:
        return "right"
    return "partial" if value >= PARTIAL_THRESHOLD else "wrong"
