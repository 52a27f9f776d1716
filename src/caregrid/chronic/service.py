"""Chronic-care use cases: enrol (from shared-record diagnoses or by a team), record a
follow-up with the rules engine's decision, prescribe long, and read control status.

Services only flush; the request owns the transaction. Every read or write of a resident's
data goes through the access check, which audits it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Subquery, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caregrid.chronic import rules
from caregrid.chronic.errors import AlreadyEnrolled, EnrolmentNotFound, NotEligible
from caregrid.chronic.models import (
    FACE_TO_FACE_MODES,
    FOLLOWUP_MODES,
    PROGRAMS,
    RISK_GRADES,
    ChronicEnrolment,
    FollowUp,
    LongPrescription,
)
from caregrid.core.actor import Actor
from caregrid.core.clock import today
from caregrid.core.errors import Forbidden, Invalid
from caregrid.identity.access import CLINICAL_ROLES, load_for_resident, require_resident_access
from caregrid.record import service as record
from caregrid.registry import service as registry

# ICD-10 codes of the registries: essential and secondary hypertension I10-I15, type-2 diabetes
# E11 (国家基本公共卫生服务规范 第三版 manages primary hypertension and type-2 diabetes).
PROGRAM_CODES: dict[str, tuple[str, ...]] = {
    "hypertension": ("I10", "I11", "I12", "I13", "I15"),
    "diabetes": ("E11",),
}
WRITE_ROLES = CLINICAL_ROLES | {"system"}


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _require_clinical(actor: Actor) -> None:
    if actor.role not in WRITE_ROLES:
        raise Forbidden("当前角色无权记录慢病管理信息", role=actor.role)


def program_of_code(code: str) -> str | None:
    for program, prefixes in PROGRAM_CODES.items():
        if code.upper().startswith(prefixes):
            return program
    return None


def enrol(
    session: Session,
    actor: Actor,
    *,
    resident_id: int,
    program: str,
    institution_id: int | None = None,
    enrolled_on: date | None = None,
    risk_grade: str = "low",
    practitioner_id: int | None = None,
    source: str = "team",
    diagnosis_code: str | None = None,
) -> ChronicEnrolment:
    """Put a resident aged 35 or over in the hypertension or diabetes registry (国家基本公共卫生
    服务规范 第三版: 辖区内35岁及以上常住居民中原发性高血压/2型糖尿病患者). One active enrolment per
    resident and programme."""
    _require_clinical(actor)
    if program not in PROGRAMS:
        raise Invalid(f"未知慢病项目：{program}", field="program")
    if risk_grade not in RISK_GRADES:
        raise Invalid(f"未知风险分级：{risk_grade}", field="risk_grade")
    resident = registry.require_resident_exists(session, resident_id)
    require_resident_access(
        session,
        actor,
        resident_id,
        action="create",
        resource="ChronicEnrolment",
        detail={"program": program},
    )
    on = enrolled_on or today()
    if on > today():
        raise Invalid("纳入管理日期不能晚于今天", field="enrolled_on")
    if not rules.eligible_age(_age(resident.birth_date, on)):
        raise NotEligible(
            f"{rules.PROGRAM_LABELS[program]}患者健康管理服务对象为35岁及以上居民",
            field="resident_id",
            rule="age_35_and_over",
        )
    if active_enrolment(session, resident_id, program) is not None:
        raise AlreadyEnrolled(
            f"该居民已在{rules.PROGRAM_LABELS[program]}管理中", field="program", rule="one_active"
        )
    inst_id = institution_id or actor.institution_id or resident.home_institution_id
    if inst_id is None:
        raise Invalid("请指定管理机构", field="institution_id")
    inst = registry.get_institution(session, inst_id)
    enrolment = ChronicEnrolment(
        resident_id=resident_id,
        program=program,
        institution_id=inst.id,
        group_id=inst.group_id,
        practitioner_id=practitioner_id or actor.practitioner_id,
        enrolled_on=on,
        source=source,
        diagnosis_code=diagnosis_code,
        risk_grade=risk_grade,
    )
    try:
        with session.begin_nested():
            session.add(enrolment)
            session.flush()
    except IntegrityError as exc:
        raise AlreadyEnrolled(
            f"该居民已在{rules.PROGRAM_LABELS[program]}管理中", field="program", rule="one_active"
        ) from exc
    return enrolment


def enrol_from_record(session: Session, actor: Actor, *, on: date | None = None) -> int:
    """Enrol every resident with a hypertension (I10-I15) or type-2 diabetes (E11) diagnosis in
    the shared record who is 35 or over and not yet in that registry. Managed by the resident's
    home institution (the diagnosing member when none). Idempotent; returns how many."""
    if actor.role != "system":
        raise Forbidden("仅系统任务可批量纳入慢病管理", role=actor.role)
    on = on or today()
    prefixes = [p for codes in PROGRAM_CODES.values() for p in codes]
    first: dict[tuple[int, str], tuple[str, date, int | None]] = {}
    for resident_id, code, started, institution_id, _group in record.diagnoses_matching(
        session, prefixes
    ):
        program = program_of_code(code)
        if program is not None and (resident_id, program) not in first:
            first[(resident_id, program)] = (code, started.date(), institution_id)
    existing = {
        (rid, program)
        for rid, program in session.execute(
            select(ChronicEnrolment.resident_id, ChronicEnrolment.program).where(
                ChronicEnrolment.status == "active"
            )
        )
    }
    created = 0
    for (resident_id, program), (code, dx_on, dx_inst) in first.items():
        if (resident_id, program) in existing:
            continue
        resident = registry.require_resident_exists(session, resident_id)
        if not rules.eligible_age(_age(resident.birth_date, on)):
            continue
        inst_id = resident.home_institution_id or dx_inst
        if inst_id is None:
            continue
        enrol(
            session,
            actor,
            resident_id=resident_id,
            program=program,
            institution_id=inst_id,
            enrolled_on=min(dx_on, on),
            source="diagnosis",
            diagnosis_code=code,
        )
        created += 1
    return created


def active_enrolment(session: Session, resident_id: int, program: str) -> ChronicEnrolment | None:
    return session.scalar(
        select(ChronicEnrolment).where(
            ChronicEnrolment.resident_id == resident_id,
            ChronicEnrolment.program == program,
            ChronicEnrolment.status == "active",
        )
    )


def get_enrolment(session: Session, actor: Actor, enrolment_id: int) -> ChronicEnrolment:
    enrolment = load_for_resident(
        session,
        actor,
        ChronicEnrolment,
        enrolment_id,
        EnrolmentNotFound("未找到该慢病管理档案", enrolment_id=enrolment_id),
        action="read",
        resource="ChronicEnrolment",
        detail={"enrolment_id": enrolment_id},
    )
    return enrolment


def _previous_followup(
    session: Session, enrolment_id: int, on: date, exclude_id: int | None = None
) -> FollowUp | None:
    stmt = (
        select(FollowUp)
        .where(FollowUp.enrolment_id == enrolment_id, FollowUp.followed_on <= on)
        .order_by(FollowUp.followed_on.desc(), FollowUp.id.desc())
        .limit(1)
    )
    if exclude_id is not None:
        stmt = stmt.where(FollowUp.id != exclude_id)
    return session.scalar(stmt)


def record_followup(
    session: Session,
    actor: Actor,
    *,
    enrolment_id: int,
    followed_on: date,
    mode: str = "clinic",
    sbp: int | None = None,
    dbp: int | None = None,
    fasting_glucose: float | None = None,
    medication: str | None = None,
    adherence: str | None = None,
    note: str | None = None,
) -> tuple[FollowUp, rules.Decision]:
    """Record a follow-up and decide the next action with the rules engine (`chronic.rules`).
    A follow-up dated in the future or before enrolment, or with readings outside
    physiological ranges, is refused before anything is written."""
    _require_clinical(actor)
    enrolment = load_for_resident(
        session,
        actor,
        ChronicEnrolment,
        enrolment_id,
        EnrolmentNotFound("未找到该慢病管理档案", enrolment_id=enrolment_id),
        action="create",
        resource="FollowUp",
        detail={"enrolment_id": enrolment_id},
    )
    if enrolment.status != "active":
        raise Invalid("该慢病管理档案已结案", field="enrolment_id", rule="enrolment_closed")
    if mode not in FOLLOWUP_MODES:
        raise Invalid(f"未知随访方式：{mode}", field="mode")
    rules.check_followup_date(followed_on, today=today(), enrolled_on=enrolment.enrolled_on)
    reading = rules.Reading(sbp, dbp, fasting_glucose)
    previous = _previous_followup(session, enrolment_id, followed_on)
    decision = rules.assess(
        enrolment.program,
        reading,
        on=followed_on,
        previous_controlled=None if previous is None else previous.controlled,
    )
    inst_id = actor.institution_id or enrolment.institution_id
    inst = registry.get_institution(session, inst_id)
    followup = FollowUp(
        enrolment_id=enrolment.id,
        resident_id=enrolment.resident_id,
        program=enrolment.program,
        institution_id=inst.id,
        group_id=inst.group_id,
        practitioner_id=actor.practitioner_id,
        user_id=actor.user_id,
        followed_on=followed_on,
        mode=mode,
        sbp=sbp,
        dbp=dbp,
        fasting_glucose=fasting_glucose,
        medication=(medication or "").strip() or None,
        adherence=adherence,
        controlled=decision.controlled,
        action=decision.action,
        clause=decision.clause,
        next_due=decision.next_due,
        note=(note or "").strip() or None,
    )
    session.add(followup)
    session.flush()
    return followup, decision


def prescribe_long(
    session: Session,
    actor: Actor,
    *,
    enrolment_id: int,
    drug_name: str,
    drug_class: str,
    weeks: int,
    assessment_note: str | None = None,
    prescribed_on: date | None = None,
) -> LongPrescription:
    """A long prescription (长期处方管理规范（试行）2021): ≤ 12 weeks, over 4 weeks only for a
    patient whose latest follow-up was controlled and with the doctor's assessment on record;
    excluded drug classes refused."""
    _require_clinical(actor)
    enrolment = load_for_resident(
        session,
        actor,
        ChronicEnrolment,
        enrolment_id,
        EnrolmentNotFound("未找到该慢病管理档案", enrolment_id=enrolment_id),
        action="create",
        resource="LongPrescription",
        detail={"enrolment_id": enrolment_id, "weeks": weeks, "drug_class": drug_class},
    )
    if not drug_name.strip():
        raise Invalid("请填写药品名称", field="drug_name")
    on = prescribed_on or today()
    latest = _previous_followup(session, enrolment_id, on)
    rules.check_long_prescription(
        weeks=weeks,
        drug_class=drug_class,
        assessment_note=assessment_note,
        stable=latest is not None and latest.controlled,
    )
    inst = registry.get_institution(session, actor.institution_id or enrolment.institution_id)
    rx = LongPrescription(
        enrolment_id=enrolment.id,
        resident_id=enrolment.resident_id,
        institution_id=inst.id,
        group_id=inst.group_id,
        practitioner_id=actor.practitioner_id,
        user_id=actor.user_id,
        drug_name=drug_name.strip(),
        drug_class=drug_class,
        weeks=weeks,
        assessment_note=(assessment_note or "").strip() or None,
        prescribed_on=on,
    )
    session.add(rx)
    session.flush()
    return rx


# --- control status -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramStatus:
    """One enrolment's state on a day: last follow-up, control, next due, lost."""

    enrolment_id: int
    resident_id: int
    program: str
    institution_id: int
    enrolled_on: date
    last_followup: date | None
    controlled: bool
    last_action: str | None
    next_due: date
    lost: bool
    face_to_face_in_year: int


