# Sourced by scripts/demo.sh and scripts/test.sh: create or reuse the local virtual environment.
# torch/torchvision are pinned and installed first: open_clip needs torchvision, and any other pair
# makes pip pull a second, multi-GB torch (see DESIGN.md, "Offline, here and in CI").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LMMS_NB_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.lmms-nb-installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
# Reinstall only when the project's dependency list changed since the last install.
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
    # the lmms-eval extra: lmms-eval's own task catalogue, so the tests run its real tasks
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test,lmms-eval]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
