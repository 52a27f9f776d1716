"""Registry: grids, medical groups with their lead and members (and sub-centres), institutions
with level and kind, departments, practitioners with practice sites at several members
(多点执业), the master patient index (身份证号 validated by GB 11643, masked when shown,
duplicates detected) and the per-level disease catalogues that drive referral rules.

Calls: identity (access check, break-the-glass), audit. Contributes the "home_institution"
care relationship (the primary-care member that keeps a resident's health record)."""