def program_statuses(
    session: Session,
    *,
    on: date,
    resident_ids: Iterable[int] | None = None,
    institution_ids: Iterable[int] | None = None,
    group_id: int | None = None,
    year_start: date | None = None,
) -> list[ProgramStatus]:
    """The status on `on` of every active enrolment (optionally restricted): the latest
    follow-up per enrolment (a window function) and the face-to-face count of the year are
    computed in the database. A patient never followed up is due on the enrolment day.
    Control comes from the latest follow-up on or before `on`; a lost patient counts as not
    controlled (国家基本公共卫生服务规范 考核指标: 若失访则判断为未达标)."""
    conditions: list[ColumnElement[bool]] = [
        ChronicEnrolment.status == "active",
        ChronicEnrolment.enrolled_on <= on,
    ]
    if resident_ids is not None:
        conditions.append(ChronicEnrolment.resident_id.in_(list(resident_ids)))
    if institution_ids is not None:
        conditions.append(ChronicEnrolment.institution_id.in_(list(institution_ids)))
    if group_id is not None:
        conditions.append(ChronicEnrolment.group_id == group_id)
    restricted = len(conditions) > 2
    start = year_start or date(on.year, 1, 1)
    latest_q = select(
        FollowUp.enrolment_id,
        FollowUp.followed_on,
        FollowUp.controlled,
        FollowUp.action,
        FollowUp.next_due,
        func.row_number()
        .over(
            partition_by=FollowUp.enrolment_id,
            order_by=(FollowUp.followed_on.desc(), FollowUp.id.desc()),
        )
        .label("rn"),
    ).where(FollowUp.followed_on <= on)
    count_q = (
        select(FollowUp.enrolment_id, func.count().label("n"))
        .where(
            FollowUp.followed_on >= start,
            FollowUp.followed_on <= on,
            FollowUp.mode.in_(FACE_TO_FACE_MODES),
        )
        .group_by(FollowUp.enrolment_id)
    )
    if restricted:
        wanted = select(ChronicEnrolment.id).where(*conditions)
        latest_q = latest_q.where(FollowUp.enrolment_id.in_(wanted))
        count_q = count_q.where(FollowUp.enrolment_id.in_(wanted))
    # Three set-based queries merged in Python: joining the windowed subquery back to the
    # enrolments makes SQLite's planner loop over it once per enrolment.
    conn = session.connection()
    latest_sq = latest_q.subquery()
    latest = {
        eid: (followed_on, controlled, action, next_due)
        for eid, followed_on, controlled, action, next_due in conn.execute(
            select(
                latest_sq.c.enrolment_id,
                latest_sq.c.followed_on,
                latest_sq.c.controlled,
                latest_sq.c.action,
                latest_sq.c.next_due,
            ).where(latest_sq.c.rn == 1)
        ).all()
    }
    counts: dict[int, int] = {eid: n for eid, n in conn.execute(count_q).all()}
    rows = conn.execute(
        select(
            ChronicEnrolment.id,
            ChronicEnrolment.resident_id,
            ChronicEnrolment.program,
            ChronicEnrolment.institution_id,
            ChronicEnrolment.enrolled_on,
        )
        .where(*conditions)
        .order_by(ChronicEnrolment.id)
    ).all()
    out: list[ProgramStatus] = []
    for eid, rid, program, inst, enrolled_on in rows:
        last_on, controlled, action, next_due = latest.get(eid, (None, False, None, None))
        lost = rules.is_lost(last_on, enrolled_on, on=on)
        out.append(
            ProgramStatus(
                enrolment_id=eid,
                resident_id=rid,
                program=program,
                institution_id=inst,
                enrolled_on=enrolled_on,
                last_followup=last_on,
                controlled=bool(controlled) and not lost,
                last_action=action,
                next_due=next_due or enrolled_on,
                lost=lost,
                face_to_face_in_year=counts.get(eid, 0),
            )
        )
    return out


