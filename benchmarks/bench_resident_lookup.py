"""Benchmark: resident lookup by full ID number and by name prefix through the HTTP API, on a
demo database of N residents (default 1,000,000), against the same queries in raw SQL on the
same database in the same run. Prints p50/p95 and the ratio of medians.

    .venv/bin/python benchmarks/bench_resident_lookup.py --residents 1000000 [--requests 500]
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
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database", help="reuse an existing demo SQLite file")
    parser.add_argument("--password", default="bench-pass-1", help="demo password of that file")
    args = parser.parse_args()
    path = Path(args.database) if args.database else Path(tempfile.mkdtemp()) / "lookup.db"
    os.environ["CAREGRID_DATABASE_URL"] = f"sqlite:///{path}"

    from tests.support import serve

    from caregrid.app import create_app
    from caregrid.core.db import get_engine
    from caregrid.demo.builder import build_demo

    if not args.database:
        started = time.perf_counter()
        build_demo(
            get_engine(),
            profile_id="linyi",
            residents=args.residents,
            seed=1,
            password="bench-pass-1",
            reference_date=date(2025, 12, 31),
            activity=False,
        )
        print(f"built {args.residents:,} residents in {time.perf_counter() - started:.1f} s")

    raw = sqlite3.connect(path)
    rng = random.Random(5)
    total = raw.execute("SELECT max(id) FROM resident").fetchone()[0]
    sample = [
        raw.execute(
            "SELECT id_number, name FROM resident WHERE id = ?", (rng.randint(1, total),)
        ).fetchone()
        for _ in range(args.requests)
    ]
    numbers = [s[0] for s in sample]
    prefixes = [s[1][:2] for s in sample]

    with serve(create_app()) as served:
        base = served.base_url
        http = httpx.Client(base_url=base)
        token = http.post(
            "/api/v1/auth/token", data={"username": "gp1", "password": args.password}
        ).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"

        def api(q: str) -> float:
            started = time.perf_counter()
            response = http.get("/api/v1/residents", params={"q": q, "size": 20})
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            return elapsed * 1000

        def sql_by_number(q: str) -> float:
            started = time.perf_counter()
            raw.execute("SELECT * FROM resident WHERE id_number = ?", (q,)).fetchall()
            return (time.perf_counter() - started) * 1000

        def sql_by_prefix(q: str) -> float:
            started = time.perf_counter()
            raw.execute(
                "SELECT * FROM resident WHERE name >= ? AND name < ? ORDER BY name, id LIMIT 20",
                (q, q + "\U0010ffff"),
            ).fetchall()
            raw.execute(
                "SELECT count(*) FROM"
                " (SELECT id FROM resident WHERE name >= ? AND name < ? LIMIT 1001)",
                (q, q + "\U0010ffff"),
            ).fetchall()
            return (time.perf_counter() - started) * 1000

        for label, queries, baseline in (
            ("ID number", numbers, sql_by_number),
            ("name prefix", prefixes, sql_by_prefix),
        ):
            for q in queries[:20]:
                api(q)  # warm up
            api_ms = [api(q) for q in queries]
            sql_ms = [baseline(q) for q in queries]
            print(
                f"lookup by {label} at {total:,} residents through the API: "
                f"p50 {percentile(api_ms, 0.5):.2f} ms, p95 {percentile(api_ms, 0.95):.2f} ms; "
                f"raw SQL p50 {percentile(sql_ms, 0.5):.3f} ms, "
                f"p95 {percentile(sql_ms, 0.95):.3f} ms; "
                f"ratio of medians {statistics.median(api_ms) / statistics.median(sql_ms):.1f}x"
            )


if __name__ == "__main__":
    main()
