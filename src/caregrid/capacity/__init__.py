"""Pooled capacity of the lead and secondary hospitals (号源与床位): schedules and slots per
department, bed pools per ward with their beds, the profile's reserved share for primary care
and family-doctor teams (001 §三(三)1: 20 %; 002 §四(三)1: ≥ 1/3 slots, ≥ 1/4 beds), holds
that expire, release of unused reserved slots before the session, appointments with their
registration (挂号), and the admission queue with priority for referred patients.

No slot or bed is ever booked twice: every booking is one conditional UPDATE on the slot (or
bed) row plus a unique column on the appointment (or stay) that the database enforces.

Calls: registry (institutions, levels), profiles (shares, release lead time), audit."""
