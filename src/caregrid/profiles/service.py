"""The deployment's active profile (stored in the database) and the group's overrides of its
values (DESIGN §4: a group can start from a profile and override values)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import String, delete, literal, select
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.errors import Forbidden, Invalid
from caregrid.profiles.loader import apply_overrides, load_profile
from caregrid.profiles.models import ActiveProfile, ProfileOverride
from caregrid.profiles.schemas import PolicyProfile
from caregrid.settings import get_settings

OVERRIDE_ROLES = frozenset({"admin", "group_manager"})


def set_active_profile(session: Session, name: str) -> PolicyProfile:
    """Choose the profile this deployment runs (validated by loading it first). Overrides
    made for another profile no longer apply and are removed."""
    profile = load_profile(name)
    row = session.get(ActiveProfile, 1)
    if row is None:
        session.add(ActiveProfile(id=1, profile_id=name))
    elif row.profile_id != name:
        row.profile_id = name
        session.execute(delete(ProfileOverride))
    session.flush()
    return profile


def active_profile_id(session: Session) -> str:
    stored = session.scalar(select(ActiveProfile.profile_id).where(ActiveProfile.id == 1))
    return stored or get_settings().profile


def overrides(session: Session) -> Sequence[ProfileOverride]:
    return session.scalars(select(ProfileOverride).order_by(ProfileOverride.key)).all()


_CHOICE_AND_OVERRIDES = (
    select(literal(None, String).label("key"), ActiveProfile.profile_id.label("value"))
    .where(ActiveProfile.id == 1)
    .union_all(select(ProfileOverride.key, ProfileOverride.value_json))
)


def active_profile(session: Session) -> PolicyProfile:
    """The active profile with the group's stored overrides applied: the choice and the
    overrides read in one query (every booking and rule check asks), the result shared while
    they stay the same."""
    rows = session.execute(_CHOICE_AND_OVERRIDES).all()
    chosen = next((value for key, value in rows if key is None), None)
    stored = tuple(sorted((key, value) for key, value in rows if key is not None))
    return _applied(chosen or get_settings().profile, stored)


@lru_cache(maxsize=32)
def _applied(profile_id: str, stored: tuple[tuple[str, str], ...]) -> PolicyProfile:
    return apply_overrides(
        load_profile(profile_id), {key: json.loads(value) for key, value in stored}
    )


def override_parameter(
    session: Session, actor: Actor, key: str, value: object, reason: str
) -> PolicyProfile:
    """Set the group's own value for one parameter. The value is checked against the
    parameter's rules before it is stored; the reason is kept with who changed it."""
    if actor.role not in OVERRIDE_ROLES:
        raise Forbidden("仅系统管理员或集团管理者可以调整方案参数")
    if len((reason or "").strip()) < 2:
        raise Invalid("调整方案参数须填写理由", field="reason")
    profile = load_profile(active_profile_id(session))
    apply_overrides(profile, {key: value})  # raises ProfileInvalid naming key and problem
    row = session.scalar(select(ProfileOverride).where(ProfileOverride.key == key))
    if row is None:
        row = ProfileOverride(key=key, value_json="null")
        session.add(row)
    row.value_json = json.dumps(value, ensure_ascii=False)
    row.reason = reason.strip()
    row.changed_by = actor.username
    session.flush()
    return active_profile(session)


def clear_override(session: Session, actor: Actor, key: str) -> PolicyProfile:
    if actor.role not in OVERRIDE_ROLES:
        raise Forbidden("仅系统管理员或集团管理者可以调整方案参数")
    session.execute(delete(ProfileOverride).where(ProfileOverride.key == key))
    session.flush()
    return active_profile(session)
