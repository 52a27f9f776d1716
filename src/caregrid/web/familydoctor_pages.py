"""Family-doctor and chronic-care pages (in Chinese): the team worklist, the signing form, the
contract page, the follow-up form with the rules engine's feedback, the chronic patient list
and the manager view with charts. Thin handlers over `familydoctor.service`,
`familydoctor.measures` and `chronic.service` (the same functions as the API)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from caregrid.chronic import rules as chronic_rules
from caregrid.chronic import service as chronic
from caregrid.core.actor import Actor
from caregrid.core.clock import today
from caregrid.core.errors import DomainError, Invalid, NotFound
from caregrid.core.http import DB, api_router
from caregrid.familydoctor import measures
from caregrid.familydoctor import rules as fd_rules
from caregrid.familydoctor import service as fd
from caregrid.profiles.service import active_profile
from caregrid.registry import service as registry
from caregrid.web.auth import CSRF_FIELD, PageActor, check_csrf

router = api_router(include_in_schema=False)
Csrf = Annotated[str, Form(alias=CSRF_FIELD)]

MODE_LABELS = {"clinic": "门诊", "home": "家庭", "phone": "电话", "online": "网络"}
STATUS_LABELS = {
    "active": "生效",
    "ended": "已到期/续约",
    "terminated": "已解约",
    "changed": "已改签",
}
RISK_LABELS = {"low": "低危", "medium": "中危", "high": "高危"}


def _page(
    request: Request,
    db: Session,
    actor: Actor,
    active: str,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    from caregrid.web.pages import page

    return page(request, db, actor, active, template, context, status_code=status_code)


def _errors(exc: DomainError) -> tuple[dict[str, str], str | None]:
    field = exc.fields.get("field")
    return ({str(field): exc.detail}, None) if field else ({}, exc.detail)


# --- team worklist ---------------------------------------------------------------------------


@router.get("/familydoctor", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    db: DB,
    actor: PageActor,
    team_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    teams = fd.teams_for_actor(db, actor)
    team = next((t for t in teams if t.id == team_id), teams[0] if teams else None)
    work = fd.worklist(db, actor, team.id) if team else None
    return _page(
        request,
        db,
        actor,
        "familydoctor",
        "fd_worklist.html",
        {
            "teams": teams,
            "team": team,
            "work": work,
            "members": fd.team_members(db, team.id) if team else [],
            "may_manage": actor.role in measures.MEASURE_ROLES,
            "role_labels": fd_rules.ROLE_LABELS,
        },
    )


# --- signing ---------------------------------------------------------------------------------


def _sign_form(
    request: Request,
    db: Session,
    actor: Actor,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    resident = None
    rid = values.get("resident_id")
    if rid and not errors:
        try:
            resident, _ = registry.get_resident(db, actor, int(rid))
        except (NotFound, ValueError):
            resident = None
    return _page(
        request,
        db,
        actor,
        "familydoctor",
        "fd_sign.html",
        {
            "teams": fd.teams_for_actor(db, actor),
            "packages": fd.list_packages(db),
            "values": values,
            "errors": errors or {},
            "message": message,
            "resident": resident,
            "population_labels": fd_rules.POPULATION_LABELS,
        },
        status_code=status_code,
    )


@router.get("/familydoctor/sign", response_class=HTMLResponse)
def sign_form(
    request: Request,
    db: DB,
    actor: PageActor,
    resident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    return _sign_form(request, db, actor, {"resident_id": resident_id or "", "years": 1})


@router.post("/familydoctor/sign", response_class=HTMLResponse)
def sign_submit(
    request: Request,
    db: DB,
    actor: PageActor,
    csrf_token: Csrf = "",
    resident_id: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    package_code: Annotated[str, Form()] = "",
    years: Annotated[str, Form()] = "1",
) -> Response:
    check_csrf(request, csrf_token)
    values = {
        "resident_id": resident_id,
        "team_id": team_id,
        "package_code": package_code,
        "years": years,
    }
    try:
        numbers = {}
        for name in ("resident_id", "team_id", "years"):
            try:
                numbers[name] = int(values[name])
            except ValueError:
                raise Invalid("请填写数字", field=name) from None
        contract = fd.sign_contract(
            db,
            actor,
            resident_id=numbers["resident_id"],
            team_id=numbers["team_id"],
            package_code=package_code,
            years=numbers["years"],
        )
    except DomainError as exc:
        db.rollback()
        errors, message = _errors(exc)
        return _sign_form(request, db, actor, values, errors, message, exc.status_code)
    return RedirectResponse(f"/familydoctor/contracts/{contract.id}", status_code=303)


# --- contract page ---------------------------------------------------------------------------


def _contract_page(
    request: Request,
    db: Session,
    actor: Actor,
    contract_id: int,
    *,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    contract = fd.get_contract(db, actor, contract_id)
    resident, _ = registry.get_resident(db, actor, contract.resident_id)
    team = fd.get_team(db, contract.team_id)
    package = next(p for p, _ in fd.list_packages(db) if p.id == contract.package_id)
    statuses = fd.fulfilment(db, [contract], on=today())[contract.id]
    programs = chronic.resident_programs(db, actor, contract.resident_id)
    return _page(
        request,
        db,
        actor,
        "familydoctor",
        "fd_contract.html",
        {
            "contract": contract,
            "resident": resident,
            "age": fd_rules.age_on(resident.birth_date, today()),
            "team": team,
            "package": package,
            "statuses": statuses,
            "rate": fd_rules.fulfilment_rate(statuses),
            "programs": programs,
            "enrolled": {e.program for e, _ in programs if e.status == "active"},
            "program_labels": chronic_rules.PROGRAM_LABELS,
            "status_labels": STATUS_LABELS,
            "risk_labels": RISK_LABELS,
            "other_teams": [
                t for t in fd.list_teams(db, group_id=team.group_id) if t.id != team.id
            ],
            "errors": errors or {},
            "message": message,
            "today": today(),
        },
        status_code=status_code,
    )


@router.get("/familydoctor/contracts/{contract_id}", response_class=HTMLResponse)
def contract_page(request: Request, contract_id: int, db: DB, actor: PageActor) -> HTMLResponse:
    return _contract_page(request, db, actor, contract_id)


def _contract_action(
    request: Request,
    db: Session,
    actor: Actor,
    contract_id: int,
    act: Callable[[], int],
    *,
    reason_field: str = "reason",
) -> Response:
    """Run one change of a contract (`act` returns the contract to show next); on a refusal,
    roll back and show the contract page again with the message beside its field."""
    try:
        shown = act()
    except DomainError as exc:
        db.rollback()
        errors, message = _errors(exc)
        if "reason" in errors and reason_field != "reason":
            errors = {reason_field: errors["reason"]}
        return _contract_page(
            request, db, actor, contract_id, errors=errors, message=message,
            status_code=exc.status_code,
        )  # fmt: skip
    return RedirectResponse(f"/familydoctor/contracts/{shown}", status_code=303)


@router.post("/familydoctor/contracts/{contract_id}/terminate", response_class=HTMLResponse)
def terminate_submit(
    request: Request,
    contract_id: int,
    db: DB,
    actor: PageActor,
    csrf_token: Csrf = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)

    def act() -> int:
        fd.terminate_contract(db, actor, contract_id, reason=reason)
        return contract_id

    return _contract_action(request, db, actor, contract_id, act)


@router.post("/familydoctor/contracts/{contract_id}/renew", response_class=HTMLResponse)
def renew_submit(
    request: Request, contract_id: int, db: DB, actor: PageActor, csrf_token: Csrf = ""
) -> Response:
    check_csrf(request, csrf_token)
    return _contract_action(
        request, db, actor, contract_id, lambda: fd.renew_contract(db, actor, contract_id).id
    )


@router.post("/familydoctor/contracts/{contract_id}/change-team", response_class=HTMLResponse)
def change_team_submit(
    request: Request,
    contract_id: int,
    db: DB,
    actor: PageActor,
    csrf_token: Csrf = "",
    team_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 1,
    change_reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    return _contract_action(
        request, db, actor, contract_id,
        lambda: fd.change_team(db, actor, contract_id, team_id=team_id, reason=change_reason).id,
        reason_field="change_reason",
    )  # fmt: skip


@router.post("/chronic/enrol", response_class=HTMLResponse)
def enrol_submit(
    request: Request,
    db: DB,
    actor: PageActor,
    csrf_token: Csrf = "",
    resident_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 0,
    program: Annotated[str, Form()] = "",
    risk_grade: Annotated[str, Form()] = "low",
    enrolled_on: Annotated[str, Form()] = "",
    contract_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 0,
) -> Response:
    check_csrf(request, csrf_token)
    try:
        try:
            on = date.fromisoformat(enrolled_on) if enrolled_on else None
        except ValueError:
            raise Invalid("请填写纳入日期（年-月-日）", field="enrolled_on") from None
        enrolment = chronic.enrol(
            db,
            actor,
            resident_id=resident_id,
            program=program,
            risk_grade=risk_grade,
            enrolled_on=on,
        )
    except DomainError as exc:
        db.rollback()
        if not contract_id:
            raise
        errors, message = _errors(exc)
        return _contract_page(
            request, db, actor, contract_id, errors=errors, message=message,
            status_code=exc.status_code,
        )  # fmt: skip
    return RedirectResponse(f"/chronic/enrolments/{enrolment.id}", status_code=303)


# --- follow-up form --------------------------------------------------------------------------


def _followup_page(
    request: Request,
    db: Session,
    actor: Actor,
    enrolment_id: int,
    *,
    values: dict[str, Any] | None = None,
    decision: chronic_rules.Decision | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    enrolment = chronic.get_enrolment(db, actor, enrolment_id)
    resident, _ = registry.get_resident(db, actor, enrolment.resident_id)
    [(_, followups)] = [
        (e, fs)
        for e, fs in chronic.resident_programs(db, actor, enrolment.resident_id)
        if e.id == enrolment.id
    ]
    active = fd.active_contract(db, enrolment.resident_id)
    return _page(
        request,
        db,
        actor,
        "chronic",
        "chronic_followup.html",
        {
            "enrolment": enrolment,
            "resident": resident,
            "followups": followups,
            "contract": active,
            "values": values or {"followed_on": today().isoformat(), "mode": "clinic"},
            "decision": decision,
            "errors": errors or {},
            "message": message,
            "program_label": chronic_rules.PROGRAM_LABELS[enrolment.program],
            "action_labels": chronic_rules.ACTION_LABELS,
            "mode_labels": MODE_LABELS,
            "risk_labels": RISK_LABELS,
            "today": today(),
        },
        status_code=status_code,
    )


@router.get("/chronic/enrolments/{enrolment_id}", response_class=HTMLResponse)
def followup_form(request: Request, enrolment_id: int, db: DB, actor: PageActor) -> HTMLResponse:
    return _followup_page(request, db, actor, enrolment_id)


def _opt_int(values: dict[str, Any], name: str) -> int | None:
    raw = str(values.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid("请填写整数", field=name) from None


def _opt_float(values: dict[str, Any], name: str) -> float | None:
    raw = str(values.get(name) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Invalid("请填写数字", field=name) from None


@router.post("/chronic/enrolments/{enrolment_id}/followups", response_class=HTMLResponse)
def followup_submit(
    request: Request,
    enrolment_id: int,
    db: DB,
    actor: PageActor,
    csrf_token: Csrf = "",
    followed_on: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "clinic",
    sbp: Annotated[str, Form()] = "",
    dbp: Annotated[str, Form()] = "",
    fasting_glucose: Annotated[str, Form()] = "",
    medication: Annotated[str, Form(max_length=300)] = "",
) -> HTMLResponse:
    check_csrf(request, csrf_token)
    values = {
        "followed_on": followed_on,
        "mode": mode,
        "sbp": sbp,
        "dbp": dbp,
        "fasting_glucose": fasting_glucose,
        "medication": medication,
    }
    try:
        try:
            on = date.fromisoformat(followed_on)
        except ValueError:
            raise Invalid("请填写随访日期（年-月-日）", field="followed_on") from None
        _, decision = chronic.record_followup(
            db,
            actor,
            enrolment_id=enrolment_id,
            followed_on=on,
            mode=mode,
            sbp=_opt_int(values, "sbp"),
            dbp=_opt_int(values, "dbp"),
            fasting_glucose=_opt_float(values, "fasting_glucose"),
            medication=medication,
        )
    except DomainError as exc:
        db.rollback()
        errors, message = _errors(exc)
        return _followup_page(
            request, db, actor, enrolment_id, values=values, errors=errors, message=message,
            status_code=exc.status_code,
        )  # fmt: skip
    return _followup_page(
        request,
        db,
        actor,
        enrolment_id,
        values={"followed_on": today().isoformat(), "mode": mode, "medication": medication},
        decision=decision,
        status_code=201,
    )


# --- chronic patients of my teams ------------------------------------------------------------


@router.get("/chronic", response_class=HTMLResponse)
def chronic_page(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    """The chronic patients contracted to the caller's teams, uncontrolled and overdue first."""
    teams = fd.teams_for_actor(db, actor)
    rows: list[tuple[chronic.ProgramStatus, str]] = []
    on = today()
    for team in teams[:20]:
        contracts = fd.team_contract_residents(db, team.id)
        names = registry.resident_names(db, contracts)
        rows.extend(
            (s, names.get(s.resident_id, ""))
            for s in chronic.program_statuses(db, on=on, resident_ids=contracts)
        )
    rows.sort(key=lambda r: (r[0].controlled, not r[0].lost, r[0].next_due))
    return _page(
        request,
        db,
        actor,
        "chronic",
        "chronic_list.html",
        {
            "rows": rows[:300],
            "total": len(rows),
            "teams": teams,
            "today": on,
            "program_labels": chronic_rules.PROGRAM_LABELS,
            "action_labels": chronic_rules.ACTION_LABELS,
        },
    )


