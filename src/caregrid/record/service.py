"""Encounters as a source of care relationships. The shared-record capability builds the
full record (diagnoses, results, prescriptions, ingestion) on this table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.errors import Invalid
from caregrid.identity.access import relationship_provider
from caregrid.record.models import ENCOUNTER_CLASSES, Diagnosis, Encounter
from caregrid.registry import service as registry


def record_encounter(
    session: Session,
    actor: Actor,
    *,
    resident_id: int,
    institution_id: int,
    encounter_class: str,
    started_at: datetime,
    ended_at: datetime | None = None,
    practitioner_id: int | None = None,
) -> Encounter:
    """Record a visit. The visit itself creates the care relationship that lets the
    institution's staff see the resident (DESIGN §8)."""
    if encounter_class not in ENCOUNTER_CLASSES:
        raise Invalid(f"未知就诊类型：{encounter_class}", field="encounter_class")
    if ended_at is not None and ended_at < started_at:
        raise Invalid("结束时间早于开始时间", field="ended_at")
    inst = registry.get_institution(session, institution_id)
    registry.require_resident_exists(session, resident_id)
    encounter = Encounter(
        resident_id=resident_id,
        institution_id=institution_id,
        group_id=inst.group_id,
        encounter_class=encounter_class,
        started_at=started_at,
        ended_at=ended_at,
        practitioner_id=practitioner_id,
    )
    session.add(encounter)
    session.flush()
    audit.append(
        session,
        actor,
        action="create",
        resource="Encounter",
        resident_id=resident_id,
        detail={"encounter_id": encounter.id, "institution_id": institution_id},
    )
    return encounter


@relationship_provider("encounter")
def _encounter_at_own_institution(actor: Actor, resident: ColumnElement[int]) -> Select[Any] | None:
    """Staff of an institution where the resident has had an encounter."""
    if actor.institution_id is None:
        return None
    return select(Encounter.id).where(
        Encounter.resident_id == resident, Encounter.institution_id == actor.institution_id
    )


def diagnoses_matching(
    session: Session, prefixes: Sequence[str], *, resident_ids: Sequence[int] | None = None
) -> list[tuple[int, str, datetime, int | None, int | None]]:
    """Diagnoses whose ICD-10 code starts with one of `prefixes`, as (resident id, code,
    encounter start, institution id, group id), oldest first. For the chronic registries
    (I10-I15, E11), which read the shared record only through this function."""
    if not prefixes:
        return []
    stmt = (
        select(
            Diagnosis.resident_id,
            Diagnosis.code,
            Encounter.started_at,
            Encounter.institution_id,
            Encounter.group_id,
        )
        .join(Encounter, Encounter.id == Diagnosis.encounter_id)
        .where(or_(*(Diagnosis.code.startswith(p, autoescape=True) for p in prefixes)))
        .order_by(Encounter.started_at, Diagnosis.id)
    )
    if resident_ids is not None:
        stmt = stmt.where(Diagnosis.resident_id.in_(list(resident_ids)))
    return [(r, c, s, i, g) for r, c, s, i, g in session.execute(stmt)]
