"""Family-doctor errors, each knowing its HTTP status."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Invalid, NotFound


class TeamNotFound(NotFound):
    pass


class PackageNotFound(NotFound):
    pass


class ContractNotFound(NotFound):
    pass


class ActiveContractExists(Conflict):
    """The resident already has an active contract (one team at a time)."""


class ContractNotActive(Conflict):
    pass


class InvalidTeam(Invalid):
    pass


class TaskNotFound(NotFound):
    pass
