#!/usr/bin/env bash
# Installs caregrid in .venv and runs the Linyi demo city in the browser
# (http://127.0.0.1:8000). Extra arguments go to `caregrid demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/caregrid demo --profile linyi "$@"
