"""Capacity use cases: publish schedules and slots with the reserved share, find free slots
($find), hold ($hold) and book ($book) them, cancel, release unused reserved slots, bed pools
and the admission queue. Services only flush; the caller owns the transaction.

Every booking is one conditional UPDATE (``... WHERE status = 'free' ...``): on PostgreSQL
concurrent updates of one row queue on its row lock and the losers see the row already booked
(zero rows updated); on SQLite transactions are serialised (``BEGIN IMMEDIATE``). The UNIQUE
`active_slot_id` / `active_bed_id` columns are the database's second guarantee."""

from __future__ import annotations

import secrets
import typing
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Integer, Table, Update, and_, bindparam, cast, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from caregrid.audit import service as audit
from caregrid.capacity import rules
from caregrid.capacity.errors import (
    BedTaken,
    HoldExpired,
    NoBedFree,
    ReservedForPrimaryCare,
    SlotInPast,
    SlotNotFound,
    SlotTaken,
)
from caregrid.capacity.models import (
    AdmissionRequest,
    Appointment,
    Bed,
    BedPool,
    BedStay,
    Registration,
    Schedule,
    Slot,
)
from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI, now
from caregrid.core.errors import Conflict, Forbidden, Invalid, NotFound
from caregrid.identity.access import care_basis, require_resident_access
from caregrid.profiles import service as profiles
from caregrid.record.timeline import as_aware
from caregrid.registry import service as registry

MANAGE_ROLES = frozenset({"admin", "coordinator", "group_manager", "system"})
BOOKING_ROLES = frozenset({"doctor", "coordinator", "system"})


# --- profile values --------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityPolicy:
    outpatient_share: float | None
    bed_share: float | None
    release_hours: float | None


def policy(session: Session) -> CapacityPolicy:
    """The active profile's reserved shares (001 §三(三)1: 20 %; 002 §四(三)1: ≥ 1/3 slots,
    ≥ 1/4 beds) and release lead time; None where the profile's plan sets none."""
    profile = profiles.active_profile(session)
    return CapacityPolicy(
        outpatient_share=profile.number("capacity.reserved_outpatient_share"),
        bed_share=profile.number("capacity.reserved_bed_share"),
        release_hours=profile.number("capacity.reserved_release_hours_before"),
    )


def _require_manager(actor: Actor, group_id: int | None) -> None:
    if actor.role not in MANAGE_ROLES:
        raise Forbidden("仅转诊协调员、集团管理者或系统管理员可以管理号源与床位")
    if actor.role in ("coordinator", "group_manager") and actor.group_id != group_id:
        raise NotFound("未找到该机构")


# Answered by familydoctor (a team member), which capacity may not import (core/hooks.py).
RESERVED_USER_QUESTION = "reserved_capacity_user"


def actor_may_use_reserved(session: Session, actor: Actor) -> bool:
    """Primary members' staff and family-doctor teams (001 §三(三)1 “向家庭医生签约服务团队或
    基层医疗卫生机构下沉”): a lead-hospital specialist who serves on a team of the group books
    reserved capacity for the team's patients too. The platform itself (demo, imports) books
    on their behalf."""
    level = (
        registry.get_institution(session, actor.institution_id).level
        if actor.institution_id is not None
        else None
    )
    return _may_use_reserved(session, actor, level)


def _may_use_reserved(session: Session, actor: Actor, level: str | None) -> bool:
    """`actor_may_use_reserved` once the level of the actor's institution is known."""
    if actor.role == "system":
        return True
    if level is not None and rules.may_use_reserved(level):
        return True
    if actor.practitioner_id is None:
        return False
    return rules.may_use_reserved(
        None, family_doctor_team=hooks.any_true(RESERVED_USER_QUESTION, session, actor)
    )


# --- schedules and slots ---------------------------------------------------------------------


