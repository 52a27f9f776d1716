"""Pydantic schemas of the registry API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caregrid.core.ids import RefId

Level = Literal["tertiary", "secondary", "primary", "village"]
Kind = Literal[
    "general", "tcm", "maternal_child", "cdc", "specialty", "rehab_nursing", "elderly_care"
]
RoleInGroup = Literal["lead", "member", "sub_centre", "collaborator"]
Sex = Literal["male", "female"]

LEVEL_LABELS = {
    "tertiary": "三级医院",
    "secondary": "二级医院",
    "primary": "基层医疗卫生机构",
    "village": "村卫生室/社区卫生服务站",
}
KIND_LABELS = {
    "general": "综合",
    "tcm": "中医",
    "maternal_child": "妇幼",
    "cdc": "疾控",
    "specialty": "专科",
    "rehab_nursing": "康复护理",
    "elderly_care": "医养结合",
}
ROLE_LABELS = {
    "lead": "牵头医院",
    "member": "成员单位",
    "sub_centre": "医疗分中心",
    "collaborator": "协作单位",
}
GROUP_KIND_LABELS = {
    "city_group": "紧密型城市医疗集团",
    "county_community": "紧密型县域医共体",
    "city_alliance": "城市医联体",
}
SEX_LABELS = {"male": "男", "female": "女"}


class Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class GridRead(Orm):
    id: int
    code: str
    name: str
    city: str
    districts: str
    population: int | None


class GroupRead(Orm):
    id: int
    code: str
    name: str
    kind: str
    grid_id: int
    lead_institution_id: int | None
    member_count: int = 0


class InstitutionBase(BaseModel):
    name: str = Field(min_length=2, max_length=100)
    level: Level
    kind: Kind
    role: RoleInGroup = "member"
    group_id: RefId | None = None
    grid_id: RefId | None = None
    parent_id: RefId | None = None
    district: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=200)
    beds: int | None = Field(default=None, ge=0, le=20000)


class InstitutionCreate(InstitutionBase):
    code: str = Field(
        pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$", description="机构编码（大写字母、数字、连字符）"
    )


class InstitutionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=2, max_length=100)
    level: Level | None = None
    kind: Kind | None = None
    role: RoleInGroup | None = None
    group_id: RefId | None = None
    parent_id: RefId | None = None
    district: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=200)
    beds: int | None = Field(default=None, ge=0, le=20000)
    active: bool | None = None


class InstitutionRead(Orm):
    id: int
    code: str
    name: str
    level: Level
    kind: Kind
    role: RoleInGroup
    group_id: int | None
    grid_id: int | None
    parent_id: int | None
    district: str | None
    address: str | None
    beds: int | None
    source_clause: str | None
    active: bool


class DepartmentRead(Orm):
    id: int
    institution_id: int
    name: str


class PractitionerSite(BaseModel):
    institution_id: int
    institution_name: str
    department: str | None
    role: str
    primary_site: bool


class PractitionerRead(Orm):
    id: int
    code: str
    name: str
    sex: Sex
    title: str | None
    qualification: str
    sites: list[PractitionerSite] = []


class PractitionerCreate(BaseModel):
    code: str = Field(min_length=2, max_length=40)
    name: str = Field(min_length=2, max_length=30)
    sex: Sex
    title: str | None = Field(default=None, max_length=20)
    qualification: str = Field(default="physician", max_length=20)


class PractitionerRoleCreate(BaseModel):
    institution_id: RefId
    department_id: RefId | None = None
    role: str = Field(default="physician", max_length=20)
    primary_site: bool = False


class ResidentCreate(BaseModel):
    id_number: str = Field(
        min_length=1, max_length=40, description="居民身份证号码（18 位；15 位旧号自动升位）"
    )
    name: str = Field(min_length=2, max_length=30)
    sex: Sex | None = Field(default=None, description="如填写，须与身份证号一致")
    birth_date: date | None = Field(default=None, description="如填写，须与身份证号一致")
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$")
    address: str | None = Field(default=None, max_length=200)
    grid_id: RefId | None = None
    home_institution_id: RefId | None = Field(
        default=None, description="建档机构（基层医疗卫生机构）"
    )


class ResidentUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=2, max_length=30)
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$")
    address: str | None = Field(default=None, max_length=200)
    grid_id: RefId | None = None
    home_institution_id: RefId | None = None


class ResidentSummary(BaseModel):
    """What the master-index search shows: never the full ID number."""

    id: int
    name: str
    id_number_masked: str
    sex: Sex
    birth_year: int
    age: int
    grid_id: int | None
    home_institution_id: int | None


class ResidentRead(ResidentSummary):
    birth_date: date
    phone_masked: str | None
    address: str | None
    deceased_on: date | None
    created_at: datetime
    access_basis: str


class ResidentCreated(BaseModel):
    resident: ResidentRead
    possible_duplicates: list[ResidentSummary]


class DuplicatePair(BaseModel):
    reason: str
    residents: list[ResidentSummary]


class BreakGlassRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="紧急调阅理由")


class BreakGlassGrant(BaseModel):
    resident_id: int
    expires_at: datetime
    reason: str


class CatalogEntryRead(Orm):
    id: int
    group_id: int | None
    level: Level
    code_range: str
    name: str
    category: str | None


class AuditEntryRead(Orm):
    seq: int
    at: datetime
    username: str | None
    role: str | None
    institution_id: int | None
    resident_id: int | None
    action: str
    resource: str
    outcome: str
    basis: str | None
    reason: str | None
