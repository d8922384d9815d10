#!/usr/bin/env bash
# README command 1: set up (or reuse) .venv, then run the offline demo end to end.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec lmms-nb demo "$@"