def create_schedule(
    session: Session,
    actor: Actor,
    *,
    institution_id: int,
    department_id: int,
    name: str,
    registration_fee_fen: int = 0,
    practitioner_id: int | None = None,
) -> Schedule:
    inst = registry.get_institution(session, institution_id)
    _require_manager(actor, inst.group_id)
    if inst.level not in ("tertiary", "secondary"):
        raise Invalid("号源池仅包括牵头医院和二级医院的门诊", field="institution_id")
    if department_id not in {d.id for d in registry.departments_of(session, institution_id)}:
        raise Invalid("科室不属于该机构", field="department_id")
    if registration_fee_fen < 0:
        raise Invalid("挂号费不能为负数", field="registration_fee_fen")
    name = name.strip()
    if not name:
        raise Invalid("请填写排班名称", field="name")
    duplicate = session.scalar(
        select(Schedule.id).where(
            Schedule.institution_id == institution_id,
            Schedule.department_id == department_id,
            Schedule.name == name,
        )
    )
    if duplicate is not None:
        raise Conflict("该科室已有同名排班", field="name", schedule_id=duplicate)
    schedule = Schedule(
        group_id=inst.group_id,
        institution_id=institution_id,
        department_id=department_id,
        practitioner_id=practitioner_id,
        name=name,
        registration_fee_fen=registration_fee_fen,
    )
    session.add(schedule)
    session.flush()
    audit.append(
        session, actor, action="create", resource="Schedule", detail={"schedule_id": schedule.id}
    )
    return schedule


def get_schedule(session: Session, schedule_id: int) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound("未找到该排班", schedule_id=schedule_id)
    return schedule


def publish_slots(
    session: Session,
    actor: Actor,
    schedule_id: int,
    *,
    starts: Iterable[datetime],
    minutes: int,
) -> list[Slot]:
    """Open slots of `minutes` at each start. In every published session the profile's share
    is reserved for primary care (rounded up, `rules.reserved_count`), spread evenly over the
    session rather than bunched at its start."""
    schedule = get_schedule(session, schedule_id)
    _require_manager(actor, schedule.group_id)
    times = sorted({t if t.tzinfo else t.replace(tzinfo=SHANGHAI) for t in starts})
    if not times:
        raise Invalid("至少需要一个号源时间", field="starts")
    if not 1 <= minutes <= 480:
        raise Invalid("号源时长须在 1 到 480 分钟之间", field="minutes")
    if times[0] <= now():
        raise Invalid("不能发布已经过去的号源", field="starts")
    reserved = rules.reserved_count(len(times), policy(session).outpatient_share)
    reserved_idx = _spread(len(times), reserved)
    slots = [
        Slot(
            schedule_id=schedule.id,
            group_id=schedule.group_id,
            institution_id=schedule.institution_id,
            department_id=schedule.department_id,
            start_at=start,
            end_at=start + timedelta(minutes=minutes),
            pool="reserved" if i in reserved_idx else "general",
            reserved_offered=i in reserved_idx,
            status="free",
        )
        for i, start in enumerate(times)
    ]
    session.add_all(slots)
    session.flush()
    audit.append(
        session,
        actor,
        action="create",
        resource="Slot",
        detail={"schedule_id": schedule.id, "count": len(slots), "reserved": reserved},
    )
    return slots


def _spread(total: int, count: int) -> set[int]:
    """`count` indices spread evenly over range(total)."""
    if count <= 0:
        return set()
    return {int(i * total / count) for i in range(count)}


@dataclass(frozen=True)
class FreeSlot:
    slot: Slot
    effective_pool: str  # "reserved" while still reserved for primary care, else "general"
    bookable: bool  # by the caller


def find_slots(
    session: Session,
    actor: Actor,
    *,
    institution_id: int | None = None,
    department_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    department_ids: Collection[int] | None = None,
    institution_ids: Collection[int] | None = None,
    pool: str | None = None,
    bookable_only: bool = False,
) -> list[FreeSlot]:
    """Free slots of the caller's group ($find), soonest first, each saying whether it is in
    the reserved share and whether the caller may book it.

    `pool` keeps only slots whose effective pool (after the release lead time) is "reserved"
    or "general"; `bookable_only` leaves out reserved slots the caller may not take, so that
    every proposal the FHIR $find returns can be held and booked by its caller."""
    at = now()
    since, until = as_aware(since), as_aware(until)
    cp = policy(session)
    may_reserved = actor_may_use_reserved(session, actor)
    if pool not in (None, "reserved", "general"):
        raise Invalid("号源池须为 reserved（基层预留）或 general（普通）", field="pool")
    still_reserved = (
        Slot.pool == "reserved"
        if cp.release_hours is None
        else and_(Slot.pool == "reserved", Slot.start_at > at + timedelta(hours=cp.release_hours))
    )
    stmt = select(Slot).where(
        Slot.start_at > (since if since and since > at else at),
        or_(Slot.status == "free", and_(Slot.status == "held", Slot.held_until <= at)),
    )
    if actor.role != "system":
        stmt = stmt.where(Slot.group_id == actor.group_id)
    if institution_id is not None:
        stmt = stmt.where(Slot.institution_id == institution_id)
    if department_id is not None:
        stmt = stmt.where(Slot.department_id == department_id)
    if until is not None:
        stmt = stmt.where(Slot.start_at < until)
    if department_ids is not None:
        stmt = stmt.where(Slot.department_id.in_(list(department_ids)))
    if institution_ids is not None:
        stmt = stmt.where(Slot.institution_id.in_(list(institution_ids)))
    if pool == "reserved":
        if bookable_only and not may_reserved:
            return []
        stmt = stmt.where(still_reserved)
    elif pool == "general" or (bookable_only and not may_reserved):
        stmt = stmt.where(~still_reserved)
    rows = session.scalars(stmt.order_by(Slot.start_at, Slot.id).limit(limit)).all()
    out = []
    for slot in rows:
        reserved = slot.pool == "reserved" and not rules.reserved_released(
            slot.start_at, at, cp.release_hours
        )
        out.append(
            FreeSlot(slot, "reserved" if reserved else "general", may_reserved or not reserved)
        )
    return out


