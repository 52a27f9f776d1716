"""Pydantic models of the family-doctor API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from caregrid.core.ids import RefId

Role = Literal["gp", "nurse", "public_health", "specialist", "tcm"]


class MemberCreate(BaseModel):
    practitioner_id: RefId
    role: Role
    institution_id: RefId
    leader: bool = False


class TeamCreate(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    base_institution_id: RefId
    members: list[MemberCreate] = Field(min_length=1, max_length=30)


class MemberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practitioner_id: int
    role: str
    institution_id: int
    leader: bool


class TeamRead(BaseModel):
    id: int
    code: str
    name: str
    base_institution_id: int
    group_id: int | None
    members: list[MemberRead]


class ServiceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    service_code: str
    name: str
    times_per_year: int


class PackageRead(BaseModel):
    code: str
    name: str
    population: str
    min_age: int | None
    max_age: int | None
    fund_fen: int
    public_health_fen: int
    self_pay_fen: int
    services: list[ServiceRead]


class ContractCreate(BaseModel):
    resident_id: RefId
    team_id: RefId
    package_code: str = Field(min_length=1, max_length=30)
    start_date: date | None = None
    years: int = Field(default=1, ge=1, le=3, description="签约周期（年），不少于 1 年")
    doctor_practitioner_id: RefId | None = None


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    team_id: int
    package_id: int
    start_date: date
    end_date: date
    status: str
    fee_fen: int
    previous_contract_id: int | None
    ended_on: date | None
    end_reason: str | None


class RenewBody(BaseModel):
    years: int = Field(default=1, ge=1, le=3)
    package_code: str | None = Field(default=None, max_length=30)


class ChangeTeamBody(BaseModel):
    team_id: RefId
    reason: str = Field(max_length=200)


class TerminateBody(BaseModel):
    reason: str = Field(max_length=200)


class TaskCreate(BaseModel):
    resident_id: RefId
    kind: str = Field(min_length=1, max_length=40)
    due: date
    detail: str = Field(default="", max_length=500)
    source: str = Field(default="manual", min_length=1, max_length=80)


class WorkItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resident_id: int
    resident_name: str
    what: str
    due: date
    detail: str
    contract_id: int | None
    enrolment_id: int | None
    task_id: int | None


class WorklistRead(BaseModel):
    team_id: int
    on: date
    contracts: int
    due_today: list[WorkItemRead]
    overdue: list[WorkItemRead]
    uncontrolled: list[WorkItemRead]
    tasks: list[WorkItemRead]


class ProgramRates(BaseModel):
    managed: int
    standard: int
    controlled: int
    lost: int
    standard_rate: Decimal | None
    control_rate: Decimal | None
    lost_rate: Decimal | None


class TeamMeasuresRead(BaseModel):
    team_id: int
    team_name: str
    contracts: int
    fulfilment: Decimal | None
    hypertension: ProgramRates
    diabetes: ProgramRates


class MeasuresRead(BaseModel):
    group_id: int
    on: date
    residents: int
    contracted: int
    coverage: Decimal | None
    key_population_coverage: Decimal | None
    elderly_coverage: Decimal | None
    chronic_coverage: Decimal | None
    fulfilment: Decimal | None
    hypertension: ProgramRates
    diabetes: ProgramRates
    teams: list[TeamMeasuresRead]
    monthly: dict[str, tuple[int, int, int]]
    by_member: dict[int, tuple[int, int]] = Field(
        description="医务人员 id → (年内随访次数, 其中控制满意)"
    )


class MemberShareRead(BaseModel):
    practitioner_id: int
    role: str
    fen: int


class TeamSettlementRead(BaseModel):
    team_id: int
    team_name: str
    pool_fen: int
    prepaid_fen: int
    performance_fen: int
    total_fen: int
    score: Decimal
    members: list[MemberShareRead]


class SettlementRead(BaseModel):
    group_id: int
    year: int
    prepaid_share: Decimal
    pool_fen: int
    teams: list[TeamSettlementRead]


class DeliveryCreate(BaseModel):
    service_code: str = Field(min_length=1, max_length=30)
    delivered_on: date


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    service_code: str
    delivered_on: date


class SatisfactionBody(BaseModel):
    score: int = Field(ge=0, le=100, description="满意度评分 0-100")


class ServiceStatusRead(BaseModel):
    code: str
    name: str
    due: int
    delivered: int
    next_due: date | None
