"""Benchmark: every resident's next due service and chronic control status
(`familydoctor.measures.due_overview`) on a demo city with a year of activity, contracts and
follow-ups, against one hand-written SQL query computing the same chronic counts in the same
run. Prints medians, the ratio, and a linear extrapolation to 1,000,000 residents (the target
is < 30 s for 1M residents / ~300k chronic patients).

    .venv/bin/python benchmarks/bench_chronic_due.py --residents 100000
    .venv/bin/python benchmarks/bench_chronic_due.py --database sqlite:///demo.db  # reuse one

Measured 2026-11-23 on a shared 2-core machine (load average 5-6), Linyi profile, 100,000
residents (28,255 chronic enrolments, 36,250 contracts, 129,780 follow-ups), median of 5:
SQLite 2.01 s (SQL 0.25 s, 8.1x), PostgreSQL 1.96 s (SQL 0.27 s, 7.2x); linearly ~20 s for
1,000,000 residents. The 1M run itself was not made here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REFERENCE = date(2026, 11, 23)

BASELINE_SQL = """
WITH latest AS (
    SELECT e.id, e.enrolled_on, f.followed_on, f.controlled, f.next_due,
           ROW_NUMBER() OVER (PARTITION BY e.id ORDER BY f.followed_on DESC, f.id DESC) AS rn
    FROM chronic_enrolment e
    LEFT JOIN chronic_followup f ON f.enrolment_id = e.id AND f.followed_on <= :on
    WHERE e.status = 'active' AND e.enrolled_on <= :on
), s AS (
    SELECT COALESCE(followed_on, enrolled_on) < :cutoff AS lost,
           followed_on IS NULL AS never,
           COALESCE(controlled, FALSE) AS controlled,
           COALESCE(next_due, enrolled_on) < :on AS overdue
    FROM latest WHERE rn = 1
)
SELECT COUNT(*),
       SUM(CASE WHEN controlled AND NOT lost THEN 1 ELSE 0 END),
       SUM(CASE WHEN lost THEN 1 ELSE 0 END),
       SUM(CASE WHEN never THEN 1 ELSE 0 END),
       SUM(CASE WHEN overdue THEN 1 ELSE 0 END)
FROM s
"""


def baseline(engine: Engine) -> tuple[int, ...]:
    from caregrid.chronic.rules import LOST_AFTER_DAYS

    with engine.connect() as conn:
        row = conn.execute(
            text(BASELINE_SQL),
            {"on": REFERENCE, "cutoff": REFERENCE - timedelta(days=LOST_AFTER_DAYS)},
        ).one()
    return tuple(int(v or 0) for v in row)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--database", help="reuse an existing demo database URL")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from caregrid.core.db import make_engine, new_session
    from caregrid.demo.builder import build_demo
    from caregrid.familydoctor.measures import due_overview

    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'due.db'}"
    engine = make_engine(url)
    if not args.database:
        started = time.perf_counter()
        report = build_demo(engine, profile_id="linyi", residents=args.residents, seed=1,
                            password="bench-pass-1", reference_date=REFERENCE)  # fmt: skip
        print(f"built {args.residents:,} residents in {time.perf_counter() - started:.1f} s: "
              f"{report.family_doctor}")  # fmt: skip
    with engine.connect() as conn:
        residents = conn.execute(text("SELECT COUNT(*) FROM resident")).scalar_one()
    if not residents:
        sys.exit(f"no residents in {engine.url}: build a demo first (omit --database)")

    service_times, sql_times = [], []
    overview = None
    counts: tuple[int, ...] = ()
    for _ in range(args.runs):
        session = new_session(engine)
        started = time.perf_counter()
        overview = due_overview(session, on=REFERENCE)
        service_times.append(time.perf_counter() - started)
        session.close()
        started = time.perf_counter()
        counts = baseline(engine)
        sql_times.append(time.perf_counter() - started)
    assert overview is not None
    mine = (overview.managed, overview.controlled, overview.lost, overview.never_followed,
            overview.followup_overdue)  # fmt: skip
    print(f"service: managed, controlled, lost, never followed, overdue = {mine}; "
          f"contracts {overview.contracts:,}, overdue {overview.contracts_overdue:,}, "
          f"due within 14 days {overview.contracts_due_within_14_days:,}")  # fmt: skip
    print(f"SQL:     managed, controlled, lost, never followed, overdue = {counts}")
    assert mine == counts, "the service and the SQL query disagree"
    service, sql = statistics.median(service_times), statistics.median(sql_times)
    scale = 1_000_000 / residents
    print(f"{engine.dialect.name}, {residents:,} residents, {overview.managed:,} chronic "
          f"enrolments, {overview.contracts:,} contracts (median of {args.runs} runs)")  # fmt: skip
    print(f"due_overview (chronic status + contract services): {service:.2f} s")
    print(f"hand-written SQL (chronic counts only):           {sql:.2f} s")
    print(f"ratio service / SQL: {service / sql:.1f}x")
    print(f"linear extrapolation to 1,000,000 residents: {service * scale:.1f} s "
          f"(target < 30 s)")  # fmt: skip


if __name__ == "__main__":
    main()
