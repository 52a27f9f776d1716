"""Errors of login, tokens and access."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Forbidden, Invalid, Locked, Unauthorized


class BadCredentials(Unauthorized):
    pass


class AccountLocked(Locked):
    pass


class SessionExpired(Unauthorized):
    pass


class RoleNotAllowed(Forbidden):
    pass


class ReasonRequired(Invalid):
    pass


class UsernameTaken(Conflict):
    pass
