"""Errors of the profiles domain."""

from __future__ import annotations

from caregrid.core.errors import Invalid, NotFound


class ProfileInvalid(Invalid):
    """A profile file (or a group's override of it) breaks a rule. The detail is one line naming
    the file, the key and the problem, e.g. ``linyi.toml: parameters.capacity.
    reserved_outpatient_share.value: 必须在 0 到 1 之间 (got 1.2)``; fields carry ``file``,
    ``key`` and ``problem`` (and ``line``/``column`` for TOML syntax errors)."""


class UnknownProfile(NotFound):
    """No profile of that name ships with caregrid."""