def slot_view(session: Session, actor: Actor, slot: Slot) -> FreeSlot:
    """One slot as `find_slots` shows it: its effective pool now, and whether the caller may
    book it (ignoring whether it is still free)."""
    reserved = slot.pool == "reserved" and not rules.reserved_released(
        slot.start_at, now(), policy(session).release_hours
    )
    return FreeSlot(
        slot,
        "reserved" if reserved else "general",
        not reserved or actor_may_use_reserved(session, actor),
    )


def departments_with_slots(session: Session, actor: Actor, institution_id: int) -> set[int]:
    """Departments of a hospital that have free slots ahead (for the form's default)."""
    stmt = select(Slot.department_id).where(
        Slot.institution_id == institution_id, Slot.status == "free", Slot.start_at > now()
    )
    if actor.role != "system":
        stmt = stmt.where(Slot.group_id == actor.group_id)
    return set(session.scalars(stmt.distinct()))


_SLOTS = typing.cast(Table, Slot.__table__)
_TAKE_ID = bindparam("take_slot_id", type_=Integer)
_TAKE_AT = bindparam("take_at", type_=Slot.start_at.type)
_TAKE_TOKEN = bindparam("take_token", type_=Slot.hold_token.type)
_RELEASED_BEFORE = bindparam("take_released_before", type_=Slot.start_at.type)
_ACTOR_INSTITUTION = bindparam("booking_actor_institution_id", type_=Integer)

# The slot, its schedule's fee and the caller's institution level (`_booking_context`)
_BOOKING_CONTEXT = (
    select(Slot, Schedule.registration_fee_fen, registry.institution_level(_ACTOR_INSTITUTION))
    .join(Schedule, Schedule.id == Slot.schedule_id)
    .where(Slot.id == _TAKE_ID)
)


def _booking_context(session: Session, actor: Actor, slot_id: int) -> tuple[Slot, int, bool]:
    """The slot, its schedule's registration fee and whether the caller may take reserved
    slots, in one query (`get_slot`, the schedule and `actor_may_use_reserved` together)."""
    found = session.execute(
        _BOOKING_CONTEXT, {_TAKE_ID.key: slot_id, _ACTOR_INSTITUTION.key: actor.institution_id}
    ).one_or_none()
    if found is None or (actor.role != "system" and found[0].group_id != actor.group_id):
        raise SlotNotFound("未找到该号源", slot_id=slot_id)
    slot, fee_fen, actor_level = found
    return slot, fee_fen, _may_use_reserved(session, actor, actor_level)


def get_slot(session: Session, actor: Actor, slot_id: int) -> Slot:
    slot = session.get(Slot, slot_id)
    if slot is None or (actor.role != "system" and slot.group_id != actor.group_id):
        raise SlotNotFound("未找到该号源", slot_id=slot_id)
    return slot


