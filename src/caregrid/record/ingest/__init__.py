"""Ingestion into the shared record from members' systems: FHIR R4 Bundles and NDJSON, and
CSV files with documented templates (Chinese headers accepted). Every path maps its input to
the normalised records of `records.py` and hands a batch to `upsert.ingest_batch`, which is
idempotent on (source_system, source_id) and all-or-nothing per batch."""
