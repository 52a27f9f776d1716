#!/usr/bin/env bash
# Installs what the tests need and runs every check: lint, format, types, import layers,
# migrations in sync, and the test suite on SQLite and PostgreSQL with browser tests and the
# indicator engine on DuckDB and Spark.
#
# PostgreSQL, Chromium and Java 17 (for Spark) come from Debian packages; when they are missing and this runs as
# root (CI) they are installed here. A throwaway PostgreSQL server is started for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/venv.sh
install_venv test

is_root() { [ "$(id -u)" = "0" ]; }
apt_updated=0
apt_install() {
  if is_root && command -v apt-get >/dev/null; then
    if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# --- PostgreSQL: a throwaway server for this run -------------------------------------------
if [ -z "${CAREGRID_TEST_POSTGRES_URL:-}" ]; then
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_install postgresql
  if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PGDATA=$(mktemp -d /tmp/caregrid-pg.XXXXXX)
    PGPORT=${PGPORT:-55432}
    while (echo > /dev/tcp/127.0.0.1/$PGPORT) 2>/dev/null; do PGPORT=$((PGPORT + 1)); done
    run_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
    if is_root; then chown postgres: "$PGDATA"; fi
    run_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/log" -s -w start \
      -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    trap 'run_pg "$PGBIN/pg_ctl" -D "$PGDATA" -s -m fast -w stop; rm -rf "$PGDATA"' EXIT
    run_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres caregrid_test
    export CAREGRID_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/caregrid_test"
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on port $PGPORT"
  else
    echo "PostgreSQL not installed: its tests will skip (they fail under CI=true)"
  fi
fi

# --- Chromium for the browser tests (never Playwright's own download), with CJK fonts ------
if [ -z "${CAREGRID_CHROMIUM:-}" ]; then
  command -v chromium >/dev/null || apt_install chromium
  fc-list 2>/dev/null | grep -qi "noto sans cjk" || apt_install fonts-noto-cjk
  if command -v chromium >/dev/null; then export CAREGRID_CHROMIUM=$(command -v chromium); fi
fi

# --- Java 17 for Spark (the indicator engine's parity tests run Spark in local mode) --------
if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
if command -v java >/dev/null; then
  export SPARK_LOCAL_IP=127.0.0.1
else
  echo "Java not installed: Spark parity tests will skip (they fail under CI=true)"
fi

# --- static checks --------------------------------------------------------------------------
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
CAREGRID_DATABASE_URL="sqlite:///$(mktemp -d)/check.db" .venv/bin/python -c \
  "from caregrid.core.migrate import upgrade, check; upgrade(); check(); print('migrations in sync')"

# --- tests ----------------------------------------------------------------------------------
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
