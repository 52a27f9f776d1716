# Sourced by demo.sh and test.sh. `install_venv [EXTRAS]` creates .venv when missing and
# installs caregrid into it, with the optional extras (e.g. "test").
install_venv() {
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".${1:+[$1]}"
}
