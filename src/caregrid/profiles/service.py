"""The deployment's active profile (stored in the database) and the group's overrides."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.profiles.loader import load_profile
from caregrid.profiles.models import ActiveProfile
from caregrid.profiles.schemas import PolicyProfile
from caregrid.settings import get_settings


def set_active_profile(session: Session, name: str) -> PolicyProfile:
    """Choose the profile this deployment runs (validated by loading it first)."""
    profile = load_profile(name)
    row = session.get(ActiveProfile, 1)
    if row is None:
        session.add(ActiveProfile(id=1, profile_id=name))
    else:
        row.profile_id = name
    session.flush()
    return profile


def active_profile_id(session: Session) -> str:
    stored = session.scalar(select(ActiveProfile.profile_id).where(ActiveProfile.id == 1))
    return stored or get_settings().profile


def active_profile(session: Session) -> PolicyProfile:
    return load_profile(active_profile_id(session))
