"""The audit log is hash-chained and append-only: any edit or deletion is detected."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tests.conftest import _require_postgres
from tests.support import fresh_postgres_database

from caregrid.audit import service as audit
from caregrid.audit.models import AuditEntry
from caregrid.core.actor import Actor
from caregrid.core.db import unit_of_work

DOCTOR = Actor(user_id=None, username="gp_wang", role="doctor", institution_id=7)


def _write(db: Session, n: int) -> None:
    for i in range(n):
        audit.append(
            db,
            DOCTOR,
            action="read",
            resource="Resident",
            resident_id=100 + i,
            reason="复诊" if i % 2 else None,
        )


def _disable_guard(db: Session) -> None:
    if db.bind.dialect.name == "sqlite":  # type: ignore[union-attr]
        db.execute(text("DROP TRIGGER audit_entry_no_update"))
        db.execute(text("DROP TRIGGER audit_entry_no_delete"))
    else:
        db.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))


def test_an_untouched_chain_verifies(db: Session) -> None:
    _write(db, 5)
    result = audit.verify(db)
    assert result.ok, result.problems
    assert result.checked >= 5


def test_entries_are_numbered_without_gaps_and_linked(db: Session) -> None:
    _write(db, 3)
    rows = db.query(AuditEntry).order_by(AuditEntry.seq).all()
    seqs = [r.seq for r in rows]
    assert seqs == list(range(1, len(rows) + 1))
    for prev, cur in itertools.pairwise(rows):
        assert cur.prev_hash == prev.entry_hash


def test_the_database_refuses_to_update_an_entry(db: Session) -> None:
    _write(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE audit_entry SET reason = 'x' WHERE seq = 1"))


def test_the_database_refuses_to_delete_an_entry(db: Session) -> None:
    _write(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("DELETE FROM audit_entry WHERE seq = 1"))


def test_an_edited_entry_is_detected(db: Session) -> None:
    _write(db, 4)
    _disable_guard(db)
    db.execute(text("UPDATE audit_entry SET username = 'someone_else' WHERE seq = 2"))
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert any("第 2 条" in p and "篡改" in p for p in result.problems)


def test_a_deleted_entry_in_the_middle_is_detected(db: Session) -> None:
    _write(db, 4)
    _disable_guard(db)
    db.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert any("缺失" in p for p in result.problems)


def test_deleting_the_newest_entries_is_detected_by_the_head(db: Session) -> None:
    _write(db, 4)
    _disable_guard(db)
    db.execute(text("DELETE FROM audit_entry WHERE seq >= 3"))
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert any("链头" in p for p in result.problems)


def test_bulk_appends_join_the_same_chain(db: Session) -> None:
    before = audit.verify(db).checked  # entries committed by earlier tests
    _write(db, 2)
    written = audit.append_many(
        db,
        DOCTOR,
        [audit.Access("import", "Encounter", 500 + i, {"count": i}) for i in range(50)],
    )
    _write(db, 1)
    assert written == 50
    result = audit.verify(db)
    assert result.ok, result.problems
    assert result.checked == before + 53
    rows = db.query(AuditEntry).filter(AuditEntry.action == "import").all()
    assert {r.resident_id for r in rows} == {500 + i for i in range(50)}


def test_bulk_appends_hash_like_single_appends_for_system_actors_and_empty_fields(
    db: Session,
) -> None:
    system = Actor.system("导入-HIS")
    before = audit.verify(db).checked
    audit.append_many(
        db,
        system,
        [
            audit.Access("import", "Encounter", None),
            audit.Access("import", "Result", 7, {"来源": "县医院", "count": 2}),
            audit.Access("import", "Result", 7, {"来源": "县医院", "count": 2}),
        ],
    )
    result = audit.verify(db)
    assert result.ok, result.problems
    assert result.checked == before + 3


def test_two_first_entries_written_at_once_both_join_the_chain() -> None:
    # In a new database the chain's head is created by the first append. Two transactions
    # appending at once then both create it: the second must wait for the first and chain
    # after it, not fail (two lanes of a first CSV import did, before).
    with fresh_postgres_database(_require_postgres()) as engine:
        first_has_head = threading.Event()
        failures: list[BaseException] = []

        def first() -> None:
            try:
                with unit_of_work(engine) as session:
                    audit.append_many(session, DOCTOR, [audit.Access("import", "Encounter", 1)])
                    first_has_head.set()
                    threading.Event().wait(0.3)  # the second append starts meanwhile
            except BaseException as exc:  # reported by the test below
                failures.append(exc)
                first_has_head.set()

        def second() -> None:
            first_has_head.wait()
            try:
                with unit_of_work(engine) as session:
                    _write(session, 1)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with unit_of_work(engine) as session:
            result = audit.verify(session)
            assert result.ok, result.problems
            assert result.checked == 2
            assert [e.action for e in session.query(AuditEntry).order_by(AuditEntry.seq)] == [
                "import",
                "read",
            ]
