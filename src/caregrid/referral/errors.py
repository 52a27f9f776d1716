"""Referral errors, each knowing its HTTP status."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Invalid, NotFound


class ReferralNotFound(NotFound):
    pass


class IllegalTransition(Conflict):
    """The referral's state does not allow the action (409)."""


class ReferralExpired(Conflict):
    """No answer within the profile's time limit: the referral can no longer be accepted."""


class ReasonRequired(Invalid):
    pass
