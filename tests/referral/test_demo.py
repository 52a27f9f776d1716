"""The demo's capacity and referral steps: consistent with the shared record, realistic
outcomes, the profile's reserved share, deterministic for the seed."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.capacity.models import AdmissionRequest, Bed, BedStay, Slot
from caregrid.capacity.service import ward_views
from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI
from caregrid.core.db import make_engine, new_session
from caregrid.demo.builder import DemoReport, build_demo
from caregrid.familydoctor.models import Contract
from caregrid.record.models import Encounter
from caregrid.referral import monitoring
from caregrid.referral.models import Referral, ReferralEvent

REFERENCE = date(2026, 3, 2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Session, DemoReport]:
    path = tmp_path_factory.mktemp("refdemo") / "demo.db"
    report = build_demo(
        make_engine(f"sqlite:///{path}"),
        profile_id="linyi",
        residents=600,
        seed=11,
        password="demo-pass-123",
        reference_date=REFERENCE,
    )
    return new_session(make_engine(f"sqlite:///{path}")), report


def test_referrals_go_both_ways_with_realistic_outcomes(demo: tuple[Session, DemoReport]) -> None:
    session, report = demo
    assert report.referrals is not None
    directions = Counter(session.scalars(select(Referral.direction)))
    assert directions["up"] > directions["down"] > 0
    statuses = Counter(session.scalars(select(Referral.status)))
    assert statuses["completed"] > statuses["rejected"] > 0
    assert statuses["expired"] > 0 and statuses["arrived"] > 0  # escalated, and unclosed
    assert (
        session.scalar(select(func.count()).where(Referral.external_institution.is_not(None)))
        == report.referrals.external
    )
    # every referral has its history, starting with its creation
    oldest = session.scalar(select(func.min(Referral.id)))
    first = session.scalars(
        select(ReferralEvent.action)
        .where(ReferralEvent.referral_id == oldest)
        .order_by(ReferralEvent.at, ReferralEvent.id)
    ).first()
    assert first == "create"


def test_an_arrived_upward_referral_leads_to_the_encounter_at_its_target(
    demo: tuple[Session, DemoReport],
) -> None:
    session, _ = demo
    rows = session.execute(
        select(Referral.to_institution_id, Referral.resident_id, Encounter.institution_id,
               Encounter.resident_id)
        .join(Encounter, Encounter.id == Referral.arrival_encounter_id)
        .where(Referral.direction == "up")
    ).all()  # fmt: skip
    assert rows
    assert all(r[0] == r[2] and r[1] == r[3] for r in rows)


def test_capacity_has_the_profiles_reserved_share(demo: tuple[Session, DemoReport]) -> None:
    session, report = demo
    assert report.capacity is not None
    offered = session.scalar(select(func.count()).where(Slot.reserved_offered.is_(True)))
    total = session.scalar(select(func.count()).select_from(Slot))
    assert offered == total // 5  # Linyi 20 % (001 §三(三)1)
    reserved_beds = session.scalar(select(func.count()).where(Bed.pool == "reserved"))
    assert reserved_beds == session.scalar(select(func.count()).select_from(Bed)) // 5


def test_the_board_reads_the_demo_year(demo: tuple[Session, DemoReport]) -> None:
    session, report = demo
    summary = monitoring.summary(session, Actor.system())
    assert report.referrals is not None
    assert summary.up == report.referrals.up and summary.down == report.referrals.down
    # the demo year, and the inpatient referrals waiting on the reference date
    assert len(summary.months) == 13
    assert summary.months[-1].month == REFERENCE.strftime("%Y-%m")
    assert 0 < (summary.closed_loop_rate or 0) < 1
    assert summary.median_hours_to_accept is not None
    assert any(u.reserved_booked_by_primary for u in summary.reserved)


def test_the_demo_is_deterministic_for_the_seed(
    demo: tuple[Session, DemoReport], tmp_path: Path
) -> None:
    _, report = demo
    again = build_demo(
        make_engine(f"sqlite:///{tmp_path}/again.db"),
        profile_id="linyi",
        residents=600,
        seed=11,
        password="demo-pass-123",
        reference_date=REFERENCE,
    )
    assert again.referrals == report.referrals and again.capacity == report.capacity


def test_referred_contracted_residents_are_flagged_priority(
    demo: tuple[Session, DemoReport],
) -> None:
    """001 §三(三)1: a referral from primary care of a resident whose contract covered the
    day is `priority`; without such a contract it is routine."""
    session, report = demo
    assert report.referrals is not None and report.referrals.priority > 0
    contracts: dict[int, list[tuple[date, date]]] = {}
    for rid, start, end in session.execute(
        select(Contract.resident_id, Contract.start_date, Contract.end_date)
    ):
        contracts.setdefault(rid, []).append((start, end))
    rows = session.execute(
        select(
            Referral.resident_id, Referral.created_at, Referral.contracted, Referral.priority
        ).where(Referral.direction == "up", Referral.external_institution.is_(None))
    ).all()
    for resident_id, created, contracted, priority in rows:
        day = created.astimezone(SHANGHAI).date()
        covered = any(s <= day < e for s, e in contracts.get(resident_id, ()))
        assert contracted == covered
        assert priority == ("priority" if covered else "routine")
    assert (
        session.scalar(select(func.count()).where(Referral.priority == "priority"))
        == report.referrals.priority
    )
    assert not session.scalar(
        select(func.count()).where(Referral.direction == "down", Referral.priority != "routine")
    )


def test_referred_stays_went_through_the_queue_and_match_the_record(
    demo: tuple[Session, DemoReport],
) -> None:
    session, report = demo
    assert report.referrals is not None and report.referrals.admitted_via_queue > 0
    rows = session.execute(
        select(BedStay, Encounter, Referral, AdmissionRequest)
        .join(AdmissionRequest, AdmissionRequest.id == BedStay.admission_request_id)
        .join(Referral, Referral.admission_request_id == AdmissionRequest.id)
        .join(Encounter, Encounter.id == Referral.arrival_encounter_id)
    ).all()
    assert len(rows) == report.referrals.admitted_via_queue
    for stay, encounter, referral, request in rows:
        assert stay.resident_id == encounter.resident_id == referral.resident_id
        assert stay.admitted_at == encounter.started_at == request.admitted_at
        assert stay.discharged_at == encounter.ended_at and stay.active_bed_id is None
        assert request.status == "admitted" and request.via_referral
        expected = 2 if referral.contracted else 1
        assert request.priority == expected
    # a bed holds one patient at a time
    by_bed: dict[int, list[tuple[object, object]]] = {}
    for stay, *_ in rows:
        by_bed.setdefault(stay.bed_id, []).append((stay.admitted_at, stay.discharged_at))
    for periods in by_bed.values():
        periods.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(periods))


def test_on_the_reference_date_referred_patients_wait_ahead_of_routine_admissions(
    demo: tuple[Session, DemoReport],
) -> None:
    session, report = demo
    assert report.referrals is not None and report.referrals.waiting_for_bed > 0
    waiting = session.execute(
        select(Referral.status, Referral.care_type, Referral.due_at)
        .join(AdmissionRequest, AdmissionRequest.id == Referral.admission_request_id)
        .where(AdmissionRequest.status == "waiting")
    ).all()
    assert len(waiting) == report.referrals.waiting_for_bed
    reference = datetime.combine(REFERENCE, time(0), SHANGHAI)
    assert all(s == "submitted" and c == "inpatient" and d > reference for s, c, d in waiting)
    wards = [w for w in ward_views(session, Actor.system()) if w.queue]
    assert wards
    for ward in wards:
        priorities = [q.priority for q in ward.queue]
        assert priorities == sorted(priorities, reverse=True)
        assert ward.occupied == 0  # every demo stay has ended by the reference date
    assert any(q.via_referral for w in wards for q in w.queue)
    assert any(not q.via_referral for w in wards for q in w.queue)