def resident_programs(
    session: Session, actor: Actor, resident_id: int
) -> list[tuple[ChronicEnrolment, list[FollowUp]]]:
    """A resident's enrolments with their follow-ups, newest first (access checked, audited)."""
    registry.require_resident_exists(session, resident_id)
    require_resident_access(session, actor, resident_id, action="read", resource="ChronicEnrolment")
    enrolments = session.scalars(
        select(ChronicEnrolment)
        .where(ChronicEnrolment.resident_id == resident_id)
        .order_by(ChronicEnrolment.id)
    ).all()
    out = []
    for enrolment in enrolments:
        followups = session.scalars(
            select(FollowUp)
            .where(FollowUp.enrolment_id == enrolment.id)
            .order_by(FollowUp.followed_on.desc(), FollowUp.id.desc())
        ).all()
        out.append((enrolment, list(followups)))
    return out


def face_to_face_followups(on: date) -> Subquery:
    """Face-to-face follow-ups up to `on` as a subquery (resident_id, followed_on), for other
    domains to count against their own periods (a contract's fulfilment) in one query."""
    return (
        select(FollowUp.resident_id, FollowUp.followed_on)
        .where(FollowUp.mode.in_(FACE_TO_FACE_MODES), FollowUp.followed_on <= on)
        .subquery()
    )


def followups_by_resident_date(
    session: Session, resident_ids: Sequence[int], *, since: date, until: date
) -> dict[int, list[date]]:
    """Dates of face-to-face follow-ups per resident in [since, until] (fulfilment counts them
    against each contract's period)."""
    out: dict[int, list[date]] = {}
    ids = list(resident_ids)
    for start in range(0, len(ids), 5000):
        rows = session.connection().execute(
            select(FollowUp.resident_id, FollowUp.followed_on).where(
                FollowUp.resident_id.in_(ids[start : start + 5000]),
                FollowUp.followed_on >= since,
                FollowUp.followed_on <= until,
                FollowUp.mode.in_(FACE_TO_FACE_MODES),
            )
        )
        for rid, on in rows.all():
            out.setdefault(rid, []).append(on)
    return out
