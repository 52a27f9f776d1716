"""Chronic-care services on SQLite and PostgreSQL: enrolment, follow-ups with the rules
engine's decision, bad input refused with nothing written, long prescriptions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.chronic import service as chronic
from caregrid.chronic.errors import AlreadyEnrolled, NotEligible
from caregrid.chronic.models import FollowUp, LongPrescription
from caregrid.core.clock import frozen_clock
from caregrid.core.errors import Invalid, NotFound
from caregrid.record.models import Diagnosis, Encounter
from tests.conftest import City
from tests.familydoctor.builders import SYSTEM, make_resident

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> object:
    with frozen_clock(NOW):
        yield


def _followups(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(FollowUp)) or 0


def test_two_uncontrolled_follow_ups_in_a_row_call_for_referral_up(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    e = chronic.enrol(
        db, SYSTEM, resident_id=rid, program="hypertension", enrolled_on=date(2026, 1, 5)
    )
    gp = city.users["gp_wang"]
    _, first = chronic.record_followup(
        db, gp, enrolment_id=e.id, followed_on=date(2026, 5, 1), sbp=150, dbp=92,
        medication="氨氯地平 5mg qd",
    )  # fmt: skip
    assert first.action == "adjust_revisit"
    assert first.next_due == date(2026, 5, 15)
    followup, second = chronic.record_followup(
        db, gp, enrolment_id=e.id, followed_on=date(2026, 5, 14), sbp=148, dbp=91
    )
    assert second.action == "refer_up"
    assert "连续两次" in followup.clause
    _, third = chronic.record_followup(
        db, gp, enrolment_id=e.id, followed_on=date(2026, 5, 28), sbp=132, dbp=84
    )
    assert third.action == "routine" and third.controlled


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(followed_on=date(2026, 6, 2), sbp=130, dbp=80), "followed_on"),
        (dict(followed_on=date(2025, 12, 31), sbp=130, dbp=80), "followed_on"),
        (dict(followed_on=date(2026, 5, 1), sbp=400, dbp=80), "sbp"),
        (dict(followed_on=date(2026, 5, 1), sbp=130, dbp=10), "dbp"),
    ],
)
def test_bad_follow_ups_are_refused_and_nothing_is_written(
    db: Session, city: City, kwargs: dict[str, object], field: str
) -> None:
    rid = make_resident(db, city, home=city.township_id)
    e = chronic.enrol(
        db, SYSTEM, resident_id=rid, program="hypertension", enrolled_on=date(2026, 1, 5)
    )
    before = _followups(db)
    with pytest.raises(Invalid) as caught:
        chronic.record_followup(db, SYSTEM, enrolment_id=e.id, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status_code == 422
    assert caught.value.fields["field"] == field
    assert _followups(db) == before


def test_enrolment_needs_age_35_and_is_unique_per_programme(db: Session, city: City) -> None:
    young = make_resident(db, city, birth=date(1995, 1, 1), home=city.township_id)
    with pytest.raises(NotEligible):
        chronic.enrol(db, SYSTEM, resident_id=young, program="diabetes")
    rid = make_resident(db, city, home=city.township_id)
    chronic.enrol(db, SYSTEM, resident_id=rid, program="diabetes")
    with pytest.raises(AlreadyEnrolled) as caught:
        chronic.enrol(db, SYSTEM, resident_id=rid, program="diabetes")
    assert caught.value.status_code == 409


def test_outsider_cannot_record_a_follow_up(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    e = chronic.enrol(db, SYSTEM, resident_id=rid, program="hypertension")
    with pytest.raises(NotFound):
        chronic.record_followup(
            db, city.users["outsider_zhao"], enrolment_id=e.id, followed_on=date(2026, 5, 1),
            sbp=130, dbp=80,
        )  # fmt: skip


def test_registries_are_filled_from_shared_record_diagnoses(db: Session, city: City) -> None:
    ht = make_resident(db, city, home=city.township_id)
    dm = make_resident(db, city, home=city.township_id)
    child = make_resident(db, city, birth=date(2015, 1, 1), home=city.township_id)
    for rid, code in ((ht, "I10.x00"), (dm, "E11.900"), (child, "I10.x00"), (ht, "I11.000")):
        enc = Encounter(
            resident_id=rid, institution_id=city.township_id, group_id=city.group_id,
            encounter_class="outpatient", started_at=datetime(2026, 2, 1, tzinfo=UTC),
        )  # fmt: skip
        db.add(enc)
        db.flush()
        db.add(Diagnosis(encounter_id=enc.id, resident_id=rid, code=code, rank=1))
    db.flush()
    assert chronic.enrol_from_record(db, SYSTEM) == 2
    assert chronic.enrol_from_record(db, SYSTEM) == 0  # idempotent
    assert chronic.active_enrolment(db, ht, "hypertension") is not None
    assert chronic.active_enrolment(db, dm, "diabetes") is not None
    assert chronic.active_enrolment(db, child, "hypertension") is None


def test_long_prescription_limits(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    e = chronic.enrol(
        db, SYSTEM, resident_id=rid, program="hypertension", enrolled_on=date(2026, 1, 5)
    )
    with pytest.raises(Invalid) as caught:
        chronic.prescribe_long(
            db, SYSTEM, enrolment_id=e.id, drug_name="氨氯地平", drug_class="antihypertensive",
            weeks=13, assessment_note="稳定",
        )  # fmt: skip
    assert caught.value.fields["rule"] == "long_rx_max_12_weeks"
    with pytest.raises(Invalid) as caught:
        chronic.prescribe_long(
            db, SYSTEM, enrolment_id=e.id, drug_name="地西泮", drug_class="psychotropic_2", weeks=2
        )
    assert caught.value.fields["rule"] == "excluded_drug_class"
    # over 4 weeks needs a stable (controlled) patient
    with pytest.raises(Invalid) as caught:
        chronic.prescribe_long(
            db, SYSTEM, enrolment_id=e.id, drug_name="氨氯地平", drug_class="antihypertensive",
            weeks=12, assessment_note="稳定",
        )  # fmt: skip
    assert caught.value.fields["rule"] == "long_rx_requires_stable"
    assert db.scalar(select(func.count()).select_from(LongPrescription)) == 0
    chronic.record_followup(
        db, SYSTEM, enrolment_id=e.id, followed_on=date(2026, 5, 1), sbp=128, dbp=78
    )
    rx = chronic.prescribe_long(
        db, SYSTEM, enrolment_id=e.id, drug_name="氨氯地平", drug_class="antihypertensive",
        weeks=12, assessment_note="连续达标，依从性好",
    )  # fmt: skip
    assert rx.weeks == 12


def test_lost_patients_count_as_not_controlled(db: Session, city: City) -> None:
    rid = make_resident(db, city, home=city.township_id)
    e = chronic.enrol(
        db, SYSTEM, resident_id=rid, program="hypertension", enrolled_on=date(2025, 3, 1)
    )
    with frozen_clock(datetime(2025, 4, 1, 2, tzinfo=UTC)):
        chronic.record_followup(
            db, SYSTEM, enrolment_id=e.id, followed_on=date(2025, 4, 1), sbp=120, dbp=70
        )
    [status] = chronic.program_statuses(db, on=date(2026, 6, 1), resident_ids=[rid])
    assert status.lost and not status.controlled