@lru_cache(maxsize=16)
def _take(with_token: bool, may_reserved: bool, releases: bool) -> Update:
    """The conditional UPDATE that takes a slot (hold or book; the caller adds the values):
    it matches only a slot still in the future and free, or held with the caller's token, or
    whose hold lapsed; and, for a caller who may not use reserved capacity, only a general
    slot or a reserved one past its release time. Built once per shape, with parameters:
    `_take_parameters`."""
    c = _SLOTS.c
    is_open = or_(c.status == "free", and_(c.status == "held", c.held_until <= _TAKE_AT))
    if with_token:
        is_open = or_(is_open, and_(c.status == "held", c.hold_token == _TAKE_TOKEN))
    conditions = [c.id == _TAKE_ID, c.start_at > _TAKE_AT, is_open]
    if not may_reserved:
        general = c.pool == "general"
        conditions.append(or_(general, c.start_at <= _RELEASED_BEFORE) if releases else general)
    return update(_SLOTS).where(*conditions)


_Shape = tuple[bool, bool, bool]  # `_take`'s arguments


def _take_parameters(
    slot_id: int, at: datetime, token: str | None, may_reserved: bool, release_hours: float | None
) -> tuple[_Shape, dict[str, object]]:
    """The shape of `_take` that fits the caller, and its parameters."""
    params: dict[str, object] = {_TAKE_ID.key: slot_id, _TAKE_AT.key: at}
    if token:
        params[_TAKE_TOKEN.key] = token
    releases = not may_reserved and release_hours is not None
    if releases:
        params[_RELEASED_BEFORE.key] = at + timedelta(hours=release_hours or 0)
    return (bool(token), may_reserved, releases), params


_BOOK = {
    "status": "booked",
    "hold_token": None,
    "held_until": None,
    "held_by_user_id": None,
}


@lru_cache(maxsize=16)
def _book(with_token: bool, may_reserved: bool, releases: bool) -> Update:
    """`_take` writing a booking."""
    return _take(with_token, may_reserved, releases).values(**_BOOK)


def _check_bookable(
    slot: Slot, at: datetime, may_reserved: bool, release_hours: float | None
) -> None:
    """The clear reason a slot cannot be taken (checked before the UPDATE, which re-checks)."""
    if slot.start_at <= at:
        raise SlotInPast("该号源的就诊时间已过，不能预约", field="slot_id", slot_id=slot.id)
    if (
        slot.pool == "reserved"
        and not may_reserved
        and not rules.reserved_released(slot.start_at, at, release_hours)
    ):
        raise ReservedForPrimaryCare(
            "该号源为下沉预留号源，仅基层医疗卫生机构和家庭医生团队可以预约",
            field="slot_id",
            slot_id=slot.id,
        )


