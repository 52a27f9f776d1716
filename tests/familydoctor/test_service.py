"""Contracts, the care relationship they create, team tasks and fee settlement, on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caregrid.chronic import service as chronic
from caregrid.core.clock import frozen_clock
from caregrid.core.errors import Invalid, NotFound
from caregrid.familydoctor import measures
from caregrid.familydoctor import service as fd
from caregrid.familydoctor.errors import ActiveContractExists, ContractNotActive
from caregrid.familydoctor.models import Contract
from caregrid.identity.access import care_basis, require_resident_access
from caregrid.profiles.service import active_profile
from tests.conftest import City
from tests.familydoctor.builders import SYSTEM, make_resident, make_team

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> object:
    with frozen_clock(NOW):
        yield


def test_signing_creates_the_contract_care_relationship(db: Session, city: City) -> None:
    team = make_team(db, city)
    rid = make_resident(db, city, home=None)
    gp = city.users["gp_wang"]
    assert care_basis(db, gp, rid) is None
    contract = fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="BASIC")
    assert contract.end_date == date(2027, 6, 1)
    assert contract.fee_fen == 12000  # 60 + 40 + 20 yuan from the profile
    assert care_basis(db, gp, rid) == "contract"
    with pytest.raises(NotFound):
        require_resident_access(
            db, city.users["outsider_zhao"], rid, action="read", resource="Resident"
        )
    active = fd.active_contract(db, rid)
    assert active is not None
    assert (active.contract_id, active.team_id, active.package_code) == (
        contract.id,
        team.id,
        "BASIC",
    )
    assert active.base_institution_id == city.township_id
    assert len(active.member_practitioner_ids) == 3


def test_a_second_active_contract_is_refused_with_the_rule(db: Session, city: City) -> None:
    team = make_team(db, city)
    other = make_team(db, city, code="T-TEAM2")
    rid = make_resident(db, city, home=city.township_id)
    fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="BASIC")
    with pytest.raises(ActiveContractExists) as caught:
        fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=other.id, package_code="BASIC")
    assert caught.value.status_code == 409
    assert caught.value.fields["rule"] == "one_active_contract"
    assert db.scalar(select(func.count()).where(Contract.resident_id == rid)) == 1


def test_the_database_refuses_two_active_contracts_even_without_the_service(
    db: Session, city: City
) -> None:
    team = make_team(db, city)
    rid = make_resident(db, city)
    first = fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="BASIC")
    twin = Contract(
        resident_id=rid,
        team_id=team.id,
        package_id=first.package_id,
        start_date=first.start_date,
        end_date=first.end_date,
        status="active",
        fee_fen=1,
    )
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(twin)
        db.flush()


def test_renew_change_team_and_terminate(db: Session, city: City) -> None:
    team = make_team(db, city)
    other = make_team(db, city, code="T-TEAM2")
    rid = make_resident(db, city)
    first = fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="ELDERLY")
    renewed = fd.renew_contract(db, SYSTEM, first.id)
    assert first.status == "ended"
    assert renewed.start_date == first.end_date
    assert renewed.previous_contract_id == first.id
    with pytest.raises(ContractNotActive):
        fd.renew_contract(db, SYSTEM, first.id)
    with pytest.raises(Invalid) as caught:
        fd.change_team(db, SYSTEM, renewed.id, team_id=other.id, reason="")
    assert caught.value.fields["field"] == "reason"
    moved = fd.change_team(db, SYSTEM, renewed.id, team_id=other.id, reason="搬迁至新社区")
    assert renewed.status == "changed"
    assert fd.active_contract(db, rid).team_id == other.id  # type: ignore[union-attr]
    with pytest.raises(Invalid):
        fd.terminate_contract(db, SYSTEM, moved.id, reason=" ")
    fd.terminate_contract(db, SYSTEM, moved.id, reason="居民申请解约")
    assert moved.status == "terminated"
    assert fd.active_contract(db, rid) is None


def test_package_eligibility_is_enforced_when_signing(db: Session, city: City) -> None:
    team = make_team(db, city)
    young = make_resident(db, city, birth=date(1990, 1, 1))
    with pytest.raises(Invalid) as caught:
        fd.sign_contract(db, SYSTEM, resident_id=young, team_id=team.id, package_code="ELDERLY")
    assert caught.value.fields["rule"] == "package_min_age"
    older = make_resident(db, city, birth=date(1970, 1, 1))
    with pytest.raises(Invalid) as caught:
        fd.sign_contract(db, SYSTEM, resident_id=older, team_id=team.id, package_code="CHRONIC")
    assert caught.value.fields["rule"] == "package_registered_condition"
    chronic.enrol(
        db, SYSTEM, resident_id=older, program="hypertension", enrolled_on=date(2026, 1, 5)
    )
    contract = fd.sign_contract(
        db, SYSTEM, resident_id=older, team_id=team.id, package_code="CHRONIC"
    )
    assert contract.status == "active"


def test_team_tasks_show_in_the_worklist(db: Session, city: City) -> None:
    team = make_team(db, city)
    rid = make_resident(db, city, home=city.township_id)
    fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="BASIC")
    task_id = fd.add_team_task(
        db,
        team_id=team.id,
        resident_id=rid,
        kind="下转随访",
        due=date(2026, 6, 3),
        detail="术后恢复期，下转康复",
        source="referral:1",
    )
    work = fd.worklist(db, city.users["gp_wang"], team.id)
    assert [(t.task_id, t.what) for t in work.tasks] == [(task_id, "下转随访")]
    fd.complete_task(db, city.users["gp_wang"], task_id)
    assert fd.worklist(db, city.users["gp_wang"], team.id).tasks == []
    with pytest.raises(NotFound):
        fd.worklist(db, city.users["outsider_zhao"], team.id)


def test_worklist_shows_uncontrolled_and_overdue_chronic_patients(db: Session, city: City) -> None:
    team = make_team(db, city)
    rid = make_resident(db, city, home=city.township_id, name="赵大海")
    enrolment = chronic.enrol(
        db, SYSTEM, resident_id=rid, program="hypertension", enrolled_on=date(2026, 1, 10)
    )
    fd.sign_contract(db, SYSTEM, resident_id=rid, team_id=team.id, package_code="CHRONIC")
    chronic.record_followup(
        db, SYSTEM, enrolment_id=enrolment.id, followed_on=date(2026, 5, 1), sbp=156, dbp=94
    )
    work = fd.worklist(db, city.users["gp_wang"], team.id)
    assert [i.resident_name for i in work.uncontrolled] == ["赵大海"]
    # revisit was due 2 weeks after 1 May
    assert any(i.due == date(2026, 5, 15) for i in work.overdue)


def test_fee_settlement_adds_up_to_the_pool_and_rewards_performance(
    db: Session, city: City
) -> None:
    good = make_team(db, city)
    idle = make_team(db, city, code="T-TEAM2")
    with frozen_clock(datetime(2026, 1, 2, 2, 0, tzinfo=UTC)):
        for n in range(3):
            for team in (good, idle):
                rid = make_resident(db, city, birth=date(1950, 1, 1 + n))
                enrolment = chronic.enrol(
                    db, SYSTEM, resident_id=rid, program="hypertension",
                    enrolled_on=date(2025, 12, 1),
                )  # fmt: skip
                fd.sign_contract(
                    db, SYSTEM, resident_id=rid, team_id=team.id, package_code="CHRONIC"
                )
                if team is good:
                    for month in (2, 4):
                        with frozen_clock(datetime(2026, month, 20, 2, tzinfo=UTC)):
                            chronic.record_followup(
                                db, SYSTEM, enrolment_id=enrolment.id,
                                followed_on=date(2026, month, 20), sbp=128, dbp=80,
                            )  # fmt: skip
    settlement = measures.settle_fees(
        db, active_profile(db), group_id=city.group_id, year=2026, on=date(2026, 6, 1)
    )
    assert settlement.pool_fen == 6 * 12000
    assert sum(t.total_fen for t in settlement.teams) == settlement.pool_fen
    by_team = {t.team_id: t for t in settlement.teams}
    assert by_team[good.id].prepaid_fen == 3 * 12000 * 8 // 10
    assert by_team[good.id].total_fen > by_team[idle.id].total_fen
    for t in settlement.teams:
        assert sum(m.fen for m in t.members) == t.total_fen


def test_measures_count_coverage_management_and_control(db: Session, city: City) -> None:
    team = make_team(db, city)
    signed = make_resident(db, city, birth=date(1950, 1, 1), home=city.township_id)
    unsigned = make_resident(db, city, birth=date(1990, 1, 1), home=city.township_id)
    e = chronic.enrol(
        db, SYSTEM, resident_id=signed, program="hypertension", enrolled_on=date(2026, 1, 2)
    )
    fd.sign_contract(db, SYSTEM, resident_id=signed, team_id=team.id, package_code="CHRONIC")
    gp_member = fd.team_members(db, team.id)[0].practitioner_id
    doctor = replace(city.users["gp_wang"], practitioner_id=gp_member)
    chronic.record_followup(
        db, doctor, enrolment_id=e.id, followed_on=date(2026, 5, 20), sbp=130, dbp=82
    )
    m = measures.group_measures(db, group_id=city.group_id, on=date(2026, 6, 1))
    assert (m.coverage.residents, m.coverage.contracted) == (2, 1)
    assert (m.coverage.elderly, m.coverage.elderly_contracted) == (1, 1)
    assert m.hypertension.managed == 1
    assert m.hypertension.controlled == 1
    assert m.hypertension.standard == 0  # 1 face-to-face follow-up of the 2 due by June
    assert m.teams[0].hypertension.managed == 1
    assert m.monthly["2026-05"] == (1, 1, 0)
    assert m.by_member == {gp_member: (1, 1)}
    assert unsigned


def test_set_based_fulfilment_agrees_with_the_per_contract_one(db: Session, city: City) -> None:
    team = make_team(db, city)
    with frozen_clock(datetime(2026, 1, 5, 2, tzinfo=UTC)):
        ids = []
        for n in range(3):
            rid = make_resident(db, city, birth=date(1950, 2, 1 + n))
            e = chronic.enrol(
                db, SYSTEM, resident_id=rid, program="diabetes", enrolled_on=date(2025, 6, 1)
            )
            contract = fd.sign_contract(
                db, SYSTEM, resident_id=rid, team_id=team.id, package_code="CHRONIC"
            )
            ids.append(contract.id)
            for month in range(2, 2 + 2 * n):
                with frozen_clock(datetime(2026, month, 3, 2, tzinfo=UTC)):
                    chronic.record_followup(
                        db, SYSTEM, enrolment_id=e.id, followed_on=date(2026, month, 3),
                        sbp=128, dbp=80, fasting_glucose=6.1,
                    )  # fmt: skip
    fd.record_service_delivery(
        db, SYSTEM, ids[0], service_code="health_check", delivered_on=date(2026, 5, 1)
    )
    on = date(2026, 6, 1)
    contracts = db.scalars(select(Contract).where(Contract.id.in_(ids))).all()
    per_contract = fd.fulfilment(db, contracts, on=on)
    set_based = fd.fulfilment_where(db, [Contract.id.in_(ids)], on=on)
    assert set_based == per_contract
    delivered = {cid: {s.code: s.delivered for s in st} for cid, st in set_based.items()}
    assert [delivered[i]["chronic_followup"] for i in ids] == [0, 2, 4]
    assert delivered[ids[0]]["health_check"] == 1
