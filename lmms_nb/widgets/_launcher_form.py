"""`EvalLauncher`'s form of a registered model's arguments: one field per argument, its help beside it.

A field shows the argument's default (a checkbox, a number, or text: JSON for lists and mappings) with required
arguments marked * and a "required" hint; an argument that takes a Python object gets a note instead of a field
(only code can pass it). What the fields hold becomes the model's arguments in `lmms_nb.models.arguments`'s
`form_model_args`.

Example:
    >>> from lmms_nb.models.arguments import ModelArgument
    >>> field, row = argument_row(ModelArgument("pretrained", True, None, "str", "a hub id or a local folder"))
    >>> field.description, field.placeholder, row.children[1].value
    ('pretrained *', 'required', '<small style="color:var(--jp-ui-font-color2,#666)">a hub id or a local folder</small>')
    >>> argument_row(ModelArgument("fn", True, None, "python", ""))[0] is None
    True
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets

from lmms_nb.widgets._html import esc

__all__ = ["argument_row"]


def argument_row(a: Any) -> tuple[widgets.Widget | None, widgets.Widget]:
    """(the field of argument `a`, a `ModelArgument`, or None for a Python object; the row that shows it)."""
    label = f"{a.name} *" if a.required else a.name
    style = {"description_width": "160px"}
    layout = widgets.Layout(width="460px")
    if a.kind == "python":
        return None, widgets.HTML(f"<small><b>{esc(a.name)}</b>: a Python object; build this model in code "
                                  "and pass it in <code>models=[...]</code></small>")
    if a.kind == "bool":
        w: widgets.Widget = widgets.Checkbox(value=bool(a.default), description=label, indent=False,
                                             layout=widgets.Layout(width="460px"))
    elif a.kind == "int" and a.default is not None:
        w = widgets.IntText(value=a.default, description=label, style=style, layout=layout)
    elif a.kind == "float" and a.default is not None:
        w = widgets.FloatText(value=a.default, description=label, style=style, layout=layout)
    else:
        value = "" if a.default is None else (json.dumps(a.default) if a.kind == "json" else str(a.default))
        hint = "required" if a.required else ("default: none" if a.default is None else "")
        w = widgets.Text(value=value, placeholder=hint + (" (JSON)" if a.kind == "json" else ""),
                         description=label, style=style, layout=layout)
    w.add_class(f"lmms-nb-arg-{a.name}")
    return w, widgets.HBox([w, widgets.HTML(f'<small style="color:var(--jp-ui-font-color2,#666)">'
                                            f"{esc(a.help[:160])}</small>")])
