"""Booking slots and beds: reserved share, holds that expire (clock-controlled), release of
unused reserved slots, no double booking (the database refuses it too), admission priority."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caregrid.capacity import service as capacity
from caregrid.capacity.errors import (
    HoldExpired,
    NoBedFree,
    ReservedForPrimaryCare,
    SlotInPast,
    SlotTaken,
)
from caregrid.capacity.models import Appointment, Bed, Registration, Slot
from caregrid.core.clock import frozen_clock
from caregrid.profiles.service import set_active_profile
from tests.conftest import City
from tests.referral.factories import T0, make_clinic, make_resident, slot_status


def test_linyi_reserves_a_fifth_of_the_slots_for_primary_care(db: Session, city: City) -> None:
    with frozen_clock(T0):
        clinic = make_clinic(db, city, slots=10)
    assert len(clinic.reserved_ids) == 2
    assert len(clinic.general_ids) == 8


def test_zhongwei_reserves_at_least_a_third_of_slots_and_a_quarter_of_beds(
    db: Session, city: City
) -> None:
    set_active_profile(db, "zhongwei")
    with frozen_clock(T0):
        clinic = make_clinic(db, city, slots=10)
        pool = capacity.create_bed_pool(
            db, capacity.Actor.system(), institution_id=city.lead_id, ward="心内一病区", beds=10
        )
    assert len(clinic.reserved_ids) == 4
    reserved_beds = db.scalar(
        select(func.count()).where(Bed.bed_pool_id == pool.id, Bed.pool == "reserved")
    )
    assert reserved_beds == 3


def test_a_booked_slot_cannot_be_booked_again(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    first, second = make_resident(db, city, seq=1), make_resident(db, city, seq=2, name="李四")
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        slot_id = clinic.general_ids[0]
        capacity.book_slot(db, gp, slot_id=slot_id, resident_id=first)
        with pytest.raises(SlotTaken):
            capacity.book_slot(db, gp, slot_id=slot_id, resident_id=second)
    assert slot_status(db, slot_id) == "booked"
    assert db.scalar(select(func.count()).where(Appointment.slot_id == slot_id)) == 1


def test_the_database_refuses_a_second_live_appointment_on_one_slot(
    db: Session, city: City
) -> None:
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        booked = capacity.book_slot(db, gp, slot_id=clinic.general_ids[0], resident_id=resident)
    db.commit()
    duplicate = Appointment(
        slot_id=booked.slot_id,
        active_slot_id=booked.slot_id,
        resident_id=resident,
        group_id=city.group_id,
        institution_id=city.lead_id,
        pool="general",
        status="booked",
    )
    db.add(duplicate)
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()


def test_reserved_slots_are_only_for_primary_care_until_released(db: Session, city: City) -> None:
    specialist = city.users["specialist_li"]
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        reserved = clinic.reserved_ids[0]
        # the specialist has no care relationship yet: book via the system actor's check
        with pytest.raises(ReservedForPrimaryCare):
            capacity.book_slot(
                db, specialist, slot_id=reserved, resident_id=resident, access_checked=True
            )
        assert slot_status(db, reserved) == "free"
        appointment = capacity.book_slot(db, gp, slot_id=reserved, resident_id=resident)
    assert appointment.pool == "reserved"


def test_unused_reserved_slots_are_released_before_the_session(db: Session, city: City) -> None:
    specialist = city.users["specialist_li"]
    resident = make_resident(db, city)
    start = T0 + timedelta(days=2)
    with frozen_clock(T0):
        clinic = make_clinic(db, city, start=start)
    # Linyi: 24 hours before the session (profile capacity.reserved_release_hours_before)
    coordinator = city.users["coordinator_chen"]
    with frozen_clock(start - timedelta(hours=25)):
        assert capacity.release_reserved(db, coordinator) == 0
    # the last reserved slot starts 75 minutes into the session
    with frozen_clock(start - timedelta(hours=22)):
        assert capacity.release_reserved(db, coordinator) == len(clinic.reserved_ids)
        appointment = capacity.book_slot(
            db,
            specialist,
            slot_id=clinic.reserved_ids[0],
            resident_id=resident,
            access_checked=True,
        )
    assert appointment.pool == "general"
    released = db.scalar(select(func.count()).where(Slot.released_at.is_not(None)))
    assert released == len(clinic.reserved_ids)


def test_a_hold_keeps_the_slot_until_it_expires(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    coordinator = city.users["coordinator_chen"]
    first, second = make_resident(db, city, seq=1), make_resident(db, city, seq=2, name="李四")
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        slot_id = clinic.general_ids[0]
        _, token = capacity.hold_slot(db, gp, slot_id)
        with pytest.raises(SlotTaken):
            capacity.book_slot(
                db, coordinator, slot_id=slot_id, resident_id=second, access_checked=True
            )
    # ten minutes later the hold has lapsed: someone else may take the slot
    with frozen_clock(T0 + timedelta(minutes=11)):
        capacity.book_slot(
            db, coordinator, slot_id=slot_id, resident_id=second, access_checked=True
        )
        with pytest.raises(HoldExpired):
            capacity.book_slot(db, gp, slot_id=slot_id, resident_id=first, hold_token=token)


def test_the_holder_books_with_the_token(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        _, token = capacity.hold_slot(db, gp, clinic.general_ids[1])
    with frozen_clock(T0 + timedelta(minutes=5)):
        appointment = capacity.book_slot(
            db, gp, slot_id=clinic.general_ids[1], resident_id=resident, hold_token=token
        )
    assert appointment.status == "booked"


def test_a_past_slot_cannot_be_booked(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    with frozen_clock(T0 + timedelta(days=3)), pytest.raises(SlotInPast):
        capacity.book_slot(db, gp, slot_id=clinic.general_ids[0], resident_id=resident)


def test_cancelling_gives_the_slot_back(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        appointment = capacity.book_slot(
            db, gp, slot_id=clinic.general_ids[0], resident_id=resident
        )
        capacity.cancel_appointment(db, gp, appointment.id)
        assert slot_status(db, clinic.general_ids[0]) == "free"
        again = capacity.book_slot(db, gp, slot_id=clinic.general_ids[0], resident_id=resident)
    assert again.id != appointment.id


def test_direct_booking_records_the_registration_fee(db: Session, city: City) -> None:
    gp = city.users["gp_wang"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        appointment = capacity.book_slot(
            db, gp, slot_id=clinic.general_ids[0], resident_id=resident
        )
    registration = db.get(Registration, appointment.registration_id)
    assert registration is not None
    assert (registration.fee_fen, registration.carried) == (5000, False)


def test_outsider_cannot_see_or_book_another_groups_slots(db: Session, city: City) -> None:
    outsider = city.users["outsider_zhao"]
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        assert capacity.find_slots(db, outsider) == []
        with pytest.raises(capacity.SlotNotFound):
            capacity.hold_slot(db, outsider, clinic.general_ids[0])


def test_referred_contracted_patients_get_beds_first(db: Session, city: City) -> None:
    system = capacity.Actor.system()
    residents = [make_resident(db, city, seq=i, name=f"患者{i}") for i in range(1, 4)]
    with frozen_clock(T0):
        pool = capacity.create_bed_pool(
            db, system, institution_id=city.lead_id, ward="心内一病区", beds=2
        )
        routine = capacity.request_admission(
            db, system, bed_pool_id=pool.id, resident_id=residents[0]
        )
    with frozen_clock(T0 + timedelta(hours=1)):
        referred = capacity.request_admission(
            db, system, bed_pool_id=pool.id, resident_id=residents[1], via_referral=True
        )
    with frozen_clock(T0 + timedelta(hours=2)):
        contracted = capacity.request_admission(
            db,
            system,
            bed_pool_id=pool.id,
            resident_id=residents[2],
            via_referral=True,
            contracted=True,
        )
        queue = [r.id for r in capacity.admission_queue(db, system, pool.id)]
        assert queue == [contracted.id, referred.id, routine.id]
        first = capacity.admit_next(db, system, pool.id)
        second = capacity.admit_next(db, system, pool.id)
        assert {first.resident_id, second.resident_id} == {residents[1], residents[2]}
        with pytest.raises(NoBedFree):
            capacity.admit_next(db, system, pool.id)


def test_a_booking_is_audited_with_its_care_basis_and_a_refusal_too(
    db: Session, city: City
) -> None:
    from caregrid.audit.models import AuditEntry
    from caregrid.core.errors import NotFound

    gp, specialist = city.users["gp_wang"], city.users["specialist_li"]
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
        capacity.book_slot(db, gp, slot_id=clinic.general_ids[0], resident_id=resident)
        booked = db.scalars(select(AuditEntry).where(AuditEntry.resource == "Appointment")).all()
        assert [(e.username, e.outcome, e.basis) for e in booked] == [
            ("gp_wang", "allowed", "home_institution")
        ]
        with pytest.raises(NotFound):  # no care relationship with the resident
            capacity.book_slot(db, specialist, slot_id=clinic.general_ids[1], resident_id=resident)
        denied = db.scalars(
            select(AuditEntry).where(
                AuditEntry.resource == "Appointment", AuditEntry.outcome == "denied"
            )
        ).all()
        assert [e.username for e in denied] == ["specialist_li"]
    assert slot_status(db, clinic.general_ids[1]) == "free"


def test_a_lead_hospital_specialist_on_a_family_doctor_team_may_book_reserved_slots(
    db: Session, city: City
) -> None:
    """001 §三(三)1: reserved capacity goes to primary members *and* family-doctor teams; a
    team's specialist works at the lead hospital (the answer comes from familydoctor through
    a registered hook)."""
    from dataclasses import replace

    from caregrid.familydoctor import service as fd
    from caregrid.familydoctor.models import TeamMember
    from tests.familydoctor.builders import make_practitioner, make_team

    resident = make_resident(db, city)
    with frozen_clock(T0):
        team = make_team(db, city)
        clinic = make_clinic(db, city)
        # the team's patient: its members see her record (care relationship "contract")
        fd.sign_contract(
            db, capacity.Actor.system(), resident_id=resident, team_id=team.id, package_code="BASIC"
        )
    on_team = db.scalars(
        select(TeamMember.practitioner_id).where(
            TeamMember.team_id == team.id, TeamMember.role == "specialist"
        )
    ).one()
    member = replace(city.users["specialist_li"], practitioner_id=on_team)
    colleague = replace(city.users["specialist_li"], practitioner_id=make_practitioner(db, "赵敏"))
    assert capacity.actor_may_use_reserved(db, member)
    assert not capacity.actor_may_use_reserved(db, colleague)
    with frozen_clock(T0):
        with pytest.raises(ReservedForPrimaryCare):
            capacity.hold_slot(db, colleague, clinic.reserved_ids[0])
        _, token = capacity.hold_slot(db, member, clinic.reserved_ids[0])
        booked = capacity.book_slot(
            db,
            member,
            slot_id=clinic.reserved_ids[0],
            resident_id=resident,
            hold_token=token,
        )
    assert booked.pool == "reserved"
    team.active = False
    db.flush()
    assert not capacity.actor_may_use_reserved(db, member)  # only active teams
