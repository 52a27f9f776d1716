"""Audit: the append-only, hash-chained log of every read and write of a resident's data
(who, role, institution, resident, action, reason, time) and `caregrid audit verify`.

Calls: core only."""
