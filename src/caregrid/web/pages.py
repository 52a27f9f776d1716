"""Server-rendered pages (Jinja2 + HTMX), in Chinese.

Thin handlers: each parses the request, calls the same service functions as the JSON API
(`registry.service`, `identity.service`, `profiles`), and renders a template. The request owns
the transaction (`DB`), as for the API. A DomainError on a form page is shown beside the field it
names; elsewhere it becomes the Chinese error page with the error's status.

Resident search is submitted explicitly (no search-as-you-type): every search is written to the
audit log, and half-typed names should not be."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.errors import DomainError, NotFound
from caregrid.core.http import DB, api_router
from caregrid.core.pagination import PageParams
from caregrid.familydoctor import service as familydoctor
from caregrid.identity import service as identity
from caregrid.identity.access import CLINICAL_ROLES, INDEX_SEARCH_ROLES, care_basis
from caregrid.identity.errors import SessionExpired
from caregrid.profiles import loader as profile_loader
from caregrid.profiles import service as profile_service
from caregrid.profiles.schemas import SECTION_TITLES, TIER_LABELS, PolicyProfile
from caregrid.record import recognition, timeline
from caregrid.record.schemas import (
    ENTRY_TYPE_LABELS,
    ENTRY_TYPES,
    FLAG_LABELS,
    REEXAM_REASON_LABELS,
)
from caregrid.registry import service as registry
from caregrid.registry.idnumber import mask_id_number
from caregrid.registry.models import LEVELS, Institution
from caregrid.registry.schemas import KIND_LABELS, LEVEL_LABELS, ROLE_LABELS
from caregrid.web.auth import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    PageActor,
    check_csrf,
    clear_session_cookie,
    login_csrf_ok,
    new_login_csrf,
    safe_next,
    session_token,
    set_login_csrf_cookie,
    set_session_cookie,
)
from caregrid.web.errors import install_error_pages
from caregrid.web.nav import COMING_BY_SLUG, COMING_NAV, LIVE_NAV, NavItem
from caregrid.web.render import STATIC_DIR, render, shanghai

PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 20
MAX_QUERY_LENGTH = 50

router = api_router(include_in_schema=False)


# --- navigation and the layout's top bar ----------------------------------------------------


@dataclass
class Chrome:
    """What the layout shows around every signed-in page."""

    actor: Actor
    active: str
    role_label: str
    institution_name: str | None
    profile_name: str
    live_nav: Sequence[NavItem] = LIVE_NAV
    coming_nav: Sequence[NavItem] = COMING_NAV


def _active_profile(db: Session) -> PolicyProfile | None:
    try:
        return profile_service.active_profile(db)
    except DomainError:
        return None


def chrome_for(db: Session, actor: Actor, active: str) -> Chrome:
    institution_name = None
    if actor.institution_id is not None:
        try:
            institution_name = registry.get_institution(db, actor.institution_id).name
        except DomainError:
            institution_name = None
    profile = _active_profile(db)
    profile_name = profile.meta.name if profile else profile_service.active_profile_id(db)
    return Chrome(
        actor=actor,
        active=active,
        role_label=identity.ROLE_LABELS.get(actor.role, actor.role),
        institution_name=institution_name,
        profile_name=profile_name,
        live_nav=tuple(item for item in LIVE_NAV if item.shown_to(actor.role)),
    )


def page(
    request: Request,
    db: Session,
    actor: Actor,
    active: str,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    context = {"chrome": chrome_for(db, actor, active), **context}
    return render(request, template, context, status_code=status_code, headers=headers)


def wants_partial(request: Request) -> bool:
    """An htmx request for a fragment (htmx 4 marks whole-page requests, such as a history
    restore, with ``HX-Request-Type: full``)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Request-Type", "partial") != "full"
        and "HX-History-Restore-Request" not in request.headers
    )


