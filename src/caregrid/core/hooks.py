"""Callbacks across the layers.

After rollback: some records must survive a failed request. The audit entry of a denied
access is written in the request's transaction and, should that transaction roll back, again
in a fresh one.

Predicates: a lower domain asks a question that only a domain beside or above it can answer,
without importing it. The answering domain registers a predicate under the question's name
when its service module is imported (`caregrid.domains.load_all`); the asking domain calls
`any_true`. Questions in use:

- ``reserved_capacity_user(session, actor)``: may the actor book capacity reserved for primary
  care as a family-doctor team member (asked by capacity, answered by familydoctor).

Events: the same for a fact a lower domain announces and a higher one acts on, in the same
transaction (a listener's error fails the announcing call). Events in use:

- ``bed_admitted(session, actor, admission_request)``: a patient got a bed from a ward's queue
  (announced by capacity; referral registers the arrival of the referral behind it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


_predicates: dict[str, dict[str, Callable[..., bool]]] = {}


def predicate(question: str, name: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Register the decorated function as an answer to `question`; registering the same
    `name` again replaces the earlier answer (module reloads in tests)."""

    def register(fn: Callable[..., bool]) -> Callable[..., bool]:
        _predicates.setdefault(question, {})[name] = fn
        return fn

    return register


def any_true(question: str, *args: Any) -> bool:
    """True when any registered answer to `question` says yes (False when none is)."""
    return any(fn(*args) for fn in _predicates.get(question, {}).values())


_listeners: dict[str, dict[str, Callable[..., None]]] = {}


def listener(event: str, name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated function to run on `event`; the same `name` replaces."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        _listeners.setdefault(event, {})[name] = fn
        return fn

    return register


def publish(event: str, *args: Any) -> None:
    for fn in list(_listeners.get(event, {}).values()):
        fn(*args)
