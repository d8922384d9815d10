"""The public surface: every name in `lmms_nb.__all__` resolves, and `import lmms_nb` stays light."""

from __future__ import annotations

import subprocess
import sys

import lmms_nb


def test_every_public_name_resolves_to_what_its_module_defines():
    for name in lmms_nb.__all__:
        value = getattr(lmms_nb, name)
        assert value is not None, name
        if name != "__version__":
            module = __import__(lmms_nb._EXPORTS[name], fromlist=[name])
            assert getattr(module, name) is value, name


def test_import_is_light_and_unknown_names_are_attribute_errors():
    code = ("import sys, lmms_nb; heavy = [m for m in ('torch', 'transformers', 'datasets', 'plotly', 'ipywidgets') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    try:
        lmms_nb.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")
