"""Callbacks that the transaction owner runs after it rolls back.

Some records must survive a failed request: the audit entry of a denied access is written in
the request's transaction and, should that transaction roll back, again in a fresh one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

_KEY = "after_rollback"


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault(_KEY, []).append(callback)


def run_after_rollback(session: Session) -> None:
    callbacks: list[Callable[[], None]] = session.info.pop(_KEY, [])
    for callback in callbacks:
        callback()


def clear(session: Session) -> None:
    session.info.pop(_KEY, None)
