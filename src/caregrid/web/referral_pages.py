"""Referral and capacity pages (Chinese): the referral form with the shared record's summary,
the rule's advice and the slot picker (book in the same step); incoming and outgoing
worklists; a referral's page with its actions and history; the down-referral form with a care
plan; the coordinator board with charts; the capacity calendar.

Thin handlers over `referral.service`, `referral.monitoring` and `capacity.service`, the same
functions the API calls. A DomainError on a form is shown beside the field it names."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from caregrid.capacity import service as capacity
from caregrid.core.actor import Actor
from caregrid.core.clock import local, now
from caregrid.core.errors import DomainError, Forbidden
from caregrid.core.http import DB, api_router
from caregrid.profiles import service as profile_service
from caregrid.referral import monitoring, rules
from caregrid.referral import service as referrals
from caregrid.referral.models import Referral
from caregrid.referral.schemas import ReferralCreate
from caregrid.registry import service as registry
from caregrid.web.auth import CSRF_FIELD, PageActor, check_csrf
from caregrid.web.pages import page, wants_partial
from caregrid.web.render import render

router = api_router(include_in_schema=False)

PRIORITY_LABELS = {"urgent": "紧急", "priority": "优先", "routine": "普通"}
DIRECTION_LABELS = {"up": "上转", "down": "下转"}
CARE_TYPE_LABELS = {"outpatient": "门诊", "inpatient": "住院"}
REASON_LABELS = {
    "outside_catalogue": "超出本级诊疗目录",
    "chronic_uncontrolled": "连续两次控制不满意",
    "emergency_bp": "血压危急值",
    "emergency_glucose": "血糖危急值",
    "doctor": "医生判断",
    **rules.DOWN_CATEGORIES,
}
STATUS_BADGES = {
    "submitted": "badge-warn",
    "accepted": "badge-accent",
    "scheduled": "badge-accent",
    "arrived": "badge-accent",
    "completed": "badge-ok",
    "rejected": "badge-danger",
    "expired": "badge-danger",
    "cancelled": "badge-muted",
    "draft": "badge-muted",
}
LABELS = {
    "status": rules.STATUS_LABELS,
    "action": rules.ACTION_LABELS,
    "priority": PRIORITY_LABELS,
    "direction": DIRECTION_LABELS,
    "care_type": CARE_TYPE_LABELS,
    "reason": REASON_LABELS,
    "badge": STATUS_BADGES,
}


def _rows(db: Session, items: list[Referral] | Any) -> list[dict[str, Any]]:
    items = list(items)
    names = referrals.names_of(db, items)
    at = now()
    return [
        {
            "r": r,
            "resident": names["residents"].get(r.resident_id, "—"),
            "from": names["institutions"].get(r.from_institution_id, "—"),
            "to": names["institutions"].get(r.to_institution_id or 0)
            or r.external_institution
            or "—",
            "overdue": rules.is_overdue(r.status, r.due_at, at),
        }
        for r in items
    ]


# --- worklists --------------------------------------------------------------------------------


@router.get("/referrals", response_class=HTMLResponse)
def worklists(request: Request, db: DB, actor: PageActor) -> Response:
    if actor.role in monitoring.MONITOR_ROLES and actor.institution_id is None:
        return RedirectResponse("/referrals/board", status_code=303)
    return page(
        request,
        db,
        actor,
        "referral",
        "referral_list.html",
        {
            "incoming": _rows(db, referrals.incoming(db, actor, include_closed=True)),
            "outgoing": _rows(db, referrals.outgoing(db, actor)),
            "L": LABELS,
            "is_coordinator": actor.role in monitoring.MONITOR_ROLES,
        },
    )


# --- the referral form ---------------------------------------------------------------------


def _targets(db: Session, actor: Actor) -> list[Any]:
    """Members of the caller's group a primary doctor refers up to (secondary and tertiary)."""
    if actor.group_id is None:
        return []
    return [
        m
        for m in registry.group_members(db, actor.group_id)
        if m.level in ("tertiary", "secondary") and m.id != actor.institution_id
    ]


