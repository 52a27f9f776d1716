"""Identity: accounts and roles, password login with lockout, web sessions and API bearer
tokens, break-the-glass grants, and the single access check every domain calls before it
loads a resident's data (`identity.access.require_resident_access`).

Calls: audit (every access decision is logged). Domains contribute care relationships with
`identity.access.relationship_provider`; this package imports none of them."""
