"""JSON API of the policy profiles: the list and one whole profile (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field

from caregrid.core.http import DB, api_router
from caregrid.identity.deps import CurrentActor
from caregrid.profiles import service
from caregrid.profiles.loader import list_profiles, load_profile
from caregrid.profiles.schemas import PolicyProfile, ProfileMeta

router = api_router(prefix="/api/v1/profiles", tags=["profiles"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "未知的政策方案"}}


@router.get("", response_model=list[ProfileMeta], summary="政策方案列表")
def get_profiles() -> list[ProfileMeta]:
    """随 caregrid 提供的全部政策方案（按种子编号排序）。"""
    return list_profiles()


@router.get(
    "/{profile_id}",
    response_model=PolicyProfile,
    summary="一个政策方案的全部参数与评判标准",
    responses=_NOT_FOUND,
)
def get_profile(profile_id: str) -> PolicyProfile:
    """方案元数据、按点分键展开的参数（每个参数附种子条款）、评判标准与集团布局。"""
    return load_profile(profile_id)


class OverrideBody(BaseModel):
    value: bool | int | float | str | list[str] = Field(
        description="新的取值（类型须与原参数一致）"
    )
    reason: str = Field(min_length=1, max_length=300, description="调整理由")


active_router = api_router(prefix="/api/v1/active-profile", tags=["profiles"])
_OVERRIDE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "无权调整"},
    422: {"description": "参数不存在或取值不合规则"},
}


@active_router.get("", response_model=PolicyProfile, summary="当前启用的政策方案（含集团调整）")
def get_active(db: DB) -> PolicyProfile:
    return service.active_profile(db)


@active_router.put(
    "/overrides/{key}",
    response_model=PolicyProfile,
    summary="调整一个方案参数",
    responses=_OVERRIDE_ERRORS,
)
def put_override(
    key: Annotated[str, Path(max_length=120, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")],
    body: OverrideBody,
    db: DB,
    actor: CurrentActor,
) -> PolicyProfile:
    """集团在所选方案基础上调整某个参数的取值；原取值与条款依据保留，并记录理由和调整人。"""
    return service.override_parameter(db, actor, key, body.value, body.reason)


@active_router.delete(
    "/overrides/{key}",
    response_model=PolicyProfile,
    summary="撤销一个参数的调整",
    responses={403: {"description": "无权调整"}},
)
def delete_override(
    key: Annotated[str, Path(max_length=120, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")],
    db: DB,
    actor: CurrentActor,
) -> PolicyProfile:
    return service.clear_override(db, actor, key)
