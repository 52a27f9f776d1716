"""Two concurrent signings for one resident on PostgreSQL: the partial unique index lets one
win and the other fail, whatever the timing (SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from caregrid.familydoctor.models import Contract, ServicePackage, Team
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Institution, Resident
from tests.conftest import migrated_engine


@pytest.fixture
def pg(_tmp_root: str) -> Engine:
    return migrated_engine("postgresql", _tmp_root)


def test_concurrent_signings_cannot_both_win(pg: Engine) -> None:
    with pg.begin() as conn:
        inst = conn.execute(
            insert(Institution).returning(Institution.id),
            {"code": "T-CONC", "name": "并发测试卫生院", "level": "primary", "kind": "general",
             "role": "member"},
        ).scalar_one()  # fmt: skip
        team = conn.execute(
            insert(Team).returning(Team.id),
            {"code": "T-CONC-1", "name": "并发测试团队", "base_institution_id": inst},
        ).scalar_one()
        package = conn.execute(
            insert(ServicePackage).returning(ServicePackage.id),
            {"code": "T-CONC-P", "name": "测试包", "population": "general", "fund_fen": 1,
             "public_health_fen": 1, "self_pay_fen": 1},
        ).scalar_one()  # fmt: skip
        resident = conn.execute(
            insert(Resident).returning(Resident.id),
            {"id_number": make_id_number("371302", date(1950, 5, 5), 777), "name": "并发测试",
             "sex": "male", "birth_date": date(1950, 5, 5)},
        ).scalar_one()  # fmt: skip
    row = {"resident_id": resident, "team_id": team, "package_id": package,
           "start_date": date(2026, 1, 1), "end_date": date(2027, 1, 1), "status": "active",
           "fee_fen": 3}  # fmt: skip
    outcome: dict[str, str] = {}
    first = pg.connect()
    try:
        tx = first.begin()
        first.execute(insert(Contract), row)

        def second() -> None:
            with pg.connect() as conn:
                try:
                    with conn.begin():
                        conn.execute(insert(Contract), row)
                    outcome["second"] = "won"
                except IntegrityError:
                    outcome["second"] = "refused"

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=1)
        assert racer.is_alive(), "the second signing must wait for the first"
        tx.commit()
        racer.join(timeout=10)
        assert outcome == {"second": "refused"}
    finally:
        first.close()
        with pg.begin() as conn:
            conn.execute(delete(Contract).where(Contract.resident_id == resident))
            conn.execute(delete(Resident).where(Resident.id == resident))
            conn.execute(delete(ServicePackage).where(ServicePackage.id == package))
            conn.execute(delete(Team).where(Team.id == team))
            conn.execute(delete(Institution).where(Institution.id == inst))
