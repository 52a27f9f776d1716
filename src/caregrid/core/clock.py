"""Time. Datetimes are timezone-aware, stored in UTC and shown in Asia/Shanghai.

Tests control the clock with `frozen_clock` instead of patching datetime."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


def today() -> date:
    """The date in China, which is what people mean by 'today'."""
    return now().astimezone(SHANGHAI).date()


def local(value: datetime) -> datetime:
    return value.astimezone(SHANGHAI)


@contextmanager
def frozen_clock(at: datetime) -> Iterator[None]:
    global _frozen
    previous, _frozen = _frozen, at
    try:
        yield
    finally:
        _frozen = previous
