"""The two set-up descriptions agree: environment.yml installs what pyproject.toml declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    for sep in ("==", ">=", "<=", "<", ">", "[", ";", " "):
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower().replace("_", "-")


def test_environment_yml_lists_every_dependency_with_the_same_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r): r for r in pip_block}
    assert pip_block[:2] == ["torch==2.14.1", "torchvision==0.29.1"], "torch pins come first"
    for req in declared:
        name = _name(req)
        if name in ("torch", "torchvision"):
            continue
        assert listed.get(name) == req.split("#")[0].strip(), f"{name}: pyproject says {req!r}"


def test_scripts_install_the_torch_pins_before_the_rest():
    env_sh = (ROOT / "scripts" / "env.sh").read_text()
    assert env_sh.index('"torch==2.14.1" "torchvision==0.29.1"') < env_sh.index("-e \"$ROOT[test,lmms-eval]\"")
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_ruff_finds_nothing():
    """`ruff check .` with the configuration in pyproject.toml (ruff comes with the test extra)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_lmms_eval_extra_pins_lmms_eval_0_7_3_and_the_test_setup_installs_it():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lmms-eval"]
    assert "lmms-eval==0.7.3" in extra and "filelock<4" in extra
    assert '[test,lmms-eval]' in (ROOT / "scripts" / "env.sh").read_text()
