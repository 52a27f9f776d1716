"""Benchmark: the registry part of `caregrid demo --residents N --no-serve`.

Times the whole demo build (structure, practitioners, accounts, N residents with valid unique
ID numbers) and, as the baseline in the same run, a raw DBAPI bulk insert of the same resident
rows into an empty copy of the resident table with the same indexes. Prints the ratio.

    .venv/bin/python benchmarks/bench_demo_registry.py --residents 1000000 [--postgres URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from caregrid.core.db import make_engine, new_session
from caregrid.core.migrate import upgrade
from caregrid.demo.builder import build_demo, reset_database
from caregrid.registry import demo as registry_demo


def time_demo(engine: Engine, residents: int, seed: int) -> float:
    started = time.perf_counter()
    build_demo(
        engine,
        profile_id="linyi",
        residents=residents,
        seed=seed,
        password="bench-pass-1",
        reference_date=date(2025, 12, 31),
        activity=False,  # the registry part only
    )
    return time.perf_counter() - started


def time_raw_insert(engine: Engine, residents: int, seed: int) -> float:
    """The same rows, generated beforehand (not timed), inserted with one executemany/COPY."""
    reset_database(engine)
    upgrade(engine)
    session = new_session(engine)
    structure = registry_demo.build_structure(session, registry_demo.load_structure("linyi"))
    session.commit()
    rows = list(
        registry_demo.resident_rows(
            random.Random(seed),
            structure,
            residents,
            reference_date=date(2025, 12, 31),
            batch_size=residents or 1,
        )
    )
    started = time.perf_counter()
    registry_demo.insert_residents(session, rows)
    session.commit()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--postgres", help="postgresql+psycopg:// URL of an empty scratch database")
    args = parser.parse_args()
    targets: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp())
    targets.append(("sqlite", f"sqlite:///{tmp}/bench.db"))
    if args.postgres:
        targets.append(("postgresql", args.postgres))
    for name, url in targets:
        engine = make_engine(url)
        demo_times = [time_demo(engine, args.residents, seed) for seed in range(args.repeat)]
        raw_times = [time_raw_insert(engine, args.residents, seed) for seed in range(args.repeat)]
        demo_median = statistics.median(demo_times)
        raw_median = statistics.median(raw_times)
        print(
            f"{name}: demo registry build, {args.residents:,} residents: "
            f"median {demo_median:.1f} s "
            f"({args.residents / demo_median:,.0f} residents/s); raw bulk insert of the same rows: "
            f"median {raw_median:.1f} s; ratio demo/raw = {demo_median / raw_median:.2f}"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
