"""FHIR R4 read side of the registry: Organization (members and groups), Practitioner,
PractitionerRole and Patient (read, search, and create with 身份证号 validation).

Groups are Organizations too (id ``group-<n>``), so a member's ``partOf`` points at its group
(or at its parent institution, e.g. a village clinic at its township centre) and
``Organization?partof=group-1`` lists a group's members."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Body, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from caregrid.core.errors import Invalid, NotFound
from caregrid.core.fhir import (
    CODESYSTEM_BASE,
    ID_CARD_SYSTEM,
    FhirResponse,
    SearchParam,
    base_url,
    capability,
    capability_statement,
    reference_id,
    searchset,
    split_token,
)
from caregrid.core.http import DB, api_router
from caregrid.core.ids import MAX_ID
from caregrid.core.pagination import PageParams
from caregrid.identity.deps import CurrentActor
from caregrid.registry import service
from caregrid.registry.models import Group, Institution, Practitioner, PractitionerRole, Resident
from caregrid.registry.schemas import (
    GROUP_KIND_LABELS,
    KIND_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    ResidentCreate,
)

# FHIR is described by its own CapabilityStatement (/fhir/R4/metadata), not by OpenAPI.
router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
LEVEL_SYSTEM = f"{CODESYSTEM_BASE}/institution-level"
KIND_SYSTEM = f"{CODESYSTEM_BASE}/institution-kind"
GROUP_SYSTEM = f"{CODESYSTEM_BASE}/group-kind"
INSTITUTION_CODE_SYSTEM = "https://caregrid.org/fhir/sid/institution-code"
GROUP_CODE_SYSTEM = "https://caregrid.org/fhir/sid/group-code"
PRACTITIONER_CODE_SYSTEM = "https://caregrid.org/fhir/sid/practitioner-code"
COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "长孙",
    "宇文",
    "司徒",
    "夏侯",
    "轩辕",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "百里",
)
GROUP_PREFIX = "group-"
MAX_COUNT = 100

Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)]
PageNo = Annotated[int, Query(alias="_page", ge=1, le=10_000)]

capability(
    "Organization",
    ["read", "search-type"],
    [
        SearchParam("_id", "token", "机构 id，或医疗集团 group-<n>"),
        SearchParam("name", "string", "名称开头（:contains 为包含）"),
        SearchParam("identifier", "token", f"{INSTITUTION_CODE_SYSTEM}|编码"),
        SearchParam("type", "token", "级别（tertiary…）、类型（general…）或集团类型"),
        SearchParam("partof", "reference", "上级机构或所属医疗集团"),
    ],
)
capability(
    "Practitioner",
    ["read", "search-type"],
    [
        SearchParam("_id", "token", "id"),
        SearchParam("name", "string", "姓名开头"),
        SearchParam("identifier", "token", f"{PRACTITIONER_CODE_SYSTEM}|编码"),
    ],
)
capability(
    "PractitionerRole",
    ["read", "search-type"],
    [
        SearchParam("practitioner", "reference", "医务人员"),
        SearchParam("organization", "reference", "执业机构"),
    ],
)
capability(
    "Patient",
    ["read", "search-type", "create"],
    [
        SearchParam("_id", "token", "id"),
        SearchParam("name", "string", "姓名开头（仅返回有诊疗关系的居民）"),
        SearchParam("identifier", "token", f"{ID_CARD_SYSTEM}|身份证号（完整）"),
    ],
)


def split_name(name: str) -> tuple[str, str]:
    for surname in COMPOUND_SURNAMES:
        if name.startswith(surname) and len(name) > len(surname):
            return surname, name[len(surname) :]
    return name[:1], name[1:]


def human_name(name: str) -> dict[str, Any]:
    family, given = split_name(name)
    out: dict[str, Any] = {"use": "official", "text": name, "family": family}
    if given:
        out["given"] = [given]
    return out


# --- mapping ----------------------------------------------------------------------------------


def group_to_fhir(group: Group) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"{GROUP_PREFIX}{group.id}",
        "active": True,
        "identifier": [{"system": GROUP_CODE_SYSTEM, "value": group.code}],
        "type": [
            {
                "coding": [
                    {
                        "system": GROUP_SYSTEM,
                        "code": group.kind,
                        "display": GROUP_KIND_LABELS.get(group.kind, group.kind),
                    }
                ]
            }
        ],
        "name": group.name,
    }


def institution_to_fhir(inst: Institution) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(inst.id),
        "active": inst.active,
        "identifier": [{"system": INSTITUTION_CODE_SYSTEM, "value": inst.code}],
        "type": [
            {
                "coding": [
                    {"system": ORG_TYPE_SYSTEM, "code": "prov", "display": "Healthcare Provider"}
                ]
            },
            {
                "coding": [
                    {
                        "system": LEVEL_SYSTEM,
                        "code": inst.level,
                        "display": LEVEL_LABELS[inst.level],
                    }
                ]
            },
            {
                "coding": [
                    {"system": KIND_SYSTEM, "code": inst.kind, "display": KIND_LABELS[inst.kind]}
                ]
            },
        ],
        "name": inst.name,
    }
    if inst.district or inst.address:
        address: dict[str, Any] = {}
        if inst.address:
            address["text"] = inst.address
        if inst.district:
            address["district"] = inst.district
        resource["address"] = [address]
    if inst.parent_id is not None:
        resource["partOf"] = {"reference": f"Organization/{inst.parent_id}"}
    elif inst.group_id is not None:
        resource["partOf"] = {
            "reference": f"Organization/{GROUP_PREFIX}{inst.group_id}",
            "display": ROLE_LABELS[inst.role],
        }
    return resource


def practitioner_to_fhir(p: Practitioner) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(p.id),
        "active": True,
        "identifier": [{"system": PRACTITIONER_CODE_SYSTEM, "value": p.code}],
        "name": [human_name(p.name)],
        "gender": p.sex,
    }
    if p.title:
        resource["qualification"] = [{"code": {"text": p.title}}]
    return resource


def role_to_fhir(role: PractitionerRole, department: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(role.id),
        "active": True,
        "practitioner": {"reference": f"Practitioner/{role.practitioner_id}"},
        "organization": {"reference": f"Organization/{role.institution_id}"},
        "code": [{"text": role.role}],
    }
    if department:
        resource["specialty"] = [{"text": department}]
    if not role.primary_site:
        resource["extension"] = [
            {
                "url": "https://caregrid.org/fhir/StructureDefinition/multi-site-practice",
                "valueBoolean": True,
            }
        ]
    return resource


def patient_to_fhir(resident: Resident) -> dict[str, Any]:
    """The full identifier goes only to callers with a care relationship (checked before);
    human-facing screens always mask it."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(resident.id),
        "identifier": [
            {
                "use": "official",
                "system": ID_CARD_SYSTEM,
                "type": {"text": "居民身份证"},
                "value": resident.id_number,
            }
        ],
        "name": [human_name(resident.name)],
        "gender": resident.sex,
        "birthDate": resident.birth_date.isoformat(),
    }
    if resident.phone:
        resource["telecom"] = [{"system": "phone", "value": resident.phone, "use": "mobile"}]
    if resident.address:
        resource["address"] = [{"text": resident.address}]
    if resident.deceased_on:
        resource["deceasedDateTime"] = resident.deceased_on.isoformat()
    if resident.home_institution_id:
        resource["managingOrganization"] = {
            "reference": f"Organization/{resident.home_institution_id}"
        }
    return resource


