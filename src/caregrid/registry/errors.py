"""Errors of the registry domain."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Invalid, NotFound


class InvalidIdNumber(Invalid):
    """A 身份证号 that fails GB 11643 (length, characters, date, check digit) or disagrees with
    the stated sex or birth date."""


class InvalidIcd10Code(Invalid):
    """A code or range that is not ICD-10 shaped."""


class DuplicateResident(Conflict):
    """A resident with the same 身份证号 already exists."""


class UnknownInstitution(NotFound):
    pass


class UnknownGroup(NotFound):
    pass


class UnknownGrid(NotFound):
    pass
