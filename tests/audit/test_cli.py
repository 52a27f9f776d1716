"""`caregrid audit verify` on a real database file: 0 when intact, 1 after tampering."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import use_database
from typer.testing import CliRunner

from caregrid.audit import service as audit
from caregrid.cli import app
from caregrid.core.actor import Actor
from caregrid.core.db import unit_of_work
from caregrid.core.migrate import upgrade


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "audit.db"
    with use_database(f"sqlite:///{path}") as engine:
        upgrade(engine)
        with unit_of_work(engine) as session:
            for i in range(5):
                audit.append(session, Actor(None, "gp_wang", "doctor"), action="read",
                             resource="Resident", resident_id=i + 1)  # fmt: skip
        engine.dispose()
        yield path


def tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_entry_no_update")
    conn.execute("DROP TRIGGER audit_entry_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_an_intact_log_verifies_with_exit_code_0(database: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0
    assert "5 条" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_entry SET resident_id = 99 WHERE seq = 3",
        "DELETE FROM audit_entry WHERE seq = 2",
        "DELETE FROM audit_entry WHERE seq = 5",
    ],
)
def test_any_edit_or_deletion_exits_1_and_names_the_entry(database: Path, sql: str) -> None:
    tamper(database, sql)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "篡改" in result.output
