"""Benchmark: the shared record's demo step (one year of activity) for N residents on SQLite.

Builds the registry part of the demo (not timed), then times `generate_activity` (generation
plus bulk insert of encounters, diagnoses, procedures, results, prescriptions and deaths).
As the baseline in the same run, the same encounter rows, generated beforehand, are inserted
with one raw executemany into an emptied encounter table (same indexes). Prints encounters/s
and the ratio. The issue's goal: 1,000,000 residents (~7M encounters) in under 5 minutes.

    .venv/bin/python benchmarks/bench_demo_year.py --residents 100000
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path

from caregrid.core.db import bulk_load_session, make_engine
from caregrid.demo.builder import build_demo
from caregrid.record import demo as record_demo

YEAR = 2025


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        started = time.perf_counter()
        build_demo(engine, profile_id="linyi", residents=args.residents, seed=args.seed,
                   password="bench-pass-1", reference_date=date(YEAR, 12, 31),
                   activity=False)  # fmt: skip
        print(f"registry step: {time.perf_counter() - started:.1f} s (not part of the ratio)")

        with bulk_load_session(engine) as session:  # as the demo builder loads
            structure = record_demo.load_structure_from_db(session)
            started = time.perf_counter()
            report = record_demo.generate_activity(
                session, random.Random(args.seed), structure, year=YEAR
            )
            session.commit()
            elapsed = time.perf_counter() - started
            rows = (report.encounters + report.diagnoses + report.procedures + report.results
                    + report.prescriptions + report.prescription_items)  # fmt: skip
            print("\n".join(report.lines()))
            print(f"activity step: {elapsed:.1f} s, "
                  f"{report.encounters / elapsed:,.0f} encounters/s, "
                  f"{rows / elapsed:,.0f} rows/s over all tables ({rows:,} rows)")  # fmt: skip

            # Baseline: the same encounter rows, captured (untimed) by re-running the generator
            # without writing, then inserted with one raw executemany.
            captured: list[record_demo.Row] = []
            original = record_demo.write_tables

            def capture(_connection: object, tables: record_demo._Tables) -> None:
                captured.extend(tables.encounter)

            record_demo.write_tables = capture  # type: ignore[assignment]
            try:
                record_demo.generate_activity(
                    session, random.Random(args.seed), structure, year=YEAR
                )
            finally:
                record_demo.write_tables = original
            session.rollback()
        engine.dispose()
        # Empty the encounter table and time the insert with foreign keys off, like the
        # activity step (with them on, the delete would also cascade through tables that have
        # no index on encounter_id).
        raw_db = sqlite3.connect(Path(tmp) / "bench.db", isolation_level=None)
        raw_db.execute("PRAGMA foreign_keys=OFF")
        raw_db.execute("DELETE FROM encounter")
        raw_db.execute("PRAGMA cache_size=-1000000")
        cols = record_demo.ENCOUNTER_COLUMNS
        sql = f"INSERT INTO encounter ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        raw_db.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        raw_db.executemany(sql, captured)
        raw = time.perf_counter() - started
        raw_db.execute("ROLLBACK")
        raw_db.close()
        raw_rate = len(captured) / raw
        print(f"baseline: raw executemany of the {len(captured):,} encounter rows: {raw:.1f} s, "
              f"{raw_rate:,.0f} encounters/s")  # fmt: skip
        ratio = report.encounters / elapsed / raw_rate
        print(f"ratio activity step / raw encounter insert: {ratio:.2f}"
              f" (the step also writes {rows - report.encounters:,} other rows)")  # fmt: skip
        print(
            f"extrapolated to 1,000,000 residents: "
            f"{elapsed * 1_000_000 / max(1, report.residents) / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
