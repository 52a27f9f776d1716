"""JSON API of the policy profiles: the list and one whole profile (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from caregrid.profiles.loader import list_profiles, load_profile
from caregrid.profiles.schemas import PolicyProfile, ProfileMeta

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])

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
