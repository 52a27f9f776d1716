"""The periodic jobs on a clock-advanced city: unused reserved slots are released to the
general pool at the profile's lead time, unanswered referrals expire and are escalated to the
coordinator (their reserved slot freed and released with the rest), lapsed holds are cleared;
every change is audited under the system actor. Through the service, the CLI and the web
server's in-process loop."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from caregrid.audit.models import AuditEntry
from caregrid.capacity import service as capacity
from caregrid.capacity.models import AdmissionRequest, Slot
from caregrid.core.clock import frozen_clock
from caregrid.jobs.service import JOBS_ACTOR, run_once
from caregrid.referral import service as referrals
from caregrid.referral.models import Referral
from caregrid.referral.schemas import ReferralCreate
from caregrid.registry.service import install_default_catalogs
from tests.conftest import City
from tests.referral.factories import T0, Clinic, cardiology, make_clinic, make_resident

# Linyi: reserved slots are released 24 h before the session, referrals expire after 48 h.
SESSION = T0 + timedelta(hours=72)


def refer_with_reserved_slot(db: Session, city: City, clinic: Clinic) -> int:
    install_default_catalogs(db)
    resident = make_resident(db, city)
    referral = referrals.create_referral(
        db,
        city.users["gp_wang"],
        ReferralCreate(
            resident_id=resident,
            to_institution_id=city.lead_id,
            to_department_id=cardiology(db, city),
            diagnosis_code="I21.0",
            summary="胸痛",
            slot_id=clinic.reserved_ids[0],
        ),
    )
    return referral.id


def reserved_left(db: Session, clinic: Clinic) -> int:
    return db.scalar(
        select(func.count()).where(Slot.id.in_(clinic.slot_ids), Slot.pool == "reserved")
    )


def test_a_pass_expires_overdue_referrals_and_releases_reserved_slots(
    db: Session, city: City
) -> None:
    with frozen_clock(T0):
        clinic = make_clinic(db, city, start=SESSION)
        rid = refer_with_reserved_slot(db, city, clinic)
        assert (run_once(db).expired_referrals, run_once(db).released_slots) == (0, 0)
    with frozen_clock(T0 + timedelta(hours=47)):  # neither limit reached yet
        early = run_once(db)
    assert (early.expired_referrals, early.released_slots) == (0, 0)
    assert reserved_left(db, clinic) == 2
    with frozen_clock(T0 + timedelta(hours=50)):  # the whole session is within 24 h
        late = run_once(db)
        again = run_once(db)
    assert late.expired_referrals == 1
    # both reserved slots: the unused one and the one the expired referral gave back
    assert late.released_slots == 2
    assert (again.expired_referrals, again.released_slots) == (0, 0)
    referral = db.get(Referral, rid)
    assert referral is not None
    assert referral.status == "expired" and referral.escalated_at is not None
    assert reserved_left(db, clinic) == 0
    released = db.scalars(select(Slot).where(Slot.id.in_(clinic.reserved_ids))).all()
    assert {s.status for s in released} == {"free"}
    assert all(s.released_at is not None for s in released)
    audited = db.scalars(
        select(AuditEntry.detail).where(AuditEntry.username == JOBS_ACTOR.username)
    ).all()
    assert any('"released": 2' in (d or "") for d in audited)
    assert any('"action": "expire"' in (d or "") for d in audited)


def test_an_expired_inpatient_referral_leaves_the_admission_queue(db: Session, city: City) -> None:
    install_default_catalogs(db)
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        pool = capacity.create_bed_pool(
            db, JOBS_ACTOR, institution_id=city.lead_id, ward="心内一病区", beds=4
        )
        referral = referrals.create_referral(
            db,
            gp,
            ReferralCreate(
                resident_id=resident,
                to_institution_id=city.lead_id,
                care_type="inpatient",
                diagnosis_code="I21.0",
                summary="胸痛",
            ),
        )
        referrals.schedule_bed(db, gp, referral.id, pool.id)
        assert [q.resident_id for q in capacity.admission_queue(db, JOBS_ACTOR, pool.id)] == [
            resident
        ]
    with frozen_clock(T0 + timedelta(hours=49)):
        assert run_once(db).expired_referrals == 1
    assert list(capacity.admission_queue(db, JOBS_ACTOR, pool.id)) == []
    request = db.get(AdmissionRequest, referral.admission_request_id)
    assert request is not None and request.status == "cancelled"


def test_a_pass_clears_lapsed_holds_only(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    with frozen_clock(T0):
        clinic = make_clinic(db, city, start=SESSION)
        capacity.hold_slot(db, gp, clinic.general_ids[0])
    with frozen_clock(T0 + timedelta(minutes=5)):
        capacity.hold_slot(db, gp, clinic.general_ids[1])
        assert run_once(db).holds_dropped == 0
    with frozen_clock(T0 + timedelta(minutes=12)):
        assert run_once(db).holds_dropped == 1
    statuses = dict(
        db.execute(select(Slot.id, Slot.status).where(Slot.id.in_(clinic.general_ids[:2]))).all()
    )
    assert statuses == {clinic.general_ids[0]: "free", clinic.general_ids[1]: "held"}


def _city_db(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/jobs.db"


def test_the_cli_runs_one_pass_and_reports_it(tmp_path: object) -> None:
    from caregrid.cli import app
    from caregrid.core.db import unit_of_work
    from caregrid.core.migrate import upgrade
    from tests.conftest import build_city
    from tests.support import use_database

    with use_database(_city_db(tmp_path)) as engine:
        upgrade(engine)
        with frozen_clock(T0), unit_of_work(engine) as session:
            city = build_city(session)
            clinic = make_clinic(session, city, start=SESSION)
        with frozen_clock(T0 + timedelta(hours=50)):
            result = CliRunner().invoke(app, ["jobs", "run", "--once"])
        with unit_of_work(engine) as session:
            left = reserved_left(session, clinic)
    assert result.exit_code == 0, result.output
    assert "释放预留号源" in result.output and "超时转诊" in result.output
    assert left == 0


def test_the_web_server_runs_the_jobs_when_enabled(tmp_path: object) -> None:
    from fastapi.testclient import TestClient

    from caregrid.app import create_app
    from caregrid.core.db import unit_of_work
    from caregrid.core.migrate import upgrade
    from tests.conftest import build_city
    from tests.support import use_database

    with use_database(_city_db(tmp_path)) as engine:
        upgrade(engine)
        with frozen_clock(T0), unit_of_work(engine) as session:
            city = build_city(session)
            clinic = make_clinic(session, city, start=SESSION)
        with frozen_clock(T0 + timedelta(hours=50)):
            with TestClient(create_app()):  # off by default (and in tests)
                time.sleep(0.5)
            with unit_of_work(engine) as session:
                assert reserved_left(session, clinic) == 2
            with TestClient(create_app(jobs=True)):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    with unit_of_work(engine) as session:
                        if reserved_left(session, clinic) == 0:
                            break
                    time.sleep(0.1)
        with unit_of_work(engine) as session:
            assert reserved_left(session, clinic) == 0
