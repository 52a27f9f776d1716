"""The referral loop through the API: a township GP refers up with a reserved slot booked in
the same step, the specialist accepts, the patient arrives without a second registration fee,
feedback flows back, the specialist refers down with a care plan. Illegal transitions are 409,
outsiders get 404, time limits are clock-controlled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.capacity.models import Appointment, Registration, Slot
from caregrid.core.actor import Actor
from caregrid.core.clock import frozen_clock
from caregrid.familydoctor import service as fd
from caregrid.familydoctor.models import TeamTask
from caregrid.record.models import Encounter, Result
from caregrid.referral.models import CareEpisode, Referral, ReferralEvent
from caregrid.registry.models import Department
from caregrid.registry.service import install_default_catalogs
from tests.conftest import City, login
from tests.familydoctor.builders import make_team
from tests.referral.factories import T0, cardiology, make_clinic, make_resident


@pytest.fixture
def setup(db: Session, city: City) -> dict[str, Any]:
    install_default_catalogs(db)
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city, slots=10)
    db.commit()
    return {"resident": resident, "clinic": clinic, "dept": cardiology(db, city)}


def up_body(city: City, setup: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "resident_id": setup["resident"],
        "to_institution_id": city.lead_id,
        "to_department_id": setup["dept"],
        "diagnosis_code": "I21.0",  # acute MI: outside the primary catalogue
        "diagnosis_name": "急性前壁心肌梗死",
        "summary": "胸痛 3 小时",
    }
    body.update(extra)
    return body


def test_the_whole_loop_up_and_down(
    client: TestClient, db: Session, city: City, setup: dict[str, Any]
) -> None:
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    outsider = login(client, "outsider_zhao")
    resident = setup["resident"]
    with frozen_clock(T0):
        team = make_team(db, city)
        fd.sign_contract(
            db, Actor.system(), resident_id=resident, team_id=team.id, package_code="BASIC"
        )
        db.commit()
        # the specialist has no care relationship with the resident yet
        assert client.get(f"/api/v1/residents/{resident}/timeline", headers=sp).status_code == 404
        slots = client.get(f"/api/v1/slots?institution_id={city.lead_id}", headers=gp).json()
        reserved = [s for s in slots if s["pool"] == "reserved"]
        assert reserved and all(s["bookable"] for s in slots)
        created = client.post(
            "/api/v1/referrals", json=up_body(city, setup, slot_id=reserved[0]["id"]), headers=gp
        )
        assert created.status_code == 201, created.text
        referral = created.json()
        assert referral["status"] == "submitted"
        assert referral["direction"] == "up"
        assert referral["reason_code"] == "outside_catalogue"
        assert referral["contracted"] and referral["priority"] == "priority"  # 001 §三(三)1
        assert referral["appointment_id"] is not None
        rid = referral["id"]

        # the specialist now sees the referral and the resident; an outsider sees neither
        assert client.get(f"/api/v1/residents/{resident}/timeline", headers=sp).status_code == 200
        assert [r["id"] for r in client.get("/api/v1/referrals/incoming", headers=sp).json()] == [
            rid
        ]
        assert client.get(f"/api/v1/referrals/{rid}", headers=outsider).status_code == 404
        assert client.post(f"/api/v1/referrals/{rid}/accept", headers=outsider).status_code == 404
        assert (
            client.get(f"/api/v1/residents/{resident}/timeline", headers=outsider).status_code
            == 404
        )

    with frozen_clock(T0 + timedelta(hours=3)):
        accepted = client.post(f"/api/v1/referrals/{rid}/accept", headers=sp)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "scheduled"  # the slot was booked with the referral
        again = client.post(f"/api/v1/referrals/{rid}/accept", headers=sp)
        assert again.status_code == 409
        assert "不能执行" in again.json()["detail"]

    with frozen_clock(T0 + timedelta(days=2)):
        sp = login(client, "specialist_li")  # sessions expire on the frozen clock too
        arrived = client.post(f"/api/v1/referrals/{rid}/arrive", headers=sp)
        assert arrived.status_code == 200, arrived.text
        done = client.post(
            f"/api/v1/referrals/{rid}/complete",
            json={"feedback": "冠脉造影示前降支狭窄，已行 PCI，建议术后康复"},
            headers=sp,
        )
        assert done.status_code == 200, done.text

    # one registration in the group for the visit, and no second fee (001 §三(二)5)
    registrations = db.scalars(select(Registration).where(Registration.resident_id == resident))
    assert [(r.fee_fen, r.carried) for r in registrations] == [(0, True)]
    arrival = db.get(Referral, rid)
    assert arrival is not None and arrival.arrival_encounter_id is not None
    encounter = db.get(Encounter, arrival.arrival_encounter_id)
    assert encounter is not None and encounter.institution_id == city.lead_id

    # feedback back to the referring doctor
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    seen = client.get(f"/api/v1/referrals/{rid}", headers=gp).json()
    assert seen["status"] == "completed" and "PCI" in seen["feedback"]
    history = client.get(f"/api/v1/referrals/{rid}/history", headers=gp).json()
    assert [h["to_status"] for h in history] == [
        "draft",
        "submitted",
        "accepted",
        "scheduled",
        "arrived",
        "completed",
    ]
    assert {h["username"] for h in history} == {"gp_wang", "specialist_li"}

    with frozen_clock(T0 + timedelta(days=9)):
        gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
        down = client.post(
            "/api/v1/referrals",
            json={
                "resident_id": resident,
                "to_institution_id": city.township_id,
                "diagnosis_code": "I21.0",
                "down_category": "postoperative_recovery",
                "care_plan": "阿司匹林+氯吡格雷双抗 12 个月；每 2 周随访血压、心率",
                "parent_id": rid,
            },
            headers=sp,
        )
        assert down.status_code == 201, down.text
        down_id = down.json()["id"]
        assert down.json()["direction"] == "down"
        incoming = client.get("/api/v1/referrals/incoming", headers=gp).json()
        assert [r["id"] for r in incoming] == [down_id]
        assert client.post(f"/api/v1/referrals/{down_id}/accept", headers=gp).status_code == 200
    # the family-doctor team has the down-referral as a task, with the care plan
    task = db.get(TeamTask, down.json()["team_task_id"])
    assert task is not None and task.team_id == team.id
    assert task.kind == "下转随访" and "双抗" in task.detail
    assert task.source == f"referral:{down_id}"


def test_down_referral_needs_an_eligible_category_and_a_care_plan(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    sp = login(client, "specialist_li")
    # the specialist needs a care relationship: an encounter at the lead hospital
    db.add(
        Encounter(
            resident_id=setup["resident"],
            institution_id=city.lead_id,
            group_id=city.group_id,
            encounter_class="inpatient",
            started_at=T0,
        )
    )
    db.commit()
    body = {"resident_id": setup["resident"], "to_institution_id": city.township_id}
    no_category = client.post("/api/v1/referrals", json=body, headers=sp)
    assert no_category.status_code == 422
    assert no_category.json()["field"] == "down_category"
    no_plan = client.post(
        "/api/v1/referrals", json={**body, "down_category": "acute_recovery"}, headers=sp
    )
    assert no_plan.status_code == 422 and no_plan.json()["field"] == "care_plan"
    outside = client.post(
        "/api/v1/referrals",
        json={
            **body,
            "down_category": "stable_chronic",
            "diagnosis_code": "C34.1",
            "care_plan": "x",
        },
        headers=sp,
    )
    assert outside.status_code == 422
    assert db.scalar(select(func.count()).select_from(Referral)) == 0


def test_within_catalogue_needs_a_reason_unless_a_follow_up_triggers_it(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp = login(client, "gp_wang")
    body = up_body(city, setup, diagnosis_code="I10", diagnosis_name="原发性高血压")
    with frozen_clock(T0):
        advice = client.post(
            "/api/v1/referrals/advice",
            json={"resident_id": setup["resident"], "diagnosis_code": "I10"},
            headers=gp,
        ).json()
        assert advice == {"recommended": False, "within_catalogue": True, "reasons": []}
        refused = client.post("/api/v1/referrals", json=body, headers=gp)
        assert refused.status_code == 422 and refused.json()["field"] == "reason_text"
        # two uncontrolled follow-ups in a row in the shared record
        for days, (sbp, dbp) in [(30, (152, 94)), (14, (156, 96))]:
            for code, value in (("8480-6", sbp), ("8462-4", dbp)):
                db.add(
                    Result(
                        resident_id=setup["resident"],
                        institution_id=city.township_id,
                        group_id=city.group_id,
                        category="vital",
                        item_code=code,
                        item_name="血压",
                        value_num=value,
                        observed_at=T0 - timedelta(days=days),
                    )
                )
        db.commit()
        advice = client.post(
            "/api/v1/referrals/advice",
            json={"resident_id": setup["resident"], "diagnosis_code": "I10"},
            headers=gp,
        ).json()
        assert advice["recommended"] and advice["reasons"][0]["code"] == "chronic_uncontrolled"
        created = client.post("/api/v1/referrals", json=body, headers=gp)
        assert created.status_code == 201, created.text
        assert created.json()["reason_code"] == "chronic_uncontrolled"


def test_rejecting_needs_a_reason_and_gives_the_slot_back(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    slot_id = setup["clinic"].general_ids[0]
    with frozen_clock(T0):
        rid = client.post(
            "/api/v1/referrals", json=up_body(city, setup, slot_id=slot_id), headers=gp
        ).json()["id"]
        blank = client.post(f"/api/v1/referrals/{rid}/reject", json={"reason": " "}, headers=sp)
        assert blank.status_code == 422
        assert db.get(Referral, rid).status == "submitted"  # type: ignore[union-attr]
        rejected = client.post(
            f"/api/v1/referrals/{rid}/reject",
            json={"reason": "本院无床位，建议转省立医院"},
            headers=sp,
        )
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    db.expire_all()
    assert db.scalar(select(Slot.status).where(Slot.id == slot_id)) == "free"
    assert (
        db.scalar(select(Appointment.active_slot_id).where(Appointment.slot_id == slot_id)) is None
    )


def test_illegal_transitions_are_409_and_change_nothing(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    with frozen_clock(T0):
        rid = client.post("/api/v1/referrals", json=up_body(city, setup), headers=gp).json()["id"]
        events = db.scalar(select(func.count()).where(ReferralEvent.referral_id == rid))
        for action, body in [("arrive", None), ("complete", {"feedback": "x"})]:
            response = client.post(f"/api/v1/referrals/{rid}/{action}", json=body, headers=sp)
            assert response.status_code == 409, response.text
            assert response.json()["error"] == "IllegalTransition"
        assert client.post(f"/api/v1/referrals/{rid}/cancel", headers=gp).status_code == 200
        assert client.post(f"/api/v1/referrals/{rid}/accept", headers=sp).status_code == 409
    assert db.scalar(select(func.count()).where(ReferralEvent.referral_id == rid)) == events + 1


def test_an_unanswered_referral_expires_and_is_escalated(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    coordinator = login(client, "coordinator_chen")
    with frozen_clock(T0):
        rid = client.post("/api/v1/referrals", json=up_body(city, setup), headers=gp).json()["id"]
    # Linyi: 48 hours (profile referral.response_time_limit_hours)
    with frozen_clock(T0 + timedelta(hours=49)):
        sp, coordinator = login(client, "specialist_li"), login(client, "coordinator_chen")
        late = client.post(f"/api/v1/referrals/{rid}/accept", headers=sp)
        assert late.status_code == 409 and late.json()["error"] == "ReferralExpired"
        board = client.get("/api/v1/referrals/monitoring", headers=coordinator).json()
        assert board["overdue_ids"] == [rid]
        swept = client.post("/api/v1/referrals/expire-overdue", headers=coordinator)
        assert swept.json() == {"expired": 1}
        referral = client.get(f"/api/v1/referrals/{rid}", headers=coordinator).json()
        assert referral["status"] == "expired" and referral["escalated_at"] is not None
        board = client.get("/api/v1/referrals/monitoring", headers=coordinator).json()
        assert board["escalated_ids"] == [rid]


def test_referral_outside_the_group_is_recorded(
    client: TestClient, city: City, setup: dict[str, Any]
) -> None:
    gp = login(client, "gp_wang")
    with frozen_clock(T0):
        response = client.post(
            "/api/v1/referrals",
            json={
                "resident_id": setup["resident"],
                "external_institution": "山东省立医院",
                "external_kind": "provincial",
                "diagnosis_code": "C34.1",
            },
            headers=gp,
        )
    assert response.status_code == 201, response.text
    assert response.json()["to_institution_id"] is None
    assert response.json()["external_institution"] == "山东省立医院"


def test_referring_a_resident_without_a_care_relationship_is_404(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    sp = login(client, "specialist_li")  # no encounter, no referral yet
    response = client.post(
        "/api/v1/referrals",
        json={
            "resident_id": setup["resident"],
            "to_institution_id": city.township_id,
            "down_category": "acute_recovery",
            "care_plan": "x",
        },
        headers=sp,
    )
    assert response.status_code == 404
    assert db.scalar(select(func.count()).select_from(Referral)) == 0


def test_an_inpatient_referral_and_its_down_referral_share_one_episode(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp, sp = login(client, "gp_wang"), login(client, "specialist_li")
    with frozen_clock(T0):
        up = client.post(
            "/api/v1/referrals", json=up_body(city, setup, care_type="inpatient"), headers=gp
        ).json()
        down = client.post(
            "/api/v1/referrals",
            json={
                "resident_id": setup["resident"],
                "to_institution_id": city.township_id,
                "care_type": "inpatient",
                "down_category": "critical_stable",
                "care_plan": "继续康复治疗",
                "parent_id": up["id"],
            },
            headers=sp,
        ).json()
    assert up["episode_id"] is not None and down["episode_id"] == up["episode_id"]
    assert db.scalar(select(func.count()).select_from(CareEpisode)) == 1


def test_referral_department_must_belong_to_the_target(
    client: TestClient, city: City, setup: dict[str, Any], db: Session
) -> None:
    gp = login(client, "gp_wang")
    town_dept = db.scalar(
        select(Department.id).where(Department.institution_id == city.township_id)
    )
    response = client.post(
        "/api/v1/referrals", json=up_body(city, setup, to_department_id=town_dept), headers=gp
    )
    assert response.status_code == 422 and response.json()["field"] == "to_department_id"


def test_admitting_a_referred_patient_from_the_ward_queue_registers_her_arrival(
    db: Session, city: City
) -> None:
    """The ward's staff admit the first of the queue: the inpatient referral behind it is
    answered and arrives, with its inpatient encounter at the lead hospital; a routine
    admission changes no referral."""
    from caregrid.capacity import service as capacity
    from caregrid.referral import service as referrals
    from caregrid.referral.schemas import ReferralCreate

    install_default_catalogs(db)
    gp, sp = city.users["gp_wang"], city.users["specialist_li"]
    resident = make_resident(db, city)
    other = make_resident(db, city, seq=2, name="李四")
    with frozen_clock(T0):
        pool = capacity.create_bed_pool(
            db, Actor.system(), institution_id=city.lead_id, ward="心内一病区", beds=4
        )
        capacity.request_admission(db, Actor.system(), bed_pool_id=pool.id, resident_id=other)
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
    with frozen_clock(T0 + timedelta(hours=3)):
        stay = capacity.admit_next(db, sp, pool.id)
    assert stay.resident_id == resident  # referred before routine
    assert referral.status == "arrived" and referral.accepted_at is not None
    encounter = db.get(Encounter, referral.arrival_encounter_id)
    assert encounter is not None
    assert (encounter.institution_id, encounter.encounter_class) == (city.lead_id, "inpatient")
    actions = db.scalars(
        select(ReferralEvent.action).where(ReferralEvent.referral_id == referral.id)
    ).all()
    assert actions[-3:] == ["accept", "schedule", "arrive"]
    with frozen_clock(T0 + timedelta(hours=4)):
        routine = capacity.admit_next(db, sp, pool.id)
    assert routine.resident_id == other
