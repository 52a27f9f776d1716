"""The demo's capacity and referral steps: consistent with the shared record, realistic
outcomes, the profile's reserved share, deterministic for the seed."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.capacity.models import Bed, Slot
from caregrid.core.actor import Actor
from caregrid.core.db import make_engine, new_session
from caregrid.demo.builder import DemoReport, build_demo
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
    assert len(summary.months) == 12
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