def hold_slot(session: Session, actor: Actor, slot_id: int) -> tuple[Slot, str]:
    """Keep a slot for the caller for `rules.HOLD_MINUTES` ($hold); returns the hold token
    that `book_slot` accepts. A lapsed hold is free again for everyone."""
    if actor.role not in BOOKING_ROLES:
        raise Forbidden("当前角色不能预约号源")
    slot = get_slot(session, actor, slot_id)
    at = now()
    cp = policy(session)
    may_reserved = actor_may_use_reserved(session, actor)
    _check_bookable(slot, at, may_reserved, cp.release_hours)
    token = secrets.token_hex(16)
    shape, params = _take_parameters(slot_id, at, None, may_reserved, cp.release_hours)
    result = session.execute(
        _take(*shape).values(
            status="held",
            hold_token=token,
            held_until=at + timedelta(minutes=rules.HOLD_MINUTES),
            held_by_user_id=actor.user_id,
        ),
        params,
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SlotTaken("该号源已被他人预约或锁定", field="slot_id", slot_id=slot_id)
    session.refresh(slot)
    audit.append(session, actor, action="update", resource="Slot", detail={"hold": slot_id})
    return slot, token


def book_slot(
    session: Session,
    actor: Actor,
    *,
    slot_id: int,
    resident_id: int,
    hold_token: str | None = None,
    via_referral: bool = False,
    access_checked: bool = False,
) -> Appointment:
    """Book a slot for a resident ($book): one conditional UPDATE that only matches a slot
    still free (or held with the caller's token, or whose hold lapsed) and, for a reserved slot,
    only for primary care until its release time; then the appointment, whose UNIQUE
    `active_slot_id` the database checks as well.

    The registration goes with it: a booking made through a referral carries the referral's
    registration, so no second fee is recorded (001 §三(二)5 “一次就诊在医疗集团内部不重复挂号”)."""
    if actor.role not in BOOKING_ROLES:
        raise Forbidden("当前角色不能预约号源")
    slot, fee_fen, may_reserved = _booking_context(session, actor, slot_id)
    basis: str | None = None
    if not access_checked:
        # Decide access first but write its audit entry with the booking's, at the end: an
        # audit entry locks the chain head until commit, and taking it here would serialise
        # every booking for its whole length. A refusal is audited (and raised) at once.
        basis = "system" if actor.role == "system" else care_basis(session, actor, resident_id)
        if basis is None:
            require_resident_access(
                session, actor, resident_id, action="create", resource="Appointment"
            )
    at = now()
    cp = policy(session)
    _check_bookable(slot, at, may_reserved, cp.release_hours)
    if hold_token and slot.status != "free" and slot.hold_token != hold_token:
        raise HoldExpired(
            "您对该号源的锁定已过期，号源已被他人锁定或预约，请重新选择",
            field="hold_token",
            slot_id=slot_id,
        )
    pool_now = (
        "reserved"
        if slot.pool == "reserved"
        and not rules.reserved_released(slot.start_at, at, cp.release_hours)
        else "general"
    )
    shape, params = _take_parameters(slot_id, at, hold_token, may_reserved, cp.release_hours)
    result = session.execute(_book(*shape), params)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SlotTaken("该号源已被他人预约，请选择其他号源", field="slot_id", slot_id=slot_id)
    for name, value in _BOOK.items():
        set_committed_value(slot, name, value)  # what the UPDATE wrote, without reading it back
    registration = Registration(
        resident_id=resident_id,
        group_id=slot.group_id,
        institution_id=slot.institution_id,
        department_id=slot.department_id,
        fee_fen=0 if via_referral else fee_fen,
        carried=via_referral,
        registered_at=at,
    )
    session.add(registration)
    session.flush()
    appointment = Appointment(
        slot_id=slot_id,
        active_slot_id=slot_id,
        resident_id=resident_id,
        group_id=slot.group_id,
        institution_id=slot.institution_id,
        pool=pool_now,
        status="booked",
        booked_by_user_id=actor.user_id,
        booked_by_institution_id=actor.institution_id,
        registration_id=registration.id,
        via_referral=via_referral,
        booked_at=at,
    )
    session.add(appointment)
    session.flush()
    audit.append(
        session,
        actor,
        action="create",
        resource="Appointment",
        resident_id=resident_id,
        basis=basis,
        detail={"appointment_id": appointment.id, "slot_id": slot_id, "pool": pool_now},
    )
    return appointment


def get_appointment(session: Session, appointment_id: int) -> Appointment:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("未找到该预约", appointment_id=appointment_id)
    return appointment


def cancel_appointment(session: Session, actor: Actor, appointment_id: int) -> Appointment:
    """Give the slot back: the appointment lets go of `active_slot_id` and the slot is free
    again (unless its time has passed)."""
    appointment = get_appointment(session, appointment_id)
    if appointment.status != "booked":
        raise SlotTaken("该预约已不能取消", appointment_id=appointment_id)
    at = now()
    appointment.status = "cancelled"
    appointment.active_slot_id = None
    appointment.cancelled_at = at
    session.flush()
    session.execute(
        update(Slot)
        .where(Slot.id == appointment.slot_id, Slot.status == "booked", Slot.start_at > at)
        .values(status="free")
        .execution_options(synchronize_session=False)
    )
    audit.append(
        session,
        actor,
        action="update",
        resource="Appointment",
        resident_id=appointment.resident_id,
        detail={"appointment_id": appointment.id, "status": "cancelled"},
    )
    return appointment


def mark_arrived(session: Session, actor: Actor, appointment_id: int) -> Appointment:
    appointment = get_appointment(session, appointment_id)
    if appointment.status != "booked":
        raise SlotTaken("该预约不是待就诊状态", appointment_id=appointment_id)
    appointment.status = "arrived"
    session.flush()
    audit.append(
        session,
        actor,
        action="update",
        resource="Appointment",
        resident_id=appointment.resident_id,
        detail={"appointment_id": appointment.id, "status": "arrived"},
    )
    return appointment


def release_reserved(session: Session, actor: Actor, *, at: datetime | None = None) -> int:
    """Move unused reserved slots whose release lead time has come to the general pool
    (profile `capacity.reserved_release_hours_before`); returns how many. Booking already
    treats such slots as general; this makes it visible and counts it."""
    if actor.role not in MANAGE_ROLES:
        raise Forbidden("仅转诊协调员或管理者可以释放预留号源")
    at = at or now()
    hours = policy(session).release_hours
    if hours is None:
        return 0
    result = session.execute(
        update(Slot)
        .where(
            Slot.pool == "reserved",
            Slot.status.in_(("free", "held")),
            Slot.start_at <= at + timedelta(hours=hours),
            Slot.start_at > at,
        )
        .values(pool="general", released_at=at)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        audit.append(session, actor, action="update", resource="Slot", detail={"released": count})
    return count


def drop_lapsed_holds(session: Session, actor: Actor, *, at: datetime | None = None) -> int:
    """Free slots whose $hold lapsed without a booking; returns how many. Booking already
    treats a lapsed hold as free; this clears the token so that calendars and FHIR Slot
    show the slot as free (not busy-tentative) again."""
    if actor.role not in MANAGE_ROLES:
        raise Forbidden("仅转诊协调员或管理者可以清理过期锁定")
    at = at or now()
    result = session.execute(
        update(Slot)
        .where(Slot.status == "held", Slot.held_until <= at)
        .values(status="free", hold_token=None, held_until=None, held_by_user_id=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        audit.append(
            session, actor, action="update", resource="Slot", detail={"holds_dropped": count}
        )
    return count


# --- beds and the admission queue -------------------------------------------------------------


def create_bed_pool(
    session: Session,
    actor: Actor,
    *,
    institution_id: int,
    ward: str,
    beds: int,
    department_id: int | None = None,
) -> BedPool:
    """A ward's beds, of which the profile's share is reserved for primary care
    (001 §三(三)1: 20 %; 002 §四(三)1: ≥ 1/4)."""
    inst = registry.get_institution(session, institution_id)
    _require_manager(actor, inst.group_id)
    if not 1 <= beds <= 2000:
        raise Invalid("床位数须在 1 到 2000 之间", field="beds")
    pool = BedPool(
        group_id=inst.group_id,
        institution_id=institution_id,
        department_id=department_id,
        ward=ward.strip(),
    )
    session.add(pool)
    session.flush()
    reserved = _spread(beds, rules.reserved_count(beds, policy(session).bed_share))
    session.add_all(
        Bed(
            bed_pool_id=pool.id,
            label=f"{i + 1:02d}床",
            pool="reserved" if i in reserved else "general",
            status="free",
        )
        for i in range(beds)
    )
    session.flush()
    audit.append(
        session,
        actor,
        action="create",
        resource="BedPool",
        detail={"bed_pool_id": pool.id, "beds": beds, "reserved": len(reserved)},
    )
    return pool


def get_bed_pool(session: Session, actor: Actor, pool_id: int) -> BedPool:
    pool = session.get(BedPool, pool_id)
    if pool is None or (actor.role != "system" and pool.group_id != actor.group_id):
        raise NotFound("未找到该病区", bed_pool_id=pool_id)
    return pool


def request_admission(
    session: Session,
    actor: Actor,
    *,
    bed_pool_id: int,
    resident_id: int,
    via_referral: bool = False,
    contracted: bool = False,
    access_checked: bool = False,
) -> AdmissionRequest:
    """Queue a patient for a bed; referred (and contracted) residents go first (001 §三(三)1
    优先住院)."""
    pool = get_bed_pool(session, actor, bed_pool_id)
    if not access_checked:
        require_resident_access(
            session, actor, resident_id, action="create", resource="AdmissionRequest"
        )
    request = AdmissionRequest(
        bed_pool_id=pool.id,
        resident_id=resident_id,
        group_id=pool.group_id,
        priority=rules.admission_priority(via_referral=via_referral, contracted=contracted),
        via_referral=via_referral,
        from_primary=actor_may_use_reserved(session, actor) and actor.role != "system",
        requested_by_user_id=actor.user_id,
        requested_at=now(),
    )
    session.add(request)
    session.flush()
    return request


def may_run_ward(actor: Actor, pool: BedPool) -> bool:
    """Admitting and discharging is the work of the ward's own hospital (its doctors and
    coordinators), the group's referral coordinators and managers, or the platform."""
    if actor.role == "system":
        return True
    if actor.role in ("coordinator", "group_manager") and actor.group_id == pool.group_id:
        return True
    return actor.institution_id == pool.institution_id and actor.role in BOOKING_ROLES


def _require_ward_staff(actor: Actor, pool: BedPool) -> None:
    if not may_run_ward(actor, pool):
        raise Forbidden("仅本院医务人员或转诊协调员可以办理入院和出院", bed_pool_id=pool.id)


def withdraw_admission(session: Session, actor: Actor, request_id: int) -> bool:
    """Take a waiting request out of the queue (its referral was rejected, cancelled or
    expired); returns whether it was still waiting. An admitted patient keeps the bed."""
    result = session.execute(
        update(AdmissionRequest)
        .where(AdmissionRequest.id == request_id, AdmissionRequest.status == "waiting")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    audit.append(
        session,
        actor,
        action="update",
        resource="AdmissionRequest",
        detail={"admission_request_id": request_id, "status": "cancelled"},
    )
    return True


def admission_queue(session: Session, actor: Actor, bed_pool_id: int) -> Sequence[AdmissionRequest]:
    get_bed_pool(session, actor, bed_pool_id)
    return session.scalars(
        select(AdmissionRequest)
        .where(AdmissionRequest.bed_pool_id == bed_pool_id, AdmissionRequest.status == "waiting")
        .order_by(
            AdmissionRequest.priority.desc(), AdmissionRequest.requested_at, AdmissionRequest.id
        )
    ).all()


def admit(session: Session, actor: Actor, request_id: int) -> BedStay:
    """Give the request a free bed: reserved beds only to requests from primary care (or
    referrals), general beds to anyone. Conditional UPDATE on the bed, UNIQUE live stay."""
    request = session.get(AdmissionRequest, request_id)
    if request is None:
        raise NotFound("未找到该入院申请", admission_request_id=request_id)
    pool = get_bed_pool(session, actor, request.bed_pool_id)
    _require_ward_staff(actor, pool)
    if request.status != "waiting":
        raise BedTaken("该入院申请已处理", admission_request_id=request_id)
    may_reserved = request.from_primary or request.via_referral
    pools = ("reserved", "general") if may_reserved else ("general",)
    at = now()
    for wanted in pools:
        candidates = session.scalars(
            select(Bed.id)
            .where(Bed.bed_pool_id == pool.id, Bed.status == "free", Bed.pool == wanted)
            .order_by(Bed.id)
            .limit(5)
        ).all()
        for bed_id in candidates:
            result = session.execute(
                update(Bed)
                .where(Bed.id == bed_id, Bed.status == "free")
                .values(status="occupied")
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # taken by a concurrent admission: try the next bed
            stay = BedStay(
                bed_id=bed_id,
                active_bed_id=bed_id,
                resident_id=request.resident_id,
                group_id=pool.group_id,
                admission_request_id=request.id,
                pool=wanted,
                admitted_at=at,
            )
            session.add(stay)
            request.status = "admitted"
            request.admitted_at = at
            session.flush()
            audit.append(
                session,
                actor,
                action="create",
                resource="BedStay",
                resident_id=request.resident_id,
                detail={"bed_id": bed_id, "pool": wanted},
            )
            # the referral behind the request (if any) registers the arrival (core/hooks.py)
            hooks.publish("bed_admitted", session, actor, request)
            return stay
    raise NoBedFree("该病区暂无可用床位", bed_pool_id=pool.id)


def admit_next(session: Session, actor: Actor, bed_pool_id: int) -> BedStay:
    """Admit the first patient of the queue (highest priority, then earliest)."""
    queue = admission_queue(session, actor, bed_pool_id)
    if not queue:
        raise NotFound("入院等候队列为空", bed_pool_id=bed_pool_id)
    return admit(session, actor, queue[0].id)


def discharge(session: Session, actor: Actor, stay_id: int) -> BedStay:
    stay = session.get(BedStay, stay_id)
    if stay is None or stay.active_bed_id is None:
        raise NotFound("未找到在院记录", bed_stay_id=stay_id)
    bed = session.get(Bed, stay.bed_id)
    assert bed is not None
    try:
        _require_ward_staff(actor, get_bed_pool(session, actor, bed.bed_pool_id))
    except NotFound:
        raise NotFound("未找到在院记录", bed_stay_id=stay_id) from None
    stay.active_bed_id = None
    stay.discharged_at = now()
    session.flush()
    session.execute(
        update(Bed)
        .where(Bed.id == stay.bed_id, Bed.status == "occupied")
        .values(status="free")
        .execution_options(synchronize_session=False)
    )
    audit.append(session, actor, action="update", resource="BedStay", resident_id=stay.resident_id)
    return stay


@dataclass(frozen=True)
class WardView:
    """A ward as the capacity calendar shows it: its beds (of which reserved for primary
    care), who is waiting in priority order and who is in a bed."""

    pool: BedPool
    total: int
    reserved: int
    occupied: int
    occupied_reserved: int
    queue: Sequence[AdmissionRequest]
    stays: list[tuple[BedStay, str]]  # live stay, bed label
    manage: bool  # the caller may admit and discharge here (and see who)

    @property
    def free(self) -> int:
        return self.total - self.occupied


def ward_views(session: Session, actor: Actor) -> list[WardView]:
    """The bed pools of the caller's group, per ward, with the admission queue ordered as
    `admit_next` takes it (referred contracted residents, then referred, then the rest: 001
    §三(三)1 优先住院). Queues and stays are listed only for those who run the ward."""
    stmt = select(BedPool).order_by(BedPool.institution_id, BedPool.id)
    if actor.role != "system":
        stmt = stmt.where(BedPool.group_id == actor.group_id)
    pools = session.scalars(stmt).all()
    if not pools:
        return []
    ids = [p.id for p in pools]
    counts = {
        pool_id: (int(t), int(r or 0), int(o or 0), int(orr or 0))
        for pool_id, t, r, o, orr in session.execute(
            select(
                Bed.bed_pool_id,
                func.count(Bed.id),
                func.sum(cast(Bed.pool == "reserved", Integer)),
                func.sum(cast(Bed.status == "occupied", Integer)),
                func.sum(cast(and_(Bed.status == "occupied", Bed.pool == "reserved"), Integer)),
            )
            .where(Bed.bed_pool_id.in_(ids))
            .group_by(Bed.bed_pool_id)
        ).all()
    }
    managed = [p.id for p in pools if may_run_ward(actor, p)]
    queues: dict[int, list[AdmissionRequest]] = {i: [] for i in managed}
    stays: dict[int, list[tuple[BedStay, str]]] = {i: [] for i in managed}
    if managed:
        for request in session.scalars(
            select(AdmissionRequest)
            .where(AdmissionRequest.bed_pool_id.in_(managed), AdmissionRequest.status == "waiting")
            .order_by(
                AdmissionRequest.priority.desc(),
                AdmissionRequest.requested_at,
                AdmissionRequest.id,
            )
        ):
            queues[request.bed_pool_id].append(request)
        for stay, pool_id, label in session.execute(
            select(BedStay, Bed.bed_pool_id, Bed.label)
            .join(Bed, Bed.id == BedStay.bed_id)
            .where(Bed.bed_pool_id.in_(managed), BedStay.active_bed_id.is_not(None))
            .order_by(Bed.label)
        ).all():
            stays[pool_id].append((stay, label))
    return [
        WardView(
            p,
            *counts.get(p.id, (0, 0, 0, 0)),
            queue=queues.get(p.id, []),
            stays=stays.get(p.id, []),
            manage=p.id in queues,
        )
        for p in pools
    ]


# --- monitoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservedUse:
    institution_id: int
    slots_total: int
    reserved_offered: int
    reserved_booked_by_primary: int
    released: int
    booked_total: int


def reserved_usage(
    session: Session,
    *,
    group_id: int | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ReservedUse]:
    """Per institution: slots offered, of which reserved for primary care, how many of those
    primary care used (booked as reserved), how many were released unused, and bookings in
    all (002 §四(三)1 转诊监测; feeds the sinking-ratio indicators)."""
    live = Appointment.status.in_(("booked", "arrived", "noshow"))
    stmt = (
        select(
            Slot.institution_id,
            func.count(Slot.id),
            func.sum(cast(Slot.reserved_offered, Integer)),
            func.count(Appointment.id).filter(Appointment.pool == "reserved"),
            func.count(Slot.released_at),
            func.count(Appointment.id),
        )
        .outerjoin(Appointment, and_(Appointment.slot_id == Slot.id, live))
        .group_by(Slot.institution_id)
        .order_by(Slot.institution_id)
    )
    if group_id is not None:
        stmt = stmt.where(Slot.group_id == group_id)
    if since is not None:
        stmt = stmt.where(Slot.start_at >= since)
    if until is not None:
        stmt = stmt.where(Slot.start_at < until)
    return [
        ReservedUse(int(i), int(t), int(r or 0), int(u), int(rel), int(b))
        for i, t, r, u, rel, b in session.execute(stmt).all()
    ]
