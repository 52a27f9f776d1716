"""Registry use cases: the group structure, institutions, practitioners, the master patient
index with its de-duplication, and per-level disease catalogues.

Every read or write of a resident goes through `identity.access.require_resident_access`,
which audits it; search of the index is audited as one entry listing the residents shown."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.clock import today
from caregrid.core.db import in_values
from caregrid.core.errors import Invalid, NotFound
from caregrid.core.pagination import PageParams, paginate
from caregrid.identity import service as identity
from caregrid.identity.access import (
    INDEX_SEARCH_ROLES,
    care_basis,
    relationship_provider,
    require_resident_access,
)
from caregrid.identity.errors import RoleNotAllowed
from caregrid.identity.models import EmergencyAccess
from caregrid.registry import icd10
from caregrid.registry.errors import (
    DuplicateResident,
    UnknownGrid,
    UnknownGroup,
    UnknownInstitution,
)
from caregrid.registry.idnumber import check_agrees, mask_id_number, mask_phone, parse_id_number
from caregrid.registry.models import (
    LEVELS,
    Department,
    DiseaseCatalogEntry,
    Grid,
    Group,
    Institution,
    Practitioner,
    PractitionerRole,
    Resident,
)
from caregrid.registry.schemas import (
    InstitutionCreate,
    InstitutionUpdate,
    PractitionerCreate,
    PractitionerRoleCreate,
    PractitionerSite,
    ResidentCreate,
    ResidentRead,
    ResidentSummary,
    ResidentUpdate,
)

ADMIN_ROLES = frozenset({"admin"})
SEARCH_COUNT_CAP = 1000


def _require_role(actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.role not in roles and actor.role != "system":
        raise RoleNotAllowed(f"当前角色无权{what}")


# --- grids and groups ---------------------------------------------------------------------


def list_grids(session: Session) -> Sequence[Grid]:
    return session.scalars(select(Grid).order_by(Grid.id)).all()


def get_grid(session: Session, grid_id: int) -> Grid:
    grid = session.get(Grid, grid_id)
    if grid is None:
        raise UnknownGrid(f"网格不存在：{grid_id}", grid_id=grid_id)
    return grid


@dataclass(frozen=True)
class GroupWithCount:
    group: Group
    member_count: int


def list_groups(session: Session) -> list[GroupWithCount]:
    counts = dict(
        session.execute(
            select(Institution.group_id, func.count())
            .where(Institution.group_id.is_not(None))
            .group_by(Institution.group_id)
        ).all()
    )
    groups = session.scalars(select(Group).order_by(Group.id)).all()
    return [GroupWithCount(g, counts.get(g.id, 0)) for g in groups]


def get_group(session: Session, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise UnknownGroup(f"医疗集团不存在：{group_id}", group_id=group_id)
    return group


def group_members(session: Session, group_id: int) -> Sequence[Institution]:
    get_group(session, group_id)
    level_order = {level: i for i, level in enumerate(LEVELS)}
    members = session.scalars(select(Institution).where(Institution.group_id == group_id)).all()
    role_order = {"lead": 0, "member": 1, "sub_centre": 2, "collaborator": 3}
    return sorted(members, key=lambda i: (role_order[i.role], level_order[i.level], i.id))


# --- institutions -------------------------------------------------------------------------


def institutions_query(
    *,
    q: str | None = None,
    level: str | None = None,
    kind: str | None = None,
    group_id: int | None = None,
    grid_id: int | None = None,
    parent_id: int | None = None,
) -> Select[Institution]:
    stmt = select(Institution)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Institution.name.like(like), Institution.code.like(like.upper())))
    if level:
        stmt = stmt.where(Institution.level == level)
    if kind:
        stmt = stmt.where(Institution.kind == kind)
    if group_id is not None:
        stmt = stmt.where(Institution.group_id == group_id)
    if grid_id is not None:
        stmt = stmt.where(Institution.grid_id == grid_id)
    if parent_id is not None:
        stmt = stmt.where(Institution.parent_id == parent_id)
    return stmt.order_by(Institution.group_id, Institution.level, Institution.id)


def search_institutions(
    session: Session, params: PageParams, **filters: object
) -> tuple[Sequence[Institution], int]:
    return paginate(session, institutions_query(**filters), params)  # type: ignore[arg-type]


def get_institution(session: Session, institution_id: int) -> Institution:
    inst = session.get(Institution, institution_id)
    if inst is None:
        raise UnknownInstitution(f"机构不存在：{institution_id}", institution_id=institution_id)
    return inst


def institution_level(institution_id: int | ColumnElement[int] | None) -> ScalarSelect[str]:
    """The level of an institution as a subquery, for a caller that reads it with other rows
    in one query (NULL for no institution)."""
    return select(Institution.level).where(Institution.id == institution_id).scalar_subquery()


def get_institution_by_code(session: Session, code: str) -> Institution:
    inst = session.scalar(select(Institution).where(Institution.code == code))
    if inst is None:
        raise UnknownInstitution(f"机构不存在：{code}", code=code)
    return inst


def _check_links(
    session: Session, *, group_id: int | None, parent_id: int | None, grid_id: int | None
) -> int | None:
    """Validate references; returns the grid implied by the group when none was given."""
    if group_id is not None:
        group = session.get(Group, group_id)
        if group is None:
            raise UnknownGroup(f"医疗集团不存在：{group_id}", field="group_id")
        grid_id = grid_id or group.grid_id
    if parent_id is not None and session.get(Institution, parent_id) is None:
        raise UnknownInstitution(f"上级机构不存在：{parent_id}", field="parent_id")
    if grid_id is not None and session.get(Grid, grid_id) is None:
        raise UnknownGrid(f"网格不存在：{grid_id}", field="grid_id")
    return grid_id


def create_institution(session: Session, actor: Actor, data: InstitutionCreate) -> Institution:
    _require_role(actor, ADMIN_ROLES, "新增机构")
    if session.scalar(select(Institution.id).where(Institution.code == data.code)) is not None:
        raise Invalid(f"机构编码已存在：{data.code}", field="code")
    grid_id = _check_links(
        session, group_id=data.group_id, parent_id=data.parent_id, grid_id=data.grid_id
    )
    values = data.model_dump()
    values["grid_id"] = grid_id
    inst = Institution(**values)
    session.add(inst)
    session.flush()
    if data.role == "lead" and data.group_id is not None:
        group = session.get(Group, data.group_id)
        assert group is not None
        group.lead_institution_id = inst.id
    session.flush()
    return inst


def update_institution(
    session: Session, actor: Actor, institution_id: int, data: InstitutionUpdate
) -> Institution:
    _require_role(actor, ADMIN_ROLES, "修改机构")
    inst = get_institution(session, institution_id)
    changes = data.model_dump(exclude_unset=True)
    if "parent_id" in changes and changes["parent_id"] == institution_id:
        raise Invalid("机构不能以自身为上级机构", field="parent_id")
    _check_links(
        session,
        group_id=changes.get("group_id"),
        parent_id=changes.get("parent_id"),
        grid_id=None,
    )
    for key, value in changes.items():
        setattr(inst, key, value)
    session.flush()
    return inst


def departments_of(session: Session, institution_id: int) -> Sequence[Department]:
    get_institution(session, institution_id)
    return session.scalars(
        select(Department)
        .where(Department.institution_id == institution_id)
        .order_by(Department.id)
    ).all()


def institution_staff_count(session: Session, institution_id: int) -> int:
    return (
        session.scalar(
            select(func.count(func.distinct(PractitionerRole.practitioner_id))).where(
                PractitionerRole.institution_id == institution_id
            )
        )
        or 0
    )


# --- practitioners ------------------------------------------------------------------------


def practitioners_query(
    *, q: str | None = None, institution_id: int | None = None
) -> Select[Practitioner]:
    stmt = select(Practitioner)
    if institution_id is not None:
        stmt = stmt.where(
            Practitioner.id.in_(
                select(PractitionerRole.practitioner_id).where(
                    PractitionerRole.institution_id == institution_id
                )
            )
        )
    if q:
        stmt = stmt.where(or_(Practitioner.name.like(f"{q}%"), Practitioner.code == q))
    return stmt.order_by(Practitioner.id)


def search_practitioners(
    session: Session, params: PageParams, *, q: str | None = None, institution_id: int | None = None
) -> tuple[Sequence[Practitioner], int]:
    return paginate(session, practitioners_query(q=q, institution_id=institution_id), params)


def get_practitioner(session: Session, practitioner_id: int) -> Practitioner:
    p = session.get(Practitioner, practitioner_id)
    if p is None:
        raise NotFound(f"医务人员不存在：{practitioner_id}", practitioner_id=practitioner_id)
    return p


def practitioner_sites(
    session: Session, practitioner_ids: Sequence[int]
) -> dict[int, list[PractitionerSite]]:
    """Where each practitioner works (多点执业 gives several sites)."""
    rows = session.execute(
        select(PractitionerRole, Institution.name, Department.name)
        .join(Institution, Institution.id == PractitionerRole.institution_id)
        .outerjoin(Department, Department.id == PractitionerRole.department_id)
        .where(PractitionerRole.practitioner_id.in_(practitioner_ids))
        .order_by(PractitionerRole.primary_site.desc(), PractitionerRole.id)
    ).all()
    sites: dict[int, list[PractitionerSite]] = {pid: [] for pid in practitioner_ids}
    for role, inst_name, dept_name in rows:
        sites[role.practitioner_id].append(
            PractitionerSite(
                institution_id=role.institution_id,
                institution_name=inst_name,
                department=dept_name,
                role=role.role,
                primary_site=role.primary_site,
            )
        )
    return sites


def practitioner_roles(
    session: Session,
    params: PageParams,
    *,
    practitioner_id: int | None = None,
    institution_id: int | None = None,
) -> tuple[Sequence[PractitionerRole], int]:
    stmt = select(PractitionerRole)
    if practitioner_id is not None:
        stmt = stmt.where(PractitionerRole.practitioner_id == practitioner_id)
    if institution_id is not None:
        stmt = stmt.where(PractitionerRole.institution_id == institution_id)
    return paginate(session, stmt.order_by(PractitionerRole.id), params)


def role_assignments(session: Session) -> list[tuple[int, int, int | None]]:
    """Every practitioner role as (practitioner id, institution id, department id), in the
    order they were created: who works where (multi-site practice included)."""
    rows = session.execute(
        select(
            PractitionerRole.practitioner_id,
            PractitionerRole.institution_id,
            PractitionerRole.department_id,
        ).order_by(PractitionerRole.id)
    )
    return [(pid, iid, did) for pid, iid, did in rows]


def create_practitioner(session: Session, actor: Actor, data: PractitionerCreate) -> Practitioner:
    _require_role(actor, ADMIN_ROLES, "新增医务人员")
    if session.scalar(select(Practitioner.id).where(Practitioner.code == data.code)) is not None:
        raise Invalid(f"医务人员编码已存在：{data.code}", field="code")
    p = Practitioner(**data.model_dump())
    session.add(p)
    session.flush()
    return p


def add_practitioner_role(
    session: Session, actor: Actor, practitioner_id: int, data: PractitionerRoleCreate
) -> PractitionerRole:
    """Add a practice site. A practitioner may practise at several members of the group
    without changing registration (000 §三(三)2 多点执业)."""
    _require_role(actor, ADMIN_ROLES, "设置执业地点")
    get_practitioner(session, practitioner_id)
    get_institution(session, data.institution_id)
    if data.department_id is not None:
        dept = session.get(Department, data.department_id)
        if dept is None or dept.institution_id != data.institution_id:
            raise Invalid("科室不属于该机构", field="department_id")
    role = PractitionerRole(practitioner_id=practitioner_id, **data.model_dump())
    session.add(role)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Invalid("该医务人员已在此机构科室执业", field="institution_id") from exc
    return role


# --- residents (master patient index) ------------------------------------------------------


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def summarize(resident: Resident) -> ResidentSummary:
    return ResidentSummary(
        id=resident.id,
        name=resident.name,
        id_number_masked=mask_id_number(resident.id_number),
        sex=resident.sex,
        birth_year=resident.birth_date.year,
        age=_age(resident.birth_date, resident.deceased_on or today()),
        grid_id=resident.grid_id,
        home_institution_id=resident.home_institution_id,
    )


def present(resident: Resident, basis: str) -> ResidentRead:
    return ResidentRead(
        **summarize(resident).model_dump(),
        birth_date=resident.birth_date,
        phone_masked=mask_phone(resident.phone) if resident.phone else None,
        address=resident.address,
        deceased_on=resident.deceased_on,
        created_at=resident.created_at,
        access_basis=basis,
    )


def possible_duplicates(
    session: Session, *, name: str, birth_date: date, sex: str, exclude_id: int | None = None
) -> Sequence[Resident]:
    """Probable duplicates: same name, sex and birth date under another ID number (a typo in
    the number, or a legacy 15-digit number registered twice)."""
    stmt = select(Resident).where(
        Resident.birth_date == birth_date, Resident.sex == sex, Resident.name == name
    )
    if exclude_id is not None:
        stmt = stmt.where(Resident.id != exclude_id)
    return session.scalars(stmt.limit(20)).all()


def register_resident(
    session: Session, actor: Actor, data: ResidentCreate
) -> tuple[Resident, Sequence[Resident]]:
    """Add a resident to the master index. The 身份证号 must pass GB 11643 and agree with the
    stated sex and birth date; an existing number is a conflict; probable duplicates are
    returned for the registrar to review."""
    _require_role(actor, INDEX_SEARCH_ROLES, "登记居民")
    info = parse_id_number(data.id_number, today=today())
    check_agrees(info, sex=data.sex, birth_date=data.birth_date)
    existing = session.scalar(select(Resident.id).where(Resident.id_number == info.number))
    if existing is not None:
        raise DuplicateResident(
            f"该身份证号已登记（{mask_id_number(info.number)}）",
            field="id_number",
            existing_id=existing,
        )
    _check_links(session, group_id=None, parent_id=data.home_institution_id, grid_id=data.grid_id)
    resident = Resident(
        id_number=info.number,
        name=data.name.strip(),
        sex=info.sex,
        birth_date=info.birth_date,
        phone=data.phone,
        address=data.address,
        grid_id=data.grid_id,
        home_institution_id=data.home_institution_id,
    )
    session.add(resident)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same number
        raise DuplicateResident(
            f"该身份证号已登记（{mask_id_number(info.number)}）", field="id_number"
        ) from exc
    audit.append(session, actor, action="create", resource="Resident", resident_id=resident.id)
    dups = possible_duplicates(
        session,
        name=resident.name,
        birth_date=resident.birth_date,
        sex=resident.sex,
        exclude_id=resident.id,
    )
    return resident, dups


def count_residents(session: Session) -> int:
    """Residents in the master index (an aggregate: no resident's data is read)."""
    return session.scalar(select(func.count()).select_from(Resident)) or 0


def _looks_like_id_number(q: str) -> bool:
    s = q.strip().upper()
    return len(s) in (15, 18) and s[:-1].isdigit() and (s[-1].isdigit() or s[-1] == "X")


@dataclass(frozen=True)
class ResidentSearchResult:
    items: list[ResidentSummary]
    total: int
    total_exact: bool


def _resident_match(q: str) -> tuple[Any, str, str]:
    """The WHERE clause for a search text, and how to show the query in the audit log."""
    q = (q or "").strip()
    if not q:
        raise Invalid("请输入姓名或完整身份证号", field="q")
    if _looks_like_id_number(q):
        number = parse_id_number(q).number
        return Resident.id_number == number, "id_number", mask_id_number(number)
    if any(ch.isdigit() for ch in q):
        raise Invalid("身份证号须完整输入（18 位）；按姓名检索请输入姓名开头", field="q")
    return and_(Resident.name >= q, Resident.name < q + "\U0010ffff"), "name_prefix", q


def search_residents(
    session: Session, actor: Actor, q: str, params: PageParams
) -> ResidentSearchResult:
    """Find residents by full 身份证号 (exact) or by name prefix. Partial ID numbers are not
    searchable, so the index cannot be used to enumerate numbers. The count stops at
    `SEARCH_COUNT_CAP` to keep common surnames fast."""
    _require_role(actor, INDEX_SEARCH_ROLES, "检索居民主索引")
    where, query_kind, shown_query = _resident_match(q)
    rows = session.scalars(
        select(Resident)
        .where(where)
        .order_by(Resident.name, Resident.id)
        .limit(params.size)
        .offset(params.offset)
    ).all()
    capped = (
        session.scalar(
            select(func.count()).select_from(
                select(Resident.id).where(where).limit(SEARCH_COUNT_CAP + 1).subquery()
            )
        )
        or 0
    )
    audit.append(
        session,
        actor,
        action="search",
        resource="Resident",
        detail={"query": shown_query, "kind": query_kind, "shown": [r.id for r in rows]},
    )
    return ResidentSearchResult(
        items=[summarize(r) for r in rows],
        total=min(capped, SEARCH_COUNT_CAP),
        total_exact=capped <= SEARCH_COUNT_CAP,
    )


ACCESSIBLE_SEARCH_SCAN = 200


def search_accessible_residents(
    session: Session, actor: Actor, q: str, *, resource: str = "Patient"
) -> list[tuple[Resident, str]]:
    """Full records for the matches the caller has a care relationship with (FHIR search).
    Looks at the first `ACCESSIBLE_SEARCH_SCAN` matches; each record returned is audited as a
    read, and the search itself as one entry."""
    _require_role(actor, INDEX_SEARCH_ROLES, "检索居民主索引")
    where, query_kind, shown_query = _resident_match(q)
    candidates = session.scalars(
        select(Resident)
        .where(where)
        .order_by(Resident.name, Resident.id)
        .limit(ACCESSIBLE_SEARCH_SCAN)
    ).all()
    visible = [(r, basis) for r in candidates if (basis := care_basis(session, actor, r.id))]
    audit.append(
        session,
        actor,
        action="search",
        resource=resource,
        detail={"query": shown_query, "kind": query_kind, "shown": [r.id for r, _ in visible]},
    )
    for resident, _ in visible:
        require_resident_access(session, actor, resident.id, action="read", resource=resource)
    return visible


def resident_names(session: Session, resident_ids: Iterable[int]) -> dict[int, str]:
    """id -> name for lists that other domains show to people already allowed to see them
    (a team's worklist of its own contracted residents)."""
    ids = list(set(resident_ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(Resident.id, Resident.name).where(Resident.id.in_(ids[start : start + 5000]))
        )
        out.update({rid: name for rid, name in rows})
    return out


def require_resident_exists(session: Session, resident_id: int) -> Resident:
    """The resident row without an access check: for services that check access themselves."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("未找到该居民，或您与其没有诊疗关系", resident_id=resident_id)
    return resident


def get_resident(
    session: Session, actor: Actor, resident_id: int, *, resource: str = "Resident"
) -> tuple[Resident, str]:
    """Load one resident for `actor`: the access check decides, the audit log records it."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        # Probing for ids that do not exist shows in the log as well.
        _deny(session, actor, resident_id, resource)
        raise NotFound("未找到该居民，或您与其没有诊疗关系", resident_id=resident_id)
    basis = require_resident_access(session, actor, resident_id, action="read", resource=resource)
    return resident, basis


def _deny(session: Session, actor: Actor, resident_id: int, resource: str) -> None:
    audit.append(
        session,
        actor,
        action="read",
        resource=resource,
        outcome="denied",
        detail={"missing_resident_id": resident_id},
    )


def update_resident(
    session: Session, actor: Actor, resident_id: int, data: ResidentUpdate
) -> tuple[Resident, str]:
    resident = require_resident_exists(session, resident_id)
    changes = data.model_dump(exclude_unset=True)
    basis = require_resident_access(
        session,
        actor,
        resident_id,
        action="update",
        resource="Resident",
        detail={"fields": sorted(changes)},
    )
    if "home_institution_id" in changes or "grid_id" in changes:
        _check_links(
            session,
            group_id=None,
            parent_id=changes.get("home_institution_id"),
            grid_id=changes.get("grid_id"),
        )
    for key, value in changes.items():
        setattr(resident, key, value.strip() if isinstance(value, str) else value)
    session.flush()
    return resident, basis


def break_glass(session: Session, actor: Actor, resident_id: int, reason: str) -> EmergencyAccess:
    """Emergency access to a record with no care relationship: reason required, audited."""
    require_resident_exists(session, resident_id)
    return identity.grant_emergency_access(session, actor, resident_id, reason)


def resident_audit(
    session: Session, actor: Actor, resident_id: int, *, limit: int, offset: int
) -> tuple[Sequence[object], int]:
    """Who accessed this record. Visible to whoever may see the record itself, and to
    administrators (who see the log, not the record)."""
    require_resident_exists(session, resident_id)
    if actor.role != "admin":
        require_resident_access(session, actor, resident_id, action="read", resource="AuditLog")
    else:
        audit.append(session, actor, action="read", resource="AuditLog", resident_id=resident_id)
    return audit.entries_for_resident(session, resident_id, limit=limit, offset=offset)


def duplicate_candidates(
    session: Session, actor: Actor, *, limit: int = 50
) -> list[list[Resident]]:
    """Groups of residents sharing name, sex and birth date: candidates for a merge review."""
    _require_role(actor, ADMIN_ROLES, "查看疑似重复档案")
    keys = session.execute(
        select(Resident.name, Resident.birth_date, Resident.sex)
        .group_by(Resident.name, Resident.birth_date, Resident.sex)
        .having(func.count() > 1)
        .limit(limit)
    ).all()
    out: list[list[Resident]] = []
    for name, birth, sex in keys:
        out.append(
            list(
                session.scalars(
                    select(Resident).where(
                        Resident.name == name, Resident.birth_date == birth, Resident.sex == sex
                    )
                ).all()
            )
        )
    if out:
        audit.append(
            session,
            actor,
            action="search",
            resource="ResidentDuplicates",
            detail={"shown": [r.id for group in out for r in group]},
        )
    return out


@relationship_provider("home_institution")
def _home_institution(actor: Actor, resident: ColumnElement[int]) -> Select[Any] | None:
    """Staff of the primary-care member that keeps the resident's health record."""
    if actor.institution_id is None:
        return None
    return select(Resident.id).where(
        Resident.id == resident, Resident.home_institution_id == actor.institution_id
    )


# --- batch lookups for imports -------------------------------------------------------------


def institutions_by_code(
    session: Session, codes: Iterable[str]
) -> dict[str, tuple[int, int | None]]:
    """code -> (institution id, group id), one query for a whole import batch."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = session.execute(
        select(Institution.code, Institution.id, Institution.group_id).where(
            Institution.code.in_(wanted)
        )
    )
    return {code: (iid, group_id) for code, iid, group_id in rows}


def practitioners_by_code(session: Session, codes: Iterable[str]) -> dict[str, int]:
    wanted = set(codes)
    if not wanted:
        return {}
    rows = session.execute(
        select(Practitioner.code, Practitioner.id).where(Practitioner.code.in_(wanted))
    )
    return {code: pid for code, pid in rows}


def departments_by_name(
    session: Session, institution_ids: Iterable[int], names: Iterable[str]
) -> dict[tuple[int, str], int]:
    """(institution id, department name) -> department id."""
    ids, wanted = set(institution_ids), set(names)
    if not ids or not wanted:
        return {}
    rows = session.execute(
        select(Department.id, Department.institution_id, Department.name).where(
            Department.institution_id.in_(ids), Department.name.in_(wanted)
        )
    )
    return {(inst_id, name): did for did, inst_id, name in rows}


def resident_ids_by_number(session: Session, numbers: Iterable[str]) -> dict[str, int]:
    """Full 身份证号 -> resident id for numbers already in the index (no access check: for
    imports, which audit what they write)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    rows = session.execute(
        select(Resident.id_number, Resident.id).where(
            in_values(session, Resident.id_number, wanted)
        )
    )
    return {number: rid for number, rid in rows}


# --- names and codes for pages and FHIR of other domains -----------------------------------


def _by_id(session: Session, key: Any, value: Any, ids: Iterable[int | None]) -> dict[int, Any]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(key, value).where(key.in_(wanted))).all())


