"""API shapes of the indicator report (values as decimal strings: no float rounding)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DefinitionRead(BaseModel):
    slug: str
    title: str = Field(description="指标名称")
    title_en: str
    unit: str
    category: str
    numerator: str = Field(description="分子")
    denominator: str | None = Field(description="分母")
    definition: str = Field(description="定义与口径")
    source: str = Field(description="依据（种子条款或国家口径）")
    direction: str
    dimensions: list[str]
    target_keys: list[str]


class CellRead(BaseModel):
    group_id: int | None
    group: str | None
    member_id: int | None
    member: str | None
    month: str | None
    grid_id: int | None
    grid: str | None = Field(description="网格")
    numerator: int
    denominator: int | None
    value: str | None
    display: str


class TargetRead(BaseModel):
    key: str
    label: str
    display: str
    clause: str
    comparator: str | None
    value: str | None
    trend: str | None


class IndicatorRead(DefinitionRead):
    numerator_value: int
    denominator_value: int | None
    value: str | None
    display: str
    previous_value: str | None
    movement: str | None
    improving: bool | None
    target: TargetRead | None
    status: str | None = Field(description="met / close / missed")
    status_label: str | None
    breakdown: list[CellRead]


class ReportRead(BaseModel):
    profile: str
    profile_name: str
    period: str
    start: str
    end: str
    engine: str
    by: list[str]
    group_id: int | None
    indicators: list[IndicatorRead]