def patient_from_fhir(body: dict[str, Any]) -> ResidentCreate:
    """Validate the structure with the independent fhir.resources R4B model, then take the
    fields caregrid keeps. Errors name the FHIRPath of the offending element."""
    from fhir.resources.R4B.patient import Patient

    if body.get("resourceType") != "Patient":
        raise Invalid("资源类型必须为 Patient", field="resourceType")
    try:
        Patient.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or "Patient"
        raise Invalid(
            f"Patient 结构无效：{path}：{first.get('msg')}", field=f"Patient.{path}"
        ) from exc
    ids = [i for i in body.get("identifier") or [] if i.get("system") == ID_CARD_SYSTEM]
    if not ids or not ids[0].get("value"):
        raise Invalid(
            f"缺少居民身份证号（identifier.system = {ID_CARD_SYSTEM}）", field="Patient.identifier"
        )
    names = body.get("name") or []
    name = ""
    if names:
        first_name = names[0]
        name = first_name.get("text") or (
            (first_name.get("family") or "") + "".join(first_name.get("given") or [])
        )
    if len(name.strip()) < 2:
        raise Invalid("缺少姓名（name.text 或 family + given）", field="Patient.name")
    gender = body.get("gender")
    if gender is not None and gender not in ("male", "female"):
        raise Invalid("性别须为 male 或 female（与身份证号一致）", field="Patient.gender")
    birth = body.get("birthDate")
    phones = [t.get("value") for t in body.get("telecom") or [] if t.get("system") == "phone"]
    addresses = [a.get("text") for a in body.get("address") or [] if a.get("text")]
    managing = (body.get("managingOrganization") or {}).get("reference")
    home_id: int | None = None
    if managing:
        ref = reference_id(managing, "Organization")
        if not ref.isdigit():
            raise Invalid(
                "managingOrganization 须引用一家机构", field="Patient.managingOrganization"
            )
        home_id = int(ref)
    try:
        return ResidentCreate(
            id_number=ids[0]["value"],
            name=name.strip(),
            sex=gender,
            birth_date=date.fromisoformat(birth) if birth else None,
            phone=phones[0] if phones else None,
            address=addresses[0] if addresses else None,
            home_institution_id=home_id,
        )
    except (ValidationError, ValueError) as exc:
        raise Invalid(f"Patient 字段无效：{exc}", field="Patient") from exc