def institution_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Institution id -> name, one query (for a page of records from many members)."""
    return _by_id(session, Institution.id, Institution.name, ids)


def institution_codes(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    return _by_id(session, Institution.id, Institution.code, ids)


def department_ids_named(
    session: Session, names: Iterable[str], *, group_id: int | None
) -> set[int]:
    """Departments with one of these names (心血管内科) in a group's members (all groups when
    `group_id` is None)."""
    stmt = select(Department.id).where(Department.name.in_(list(names)))
    if group_id is not None:
        stmt = stmt.join(Institution, Institution.id == Department.institution_id).where(
            Institution.group_id == group_id
        )
    return set(session.scalars(stmt))


def department_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    return _by_id(session, Department.id, Department.name, ids)


def resident_numbers(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Resident id -> full 身份证号 (no access check: to match records to the index)."""
    return _by_id(session, Resident.id, Resident.id_number, ids)


# --- disease catalogues -------------------------------------------------------------------


def load_default_catalog_file() -> dict[str, object]:
    text = (
        resources.files("caregrid.registry")
        .joinpath("data/disease_catalogs.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def install_default_catalogs(session: Session) -> int:
    """Load the default per-level catalogue (group_id NULL) unless it is already there;
    idempotent."""
    if session.scalar(select(func.count()).select_from(DiseaseCatalogEntry)):
        return 0
    data = load_default_catalog_file()
    catalog = data["catalog"]
    assert isinstance(catalog, dict)
    count = 0
    for level, body in catalog.items():
        for entry in body["entries"]:
            icd10.parse_range(entry["range"])
            session.add(
                DiseaseCatalogEntry(
                    group_id=None,
                    level=level,
                    code_range=entry["range"],
                    name=entry["name"],
                    category=entry.get("category"),
                )
            )
            count += 1
    session.flush()
    return count


def catalog_entries(
    session: Session, *, level: str | None = None, group_id: int | None = None
) -> Sequence[DiseaseCatalogEntry]:
    """A group's catalogue when it has its own entries for the level, otherwise the default."""
    stmt = select(DiseaseCatalogEntry)
    if level:
        stmt = stmt.where(DiseaseCatalogEntry.level == level)
    own = aliased(DiseaseCatalogEntry)
    if group_id is not None:
        has_own = select(own.id).where(
            own.group_id == group_id, own.level == DiseaseCatalogEntry.level
        )
        stmt = stmt.where(
            or_(
                DiseaseCatalogEntry.group_id == group_id,
                and_(DiseaseCatalogEntry.group_id.is_(None), ~has_own.exists()),
            )
        )
    else:
        stmt = stmt.where(DiseaseCatalogEntry.group_id.is_(None))
    return session.scalars(stmt.order_by(DiseaseCatalogEntry.level, DiseaseCatalogEntry.id)).all()


def catalog_covers(
    session: Session, *, level: str, code: str, group_id: int | None = None
) -> list[DiseaseCatalogEntry]:
    """The catalogue lines of `level` that include ICD-10 `code` (empty: outside the level's
    catalogue, which the referral rules read as a reason to refer up)."""
    if level not in LEVELS:
        raise Invalid(f"未知机构级别：{level}", field="level")
    icd10.normalize_icd10(code)
    return [
        e
        for e in catalog_entries(session, level=level, group_id=group_id)
        if icd10.parse_range(e.code_range).contains(code)
    ]


def resident_names_of(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Names of the given residents, for worklists of records the caller may already see
    (no ID numbers)."""
    return _by_id(session, Resident.id, Resident.name, ids)
