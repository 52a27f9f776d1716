"""Referral use cases: advice and pre-filled summary for the form, create (and submit and
book in the same step), the workflow actions, worklists and the sweep of overdue referrals.

One function, `_transition`, moves a referral between states: it checks `rules.TRANSITIONS`,
writes the history row and the audit entry (who, when). Services only flush."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.capacity import service as capacity
from caregrid.capacity.models import AdmissionRequest
from caregrid.capacity.rules import PRIMARY_LEVELS
from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI, now
from caregrid.core.errors import Forbidden, Invalid
from caregrid.familydoctor import service as familydoctor
from caregrid.identity.access import relationship_provider, require_resident_access
from caregrid.profiles import service as profiles
from caregrid.record import service as record
from caregrid.record import timeline
from caregrid.referral import rules
from caregrid.referral.errors import (
    IllegalTransition,
    ReasonRequired,
    ReferralExpired,
    ReferralNotFound,
)
from caregrid.referral.models import CareEpisode, Referral, ReferralEvent
from caregrid.referral.schemas import ReferralCreate
from caregrid.registry import icd10
from caregrid.registry import service as registry

LEVEL_RANK = {"village": 0, "primary": 1, "secondary": 2, "tertiary": 3}
REFERRING_ROLES = frozenset({"doctor", "system"})
OVERSIGHT_ROLES = frozenset({"coordinator", "group_manager"})
DEFAULT_LIMIT_HOURS = 48.0  # only when a profile sets no `referral.response_time_limit_hours`


# --- who may see and act ------------------------------------------------------------------


def _sees(actor: Actor, referral: Referral) -> bool:
    if actor.role in ("system", "admin"):
        return True
    if actor.role in OVERSIGHT_ROLES and actor.group_id == referral.group_id:
        return True
    if actor.institution_id is None:
        return False
    if actor.institution_id == referral.from_institution_id:
        return True
    return actor.institution_id == referral.to_institution_id and referral.status != "draft"


def get_referral(session: Session, actor: Actor, referral_id: int) -> Referral:
    """A referral the caller may see: the referring and receiving members' staff, the group's
    coordinators and managers. Anyone else gets 404."""
    referral = session.get(Referral, referral_id)
    if referral is None or not _sees(actor, referral):
        raise ReferralNotFound("未找到该转诊单", referral_id=referral_id)
    return referral


def _receiving_side(actor: Actor, referral: Referral) -> bool:
    return actor.role == "system" or (
        actor.role == "doctor" and actor.institution_id == referral.to_institution_id
    )


def _referring_side(actor: Actor, referral: Referral) -> bool:
    return actor.role == "system" or actor.institution_id == referral.from_institution_id


def _coordinator(actor: Actor, referral: Referral) -> bool:
    return actor.role == "coordinator" and actor.group_id == referral.group_id


ACTORS_OF: dict[str, Callable[[Actor, Referral], bool]] = {
    "submit": _referring_side,
    "accept": lambda a, r: _receiving_side(a, r) or _coordinator(a, r),
    "reject": lambda a, r: _receiving_side(a, r) or _coordinator(a, r),
    "schedule": lambda a, r: _receiving_side(a, r) or _referring_side(a, r) or _coordinator(a, r),
    "arrive": lambda a, r: _receiving_side(a, r) or _coordinator(a, r),
    "complete": _receiving_side,
    "cancel": lambda a, r: _referring_side(a, r) or _coordinator(a, r),
    "expire": lambda a, r: a.role == "system" or _coordinator(a, r),
}


@relationship_provider("referral")
def _referral_relationship(actor: Actor, resident: ColumnElement[int]) -> Select[Any] | None:
    """The receiving member's staff see a resident referred to them (and the referring
    member's staff keep seeing one they referred)."""
    if actor.institution_id is None:
        return None
    return select(Referral.id).where(
        Referral.resident_id == resident,
        Referral.status.not_in(("draft", "cancelled")),
        or_(
            Referral.to_institution_id == actor.institution_id,
            Referral.from_institution_id == actor.institution_id,
        ),
    )


# --- the transition function ----------------------------------------------------------------


