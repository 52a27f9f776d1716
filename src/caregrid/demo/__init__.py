"""The synthetic demo city: orchestrates each domain's generator step (`registry.demo`,
`identity.demo`, ...) into one deterministic build per policy profile.

Calls: every domain's `demo` module and the profiles service."""
