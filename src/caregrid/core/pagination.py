"""Offset pagination shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


class PageParams(BaseModel):
    page: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_params(
    page: Annotated[int, Query(ge=1, le=100_000, description="页码，从 1 开始")] = 1,
    size: Annotated[int, Query(ge=1, le=200, description="每页条数")] = 20,
) -> PageParams:
    return PageParams(page=page, size=size)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def paginate(session: Session, stmt: Select[T], params: PageParams) -> tuple[Sequence[T], int]:
    """Run `stmt` for one page and count all rows matching it."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.limit(params.size).offset(params.offset)).all()
    return rows, total