def _transition(
    session: Session, actor: Actor, referral: Referral, action: str, note: str | None = None
) -> Referral:
    """Move `referral` by `action` per `rules.TRANSITIONS`, or raise 409; record who and when
    in the referral's history and in the audit chain."""
    target = rules.next_status(referral.status, action)
    if target is None:
        raise IllegalTransition(
            f"转诊单当前状态为“{rules.STATUS_LABELS[referral.status]}”，不能执行“"
            f"{rules.ACTION_LABELS.get(action, action)}”",
            referral_id=referral.id,
            status=referral.status,
            action=action,
        )
    if not ACTORS_OF[action](actor, referral):
        raise Forbidden(
            f"您不能对该转诊单执行“{rules.ACTION_LABELS.get(action, action)}”",
            referral_id=referral.id,
        )
    at = now()
    previous = referral.status
    referral.status = target
    if target in rules.TERMINAL:
        referral.closed_at = at
    session.add(
        ReferralEvent(
            referral_id=referral.id,
            action=action,
            from_status=previous,
            to_status=target,
            user_id=actor.user_id,
            username=actor.username,
            at=at,
            note=note,
        )
    )
    session.flush()
    audit.append(
        session,
        actor,
        action="update",
        resource="Referral",
        resident_id=referral.resident_id,
        detail={"referral_id": referral.id, "action": action, "from": previous, "to": target},
        at=at,
    )
    return referral


def history(session: Session, actor: Actor, referral_id: int) -> Sequence[ReferralEvent]:
    get_referral(session, actor, referral_id)
    return session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == referral_id)
        .order_by(ReferralEvent.at, ReferralEvent.id)
    ).all()


# --- rules fed from the record ---------------------------------------------------------------


def limit_hours(session: Session) -> float:
    value = profiles.active_profile(session).number("referral.response_time_limit_hours")
    return DEFAULT_LIMIT_HOURS if value is None else value


def within_catalogue(
    session: Session, *, level: str, code: str | None, group_id: int | None
) -> bool | None:
    """Whether `level`'s disease catalogue covers the diagnosis (None without a diagnosis)."""
    if not code:
        return None
    return bool(registry.catalog_covers(session, level=level, code=code, group_id=group_id))


def readings_of(session: Session, actor: Actor, resident_id: int) -> list[rules.Reading]:
    """Blood pressure and fasting glucose follow-ups from the shared record, paired by time."""
    series = timeline.vital_series(session, actor, resident_id)
    by_time: dict[datetime, dict[str, float]] = {}
    for name in ("sbp", "dbp", "fpg"):
        for point in getattr(series, name):
            by_time.setdefault(point.at, {})[name] = point.value
    return [rules.Reading(at, **values) for at, values in sorted(by_time.items())]


def advice_for(
    session: Session,
    actor: Actor,
    *,
    resident_id: int,
    diagnosis_code: str | None,
    doctor_reason: str | None = None,
) -> rules.Advice:
    """The upward-referral advice for the caller's level, the resident's recent readings and
    the doctor's reason (rules.upward_advice)."""
    if actor.institution_id is None:
        raise Forbidden("仅医疗机构人员可以发起转诊")
    inst = registry.get_institution(session, actor.institution_id)
    resident, _ = registry.get_resident(session, actor, resident_id, resource="ReferralAdvice")
    covered = within_catalogue(
        session, level=inst.level, code=diagnosis_code, group_id=inst.group_id
    )
    age = registry.summarize(resident).age
    return rules.upward_advice(
        within_catalogue=covered,
        readings=readings_of(session, actor, resident_id),
        age=age,
        doctor_reason=doctor_reason,
    )


@dataclass(frozen=True)
class Prefill:
    summary: str
    results: list[timeline.TimelineEntry]
    diagnosis_code: str | None
    diagnosis_name: str | None


def prefill(session: Session, actor: Actor, resident_id: int) -> Prefill:
    """The referral summary pre-filled from the shared record: the latest visits' diagnoses
    and the recent results (access-checked and audited by the timeline)."""
    encounters = timeline.resident_timeline(
        session, actor, resident_id, types=["encounter"], limit=5
    ).items
    results = timeline.resident_timeline(
        session, actor, resident_id, types=["result"], limit=8
    ).items
    lines: list[str] = []
    code = name = None
    for entry in encounters:
        if entry.encounter and entry.encounter.diagnoses:
            first = entry.encounter.diagnoses[0]
            if code is None:
                code, name = first.code, first.name
            lines.append(
                f"{entry.at.date().isoformat()} {entry.institution_name or ''}："
                + "、".join(f"{d.name or d.code}（{d.code}）" for d in entry.encounter.diagnoses)
            )
    for entry in results:
        r = entry.result
        if r is None:
            continue
        value = (
            f"{r.value_num:g}{r.unit or ''}" if r.value_num is not None else (r.value_text or "")
        )
        lines.append(f"{entry.at.date().isoformat()} {r.item_name} {value}".strip())
    summary = "近期就诊与检查检验：\n" + "\n".join(lines) if lines else ""
    return Prefill(summary, results, code, name)


