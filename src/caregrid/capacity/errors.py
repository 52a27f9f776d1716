"""Capacity errors, each knowing its HTTP status."""

from __future__ import annotations

from caregrid.core.errors import Conflict, Forbidden, Invalid, NotFound


class SlotNotFound(NotFound):
    pass


class SlotTaken(Conflict):
    """The slot is booked or held by someone else (or was just taken by a concurrent request)."""


class SlotInPast(Invalid):
    pass


class ReservedForPrimaryCare(Forbidden):
    """A reserved slot or bed asked for by a user who is not primary care or a family-doctor
    team (001 §三(三)1)."""


class HoldExpired(Conflict):
    pass


class BedTaken(Conflict):
    pass


class NoBedFree(Conflict):
    pass


class QuotaExhausted(Conflict):
    """No capacity of the requested kind is left."""