@dataclass(frozen=True)
class Pager:
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_item(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.size + 1

    @property
    def last_item(self) -> int:
        return min(self.total, self.page * self.size)


# --- login and logout ------------------------------------------------------------------------


def _login_form(
    request: Request,
    *,
    next_path: str,
    username: str = "",
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "login.html",
        {
            "next": next_path,
            "username": username,
            "errors": errors or {},
            "message": message,
            "login_csrf": token,
        },
        status_code=status_code,
    )
    set_login_csrf_cookie(response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, db: DB, next: str | None = None) -> Response:
    target = safe_next(next)
    token = session_token(request)
    if token:
        try:
            identity.resolve_session(db, token, kind="web")
        except SessionExpired:
            pass
        else:
            return RedirectResponse(target, status_code=303)
    message = "请先登录" if next and target != "/" else None
    return _login_form(request, next_path=target, message=message)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    db: DB,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    target = safe_next(next)
    username = username.strip()
    if not login_csrf_ok(request, csrf_token):
        return _login_form(
            request,
            next_path=target,
            username=username,
            message="登录页面已过期，请重新输入后登录",
            status_code=403,
        )
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "请输入用户名"
    if not password:
        errors["password"] = "请输入密码"
    if errors:
        return _login_form(
            request, next_path=target, username=username, errors=errors, status_code=422
        )
    try:
        user = identity.authenticate(db, username, password)
    except DomainError as exc:
        where = str(exc.fields.get("field") or "password")
        return _login_form(
            request,
            next_path=target,
            username=username,
            errors={where: exc.detail},
            status_code=exc.status_code,
        )
    previous = session_token(request)
    if previous:
        identity.close_session(db, previous)
    token, _row = identity.open_session(db, user, kind="web")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    db: DB,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    token = session_token(request)
    if token:
        check_csrf(request, csrf_token)
        identity.close_session(db, token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


# --- home ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    groups = registry.list_groups(db)
    by_level = {
        level: registry.search_institutions(db, PageParams(page=1, size=1), level=level)[1]
        for level in LEVELS
    }
    per_group: list[dict[str, Any]] = []
    for item in groups:
        members = registry.group_members(db, item.group.id)
        counts = {level: sum(1 for m in members if m.level == level) for level in LEVELS}
        per_group.append({"group": item.group, "counts": counts, "total": len(members)})
    chart = {
        "title": "各医疗集团成员单位（按机构级别）",
        "categories": [row["group"].name for row in per_group],
        "series": [
            {"name": LEVEL_LABELS[level], "data": [row["counts"][level] for row in per_group]}
            for level in LEVELS
        ],
    }
    grids = registry.list_grids(db)
    population = sum(g.population or 0 for g in grids) if grids else None
    return page(
        request,
        db,
        actor,
        "home",
        "home.html",
        {
            "group_count": len(groups),
            "institution_total": sum(by_level.values()),
            "by_level": by_level,
            "practitioner_count": registry.search_practitioners(db, PageParams(page=1, size=1))[1],
            "resident_count": registry.count_residents(db),
            "grid_count": len(grids),
            "population": population or None,
            "per_group": per_group,
            "chart": chart,
        },
    )


# --- groups ----------------------------------------------------------------------------------


def _grid_names(db: Session) -> dict[int, str]:
    return {g.id: g.name for g in registry.list_grids(db)}


@router.get("/groups", response_class=HTMLResponse)
def groups_page(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    rows = []
    grid_names = _grid_names(db)
    for item in registry.list_groups(db):
        lead = (
            registry.get_institution(db, item.group.lead_institution_id)
            if item.group.lead_institution_id
            else None
        )
        rows.append(
            {
                "group": item.group,
                "member_count": item.member_count,
                "lead": lead,
                "grid_name": grid_names.get(item.group.grid_id, "—"),
            }
        )
    return page(request, db, actor, "groups", "groups.html", {"rows": rows})


@dataclass
class MemberNode:
    institution: Institution
    children: list[MemberNode] = field(default_factory=list)


@dataclass
class MemberSection:
    role: str
    title: str
    levels: list[tuple[str, list[MemberNode]]]
    count: int


def member_sections(members: Sequence[Institution]) -> list[MemberSection]:
    """Members grouped by role in the group, then by level; an institution whose parent is also
    a member is shown nested under that parent (e.g. a township centre's village clinics)."""
    ids = {m.id for m in members}
    nodes = {m.id: MemberNode(m) for m in members}
    roots: list[MemberNode] = []
    for m in members:  # `group_members` returns them ordered by role, level, id
        if m.parent_id is not None and m.parent_id in ids and m.parent_id != m.id:
            nodes[m.parent_id].children.append(nodes[m.id])
        else:
            roots.append(nodes[m.id])
    sections: list[MemberSection] = []
    for role in ("lead", "member", "sub_centre", "collaborator"):
        in_role = [n for n in roots if n.institution.role == role]
        if not in_role:
            continue
        levels = [(level, [n for n in in_role if n.institution.level == level]) for level in LEVELS]
        sections.append(
            MemberSection(
                role=role,
                title=ROLE_LABELS[role],
                levels=[(level, nodes_) for level, nodes_ in levels if nodes_],
                count=sum(_count(n) for n in in_role),
            )
        )
    return sections


def _count(node: MemberNode) -> int:
    return 1 + sum(_count(c) for c in node.children)


@router.get("/groups/{group_id}", response_class=HTMLResponse)
def group_page(request: Request, group_id: int, db: DB, actor: PageActor) -> HTMLResponse:
    group = registry.get_group(db, group_id)
    members = registry.group_members(db, group_id)
    lead = next((m for m in members if m.id == group.lead_institution_id), None)
    if lead is None and group.lead_institution_id is not None:
        lead = registry.get_institution(db, group.lead_institution_id)
    level_counts = {level: sum(1 for m in members if m.level == level) for level in LEVELS}
    return page(
        request,
        db,
        actor,
        "groups",
        "group_detail.html",
        {
            "group": group,
            "grid": registry.get_grid(db, group.grid_id),
            "lead": lead,
            "sections": member_sections(members),
            "member_count": len(members),
            "level_counts": level_counts,
            "beds": sum(m.beds or 0 for m in members),
        },
    )


# --- institutions ----------------------------------------------------------------------------


@router.get("/institutions", response_class=HTMLResponse)
def institutions_page(
    request: Request,
    db: DB,
    actor: PageActor,
    q: str = "",
    level: str = "",
    kind: str = "",
    group_id: str = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    q = q.strip()
    errors: dict[str, str] = {}
    if len(q) > MAX_QUERY_LENGTH:
        errors["q"] = f"关键字最多 {MAX_QUERY_LENGTH} 个字"
    if level and level not in LEVEL_LABELS:
        errors["level"] = "未知的机构级别"
    if kind and kind not in KIND_LABELS:
        errors["kind"] = "未知的机构类型"
    group_filter: int | None = None
    if group_id:
        if group_id.isdigit():
            group_filter = int(group_id)
        else:
            errors["group_id"] = "未知的医疗集团"
    groups = registry.list_groups(db)
    group_names = {g.group.id: g.group.name for g in groups}
    rows: Sequence[Institution] = []
    total = 0
    if not errors:
        rows, total = registry.search_institutions(
            db,
            PageParams(page=page_number, size=PAGE_SIZE),
            q=q or None,
            level=level or None,
            kind=kind or None,
            group_id=group_filter,
        )
    filters = {"q": q, "level": level, "kind": kind, "group_id": group_id}
    query_string = urlencode({k: v for k, v in filters.items() if v})
    context = {
        "rows": rows,
        "pager": Pager(page_number, PAGE_SIZE, total),
        "filters": filters,
        "query_string": query_string,
        "errors": errors,
        "groups": groups,
        "group_names": group_names,
    }
    headers = {"Vary": "HX-Request, HX-Request-Type"}
    status = 422 if errors else 200
    if wants_partial(request):
        # The address bar shows the filters in use, without the form's empty fields.
        shown = query_string + (f"&page={page_number}" if page_number > 1 else "")
        headers["HX-Push-Url"] = "/institutions" + (f"?{shown.lstrip('&')}" if shown else "")
        return render(
            request, "_institution_results.html", context, status_code=status, headers=headers
        )
    return page(
        request,
        db,
        actor,
        "institutions",
        "institutions.html",
        context,
        status_code=status,
        headers=headers,
    )


@router.get("/institutions/{institution_id}", response_class=HTMLResponse)
def institution_page(
    request: Request,
    institution_id: int,
    db: DB,
    actor: PageActor,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    inst = registry.get_institution(db, institution_id)
    group = registry.get_group(db, inst.group_id) if inst.group_id is not None else None
    parent = registry.get_institution(db, inst.parent_id) if inst.parent_id is not None else None
    grid = registry.get_grid(db, inst.grid_id) if inst.grid_id is not None else None
    children, _ = registry.search_institutions(
        db, PageParams(page=1, size=200), parent_id=institution_id
    )
    practitioners, practitioner_total = registry.search_practitioners(
        db, PageParams(page=page_number, size=PAGE_SIZE), institution_id=institution_id
    )
    sites = registry.practitioner_sites(db, [p.id for p in practitioners])
    return page(
        request,
        db,
        actor,
        "institutions",
        "institution_detail.html",
        {
            "inst": inst,
            "group": group,
            "parent": parent,
            "grid": grid,
            "children": [c for c in children if c.id != inst.id],
            "departments": registry.departments_of(db, institution_id),
            "staff_count": registry.institution_staff_count(db, institution_id),
            "practitioners": practitioners,
            "sites": sites,
            "pager": Pager(page_number, PAGE_SIZE, practitioner_total),
        },
    )


# --- residents -------------------------------------------------------------------------------


def _shows_digits(q: str) -> bool:
    return any(ch.isdigit() for ch in q)


@router.get("/residents", response_class=HTMLResponse)
def residents_page(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    return _residents(request, db, actor, q="", page_number=1, search=False)


@router.post("/residents", response_class=HTMLResponse)
def residents_search(
    request: Request,
    db: DB,
    actor: PageActor,
    q: Annotated[str, Form()] = "",
    page_number: Annotated[int, Form(alias="page", ge=1, le=100_000)] = 1,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> HTMLResponse:
    """The search is a POST so that names and ID numbers stay out of URLs, server logs and
    browser history; it carries the CSRF token because each search is written to the audit
    log in the user's name."""
    check_csrf(request, csrf_token)
    return _residents(request, db, actor, q=q.strip(), page_number=page_number, search=True)


def _residents(
    request: Request, db: Session, actor: Actor, *, q: str, page_number: int, search: bool
) -> HTMLResponse:
    # What was typed is shown again only when it holds no digits: a (partial) ID number
    # never goes back into the page.
    context: dict[str, Any] = {
        "q": q,
        "q_echo": "" if _shows_digits(q) else q,
        "q_masked": mask_id_number(q) if _shows_digits(q) else q,
        "errors": {},
        "message": None,
        "result": None,
        "searched": search,
        "may_search": actor.role in INDEX_SEARCH_ROLES,
    }
    status = 200
    if search:
        try:
            result = registry.search_residents(
                db, actor, q, PageParams(page=page_number, size=PAGE_SIZE)
            )
        except DomainError as exc:
            if exc.fields.get("field") == "q":
                context["errors"] = {"q": exc.detail}
            else:
                context["message"] = exc.detail
            status = exc.status_code
        else:
            grid_names = _grid_names(db)
            home_names: dict[int, str] = {}
            for item in result.items:
                hid = item.home_institution_id
                if hid is not None and hid not in home_names:
                    home_names[hid] = registry.get_institution(db, hid).name
            # Whether the caller may open each record: the same check the record page makes,
            # without reading (or auditing a read of) the record.
            bases = {item.id: care_basis(db, actor, item.id) for item in result.items}
            context.update(
                result=result,
                pager=Pager(page_number, PAGE_SIZE, result.total),
                grid_names=grid_names,
                home_names=home_names,
                bases=bases,
            )
    if search and wants_partial(request):
        return render(request, "_resident_results.html", context, status_code=status)
    return page(request, db, actor, "residents", "residents.html", context, status_code=status)


def _audit_page(
    db: Session, actor: Actor, resident_id: int, log_page: int
) -> tuple[Sequence[Any], Pager]:
    entries, total = registry.resident_audit(
        db,
        actor,
        resident_id,
        limit=AUDIT_PAGE_SIZE,
        offset=(log_page - 1) * AUDIT_PAGE_SIZE,
    )
    return entries, Pager(log_page, AUDIT_PAGE_SIZE, total)


def _denied(
    request: Request,
    db: Session,
    actor: Actor,
    resident_id: int,
    *,
    reason: str = "",
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 404,
    log_page: int = 1,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "resident_id": resident_id,
        "may_break_glass": actor.role in CLINICAL_ROLES,
        "reason": reason,
        "errors": errors or {},
        "message": message,
        "entries": None,
    }
    if actor.role == "admin":
        # Administrators see who accessed a record, not the record itself.
        try:
            context["entries"], context["log_pager"] = _audit_page(db, actor, resident_id, log_page)
        except NotFound:
            context["entries"] = None
    return page(
        request, db, actor, "residents", "resident_denied.html", context, status_code=status_code
    )


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
def resident_page(
    request: Request,
    resident_id: int,
    db: DB,
    actor: PageActor,
    log_page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    type: Annotated[list[str] | None, Query()] = None,
    institution_id: str = "",
) -> HTMLResponse:
    try:
        resident, basis = registry.get_resident(db, actor, resident_id)
    except NotFound:
        return _denied(request, db, actor, resident_id, log_page=log_page)
    record = registry.present(resident, basis)
    entries, log_pager = _audit_page(db, actor, resident_id, log_page)
    return page(
        request,
        db,
        actor,
        "residents",
        "resident_detail.html",
        {
            **_record_context(db, actor, resident_id, type, institution_id),
            "r": record,
            "grid": registry.get_grid(db, record.grid_id) if record.grid_id else None,
            "home": (
                registry.get_institution(db, record.home_institution_id)
                if record.home_institution_id
                else None
            ),
            "entries": entries,
            "log_pager": log_pager,
            # The resident is already loaded through the access check above.
            "contract": familydoctor.active_contract(db, resident_id),
        },
    )


@router.post("/residents/{resident_id}/break-glass", response_class=HTMLResponse)
def break_glass_submit(
    request: Request,
    resident_id: int,
    db: DB,
    actor: PageActor,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        registry.break_glass(db, actor, resident_id, reason)
    except DomainError as exc:
        where = exc.fields.get("field")
        return _denied(
            request,
            db,
            actor,
            resident_id,
            reason=reason,
            errors={"reason": exc.detail} if where == "reason" else {},
            message=None if where == "reason" else exc.detail,
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)


# --- shared health record: timeline, charts, mutual recognition (record.timeline/recognition) --

TIMELINE_PAGE_SIZE = 20


def _record_context(
    db: Session,
    actor: Actor,
    resident_id: int,
    types: list[str] | None,
    institution_id: str,
    *,
    with_vitals: bool = True,
) -> dict[str, Any]:
    """The resident page's record section: the timeline (filtered), chart series and the
    mutual-recognition rules. Each read goes through the record services' access check."""
    wanted = [t for t in (types or []) if t in ENTRY_TYPES] or None
    digits = institution_id.isdigit() and len(institution_id) < 10
    inst = int(institution_id) if digits else None
    tl = timeline.resident_timeline(
        db, actor, resident_id, types=wanted, institution_id=inst, limit=TIMELINE_PAGE_SIZE
    )
    context: dict[str, Any] = {
        "tl": tl,
        "tl_filters": {"types": wanted or [], "institution_id": inst},
        "tl_institutions": registry.group_members(db, actor.group_id) if actor.group_id else [],
        "entry_type_labels": ENTRY_TYPE_LABELS,
        "flag_labels": FLAG_LABELS,
        "reexam_reasons": REEXAM_REASON_LABELS,
        "recognition_rules": recognition.list_rules(db, actor),
        "yuan": timeline.yuan,
    }
    if with_vitals:
        series = timeline.vital_series(db, actor, resident_id)
        context["vitals"] = series
        context["vitals_chart"] = {
            name: [[shanghai(p.at, "%Y-%m-%d"), p.value] for p in getattr(series, name)]
            for name in ("sbp", "dbp", "fpg", "hba1c")
        } | {"targets": series.targets}
    return context


@router.get("/residents/{resident_id}/timeline", response_class=HTMLResponse)
def resident_timeline_fragment(
    request: Request,
    resident_id: int,
    db: DB,
    actor: PageActor,
    type: Annotated[list[str] | None, Query()] = None,
    institution_id: str = "",
) -> Response:
    """The timeline list alone, for the filter form (htmx); a plain GET gets the whole page."""
    if not wants_partial(request):
        query = urlencode([("type", t) for t in type or []] + [("institution_id", institution_id)])
        return RedirectResponse(f"/residents/{resident_id}?{query}#timeline", status_code=303)
    context = _record_context(db, actor, resident_id, type, institution_id, with_vitals=False)
    return render(
        request, "_timeline.html", {**context, "fragment": "timeline", "resident_id": resident_id}
    )


def _order_check_response(
    request: Request,
    db: Session,
    actor: Actor,
    resident_id: int,
    item_codes: str,
    *,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    codes = [c for c in item_codes.replace("，", ",").replace(" ", ",").split(",") if c.strip()]
    errors = dict(errors or {})
    checks: list[Any] = []
    if not codes:
        errors.setdefault("item_codes", "请填写或选择至少一个项目代码")
        status_code = 422
    else:
        try:
            checks = recognition.check_orders(db, actor, resident_id, codes)
        except DomainError as exc:
            errors["item_codes"] = exc.detail
            status_code = exc.status_code
    context = {
        "fragment": "order_check",
        "resident_id": resident_id,
        "checks": checks,
        "item_codes": ", ".join(codes),
        "oc_errors": errors,
        "oc_message": message,
        "reexam_reasons": REEXAM_REASON_LABELS,
        "flag_labels": FLAG_LABELS,
        "yuan": timeline.yuan,
    }
    return render(request, "_timeline.html", context, status_code=status_code)


@router.post("/residents/{resident_id}/order-check", response_class=HTMLResponse)
def order_check_submit(
    request: Request,
    resident_id: int,
    db: DB,
    actor: PageActor,
    item_codes: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> HTMLResponse:
    """检查检验互认查询: which items already have a recognisable result (htmx fragment)."""
    check_csrf(request, csrf_token)
    return _order_check_response(request, db, actor, resident_id, item_codes)


@router.post("/residents/{resident_id}/order-decisions", response_class=HTMLResponse)
def order_decision_submit(
    request: Request,
    resident_id: int,
    db: DB,
    actor: PageActor,
    item_code: Annotated[str, Form(max_length=40)] = "",
    result_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 1,
    decision: Annotated[str, Form(max_length=20)] = "",
    reason_code: Annotated[str, Form(max_length=30)] = "",
    reason_text: Annotated[str, Form(max_length=300)] = "",
    item_codes: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> HTMLResponse:
    """采用已有结果 / 仍需开单 (with one of the six national reasons)."""
    check_csrf(request, csrf_token)
    try:
        row = recognition.record_decision(
            db, actor, resident_id, item_code, result_id, decision, reason_code, reason_text
        )
    except DomainError as exc:
        where = str(exc.fields.get("field") or "decision")
        return _order_check_response(
            request,
            db,
            actor,
            resident_id,
            item_codes or item_code,
            errors={f"{item_code}:{where}": exc.detail},
            status_code=exc.status_code,
        )
    if row.decision == "used_existing":
        saved = timeline.yuan(row.avoided_cost_fen)
        message = f"已采用已有结果（{item_code}），避免重复检查，节省约 {saved} 元"
    else:
        label = REEXAM_REASON_LABELS.get(row.reason_code or "", "")
        message = f"已记录：{item_code} 仍需开单，理由：{label}"
    return _order_check_response(
        request, db, actor, resident_id, item_codes or item_code, message=message
    )


# --- policy profiles -------------------------------------------------------------------------


def _profile_page(
    request: Request, db: Session, actor: Actor, profile: PolicyProfile
) -> HTMLResponse:
    active_id = profile_service.active_profile_id(db)
    sections = [
        (key, SECTION_TITLES.get(key, key), params) for key, params in profile.sections().items()
    ]
    return page(
        request,
        db,
        actor,
        "profile",
        "profile.html",
        {
            "profile": profile,
            "meta": profile.meta,
            "profiles": profile_loader.list_profiles(),
            "active_id": active_id,
            "sections": sections,
            "dimensions": profile.scorecard.dimensions(),
            "tier_labels": TIER_LABELS,
        },
    )


@router.get("/profile", response_class=HTMLResponse)
def active_profile_page(request: Request, db: DB, actor: PageActor) -> HTMLResponse:
    return _profile_page(request, db, actor, profile_service.active_profile(db))


@router.get("/profile/{profile_id}", response_class=HTMLResponse)
def profile_page(request: Request, profile_id: str, db: DB, actor: PageActor) -> HTMLResponse:
    return _profile_page(request, db, actor, profile_loader.load_profile(profile_id))


# --- capabilities still being built ------------------------------------------------------------


@router.get("/coming/{slug}", response_class=HTMLResponse)
def coming_page(request: Request, slug: str, db: DB, actor: PageActor) -> HTMLResponse:
    item = COMING_BY_SLUG.get(slug)
    if item is None:
        raise NotFound("页面不存在")
    profile = _active_profile(db)
    params = []
    if profile is not None:
        sections = profile.sections()
        for section in item.profile_sections:
            params.extend(sections.get(section, []))
    return page(
        request,
        db,
        actor,
        item.slug,
        "coming.html",
        {"item": item, "params": params, "profile": profile},
    )


def install(app: FastAPI) -> None:
    """Mount the static files and the pages, and render errors of page routes as HTML."""
    from caregrid.web.familydoctor_pages import router as familydoctor_router
    from caregrid.web.indicator_pages import router as indicator_router
    from caregrid.web.referral_pages import router as referral_router
    from caregrid.web.scorecard_pages import router as scorecard_router

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(referral_router)
    app.include_router(indicator_router)
    app.include_router(scorecard_router)
    app.include_router(router)
    app.include_router(familydoctor_router)
    install_error_pages(app)
