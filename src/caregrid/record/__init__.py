"""Shared health record. Today: encounters, which contribute the "encounter" care
relationship (staff of an institution where the resident was seen). The shared-record
capability adds diagnoses, results, prescriptions, ingestion and mutual recognition here.

Calls: registry, identity, audit."""
