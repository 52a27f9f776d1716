"""The synthetic demo city: orchestrates each domain's generator step (`registry.demo`,
`demo.accounts`, ...) into one deterministic build per policy profile.

Calls: every domain's `demo` module and the profiles service."""