def contract_of(session: Session, resident_id: int) -> tuple[bool, int | None]:
    """(has an active family-doctor contract, its team id): referred contracted residents get
    priority (001 §三(三)1) and their down-referrals go to the team."""
    contract = familydoctor.active_contract(session, resident_id)
    return (True, contract.team_id) if contract else (False, None)


# The primary doctor follows a referral up within two weeks (规范第三版 “2周内主动随访”); the
# team's down-referral task is due in the same time.
DOWN_REFERRAL_FOLLOW_UP = timedelta(days=14)


def add_down_referral_task(session: Session, referral: Referral, team_id: int | None) -> None:
    """A down-referral becomes a task of the resident's family-doctor team, carrying the care
    plan (001 §三(一)3; 002 §四(三)1)."""
    if team_id is None:
        return
    category = rules.DOWN_CATEGORIES.get(referral.reason_code, referral.reason_code)
    referral.team_task_id = familydoctor.add_team_task(
        session,
        team_id=team_id,
        resident_id=referral.resident_id,
        kind="下转随访",
        due=(now() + DOWN_REFERRAL_FOLLOW_UP).astimezone(SHANGHAI).date(),
        detail=f"{category}下转：{referral.care_plan or ''}",
        source=f"referral:{referral.id}",
    )


# --- create and submit ------------------------------------------------------------------------


def _direction(from_level: str, to_level: str | None) -> str:
    if to_level is None:
        return "up"  # outside the group: a 专科联盟 or provincial hospital
    if LEVEL_RANK[to_level] > LEVEL_RANK[from_level]:
        return "up"
    if LEVEL_RANK[to_level] < LEVEL_RANK[from_level]:
        return "down"
    raise Invalid("转诊须在不同级别的机构之间进行", field="to_institution_id")


def create_referral(session: Session, actor: Actor, data: ReferralCreate) -> Referral:
    """Create a referral from the caller's member; with ``submit`` it is submitted at once,
    and with ``slot_id`` (or ``bed_pool_id``) the slot is booked in the same step.

    Upward: recommended outside the referring level's catalogue or on a chronic-care trigger;
    within it a reason is required (000 §三(一)2; 003 §二(五)17). Downward: only the eligible
    categories (001 §三(一)3). Priority for referred contracted residents (001 §三(三)1)."""
    if actor.role not in REFERRING_ROLES or actor.institution_id is None:
        raise Forbidden("仅医疗机构的医生可以发起转诊")
    source = registry.get_institution(session, actor.institution_id)
    require_resident_access(session, actor, data.resident_id, action="create", resource="Referral")
    target = None
    if data.to_institution_id is not None:
        target = registry.get_institution(session, data.to_institution_id)
        if target.group_id != source.group_id:
            raise Invalid(
                "接收机构不是本医疗集团的成员；集团外转诊请填写外部机构名称",
                field="to_institution_id",
            )
        if data.to_department_id is not None and data.to_department_id not in {
            d.id for d in registry.departments_of(session, target.id)
        }:
            raise Invalid("科室不属于接收机构", field="to_department_id")
    elif not (data.external_institution or "").strip():
        raise Invalid("请选择接收机构，或填写集团外接收机构名称", field="to_institution_id")
    direction = _direction(source.level, target.level if target else None)
    code = None
    if data.diagnosis_code:
        icd10.normalize_icd10(data.diagnosis_code)
        code = data.diagnosis_code.strip()
    contracted, team_id = contract_of(session, data.resident_id)
    urgent = False
    if direction == "up":
        covered = within_catalogue(session, level=source.level, code=code, group_id=source.group_id)
        advice = rules.upward_advice(
            within_catalogue=covered,
            readings=readings_of(session, actor, data.resident_id),
            doctor_reason=data.reason_text,
        )
        if not advice.recommended:
            raise ReasonRequired(
                "该诊断在本级机构诊疗病种目录内，且无随访触发条件，请填写转诊理由",
                field="reason_text",
            )
        reason_code = advice.reasons[0].code
        urgent = rules.urgency(advice)
    else:
        category = data.down_category or ""
        covered = (
            within_catalogue(session, level=target.level, code=code, group_id=source.group_id)
            if target
            else None
        )
        eligible = rules.downward_eligibility(
            category, within_receiving_catalogue=covered, stable=data.stable
        )
        if not eligible.eligible:
            raise Invalid("；".join(eligible.reasons) + "，不符合下转标准", field="down_category")
        if not (data.care_plan or "").strip():
            raise Invalid("下转须附康复/治疗方案", field="care_plan")
        reason_code = category
    priority = rules.referral_priority(
        contracted=contracted,
        from_primary=source.level in PRIMARY_LEVELS,
        urgent=urgent,
        requires_contract=bool(
            profiles.active_profile(session).value("capacity.priority_requires_contract", True)
        ),
    )
    referral = Referral(
        group_id=source.group_id,
        direction=direction,
        status="draft",
        resident_id=data.resident_id,
        from_institution_id=source.id,
        from_user_id=actor.user_id,
        to_institution_id=target.id if target else None,
        to_department_id=data.to_department_id,
        external_institution=(data.external_institution or "").strip() or None,
        external_kind=data.external_kind,
        care_type=data.care_type,
        diagnosis_code=code,
        diagnosis_name=data.diagnosis_name,
        reason_code=reason_code,
        reason_text=data.reason_text,
        summary=data.summary,
        care_plan=data.care_plan,
        priority=priority,
        contracted=contracted,
        parent_id=data.parent_id,
        created_at=now(),
    )
    if data.parent_id is not None:
        get_referral(session, actor, data.parent_id)
    session.add(referral)
    session.flush()
    _link_episode(session, referral)
    session.add(
        ReferralEvent(
            referral_id=referral.id,
            action="create",
            from_status=None,
            to_status="draft",
            user_id=actor.user_id,
            username=actor.username,
            at=referral.created_at,
        )
    )
    audit.append(
        session,
        actor,
        action="create",
        resource="Referral",
        resident_id=referral.resident_id,
        detail={"referral_id": referral.id, "direction": direction},
    )
    if data.submit:
        submit(session, actor, referral.id, team_id=team_id)
        if data.slot_id is not None:
            schedule_slot(session, actor, referral.id, data.slot_id, hold_token=data.hold_token)
    return referral


