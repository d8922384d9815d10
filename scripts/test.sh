#!/usr/bin/env bash
# README command 2: set up (or reuse) .venv, install what browser tests need, run the whole test suite.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
# Browser tests drive Debian's Chromium (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
    $APT update -qq && DEBIAN_FRONTEND=noninteractive $APT install -y -qq chromium >/dev/null
fi
# The suite shares one generated synthbench + zoo cache across tests (built once, reused by later runs).
export LMMS_NB_CACHE="${LMMS_NB_CACHE:-$ROOT/.cache/lmms_nb}"
exec python -m pytest "$@"
