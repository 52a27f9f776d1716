"""Deterministic synthetic people for the demo city and benchmarks: names, phones, addresses
and birth dates following the national age/sex structure. No domain knowledge: each domain's
`demo.py` step uses these to build its own records."""
