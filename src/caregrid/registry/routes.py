"""Registry REST API under /api/v1: thin endpoints calling `registry.service`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Query

from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath, OptionalIdQuery
from caregrid.core.pagination import Page, PageParams, page_params
from caregrid.identity.deps import CurrentActor
from caregrid.registry import service
from caregrid.registry.models import Practitioner
from caregrid.registry.schemas import (
    AuditEntryRead,
    BreakGlassGrant,
    BreakGlassRequest,
    CatalogEntryRead,
    DepartmentRead,
    DuplicatePair,
    GridRead,
    GroupRead,
    InstitutionCreate,
    InstitutionRead,
    InstitutionUpdate,
    Kind,
    Level,
    PractitionerCreate,
    PractitionerRead,
    PractitionerRoleCreate,
    ResidentCreate,
    ResidentCreated,
    ResidentRead,
    ResidentSummary,
    ResidentUpdate,
)

router = api_router(prefix="/api/v1", responses={401: {"description": "未登录或登录已过期"}})
Paging = Annotated[PageParams, Depends(page_params)]
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "不存在（或无诊疗关系）"}}
INVALID: Responses = {422: {"description": "输入有误，响应中 field 指明字段"}}
FORBIDDEN: Responses = {403: {"description": "当前角色无权执行此操作"}}


class ResidentPage(Page[ResidentSummary]):
    total_exact: bool = True


@router.get("/grids", response_model=list[GridRead], tags=["registry"])
def list_grids(db: DB, actor: CurrentActor) -> list[GridRead]:
    return [GridRead.model_validate(g) for g in service.list_grids(db)]


@router.get("/grids/{grid_id}", response_model=GridRead, tags=["registry"], responses=NOT_FOUND)
def get_grid(grid_id: IdInPath, db: DB, actor: CurrentActor) -> GridRead:
    return GridRead.model_validate(service.get_grid(db, grid_id))


@router.get("/groups", response_model=list[GroupRead], tags=["registry"])
def list_groups(db: DB, actor: CurrentActor) -> list[GroupRead]:
    return [
        GroupRead.model_validate(g.group).model_copy(update={"member_count": g.member_count})
        for g in service.list_groups(db)
    ]


@router.get("/groups/{group_id}", response_model=GroupRead, tags=["registry"], responses=NOT_FOUND)
def get_group(group_id: IdInPath, db: DB, actor: CurrentActor) -> GroupRead:
    group = service.get_group(db, group_id)
    members = service.group_members(db, group_id)
    return GroupRead.model_validate(group).model_copy(update={"member_count": len(members)})


@router.get(
    "/groups/{group_id}/members",
    response_model=list[InstitutionRead],
    tags=["registry"],
    responses=NOT_FOUND,
)
def group_members(group_id: IdInPath, db: DB, actor: CurrentActor) -> list[InstitutionRead]:
    return [InstitutionRead.model_validate(i) for i in service.group_members(db, group_id)]


@router.get("/institutions", response_model=Page[InstitutionRead], tags=["registry"])
def list_institutions(
    db: DB,
    actor: CurrentActor,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=50, description="名称或编码关键字")] = None,
    level: Level | None = None,
    kind: Kind | None = None,
    group_id: OptionalIdQuery = None,
    grid_id: OptionalIdQuery = None,
    parent_id: OptionalIdQuery = None,
) -> Page[InstitutionRead]:
    rows, total = service.search_institutions(
        db,
        paging,
        q=q,
        level=level,
        kind=kind,
        group_id=group_id,
        grid_id=grid_id,
        parent_id=parent_id,
    )
    return Page(
        items=[InstitutionRead.model_validate(r) for r in rows],
        total=total,
        page=paging.page,
        size=paging.size,
    )


@router.post(
    "/institutions",
    response_model=InstitutionRead,
    status_code=201,
    tags=["registry"],
    responses={**INVALID, **FORBIDDEN, **NOT_FOUND},
)
def create_institution(data: InstitutionCreate, db: DB, actor: CurrentActor) -> InstitutionRead:
    return InstitutionRead.model_validate(service.create_institution(db, actor, data))


@router.get(
    "/institutions/{institution_id}",
    response_model=InstitutionRead,
    tags=["registry"],
    responses=NOT_FOUND,
)
def get_institution(institution_id: IdInPath, db: DB, actor: CurrentActor) -> InstitutionRead:
    return InstitutionRead.model_validate(service.get_institution(db, institution_id))


@router.patch(
    "/institutions/{institution_id}",
    response_model=InstitutionRead,
    tags=["registry"],
    responses={**INVALID, **FORBIDDEN, **NOT_FOUND},
)
def update_institution(
    institution_id: IdInPath, data: InstitutionUpdate, db: DB, actor: CurrentActor
) -> InstitutionRead:
    return InstitutionRead.model_validate(
        service.update_institution(db, actor, institution_id, data)
    )


@router.get(
    "/institutions/{institution_id}/departments",
    response_model=list[DepartmentRead],
    tags=["registry"],
    responses=NOT_FOUND,
)
def institution_departments(
    institution_id: IdInPath, db: DB, actor: CurrentActor
) -> list[DepartmentRead]:
    return [DepartmentRead.model_validate(d) for d in service.departments_of(db, institution_id)]


def _practitioners(db: DB, rows: Sequence[Practitioner]) -> list[PractitionerRead]:
    sites = service.practitioner_sites(db, [p.id for p in rows])
    return [
        PractitionerRead.model_validate(p).model_copy(update={"sites": sites.get(p.id, [])})
        for p in rows
    ]


@router.get("/practitioners", response_model=Page[PractitionerRead], tags=["registry"])
def list_practitioners(
    db: DB,
    actor: CurrentActor,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=30)] = None,
    institution_id: OptionalIdQuery = None,
) -> Page[PractitionerRead]:
    rows, total = service.search_practitioners(db, paging, q=q, institution_id=institution_id)
    return Page(items=_practitioners(db, rows), total=total, page=paging.page, size=paging.size)


@router.post(
    "/practitioners",
    response_model=PractitionerRead,
    status_code=201,
    tags=["registry"],
    responses={**INVALID, **FORBIDDEN},
)
def create_practitioner(data: PractitionerCreate, db: DB, actor: CurrentActor) -> PractitionerRead:
    return _practitioners(db, [service.create_practitioner(db, actor, data)])[0]


@router.get(
    "/practitioners/{practitioner_id}",
    response_model=PractitionerRead,
    tags=["registry"],
    responses=NOT_FOUND,
)
def get_practitioner(practitioner_id: IdInPath, db: DB, actor: CurrentActor) -> PractitionerRead:
    return _practitioners(db, [service.get_practitioner(db, practitioner_id)])[0]


@router.post(
    "/practitioners/{practitioner_id}/roles",
    response_model=PractitionerRead,
    status_code=201,
    tags=["registry"],
    responses={**INVALID, **FORBIDDEN, **NOT_FOUND},
)
def add_practitioner_role(
    practitioner_id: IdInPath, data: PractitionerRoleCreate, db: DB, actor: CurrentActor
) -> PractitionerRead:
    service.add_practitioner_role(db, actor, practitioner_id, data)
    return _practitioners(db, [service.get_practitioner(db, practitioner_id)])[0]


@router.get(
    "/residents",
    response_model=ResidentPage,
    tags=["residents"],
    responses={**INVALID, **FORBIDDEN},
)
def search_residents(
    db: DB,
    actor: CurrentActor,
    paging: Paging,
    q: Annotated[str, Query(min_length=1, max_length=30, description="姓名开头或完整身份证号")],
) -> ResidentPage:
    """Search the master patient index. ID numbers are always masked; the search is audited."""
    result = service.search_residents(db, actor, q, paging)
    return ResidentPage(
        items=result.items,
        total=result.total,
        total_exact=result.total_exact,
        page=paging.page,
        size=paging.size,
    )


@router.post(
    "/residents",
    response_model=ResidentCreated,
    status_code=201,
    tags=["residents"],
    responses={**INVALID, **FORBIDDEN, 409: {"description": "身份证号已登记"}},
)
def register_resident(data: ResidentCreate, db: DB, actor: CurrentActor) -> ResidentCreated:
    resident, dups = service.register_resident(db, actor, data)
    return ResidentCreated(
        resident=service.present(resident, "registrar"),
        possible_duplicates=[service.summarize(d) for d in dups],
    )


@router.get(
    "/residents/duplicates",
    response_model=list[DuplicatePair],
    tags=["residents"],
    responses=FORBIDDEN,
)
def resident_duplicates(
    db: DB, actor: CurrentActor, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[DuplicatePair]:
    return [
        DuplicatePair(
            reason="姓名、性别、出生日期相同", residents=[service.summarize(r) for r in group]
        )
        for group in service.duplicate_candidates(db, actor, limit=limit)
    ]


@router.get(
    "/residents/{resident_id}", response_model=ResidentRead, tags=["residents"], responses=NOT_FOUND
)
def get_resident(resident_id: IdInPath, db: DB, actor: CurrentActor) -> ResidentRead:
    resident, basis = service.get_resident(db, actor, resident_id)
    return service.present(resident, basis)


@router.patch(
    "/residents/{resident_id}",
    response_model=ResidentRead,
    tags=["residents"],
    responses={**NOT_FOUND, **INVALID},
)
def update_resident(
    resident_id: IdInPath, data: ResidentUpdate, db: DB, actor: CurrentActor
) -> ResidentRead:
    resident, basis = service.update_resident(db, actor, resident_id, data)
    return service.present(resident, basis)


@router.post(
    "/residents/{resident_id}/break-glass",
    response_model=BreakGlassGrant,
    status_code=201,
    tags=["residents"],
    responses={**NOT_FOUND, **INVALID, **FORBIDDEN},
)
def break_glass(
    resident_id: IdInPath, body: BreakGlassRequest, db: DB, actor: CurrentActor
) -> BreakGlassGrant:
    """Emergency access without a care relationship: a reason is required and audited."""
    grant = service.break_glass(db, actor, resident_id, body.reason)
    return BreakGlassGrant(
        resident_id=resident_id, expires_at=grant.expires_at, reason=grant.reason
    )


class AuditPage(Page[AuditEntryRead]):
    pass


@router.get(
    "/residents/{resident_id}/audit",
    response_model=AuditPage,
    tags=["residents"],
    responses=NOT_FOUND,
)
def resident_audit(resident_id: IdInPath, db: DB, actor: CurrentActor, paging: Paging) -> AuditPage:
    """Who accessed this record, newest first."""
    rows, total = service.resident_audit(
        db, actor, resident_id, limit=paging.size, offset=paging.offset
    )
    return AuditPage(
        items=[AuditEntryRead.model_validate(r) for r in rows],
        total=total,
        page=paging.page,
        size=paging.size,
    )


@router.get("/disease-catalogs", response_model=list[CatalogEntryRead], tags=["registry"])
def disease_catalogs(
    db: DB, actor: CurrentActor, level: Level | None = None, group_id: OptionalIdQuery = None
) -> list[CatalogEntryRead]:
    return [
        CatalogEntryRead.model_validate(e)
        for e in service.catalog_entries(db, level=level, group_id=group_id)
    ]


@router.get(
    "/disease-catalogs/check",
    response_model=list[CatalogEntryRead],
    tags=["registry"],
    responses=INVALID,
)
def catalog_check(
    db: DB,
    actor: CurrentActor,
    level: Level,
    code: Annotated[str, Query(min_length=3, max_length=20, description="ICD-10 编码")],
    group_id: OptionalIdQuery = None,
) -> list[CatalogEntryRead]:
    """Which lines of the level's catalogue cover the code (empty: outside the catalogue)."""
    return [
        CatalogEntryRead.model_validate(e)
        for e in service.catalog_covers(db, level=level, code=code, group_id=group_id)
    ]