def _link_episode(session: Session, referral: Referral) -> None:
    """An inpatient referral inside the group joins its parent's episode (or opens one), so
    that the deductible is counted once (004 §四(三)2)."""
    if referral.care_type != "inpatient" or referral.to_institution_id is None:
        return
    episode_id = None
    if referral.parent_id is not None:
        parent = session.get(Referral, referral.parent_id)
        episode_id = parent.episode_id if parent else None
    if episode_id is None:
        episode = CareEpisode(
            resident_id=referral.resident_id, group_id=referral.group_id, opened_at=now()
        )
        session.add(episode)
        session.flush()
        episode_id = episode.id
    referral.episode_id = episode_id
    session.flush()


def submit(
    session: Session, actor: Actor, referral_id: int, *, team_id: int | None = None
) -> Referral:
    """Send the referral; it must be answered within the profile's time limit."""
    referral = get_referral(session, actor, referral_id)
    _transition(session, actor, referral, "submit")
    referral.submitted_at = now()
    if referral.to_institution_id is not None:
        referral.due_at = rules.due_at(referral.submitted_at, limit_hours(session))
    if referral.direction == "down":
        if team_id is None:
            team_id = contract_of(session, referral.resident_id)[1]
        add_down_referral_task(session, referral, team_id)
    session.flush()
    return referral


def accept(session: Session, actor: Actor, referral_id: int, note: str | None = None) -> Referral:
    """Accept (回执). A referral past its time limit is expired and cannot be accepted. When a
    slot was booked with the referral it moves on to scheduled."""
    referral = get_referral(session, actor, referral_id)
    if rules.is_overdue(referral.status, referral.due_at, now()):
        raise ReferralExpired(
            "该转诊单已超过受理时限，已转交转诊协调员处理，不能再接收", referral_id=referral.id
        )
    _transition(session, actor, referral, "accept", note)
    referral.accepted_at = now()
    referral.answered_by_user_id = actor.user_id
    if referral.appointment_id is not None or referral.admission_request_id is not None:
        _transition(session, actor, referral, "schedule", "转诊时已预约")
    session.flush()
    return referral


