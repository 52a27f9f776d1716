"""The single access check: may this user see this resident?

A practitioner sees a resident only through a care relationship or an audited
break-the-glass grant (DESIGN §8). Care relationships come from the domains that create them
(an encounter at the user's institution, the home institution, a referral, a contract): each
domain registers a provider with `relationship_provider`, so this module never imports them.
A provider returns the query that finds such a relationship (or None when the caller can have
none of that kind), and the check asks all of them in one round trip. Every check writes an
audit entry; a refusal answers 404 (`NotFound`), never 403, so the existence of a record is
not revealed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, bindparam, case, exists, literal, select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.errors import DomainError, NotFound
from caregrid.identity.models import EmergencyAccess

# Roles that treat patients and may hold care relationships.
CLINICAL_ROLES = frozenset({"doctor", "coordinator", "centre_staff", "pharmacist"})
# Roles that may search the master patient index (results are masked).
INDEX_SEARCH_ROLES = CLINICAL_ROLES | {"admin"}

# provider(actor, resident) -> a SELECT with a row when the relationship exists, or None.
# `resident` is the resident id as a bound parameter: the check's statement is built once per
# caller and reused (building it took more time than running it).
Provider = Callable[[Actor, ColumnElement[int]], Select[Any] | None]

# The check's parameters: the resident, and the time (break-the-glass grants expire)
_RESIDENT = bindparam("care_resident_id", type_=Integer)
_NOW = bindparam("care_now", type_=EmergencyAccess.expires_at.type)


@dataclass(frozen=True)
class _Registered:
    basis: str
    provider: Provider


_providers: list[_Registered] = []


def relationship_provider(basis: str) -> Callable[[Provider], Provider]:
    """Register `provider(actor, resident) -> Select | None` under a basis name such as
    "encounter" or "referral". Re-registering a basis replaces the earlier provider."""

    def register(provider: Provider) -> Provider:
        _providers[:] = [p for p in _providers if p.basis != basis]
        _providers.append(_Registered(basis, provider))
        _care_statement.cache_clear()
        return provider

    return register


def registered_bases() -> list[str]:
    return [p.basis for p in _providers]


def care_basis(session: Session, actor: Actor, resident_id: int) -> str | None:
    """The name of the first care relationship (in registration order) that lets `actor` see
    the resident, or None: one query, a CASE over each provider's EXISTS."""
    if actor.role not in CLINICAL_ROLES or actor.user_id is None:
        return None
    statement = _care_statement(actor)
    if statement is None:
        return None
    return session.scalar(statement, {_RESIDENT.key: resident_id, _NOW.key: now()})


@lru_cache(maxsize=512)
def _care_statement(actor: Actor) -> Select[Any] | None:
    """The check's query for one caller (the providers read only the actor's fields), with
    the resident and the time as parameters; None when no provider applies to the caller.
    About 20 KiB a caller: the 512 most recent callers of a server process are kept."""
    whens = [
        (exists(query), literal(registered.basis))
        for registered in _providers
        if (query := registered.provider(actor, _RESIDENT)) is not None
    ]
    return select(case(*whens, else_=None)) if whens else None


@relationship_provider("break_glass")
def _emergency_grant(actor: Actor, resident: ColumnElement[int]) -> Select[Any] | None:
    return select(EmergencyAccess.id).where(
        EmergencyAccess.user_id == actor.user_id,
        EmergencyAccess.resident_id == resident,
        EmergencyAccess.expires_at > _NOW,
    )


def require_resident_access(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    action: str,
    resource: str,
    reason: str | None = None,
    detail: dict[str, object] | None = None,
) -> str:
    """Check and audit one access; returns the basis or raises NotFound (audited as denied).

    The platform itself (``Actor.system()``) is trusted: imports and the demo builder."""
    if actor.role == "system":
        basis: str | None = "system"
    else:
        basis = care_basis(session, actor, resident_id)
    audit.append(
        session,
        actor,
        action=action,
        resource=resource,
        resident_id=resident_id,
        outcome="allowed" if basis else "denied",
        basis=basis,
        reason=reason,
        detail=detail,
    )
    if basis is None:
        raise NotFound("未找到该居民，或您与其没有诊疗关系", resident_id=resident_id)
    return basis


class _OfResident(Protocol):
    @property
    def resident_id(self) -> int: ...


_Row = TypeVar("_Row", bound=_OfResident)


def load_for_resident(
    session: Session,
    actor: Actor,
    model: type[_Row],
    row_id: int,
    missing: DomainError,
    *,
    action: str,
    resource: str,
    detail: dict[str, object] | None = None,
) -> _Row:
    """A row of a resident's data by id (a contract, an enrolment...), loaded only through the
    access check on its `resident_id`, which writes the audit entry. Raises `missing` when
    there is no such row, NotFound (audited as denied) when the caller may not see it."""
    row = session.get(model, row_id)
    if row is None:
        raise missing
    require_resident_access(
        session,
        actor,
        row.resident_id,
        action=action,
        resource=resource,
        detail=detail,
    )
    return row
