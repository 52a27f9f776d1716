"""Policy profiles (政策方案, DESIGN §4): every number and rule that differs between the five plans
in ``seeds/``, one TOML data file per plan in ``data/`` (000 lincang, 001 linyi, 002 zhongwei,
003 yunnan_county, 004 national_city). Each value carries the seed clause it comes from; a
value the seed does not set but the system needs is ``clause = "default"``, ``provisional``,
with a note. A parameter a seed does not set is absent from that profile (``get`` returns None).

Owns: the data files; their schema and validation (``schemas.py``); the pure loader with its
cache and a group's overrides (``loader.py``); the deployment's active profile and stored
overrides (``models.py``, ``service.py``); ``caregrid profile list|show|validate`` (``cli.py``);
``GET /api/v1/profiles`` (``routes.py``).

Calls: ``caregrid.core`` only (errors, and the database for the active profile). Every later
domain (referral, capacity, centres, familydoctor, pharmacy, insurance, indicators) reads its
numbers from here and never hard-codes a plan's value.
"""
