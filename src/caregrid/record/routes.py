"""Shared health record REST API under /api/v1: the resident's timeline and vital-sign series,
and mutual recognition of results (互认, 国卫医发〔2022〕6号). Thin endpoints calling
`record.timeline` and `record.recognition`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath, OptionalIdQuery
from caregrid.core.pagination import PageParams, page_params
from caregrid.identity.deps import CurrentActor
from caregrid.record import recognition, timeline
from caregrid.record.schemas import (
    EntryType,
    OrderCheck,
    OrderCheckRequest,
    OrderDecisionCreate,
    OrderDecisionRead,
    RecognitionStats,
    RuleRead,
    RuleUpdate,
    TimelinePage,
    VitalSeries,
)

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "不存在（或无诊疗关系）"}}
INVALID: Responses = {422: {"description": "输入有误，响应中 field 指明字段"}}
FORBIDDEN: Responses = {403: {"description": "当前角色无权执行此操作"}}

router = api_router(
    prefix="/api/v1", tags=["record"], responses={401: {"description": "未登录或登录已过期"}}
)
Paging = Annotated[PageParams, Depends(page_params)]
ItemCode = Annotated[str, Path(min_length=1, max_length=40, description="项目代码")]


@router.get(
    "/residents/{resident_id}/timeline",
    response_model=TimelinePage,
    responses={**NOT_FOUND, **INVALID},
)
def resident_timeline(
    resident_id: IdInPath,
    db: DB,
    actor: CurrentActor,
    paging: Paging,
    type: Annotated[
        list[EntryType] | None,
        Query(description="记录类型，可重复：encounter、result、prescription"),
    ] = None,
    institution_id: OptionalIdQuery = None,
    since: Annotated[datetime | None, Query(description="起始时间（含）")] = None,
    until: Annotated[datetime | None, Query(description="截止时间（不含）")] = None,
) -> TimelinePage:
    """The resident's encounters, results and prescriptions across every member, newest first."""
    result = timeline.resident_timeline(
        db,
        actor,
        resident_id,
        types=type,
        institution_id=institution_id,
        since=since,
        until=until,
        limit=paging.size,
        offset=paging.offset,
    )
    return TimelinePage(
        resident_id=resident_id,
        items=result.items,
        total=result.total,
        counts=result.counts,
        page=paging.page,
        size=paging.size,
    )


@router.get("/residents/{resident_id}/vitals", response_model=VitalSeries, responses=NOT_FOUND)
def resident_vitals(resident_id: IdInPath, db: DB, actor: CurrentActor) -> VitalSeries:
    """Blood pressure, fasting glucose and HbA1c series with their target lines."""
    return timeline.vital_series(db, actor, resident_id)


@router.post(
    "/residents/{resident_id}/order-check",
    response_model=list[OrderCheck],
    responses={**NOT_FOUND, **INVALID},
)
def order_check(
    resident_id: IdInPath, data: OrderCheckRequest, db: DB, actor: CurrentActor
) -> list[OrderCheck]:
    """Which of the tests about to be ordered already have a recognisable result in the group
    (result data only, never the physician's conclusion)."""
    return recognition.check_orders(db, actor, resident_id, data.item_codes)


@router.post(
    "/residents/{resident_id}/order-decisions",
    response_model=OrderDecisionRead,
    status_code=201,
    responses={**NOT_FOUND, **INVALID},
)
def order_decision(
    resident_id: IdInPath, data: OrderDecisionCreate, db: DB, actor: CurrentActor
) -> OrderDecisionRead:
    """Use the existing result, or order anyway with one of the six national reasons."""
    row = recognition.record_decision(
        db,
        actor,
        resident_id,
        data.item_code,
        data.result_id,
        data.decision,
        data.reason_code,
        data.reason_text,
    )
    return OrderDecisionRead.model_validate(row)


@router.get("/recognition/rules", response_model=list[RuleRead], responses=NOT_FOUND)
def list_rules(db: DB, actor: CurrentActor, group_id: OptionalIdQuery = None) -> list[RuleRead]:
    """The per-item rules in force (the group's own rows over the provisional defaults)."""
    return recognition.list_rules(db, actor, group_id)


@router.put(
    "/recognition/rules/{item_code}",
    response_model=RuleRead,
    responses={**NOT_FOUND, **INVALID, **FORBIDDEN},
)
def set_rule(
    item_code: ItemCode,
    data: RuleUpdate,
    db: DB,
    actor: CurrentActor,
    group_id: OptionalIdQuery = None,
) -> RuleRead:
    """Set the group's own rule for one item (administrators and group managers)."""
    return recognition.set_rule(db, actor, group_id, item_code, data)


@router.get(
    "/recognition/stats", response_model=RecognitionStats, responses={**FORBIDDEN, **NOT_FOUND}
)
def recognition_stats(
    db: DB,
    actor: CurrentActor,
    group_id: OptionalIdQuery = None,
    since: Annotated[datetime | None, Query(description="起始时间（含）")] = None,
    until: Annotated[datetime | None, Query(description="截止时间（不含）")] = None,
) -> RecognitionStats:
    """Used, overridden (by reason) and avoided cost in fen, for the caller's group."""
    return recognition.recognition_stats(db, actor, group_id=group_id, since=since, until=until)
