"""Benchmark: one resident's timeline through the HTTP API on a demo database with a year of
activity, against the same three newest-first queries in raw SQL in the same run. Prints
p50/p95 and the ratio of medians.

    .venv/bin/python benchmarks/bench_timeline.py --residents 100000
    .venv/bin/python benchmarks/bench_timeline.py --database caregrid.db --password PASS
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.stats import percentile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", help="reuse an existing demo SQLite file")
    parser.add_argument("--password", default="bench-pass-1")
    args = parser.parse_args()
    path = Path(args.database) if args.database else Path(tempfile.mkdtemp()) / "timeline.db"
    os.environ["CAREGRID_DATABASE_URL"] = f"sqlite:///{path}"

    from tests.support import serve

    from caregrid.app import create_app
    from caregrid.core.db import get_engine
    from caregrid.demo.builder import build_demo

    if not args.database:
        started = time.perf_counter()
        build_demo(get_engine(), profile_id="linyi", residents=args.residents, seed=1,
                   password=args.password, reference_date=date(2026, 1, 15))  # fmt: skip
        print(f"built {args.residents:,} residents with a year of activity "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

    raw = sqlite3.connect(path)
    encounters = raw.execute("SELECT count(*) FROM encounter").fetchone()[0]
    gp_institution = raw.execute(
        "SELECT institution_id FROM app_user WHERE username = 'gp1'"
    ).fetchone()[0]
    # residents gp1 may see: those whose record gp1's centre keeps
    ids = [r[0] for r in raw.execute(
        "SELECT id FROM resident WHERE home_institution_id = ?", (gp_institution,)
    )]  # fmt: skip
    rng = random.Random(3)
    sample = [rng.choice(ids) for _ in range(args.requests)]

    def sql(resident_id: int) -> float:
        started = time.perf_counter()
        raw.execute("SELECT * FROM encounter WHERE resident_id = ? "
                    "ORDER BY started_at DESC LIMIT 20", (resident_id,)).fetchall()  # fmt: skip
        raw.execute("SELECT * FROM result WHERE resident_id = ? ORDER BY observed_at DESC LIMIT 20",
                    (resident_id,)).fetchall()  # fmt: skip
        raw.execute("SELECT * FROM prescription WHERE resident_id = ? "
                    "ORDER BY prescribed_at DESC LIMIT 20", (resident_id,)).fetchall()  # fmt: skip
        return (time.perf_counter() - started) * 1000

    with serve(create_app()) as served:
        http = httpx.Client(base_url=served.base_url)
        token = http.post(
            "/api/v1/auth/token", data={"username": "gp1", "password": args.password}
        ).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"

        def api(resident_id: int) -> float:
            started = time.perf_counter()
            response = http.get(f"/api/v1/residents/{resident_id}/timeline", params={"size": 20})
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            return elapsed * 1000

        for rid in sample[:20]:
            api(rid)
        api_ms = [api(rid) for rid in sample]
    sql_ms = [sql(rid) for rid in sample]
    print(
        f"timeline through the API with {encounters:,} encounters in the database: "
        f"p50 {percentile(api_ms, 0.5):.2f} ms, p95 {percentile(api_ms, 0.95):.2f} ms; "
        f"raw SQL p50 {percentile(sql_ms, 0.5):.3f} ms, p95 {percentile(sql_ms, 0.95):.3f} ms; "
        f"ratio of medians {statistics.median(api_ms) / statistics.median(sql_ms):.1f}x"
    )


if __name__ == "__main__":
    main()
