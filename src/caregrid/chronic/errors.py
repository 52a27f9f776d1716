"""Chronic-care errors, each knowing its HTTP status."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Invalid, NotFound


class EnrolmentNotFound(NotFound):
    pass


class AlreadyEnrolled(Conflict):
    pass


class NotEligible(Invalid):
    pass