def reject(session: Session, actor: Actor, referral_id: int, reason: str) -> Referral:
    """Reject with a reason (required); a booked slot is given back."""
    if not (reason or "").strip():
        raise ReasonRequired("退回转诊须填写理由", field="reason")
    referral = get_referral(session, actor, referral_id)
    _transition(session, actor, referral, "reject", reason.strip())
    referral.rejection_reason = reason.strip()
    referral.answered_by_user_id = actor.user_id
    _release_booking(session, actor, referral)
    return referral


def cancel(session: Session, actor: Actor, referral_id: int, reason: str | None = None) -> Referral:
    referral = get_referral(session, actor, referral_id)
    _transition(session, actor, referral, "cancel", reason)
    _release_booking(session, actor, referral)
    return referral


def _release_booking(session: Session, actor: Actor, referral: Referral) -> None:
    """A closed referral gives back its slot and leaves the ward's admission queue."""
    if referral.appointment_id is not None:
        appointment = capacity.get_appointment(session, referral.appointment_id)
        if appointment.status == "booked":
            capacity.cancel_appointment(session, Actor.system("referral"), appointment.id)
    if referral.admission_request_id is not None:
        capacity.withdraw_admission(
            session, Actor.system("referral"), referral.admission_request_id
        )
    session.flush()


def schedule_slot(
    session: Session,
    actor: Actor,
    referral_id: int,
    slot_id: int,
    *,
    hold_token: str | None = None,
) -> Referral:
    """Book a slot of the receiving member for the referral. The booking carries the
    referral's registration (no second 挂号 fee: 001 §三(二)2, 5). Before acceptance the slot is
    kept with the referral; after it, the referral moves to scheduled."""
    referral = get_referral(session, actor, referral_id)
    if referral.status not in ("submitted", "accepted"):
        raise IllegalTransition(
            f"转诊单当前状态为“{rules.STATUS_LABELS[referral.status]}”，不能预约号源",
            referral_id=referral.id,
        )
    if not ACTORS_OF["schedule"](actor, referral):
        raise Forbidden("您不能为该转诊单预约号源", referral_id=referral.id)
    if referral.appointment_id is not None:
        raise IllegalTransition("该转诊单已预约号源", referral_id=referral.id)
    slot = capacity.get_slot(session, actor, slot_id)
    if slot.institution_id != referral.to_institution_id:
        raise Invalid("号源不属于接收机构", field="slot_id")
    appointment = capacity.book_slot(
        session,
        actor,
        slot_id=slot_id,
        resident_id=referral.resident_id,
        hold_token=hold_token,
        via_referral=True,
        access_checked=True,
    )
    referral.appointment_id = appointment.id
    referral.registration_id = appointment.registration_id
    session.flush()
    if referral.status == "accepted":
        _transition(session, actor, referral, "schedule")
    return referral


def schedule_bed(session: Session, actor: Actor, referral_id: int, bed_pool_id: int) -> Referral:
    """Queue an inpatient referral for a bed with referral priority (优先住院, 001 §三(三)1)."""
    referral = get_referral(session, actor, referral_id)
    if referral.care_type != "inpatient":
        raise Invalid("仅住院转诊需要床位", field="bed_pool_id")
    if referral.status not in ("submitted", "accepted") or referral.admission_request_id:
        raise IllegalTransition("该转诊单当前不能申请床位", referral_id=referral.id)
    if not ACTORS_OF["schedule"](actor, referral):
        raise Forbidden("您不能为该转诊单申请床位", referral_id=referral.id)
    request = capacity.request_admission(
        session,
        actor,
        bed_pool_id=bed_pool_id,
        resident_id=referral.resident_id,
        via_referral=True,
        contracted=referral.contracted,
        access_checked=True,
    )
    referral.admission_request_id = request.id
    session.flush()
    if referral.status == "accepted":
        _transition(session, actor, referral, "schedule")
    return referral


def arrive(session: Session, actor: Actor, referral_id: int) -> Referral:
    """The patient arrived (到诊): the visit is recorded at the receiving member on the
    referral's registration, so no second registration is made (001 §三(二)5)."""
    referral = get_referral(session, actor, referral_id)
    _transition(session, actor, referral, "arrive")
    at = now()
    referral.arrived_at = at
    if referral.appointment_id is not None:
        appointment = capacity.get_appointment(session, referral.appointment_id)
        if appointment.status == "booked":
            capacity.mark_arrived(session, actor, appointment.id)
    if referral.to_institution_id is not None:
        encounter = record.record_encounter(
            session,
            Actor.system("referral") if actor.role != "system" else actor,
            resident_id=referral.resident_id,
            institution_id=referral.to_institution_id,
            encounter_class=referral.care_type,
            started_at=at,
            practitioner_id=actor.practitioner_id,
        )
        referral.arrival_encounter_id = encounter.id
    session.flush()
    return referral