def _form_context(
    db: Session,
    actor: Actor,
    resident_id: int | None,
    to: int | None,
    dept: int | None,
    values: dict[str, Any],
) -> dict[str, Any]:
    targets = _targets(db, actor)
    target_id = to or (targets[0].id if targets else None)
    ctx: dict[str, Any] = {
        "targets": targets,
        "target_id": target_id,
        "resident": None,
        "prefill": None,
        "advice": None,
        "slots": [],
        "departments": [],
        "dept_id": None,
        "values": values,
        "L": LABELS,
        "reserved_share": None,
    }
    profile = profile_service.active_profile(db)
    share = profile.get("capacity.reserved_outpatient_share")
    if share is not None:
        ctx["reserved_share"] = share
    if target_id is not None:
        departments = list(registry.departments_of(db, target_id))
        with_slots = capacity.departments_with_slots(db, actor, target_id)
        ids = [d.id for d in departments]
        dept_id = dept if dept in ids else next((i for i in ids if i in with_slots), None)
        ctx.update(departments=departments, dept_id=dept_id)
        if dept_id is not None:
            free = capacity.find_slots(
                db, actor, institution_id=target_id, department_id=dept_id, limit=60
            )
            ctx["slots"] = _slot_days(free)
    if resident_id is None:
        return ctx
    resident, _ = registry.get_resident(db, actor, resident_id, resource="ReferralForm")
    ctx["resident"] = registry.summarize(resident)
    prefill = referrals.prefill(db, actor, resident_id)
    ctx["prefill"] = prefill
    values.setdefault("summary", prefill.summary)
    values.setdefault("diagnosis_code", prefill.diagnosis_code or "")
    values.setdefault("diagnosis_name", prefill.diagnosis_name or "")
    code = values.get("diagnosis_code") or None
    try:
        ctx["advice"] = referrals.advice_for(
            db,
            actor,
            resident_id=resident_id,
            diagnosis_code=code,
            doctor_reason=values.get("reason_text"),
        )
    except DomainError as exc:
        ctx["advice_error"] = exc.detail
    return ctx


def _slot_days(free: list[capacity.FreeSlot]) -> list[tuple[str, list[capacity.FreeSlot]]]:
    days: dict[str, list[capacity.FreeSlot]] = defaultdict(list)
    for f in free:
        days[local(f.slot.start_at).strftime("%Y-%m-%d")].append(f)
    return list(days.items())