# --- manager view ----------------------------------------------------------------------------


def _pct(value: Any) -> float | None:
    return None if value is None else round(float(value) * 100, 1)


@router.get("/familydoctor/manager", response_class=HTMLResponse)
def manager_page(
    request: Request,
    db: DB,
    actor: PageActor,
    group_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    groups = registry.list_groups(db)
    if actor.role == "group_manager":
        group_id = actor.group_id
    group_id = group_id or (groups[0].group.id if groups else None)
    if group_id is None:
        raise NotFound("尚未登记医疗集团")
    measures.require_measure_access(actor, group_id)
    on = today()
    m = measures.group_measures(db, group_id=group_id, on=on)
    profile = active_profile(db)
    settlement = measures.settle_fees(db, profile, group_id=group_id, year=on.year, on=on)
    target = profile.number("targets.chronic_standard_management_rate")
    teams = sorted(m.teams, key=lambda t: -t.contracts)[:15]
    team_chart = {
        "categories": [t.team_name for t in teams],
        "series": [
            {"name": "履约率", "data": [_pct(t.fulfilment) for t in teams]},
            {
                "name": "高血压规范管理率",
                "data": [_pct(t.hypertension.standard_rate) for t in teams],
            },
            {"name": "血压控制率", "data": [_pct(t.hypertension.control_rate) for t in teams]},
            {"name": "血糖控制率", "data": [_pct(t.diabetes.control_rate) for t in teams]},
        ],
        "target": _pct(target) if target is not None else None,
        "target_name": "规范管理率目标",
    }
    cov = m.coverage
    coverage_chart = {
        "categories": ["全人群", "重点人群", "65岁及以上", "高血压/糖尿病患者"],
        "series": [
            {
                "name": "签约覆盖率",
                "data": [
                    _pct(cov.rate),
                    _pct(cov.key_rate),
                    _pct(cov.elderly_rate),
                    _pct(cov.chronic_rate),
                ],
            }
        ],
    }
    monthly_chart = {
        "categories": list(m.monthly),
        "series": [
            {"name": "随访人次", "data": [v[0] for v in m.monthly.values()]},
            {"name": "其中控制满意", "data": [v[1] for v in m.monthly.values()]},
            {"name": "新签约", "data": [v[2] for v in m.monthly.values()]},
        ],
    }
    return _page(
        request,
        db,
        actor,
        "familydoctor",
        "fd_manager.html",
        {
            "m": m,
            "groups": groups,
            "group_id": group_id,
            "settlement": settlement,
            "target": target,
            "team_chart": team_chart,
            "coverage_chart": coverage_chart,
            "monthly_chart": monthly_chart,
            "may_choose": actor.role != "group_manager",
        },
    )
