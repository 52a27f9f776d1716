#!/usr/bin/env bash
# Installs caregrid in .venv and runs the Linyi demo city in the browser
# (http://127.0.0.1:8000). Extra arguments go to `caregrid demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
install_venv
exec .venv/bin/caregrid demo --profile linyi "$@"