@hooks.listener("bed_admitted", "referral_arrival")
def _arrive_on_admission(session: Session, actor: Actor, request: AdmissionRequest) -> None:
    """A referred patient admitted from the ward's queue has arrived: the receiving side
    admitting her answers the referral (accepted, scheduled) and registers the arrival, with
    its inpatient encounter at the target (001 §三(三)1 优先住院). A referral the admitting
    user may not act on, or already past its time limit, is left to the coordinator."""
    if not request.via_referral:
        return
    referral = session.scalar(select(Referral).where(Referral.admission_request_id == request.id))
    if referral is None or referral.status not in ("submitted", "accepted", "scheduled"):
        return
    if not (_receiving_side(actor, referral) or _coordinator(actor, referral)):
        return
    if referral.status == "submitted":
        if rules.is_overdue(referral.status, referral.due_at, now()):
            return
        accept(session, actor, referral.id, "办理入院")
    if referral.status == "accepted":
        _transition(session, actor, referral, "schedule", "已安排床位")
    arrive(session, actor, referral.id)


def complete(session: Session, actor: Actor, referral_id: int, feedback: str) -> Referral:
    """Close the loop: the receiving doctor's findings go back to the referring doctor."""
    if not (feedback or "").strip():
        raise Invalid("请填写诊疗结果反馈", field="feedback")
    referral = get_referral(session, actor, referral_id)
    _transition(session, actor, referral, "complete", feedback.strip())
    referral.feedback = feedback.strip()
    referral.completed_at = now()
    session.flush()
    return referral


def expire_overdue(session: Session, actor: Actor, *, at: datetime | None = None) -> int:
    """Expire submitted referrals past their time limit and escalate them to the coordinator
    (profile `referral.response_time_limit_hours`; 002 §四(三)1 转诊监测制度)."""
    at = at or now()
    # SKIP LOCKED (PostgreSQL): a second pass running at the same time (the server's loop and
    # `caregrid jobs run`) leaves the rows the first is expiring to it.
    overdue = session.scalars(
        select(Referral)
        .where(Referral.status == "submitted", Referral.due_at < at)
        .with_for_update(skip_locked=True)
    ).all()
    expired = 0
    for referral in overdue:
        if actor.role != "system" and not _coordinator(actor, referral):
            continue
        _transition(session, actor, referral, "expire", "超过受理时限，转交转诊协调员")
        referral.escalated_at = at
        _release_booking(session, actor, referral)
        expired += 1
    session.flush()
    return expired


# --- worklists ------------------------------------------------------------------------------

OPEN = ("submitted", "accepted", "scheduled", "arrived")


def incoming(session: Session, actor: Actor, *, include_closed: bool = False) -> Sequence[Referral]:
    """Referrals sent to the caller's member (the specialist's worklist), urgent and priority
    first, then by due time."""
    if actor.institution_id is None:
        return []
    stmt = select(Referral).where(Referral.to_institution_id == actor.institution_id)
    stmt = (
        stmt.where(Referral.status != "draft")
        if include_closed
        else stmt.where(Referral.status.in_(OPEN))
    )
    rows = session.scalars(stmt.order_by(Referral.created_at.desc()).limit(200)).all()
    order = {"urgent": 0, "priority": 1, "routine": 2}
    return sorted(rows, key=lambda r: (order[r.priority], r.due_at or r.created_at))


def outgoing(session: Session, actor: Actor) -> Sequence[Referral]:
    if actor.institution_id is None:
        return []
    return session.scalars(
        select(Referral)
        .where(Referral.from_institution_id == actor.institution_id)
        .order_by(Referral.created_at.desc())
        .limit(200)
    ).all()


def names_of(session: Session, referrals: Sequence[Referral]) -> dict[str, dict[int, str]]:
    """Institution and resident names for listing referrals the caller may already see."""
    institutions = registry.institution_names(
        session,
        [r.from_institution_id for r in referrals] + [r.to_institution_id for r in referrals],
    )
    residents = registry.resident_names_of(session, [r.resident_id for r in referrals])
    return {"institutions": institutions, "residents": residents}