# --- endpoints --------------------------------------------------------------------------------


@router.get("/metadata", response_class=FhirResponse)
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement: what this server supports."""
    return FhirResponse(capability_statement(base_url(request)))


def _get_group(db: Session, fhir_id: str) -> Group:
    return service.get_group(db, _safe_int(fhir_id.removeprefix(GROUP_PREFIX)))


@router.get("/Organization/{fhir_id}", response_class=FhirResponse)
def read_organization(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    if fhir_id.startswith(GROUP_PREFIX):
        return FhirResponse(group_to_fhir(_get_group(db, fhir_id)))
    return FhirResponse(institution_to_fhir(service.get_institution(db, _safe_int(fhir_id))))


@router.get("/Organization", response_class=FhirResponse)
def search_organization(
    request: Request,
    db: DB,
    actor: CurrentActor,
    count: Count = 20,
    page: PageNo = 1,
    _id: Annotated[str | None, Query(alias="_id")] = None,
    name: str | None = None,
    name_contains: Annotated[str | None, Query(alias="name:contains")] = None,
    identifier: str | None = None,
    type: str | None = None,
    partof: str | None = None,
) -> FhirResponse:
    inst_stmt = select(Institution)
    group_stmt = select(Group)
    include_groups = partof is None
    if _id:
        if _id.startswith(GROUP_PREFIX):
            inst_stmt = inst_stmt.where(false())
            group_stmt = group_stmt.where(Group.id == _safe_int(_id.removeprefix(GROUP_PREFIX)))
        else:
            inst_stmt = inst_stmt.where(Institution.id == _safe_int(_id))
            include_groups = False
    if name:
        # FHIR string search: case-insensitive "starts with".
        inst_stmt = inst_stmt.where(func.lower(Institution.name).startswith(name.lower()))
        group_stmt = group_stmt.where(func.lower(Group.name).startswith(name.lower()))
    if name_contains:
        inst_stmt = inst_stmt.where(Institution.name.contains(name_contains))
        group_stmt = group_stmt.where(Group.name.contains(name_contains))
    if identifier:
        system, value = split_token(identifier)
        if system in (None, INSTITUTION_CODE_SYSTEM):
            inst_stmt = inst_stmt.where(Institution.code == value)
        else:
            inst_stmt = inst_stmt.where(false())
        if system in (None, GROUP_CODE_SYSTEM):
            group_stmt = group_stmt.where(Group.code == value)
        else:
            include_groups = False
    if type:
        system, code = split_token(type)
        conditions = []
        if system in (None, LEVEL_SYSTEM):
            conditions.append(Institution.level == code)
        if system in (None, KIND_SYSTEM):
            conditions.append(Institution.kind == code)
        if system in (None, ORG_TYPE_SYSTEM) and code == "prov":
            conditions.append(Institution.id.is_not(None))
        inst_stmt = inst_stmt.where(or_(*conditions)) if conditions else inst_stmt.where(false())
        if system in (None, GROUP_SYSTEM):
            group_stmt = group_stmt.where(Group.kind == code)
        else:
            include_groups = False
    if partof:
        ref = reference_id(partof, "Organization")
        if ref.startswith(GROUP_PREFIX):
            inst_stmt = inst_stmt.where(
                Institution.group_id == _safe_int(ref.removeprefix(GROUP_PREFIX)),
                Institution.parent_id.is_(None),
            )
        else:
            inst_stmt = inst_stmt.where(Institution.parent_id == _safe_int(ref))
    groups = list(db.scalars(group_stmt.order_by(Group.id)).all()) if include_groups else []
    inst_total = db.scalar(select(func.count()).select_from(inst_stmt.subquery())) or 0
    total = len(groups) + inst_total
    start = (page - 1) * count
    resources: list[dict[str, Any]] = [group_to_fhir(g) for g in groups[start : start + count]]
    remaining = count - len(resources)
    if remaining > 0:
        offset = max(0, start - len(groups))
        rows = db.scalars(inst_stmt.order_by(Institution.id).limit(remaining).offset(offset)).all()
        resources += [institution_to_fhir(i) for i in rows]
    return FhirResponse(searchset(request, resources, total, page=page, count=count))


def _safe_int(value: str) -> int:
    """An id from a FHIR path or reference; anything not a valid id matches nothing."""
    try:
        number = int(value)
    except ValueError:
        return -1
    return number if 0 < number <= MAX_ID else -1


@router.get("/Practitioner/{fhir_id}", response_class=FhirResponse)
def read_practitioner(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    return FhirResponse(practitioner_to_fhir(service.get_practitioner(db, _safe_int(fhir_id))))


@router.get("/Practitioner", response_class=FhirResponse)
def search_practitioner(
    request: Request,
    db: DB,
    actor: CurrentActor,
    count: Count = 20,
    page: PageNo = 1,
    _id: Annotated[str | None, Query(alias="_id")] = None,
    name: str | None = None,
    identifier: str | None = None,
) -> FhirResponse:
    stmt = select(Practitioner)
    if _id:
        stmt = stmt.where(Practitioner.id == _safe_int(_id))
    if name:
        stmt = stmt.where(Practitioner.name.startswith(name))
    if identifier:
        system, value = split_token(identifier)
        if system in (None, PRACTITIONER_CODE_SYSTEM):
            stmt = stmt.where(Practitioner.code == value)
        else:
            stmt = stmt.where(false())
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.scalars(stmt.order_by(Practitioner.id).limit(count).offset((page - 1) * count)).all()
    return FhirResponse(
        searchset(request, [practitioner_to_fhir(p) for p in rows], total, page=page, count=count)
    )


def _roles_to_fhir(db: Session, roles: list[PractitionerRole]) -> list[dict[str, Any]]:
    sites = service.practitioner_sites(db, list({r.practitioner_id for r in roles}))
    dept_names = {
        (s.institution_id, r.practitioner_id): s.department
        for r in roles
        for s in sites.get(r.practitioner_id, [])
    }
    return [role_to_fhir(r, dept_names.get((r.institution_id, r.practitioner_id))) for r in roles]


@router.get("/PractitionerRole/{fhir_id}", response_class=FhirResponse)
def read_practitioner_role(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    role = db.get(PractitionerRole, _safe_int(fhir_id))
    if role is None:
        raise NotFound(f"PractitionerRole/{fhir_id} 不存在")
    return FhirResponse(_roles_to_fhir(db, [role])[0])


@router.get("/PractitionerRole", response_class=FhirResponse)
def search_practitioner_role(
    request: Request,
    db: DB,
    actor: CurrentActor,
    count: Count = 20,
    page: PageNo = 1,
    practitioner: str | None = None,
    organization: str | None = None,
) -> FhirResponse:
    rows, total = service.practitioner_roles(
        db,
        PageParams(page=page, size=count),
        practitioner_id=_safe_int(reference_id(practitioner, "Practitioner"))
        if practitioner
        else None,
        institution_id=_safe_int(reference_id(organization, "Organization"))
        if organization
        else None,
    )
    return FhirResponse(
        searchset(request, _roles_to_fhir(db, list(rows)), total, page=page, count=count)
    )


@router.get("/Patient/{fhir_id}", response_class=FhirResponse)
def read_patient(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    """Read one Patient: care relationship required (else 404), audited."""
    resident, _ = service.get_resident(db, actor, _safe_int(fhir_id), resource="Patient")
    return FhirResponse(patient_to_fhir(resident))


@router.get("/Patient", response_class=FhirResponse)
def search_patient(
    request: Request,
    db: DB,
    actor: CurrentActor,
    count: Count = 20,
    page: PageNo = 1,
    _id: Annotated[str | None, Query(alias="_id")] = None,
    name: str | None = None,
    identifier: str | None = None,
) -> FhirResponse:
    """Only residents the caller has a care relationship with are returned; each is audited."""
    if _id:
        try:
            resident, _ = service.get_resident(db, actor, _safe_int(_id), resource="Patient")
        except NotFound:
            return FhirResponse(searchset(request, [], 0, page=page, count=count))
        return FhirResponse(searchset(request, [patient_to_fhir(resident)], 1, page=1, count=count))
    if identifier:
        system, value = split_token(identifier)
        if system not in (None, ID_CARD_SYSTEM):
            return FhirResponse(searchset(request, [], 0, page=page, count=count))
        query = value
    elif name:
        query = name
    else:
        raise Invalid("Patient 检索须提供 name、identifier 或 _id", field="name")
    visible = service.search_accessible_residents(db, actor, query)
    start = (page - 1) * count
    shown = [patient_to_fhir(r) for r, _ in visible[start : start + count]]
    return FhirResponse(searchset(request, shown, len(visible), page=page, count=count))


@router.post("/Patient", response_class=FhirResponse, status_code=201)
def create_patient(
    request: Request,
    db: DB,
    actor: CurrentActor,
    body: Annotated[dict[str, Any], Body(media_type="application/fhir+json")],
) -> Response:
    """Register a resident from a FHIR Patient. A bad 身份证号 answers 422 with an
    OperationOutcome naming the problem."""
    data = patient_from_fhir(body)
    resident, _ = service.register_resident(db, actor, data)
    return FhirResponse(
        patient_to_fhir(resident),
        status_code=201,
        headers={"Location": f"{base_url(request)}/Patient/{resident.id}"},
    )
