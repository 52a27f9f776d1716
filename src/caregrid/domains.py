"""The list of domains, in import order. Importing a domain's models registers its tables;
importing its service registers its care-relationship providers with the access check."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "caregrid.registry.models",
    "caregrid.identity.models",
    "caregrid.audit.models",
    "caregrid.profiles.models",
    "caregrid.record.models",
    "caregrid.chronic.models",
    "caregrid.familydoctor.models",
    "caregrid.capacity.models",
    "caregrid.referral.models",
)

SERVICE_MODULES = (
    "caregrid.registry.service",
    "caregrid.record.service",
    "caregrid.chronic.service",
    "caregrid.familydoctor.service",
    "caregrid.capacity.service",
    "caregrid.referral.service",
)


def load_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def load_all() -> None:
    load_models()
    for name in SERVICE_MODULES:
        importlib.import_module(name)
