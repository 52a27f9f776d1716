"""The CSV importer's lanes on PostgreSQL (`csv_import._Lanes`): bulk batches of encounters
written two at a time on two connections must store and report exactly what writing them in
turn on one connection does, for any file, and batches that depend on each other (one source
id in both, one resident to register in both) must not be written at once.

Lanes need committed transactions on separate connections, so these tests import into two
databases of their own (created and dropped here), not inside the rolled-back test session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from caregrid.core.db import unit_of_work
from caregrid.record.ingest import csv_import
from caregrid.record.ingest.csv_import import import_csv
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Resident
from tests.conftest import _require_postgres, build_city
from tests.record.test_csv_bulk import (
    LI,
    NEWCOMER,
    ZHANG,
    add_people,
    rows,
    stored,
    summary_of,
)
from tests.record.test_csv_bulk import text as csv_text
from tests.support import fresh_postgres_database

OTHER_NEWCOMER = make_id_number("371302", date(1975, 2, 14), 481)


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[Engine, Engine]]:
    """Two migrated databases with the test city, its practitioner and two residents: one
    imported into in turn, one with two lanes."""
    url = _require_postgres()
    with fresh_postgres_database(url) as one, fresh_postgres_database(url) as two:
        for engine in (one, two):
            with unit_of_work(engine) as session:
                build_city(session)
                add_people(session)
        yield one, two


def state(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        return stored(session)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(rows(), min_size=1, max_size=10),
    second=st.lists(rows(), min_size=1, max_size=10),
    batch_size=st.integers(1, 3),
)
def test_two_lanes_store_and_report_exactly_what_one_connection_does(
    databases: tuple[Engine, Engine],
    tmp_path_factory: pytest.TempPathFactory,
    first: list[tuple[str, ...]],
    second: list[tuple[str, ...]],
    batch_size: int,
) -> None:
    # Each example runs on both databases, which therefore stay alike from one example to
    # the next (records of earlier examples are updated or left unchanged by later ones).
    folder = tmp_path_factory.mktemp("lanes")
    files = [csv_text(first), csv_text(first[: len(first) // 2] + second)]
    outcomes = []
    for engine, lanes in zip(databases, (1, 2), strict=True):
        reports = []
        for n, content in enumerate(files):
            path = folder / f"file-{lanes}-{n}.csv"
            path.write_text(content, encoding="utf-8")
            summary = import_csv(
                path, "encounters", batch_size=batch_size, engine=engine, lanes=lanes
            )
            reports.append(summary_of(summary))
        outcomes.append((reports, state(engine)))
    in_turn, in_lanes = outcomes
    assert in_lanes == in_turn


def encounter(
    sid: str, number: str, name: str = "张建国", total: str = "120.00"
) -> tuple[str, ...]:
    return (sid, "HIS-L", number, name, "", "T-RMYY", "", "", "", "", "门诊",
            "2025-03-05 14:10", "", "", "", "", "", "I10", "", "", "", "", "", "", total,
            "", "")  # fmt: skip


def test_lanes_write_two_batches_at_once_but_never_two_that_depend_on_each_other(
    databases: tuple[Engine, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, engine = databases
    spans: list[tuple[float, float, str, frozenset[str]]] = []
    bulk = csv_import.ingest_encounter_rows

    def slow(session: Session, actor: Any, batch: Any, residents: Any) -> Any:
        # Widen each batch's time in flight, so that batches that may overlap do.
        began = time.perf_counter()
        time.sleep(0.15)
        report = bulk(session, actor, batch, residents)
        ids = frozenset(r.source_id for r in batch)
        spans.append((began, time.perf_counter(), threading.current_thread().name, ids))
        return report

    monkeypatch.setattr(csv_import, "ingest_encounter_rows", slow)
    lines = [
        encounter("L1", ZHANG),
        encounter("L2", LI, "李秀英"),
        encounter("L3", ZHANG),
        encounter("L2", LI, "李秀英", total="130.00"),  # L2 again, changed: waits for line 3
        encounter("L5", NEWCOMER, "赵新来"),  # not in the index: registered by the general way
        encounter("L6", NEWCOMER, "赵新来"),  # the same newcomer, in the next batch
        encounter("L7", OTHER_NEWCOMER, "钱新来"),
        encounter("L8", ZHANG, total="abc"),  # a bad cost: rolled back, reported
        encounter("L9", ZHANG),
    ]
    path = tmp_path / "encounters.csv"
    path.write_text(csv_text(lines), encoding="utf-8")
    summary = import_csv(path, "encounters", batch_size=1, engine=engine, lanes=2)

    assert (summary.batches, summary.created, summary.updated) == (9, 7, 1)
    assert (summary.residents_registered, summary.batches_failed) == (2, 1)
    assert [(e.line, e.field) for e in summary.errors] == [(9, "总费用(元)")]
    # two lanes really wrote at once ...
    assert len({thread for _, _, thread, _ in spans}) == 2
    assert any(a[0] < b[1] and b[0] < a[1] for a in spans for b in spans if a is not b)
    # ... but never the two batches naming L2
    l2 = [s for s in spans if "L2" in s[3]]
    assert len(l2) == 2 and (l2[0][1] <= l2[1][0] or l2[1][1] <= l2[0][0])
    with Session(engine) as session:
        newcomers = session.scalars(
            select(Resident.name).where(Resident.id_number.in_([NEWCOMER, OTHER_NEWCOMER]))
        ).all()
        assert sorted(newcomers) == ["赵新来", "钱新来"]
    again = import_csv(path, "encounters", batch_size=1, engine=engine, lanes=2)
    # L2 is in the file twice, as two versions: each updates the other
    assert (again.unchanged, again.created, again.updated, again.batches_failed) == (6, 0, 2, 1)


def test_an_imports_connections_plan_each_look_up_afresh(databases: tuple[Engine, Engine]) -> None:
    # A plan the server keeps for a prepared statement, made while the table looked empty,
    # read the whole growing table on every batch of a first import (2-10x slower): an
    # import's connections prepare nothing, and go back to the pool as they were.
    from caregrid.core.db import batch_transactions

    engine, _ = databases
    with batch_transactions(engine) as transaction, transaction() as session:
        driver: Any = session.connection().connection.driver_connection
        assert driver.prepare_threshold is None
    assert driver.prepare_threshold == 5  # psycopg's default, back in the pool