@router.get("/referrals/new", response_class=HTMLResponse)
def referral_form(
    request: Request,
    db: DB,
    actor: PageActor,
    resident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    to: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    dept: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    if actor.role != "doctor":
        raise Forbidden("仅医生可以发起转诊")
    ctx = _form_context(db, actor, resident_id, to, dept, {})
    return page(request, db, actor, "referral", "referral_form.html", {**ctx, "errors": {}})


@router.post("/referrals/new", response_class=HTMLResponse)
def referral_submit(
    request: Request,
    db: DB,
    actor: PageActor,
    resident_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    to_institution_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    to_department_id: Annotated[str, Form()] = "",
    diagnosis_code: Annotated[str, Form(max_length=20)] = "",
    diagnosis_name: Annotated[str, Form(max_length=100)] = "",
    reason_text: Annotated[str, Form(max_length=1000)] = "",
    summary: Annotated[str, Form(max_length=4000)] = "",
    care_type: Annotated[str, Form()] = "outpatient",
    slot_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    values = {
        "to_department_id": to_department_id,
        "diagnosis_code": diagnosis_code,
        "diagnosis_name": diagnosis_name,
        "reason_text": reason_text,
        "summary": summary,
        "care_type": care_type,
        "slot_id": slot_id,
    }
    try:
        data = ReferralCreate(
            resident_id=resident_id,
            to_institution_id=to_institution_id,
            to_department_id=int(to_department_id) if to_department_id else None,
            diagnosis_code=diagnosis_code.strip() or None,
            diagnosis_name=diagnosis_name.strip() or None,
            reason_text=reason_text.strip() or None,
            summary=summary.strip() or None,
            care_type="inpatient" if care_type == "inpatient" else "outpatient",
            slot_id=int(slot_id) if slot_id else None,
        )
        referral = referrals.create_referral(db, actor, data)
    except DomainError as exc:
        db.rollback()
        field = str(exc.fields.get("field") or "")
        dept = int(to_department_id) if to_department_id.isdigit() else None
        ctx = _form_context(db, actor, resident_id, to_institution_id, dept, values)
        errors = {field: exc.detail} if field else {}
        return page(
            request,
            db,
            actor,
            "referral",
            "referral_form.html",
            {**ctx, "errors": errors, "message": None if field else exc.detail},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/referrals/{referral.id}", status_code=303)


# --- one referral ---------------------------------------------------------------------------


def _detail(
    request: Request,
    db: Session,
    actor: Actor,
    referral_id: int,
    *,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    referral = referrals.get_referral(db, actor, referral_id)
    row = _rows(db, [referral])[0]
    appointment = slot = None
    if referral.appointment_id is not None:
        appointment = capacity.get_appointment(db, referral.appointment_id)
        slot = capacity.get_slot(db, Actor.system(), appointment.slot_id)
    allowed = [
        a
        for a in rules.allowed_actions(referral.status)
        if a not in ("expire", "submit") and referrals.ACTORS_OF[a](actor, referral)
    ]
    can_refer_down = (
        referral.direction == "up"
        and referral.status == "completed"
        and actor.institution_id == referral.to_institution_id
        and actor.role == "doctor"
    )
    return page(
        request,
        db,
        actor,
        "referral",
        "referral_detail.html",
        {
            "row": row,
            "r": referral,
            "history": referrals.history(db, actor, referral_id),
            "appointment": appointment,
            "slot": slot,
            "allowed": allowed,
            "can_refer_down": can_refer_down,
            "errors": errors or {},
            "message": message,
            "L": LABELS,
        },
        status_code=status_code,
    )


@router.get("/referrals/board", response_class=HTMLResponse)
def board(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    """The coordinator's board: monthly up/down with the downward share, time to accept,
    closed-loop rate, reserved capacity offered vs used, and the lists to chase."""
    summary = monitoring.summary(db, actor)
    ids = summary.overdue_ids + summary.unclosed_ids + summary.escalated_ids
    by_id = {r.id: r for r in (db.get(Referral, i) for i in set(ids)) if r is not None}
    rows = {row["r"].id: row for row in _rows(db, list(by_id.values()))}
    inst_names = registry.institution_names(
        db,
        [m.institution_id for m in summary.members] + [u.institution_id for u in summary.reserved],
    )
    trend = {
        "categories": [m.month for m in summary.months],
        "up": [m.up for m in summary.months],
        "down": [m.down for m in summary.months],
        "share": [
            None if m.down_share is None else round(m.down_share * 100, 1) for m in summary.months
        ],
    }
    reserved_chart = {
        "title": "下沉预留号源：提供与使用",
        "categories": [inst_names.get(u.institution_id, "—") for u in summary.reserved],
        "series": [
            {
                "name": "基层已用预留号",
                "data": [u.reserved_booked_by_primary for u in summary.reserved],
            },
            {
                "name": "预留未用（含已释放）",
                "data": [
                    u.reserved_offered - u.reserved_booked_by_primary for u in summary.reserved
                ],
            },
            {
                "name": "普通号源",
                "data": [u.slots_total - u.reserved_offered for u in summary.reserved],
            },
        ],
    }
    return page(
        request,
        db,
        actor,
        "referral",
        "referral_board.html",
        {
            "s": summary,
            "trend": trend,
            "reserved_chart": reserved_chart,
            "inst_names": inst_names,
            "overdue": [rows[i] for i in summary.overdue_ids if i in rows],
            "unclosed": [rows[i] for i in summary.unclosed_ids if i in rows],
            "escalated": [rows[i] for i in summary.escalated_ids[-50:] if i in rows],
            "L": LABELS,
        },
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def referral_page(request: Request, referral_id: int, db: DB, actor: PageActor) -> HTMLResponse:
    return _detail(request, db, actor, referral_id)


# --- down-referral ----------------------------------------------------------------------------


def _down_context(db: Session, actor: Actor, parent: Referral) -> dict[str, Any]:
    members = registry.group_members(db, parent.group_id) if parent.group_id else []
    receivers = [m for m in members if m.level in ("primary", "village", "secondary")]
    receivers = [m for m in receivers if m.id != actor.institution_id]
    return {
        "parent": parent,
        "receivers": receivers,
        "categories": rules.DOWN_CATEGORIES,
        "L": LABELS,
    }


@router.get("/referrals/{referral_id}/down", response_class=HTMLResponse)
def down_form(request: Request, referral_id: int, db: DB, actor: PageActor) -> HTMLResponse:
    parent = referrals.get_referral(db, actor, referral_id)
    ctx = _down_context(db, actor, parent)
    values = {"to_institution_id": parent.from_institution_id}
    return page(
        request,
        db,
        actor,
        "referral",
        "referral_down.html",
        {**ctx, "values": values, "errors": {}},
    )


@router.post("/referrals/{referral_id}/down", response_class=HTMLResponse)
def down_submit(
    request: Request,
    referral_id: int,
    db: DB,
    actor: PageActor,
    to_institution_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    down_category: Annotated[str, Form()] = "",
    care_plan: Annotated[str, Form(max_length=4000)] = "",
    care_type: Annotated[str, Form()] = "outpatient",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    parent = referrals.get_referral(db, actor, referral_id)
    values = {
        "to_institution_id": to_institution_id,
        "down_category": down_category,
        "care_plan": care_plan,
    }
    try:
        data = ReferralCreate.model_validate(
            {
                "resident_id": parent.resident_id,
                "to_institution_id": to_institution_id,
                "diagnosis_code": parent.diagnosis_code,
                "diagnosis_name": parent.diagnosis_name,
                "down_category": down_category or None,
                "care_plan": care_plan.strip() or None,
                "care_type": "inpatient" if care_type == "inpatient" else "outpatient",
                "parent_id": parent.id,
            }
        )
        created = referrals.create_referral(db, actor, data)
    except (DomainError, ValueError) as exc:
        db.rollback()
        if isinstance(exc, DomainError):
            field, detail, status = str(exc.fields.get("field") or ""), exc.detail, exc.status_code
        else:
            field, detail, status = "down_category", "请选择下转类别", 422
        ctx = _down_context(db, actor, referrals.get_referral(db, actor, referral_id))
        return page(
            request,
            db,
            actor,
            "referral",
            "referral_down.html",
            {**ctx, "values": values, "errors": {field or "form": detail}},
            status_code=status,
        )
    return RedirectResponse(f"/referrals/{created.id}", status_code=303)


# The generic action route comes after /referrals/{id}/down so that it does not swallow it.


@router.post("/referrals/{referral_id}/{action}", response_class=HTMLResponse)
def referral_action(
    request: Request,
    referral_id: int,
    action: str,
    db: DB,
    actor: PageActor,
    reason: Annotated[str, Form(max_length=1000)] = "",
    feedback: Annotated[str, Form(max_length=4000)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    handlers = {
        "accept": lambda: referrals.accept(db, actor, referral_id),
        "reject": lambda: referrals.reject(db, actor, referral_id, reason),
        "arrive": lambda: referrals.arrive(db, actor, referral_id),
        "complete": lambda: referrals.complete(db, actor, referral_id, feedback),
        "cancel": lambda: referrals.cancel(db, actor, referral_id, reason or None),
    }
    handler = handlers.get(action)
    if handler is None:
        return _detail(request, db, actor, referral_id, message="未知操作", status_code=404)
    try:
        handler()
    except DomainError as exc:
        db.rollback()
        field = str(exc.fields.get("field") or "")
        return _detail(
            request,
            db,
            actor,
            referral_id,
            errors={field: exc.detail} if field else None,
            message=None if field else exc.detail,
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)


# --- capacity calendar ------------------------------------------------------------------------


@router.get("/capacity", response_class=HTMLResponse)
def capacity_page(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    """Free slots of the next days per hospital and department, with the reserved share, the
    wards with their beds and admission queues, and the profile's rules for them."""
    return _capacity(request, db, actor, _ward_context(db, actor))


def _capacity(
    request: Request, db: Session, actor: Actor, ward: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    at = now()
    free = capacity.find_slots(db, actor, until=at + timedelta(days=7), limit=2000)
    table: dict[tuple[int, int], dict[str, Any]] = {}
    days: list[str] = []
    for f in free:
        day = local(f.slot.start_at).strftime("%m-%d")
        if day not in days:
            days.append(day)
        key = (f.slot.institution_id, f.slot.department_id)
        cell = table.setdefault(key, {"days": defaultdict(lambda: [0, 0])})
        cell["days"][day][0 if f.effective_pool == "general" else 1] += 1
    inst_names = registry.institution_names(db, [k[0] for k in table])
    dept_names: dict[int, str] = {}
    for inst_id in {k[0] for k in table}:
        dept_names.update({d.id: d.name for d in registry.departments_of(db, inst_id)})
    rows = [
        {"inst": inst_names.get(i, "—"), "dept": dept_names.get(d, "—"), "days": v["days"]}
        for (i, d), v in sorted(table.items())
    ]
    profile = profile_service.active_profile(db)
    params = [
        p
        for key in (
            "capacity.reserved_outpatient_share",
            "capacity.reserved_bed_share",
            "capacity.reserved_share_beneficiaries",
            "capacity.reserved_release_hours_before",
            "capacity.referral_priority",
        )
        if (p := profile.get(key)) is not None
    ]
    return page(
        request,
        db,
        actor,
        "capacity",
        "capacity.html",
        {
            "rows": rows,
            "days": sorted(days),
            "params": params,
            "profile": profile,
            "may_reserved": capacity.actor_may_use_reserved(db, actor),
            **ward,
        },
        status_code=status_code,
    )


def _ward_context(
    db: Session,
    actor: Actor,
    *,
    message: str | None = None,
    error: bool = False,
    open_ward: int | None = None,
) -> dict[str, Any]:
    """The wards section of the capacity calendar: bed counts, queues and stays."""
    wards = capacity.ward_views(db, actor)
    people = [q.resident_id for w in wards for q in w.queue] + [
        stay.resident_id for w in wards for stay, _ in w.stays
    ]
    return {
        "wards": wards,
        "ward_inst": registry.institution_names(db, [w.pool.institution_id for w in wards]),
        "ward_names": registry.resident_names_of(db, people),
        "ward_message": message,
        "ward_error": error,
        "open_ward": open_ward,
    }


def _ward_action(
    request: Request, db: Session, actor: Actor, csrf: str, action: Any, done: Any
) -> Response:
    """Run an admission or discharge and answer the wards section (htmx) or the page. A
    refusal (no free bed, empty queue, not this hospital's staff) is shown in the section;
    an htmx answer keeps status 200 so that the fragment is swapped in."""
    check_csrf(request, csrf)
    try:
        result = action()
    except DomainError as exc:
        db.rollback()
        context = _ward_context(db, actor, message=exc.detail, error=True)
        if wants_partial(request):
            return render(request, "_wards.html", context)
        return _capacity(request, db, actor, context, exc.status_code)
    message, open_ward = done(result)
    db.flush()
    if wants_partial(request):
        context = _ward_context(db, actor, message=message, open_ward=open_ward)
        return render(request, "_wards.html", context)
    return RedirectResponse("/capacity#wards", status_code=303)


@router.post("/capacity/wards/{pool_id}/admit-next", response_class=HTMLResponse)
def ward_admit_next(
    request: Request,
    pool_id: int,
    db: DB,
    actor: PageActor,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Admit the first patient of the ward's queue (`capacity.service.admit_next`)."""

    def done(stay: Any) -> tuple[str, int]:
        name = registry.resident_names_of(db, [stay.resident_id]).get(stay.resident_id, "")
        bed = "基层预留床位" if stay.pool == "reserved" else "普通床位"
        return f"已为 {name} 办理入院（{bed}）。", pool_id

    return _ward_action(
        request, db, actor, csrf_token, lambda: capacity.admit_next(db, actor, pool_id), done
    )


@router.post("/capacity/stays/{stay_id}/discharge", response_class=HTMLResponse)
def ward_discharge(
    request: Request,
    stay_id: int,
    db: DB,
    actor: PageActor,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Discharge a patient and free the bed (`capacity.service.discharge`)."""

    def done(stay: Any) -> tuple[str, None]:
        name = registry.resident_names_of(db, [stay.resident_id]).get(stay.resident_id, "")
        return f"{name} 已出院，床位已空出。", None

    return _ward_action(
        request, db, actor, csrf_token, lambda: capacity.discharge(db, actor, stay_id), done
    )
