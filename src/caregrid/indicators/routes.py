"""Indicator API under /api/v1: the report (JSON), its Excel export and the definitions.
Thin endpoints calling `indicators.service.build_report`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from caregrid.core.http import DB, api_router
from caregrid.identity.deps import CurrentActor
from caregrid.indicators.export import definition_json, report_json, report_xlsx
from caregrid.indicators.schemas import DefinitionRead, ReportRead
from caregrid.indicators.service import build_report, visible_indicators

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    403: {"description": "当前角色无权查看指标"},
    404: {"description": "没有这个医疗集团或指标"},
    422: {"description": "输入有误，响应中 field 指明字段"},
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

router = api_router(
    prefix="/api/v1", tags=["indicators"], responses={401: {"description": "未登录或登录已过期"}}
)

Period = Annotated[str, Query(description="统计期：2025、2025-03 或 2025Q2", max_length=10)]
By = Annotated[
    str | None, Query(description="分组维度，逗号分隔：group,grid,member,month", max_length=40)
]
Engine = Annotated[str, Query(description="计算引擎：duckdb 或 spark", max_length=10)]
GroupId = Annotated[int | None, Query(description="医疗集团 id", ge=1, le=2**31 - 1)]
Slugs = Annotated[list[str] | None, Query(description="只要这些指标（slug）", max_length=60)]


@router.get("/indicators", response_model=ReportRead, responses=ERRORS)
def indicators(
    db: DB,
    actor: CurrentActor,
    period: Period,
    by: By = None,
    engine: Engine = "duckdb",
    group_id: GroupId = None,
    indicator: Slugs = None,
) -> Any:
    """Every indicator the caller may see for the period, with the active profile's target,
    status (met / close / missed), the previous period and the breakdown by `by`."""
    report = build_report(
        db, actor, period=period, by=by, engine=engine,  # type: ignore[arg-type]
        group_id=group_id, slugs=indicator,
    )  # fmt: skip
    return report_json(report)


@router.get(
    "/indicators/export",
    responses={**ERRORS, 200: {"content": {XLSX: {}}, "description": "Excel 工作簿"}},
    response_class=Response,
)
def export(
    db: DB,
    actor: CurrentActor,
    period: Period,
    by: By = "group,grid,member,month",
    group_id: GroupId = None,
) -> Response:
    """The report as an Excel workbook: 指标汇总, one sheet per dimension, 指标定义."""
    report = build_report(db, actor, period=period, by=by, group_id=group_id)
    filename = f"indicators_{report.period.label}.xlsx"
    return Response(
        report_xlsx(report),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/indicators/definitions", response_model=list[DefinitionRead], responses=ERRORS)
def definitions(actor: CurrentActor) -> Any:
    """The registry: every indicator the caller may see, with its definition and source."""
    return [definition_json(i) for i in visible_indicators(actor)]
