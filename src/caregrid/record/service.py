"""Encounters as a source of care relationships. The shared-record capability builds the
full record (diagnoses, results, prescriptions, ingestion) on this table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.errors import Invalid
from caregrid.identity.access import relationship_provider
from caregrid.record.models import ENCOUNTER_CLASSES, Encounter
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
def _encounter_at_own_institution(session: Session, actor: Actor, resident_id: int) -> bool:
    """Staff of an institution where the resident has had an encounter."""
    if actor.institution_id is None:
        return False
    return (
        session.scalar(
            select(Encounter.id)
            .where(
                Encounter.resident_id == resident_id,
                Encounter.institution_id == actor.institution_id,
            )
            .limit(1)
        )
        is not None
    )
