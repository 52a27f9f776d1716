"""`ingest_batch`: all-or-nothing validation, idempotent upsert on (source_system, source_id),
and one audit entry per resident written (issue 3; 000 §三(三)5 连续记录)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.audit.models import AuditEntry
from caregrid.core.actor import Actor
from caregrid.record.ingest.records import (
    EncounterIn,
    PrescriptionIn,
    ResultIn,
)
from caregrid.record.ingest.upsert import ingest_batch
from caregrid.record.models import Diagnosis, Encounter, PrescriptionItem, Procedure, Result
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Resident
from tests.conftest import City

ZHANG = make_id_number("371302", date(1958, 3, 12), 123)
LI = make_id_number("371302", date(1990, 11, 2), 246)
NEWCOMER = make_id_number("371311", date(2001, 6, 1), 35)
T0 = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)


def add_residents(db: Session, city: City) -> dict[str, int]:
    out = {}
    for number, name, sex, born in (
        (ZHANG, "张建国", "male", date(1958, 3, 12)),
        (LI, "李秀英", "female", date(1990, 11, 2)),
    ):
        r = Resident(id_number=number, name=name, sex=sex, birth_date=born, grid_id=city.grid_id)
        db.add(r)
        db.flush()
        out[number] = r.id
    return out


def encounter(source_id: str, id_number: str = ZHANG, **overrides: Any) -> EncounterIn:
    data: dict[str, Any] = {
        "source_system": "T-RMYY",
        "source_id": source_id,
        "patient": {"id_number": id_number},
        "institution_code": "T-RMYY",
        "encounter_class": "outpatient",
        "started_at": T0,
        "total_fen": 8650,
        "diagnoses": [{"code": "I10.x00", "name": "原发性高血压", "rank": 1},
                      {"code": "E11.900", "rank": 2}],
    }  # fmt: skip
    data.update(overrides)
    return EncounterIn.model_validate(data)


def count(db: Session, model: Any) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_a_batch_is_created_once_and_reingesting_it_changes_nothing(
    db: Session, city: City
) -> None:
    add_residents(db, city)
    batch = [encounter("MZ1"), encounter("MZ2", LI, procedures=[{"code": "47.0901", "grade": 3}])]
    first = ingest_batch(db, Actor.system(), batch)
    assert first.ok and (first.created, first.updated, first.unchanged) == (2, 0, 0)
    second = ingest_batch(db, Actor.system(), batch)
    assert second.ok and (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert count(db, Encounter) == 2 and count(db, Diagnosis) == 4 and count(db, Procedure) == 1
    row = db.scalars(select(Encounter).where(Encounter.source_id == "MZ1")).one()
    assert row.group_id == city.group_id and row.institution_id == city.lead_id
    assert row.started_at == T0


def test_a_changed_encounter_is_updated_and_its_diagnoses_follow(db: Session, city: City) -> None:
    add_residents(db, city)
    ingest_batch(db, Actor.system(), [encounter("MZ1"), encounter("MZ2")])
    changed = encounter("MZ1", total_fen=9900, diagnoses=[{"code": "J06.9", "rank": 1}])
    report = ingest_batch(db, Actor.system(), [changed, encounter("MZ2")])
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    row = db.scalars(select(Encounter).where(Encounter.source_id == "MZ1")).one()
    assert row.total_fen == 9900
    codes = db.scalars(select(Diagnosis.code).where(Diagnosis.encounter_id == row.id)).all()
    assert codes == ["J06.9"]
    assert count(db, Encounter) == 2
    # and the same batch again changes nothing
    again = ingest_batch(db, Actor.system(), [changed, encounter("MZ2")])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def child_rows(db: Session, model: Any, parent: Any, parent_id: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(select(model.id, model.code).where(parent == parent_id))]


def test_an_update_keeps_the_ids_of_children_still_sent(db: Session, city: City) -> None:
    add_residents(db, city)
    procs = [{"code": "47.0901", "grade": 3}, {"code": "54.5100", "grade": 2}]
    ingest_batch(db, Actor.system(), [encounter("ZY1", procedures=procs)])
    row = db.scalars(select(Encounter).where(Encounter.source_id == "ZY1")).one()
    (d1, _), (d2, _) = child_rows(db, Diagnosis, Diagnosis.encounter_id, row.id)
    (p1, _), (p2, _) = child_rows(db, Procedure, Procedure.encounter_id, row.id)
    # rank 2 recoded, rank 3 added; the second procedure dropped
    changed = encounter(
        "ZY1",
        diagnoses=[{"code": "I10.x00", "name": "原发性高血压", "rank": 1},
                   {"code": "E11.200", "rank": 2}, {"code": "N18.900", "rank": 3}],
        procedures=procs[:1],
    )  # fmt: skip
    report = ingest_batch(db, Actor.system(), [changed])
    assert report.updated == 1
    diagnoses = child_rows(db, Diagnosis, Diagnosis.encounter_id, row.id)
    assert diagnoses[:2] == [(d1, "I10.X00"), (d2, "E11.200")]
    assert diagnoses[2][1] == "N18.900" and diagnoses[2][0] not in (d1, d2)
    assert child_rows(db, Procedure, Procedure.encounter_id, row.id) == [(p1, "47.0901")]
    assert db.get(Procedure, p2) is None
    assert ingest_batch(db, Actor.system(), [changed]).unchanged == 1


def test_a_changed_prescription_keeps_its_item_ids(db: Session, city: City) -> None:
    add_residents(db, city)
    items = [
        {"drug_name": "氨氯地平片", "dose": "5mg"},
        {"drug_name": "二甲双胍片", "dose": "0.5g"},
    ]
    rx = {"source_system": "T-RMYY", "patient": {"id_number": ZHANG}, "prescribed_at": T0}
    ingest_batch(db, Actor.system(), [PrescriptionIn(source_id="CF1", items=items, **rx)])
    before = db.scalars(select(PrescriptionItem.id).order_by(PrescriptionItem.id)).all()
    items[1]["dose"] = "0.85g"
    ingest_batch(db, Actor.system(), [PrescriptionIn(source_id="CF1", items=items, **rx)])
    after = db.execute(
        select(PrescriptionItem.id, PrescriptionItem.dose).order_by(PrescriptionItem.id)
    ).all()
    assert [tuple(r) for r in after] == [(before[0], "5mg"), (before[1], "0.85g")]


def test_any_error_writes_nothing_and_every_problem_is_named(db: Session, city: City) -> None:
    add_residents(db, city)
    bad_id = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    batch = [
        encounter("MZ1"),
        encounter("MZ2", institution_code="NOPE"),
        encounter("MZ3", diagnoses=[{"code": "XYZ", "rank": 1}]),
        encounter("MZ4", bad_id),
        encounter("MZ5", NEWCOMER),  # unknown and no name to register with
        encounter("MZ1"),
    ]
    report = ingest_batch(db, Actor.system(), batch)
    assert not report.ok
    problems = {(e.index, e.field) for e in report.errors}
    assert problems == {
        (1, "institution_code"),
        (2, "diagnoses.0.code"),
        (3, "patient.id_number"),
        (4, "patient.id_number"),
        (5, "source_id"),
    }
    assert any("居民不存在" in e.problem for e in report.errors)
    assert count(db, Encounter) == 0


def test_a_missing_resident_with_a_name_is_registered(db: Session, city: City) -> None:
    add_residents(db, city)
    rec = encounter("MZ9", patient={"id_number": NEWCOMER, "name": "周小北", "sex": "male"})
    report = ingest_batch(db, Actor.system(), [rec])
    assert report.ok and report.residents_registered == 1 and report.created == 1
    assert db.scalar(select(Resident.name).where(Resident.id_number == NEWCOMER)) == "周小北"
    other = make_id_number("371311", date(2001, 6, 2), 35)  # odd sequence: male
    wrong_sex = encounter("MZ8", patient={"id_number": other, "name": "周小南", "sex": "female"})
    report = ingest_batch(db, Actor.system(), [wrong_sex])
    assert [e.field for e in report.errors] == ["patient.sex"]


def test_results_and_prescriptions_link_to_their_encounter(db: Session, city: City) -> None:
    add_residents(db, city)
    result = ResultIn(
        source_system="T-RMYY", source_id="JY1", patient={"id_number": ZHANG},  # type: ignore[arg-type]
        encounter_source_id="MZ1", institution_code="T-RMYY", category="lab", item_code="GLU",
        item_name="空腹血糖", value_num=7.8, unit="mmol/L", ref_low=3.9, ref_high=6.1,
        abnormal_flag="H", observed_at=T0 + timedelta(hours=1),
    )  # fmt: skip
    rx = PrescriptionIn(
        source_system="T-RMYY", source_id="CF1", patient={"id_number": ZHANG},  # type: ignore[arg-type]
        encounter_source_id="MZ1", institution_code="T-RMYY", prescribed_at=T0,
        items=[{"drug_name": "苯磺酸氨氯地平片", "days_supplied": 28, "cost_fen": 1568},  # type: ignore[list-item]
               {"drug_name": "盐酸二甲双胍片", "days_supplied": 28, "quantity": 84.0}],  # type: ignore[list-item]
    )  # fmt: skip
    report = ingest_batch(db, Actor.system(), [encounter("MZ1"), result, rx])
    assert report.ok and report.created == 3
    enc_id = db.scalar(select(Encounter.id).where(Encounter.source_id == "MZ1"))
    assert db.scalar(select(Result.encounter_id)) == enc_id
    assert count(db, PrescriptionItem) == 2
    again = ingest_batch(db, Actor.system(), [result, rx])
    assert again.unchanged == 2
    fewer = rx.model_copy(update={"items": rx.items[:1]})
    assert ingest_batch(db, Actor.system(), [fewer]).updated == 1
    assert count(db, PrescriptionItem) == 1
    orphan = result.model_copy(update={"source_id": "JY2", "encounter_source_id": "NOPE"})
    report = ingest_batch(db, Actor.system(), [orphan])
    assert [e.field for e in report.errors] == ["encounter_source_id"]


def test_one_audit_entry_per_resident_and_the_chain_still_verifies(db: Session, city: City) -> None:
    ids = add_residents(db, city)
    before = count(db, AuditEntry)
    batch = [encounter("MZ1"), encounter("MZ2"), encounter("MZ3", LI)]
    ingest_batch(db, Actor.system("import"), batch)
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "import")).all()
    assert count(db, AuditEntry) == before + 2
    assert sorted(e.resident_id for e in entries if e.resident_id is not None) == sorted(
        ids.values()
    )
    assert all(e.resource == "Encounter" for e in entries)
    ingest_batch(db, Actor.system("import"), batch)  # unchanged: nothing written, no entry
    assert count(db, AuditEntry) == before + 2
    assert audit.verify(db).ok


def test_bulk_written_rows_read_back_exactly_as_ingested(db: Session, city: City) -> None:
    """New rows are written with the driver (COPY / raw executemany), bypassing SQLAlchemy's
    type processing: they must read back through the ORM as if written by it."""
    add_residents(db, city)
    later = T0 + timedelta(days=3, microseconds=250)
    batch = [
        encounter(
            "ZY9",
            encounter_class="inpatient",
            started_at=T0,
            ended_at=later,
            drg_weight=1.23456,
            tcm=True,
            procedures=[{"code": "47.0901", "grade": 3, "performed_at": later}],
        )
    ]
    assert ingest_batch(db, Actor.system(), batch).created == 1
    db.expire_all()
    row = db.scalars(select(Encounter).where(Encounter.source_id == "ZY9")).one()
    assert (row.started_at, row.ended_at) == (T0, later)
    assert row.drg_weight == 1.2346 and row.tcm is True and row.updated_at is not None
    proc = db.scalars(select(Procedure).where(Procedure.encounter_id == row.id)).one()
    assert proc.performed_at == later and proc.grade == 3 and proc.minimally_invasive is False
    ranks = db.scalars(select(Diagnosis.rank).where(Diagnosis.encounter_id == row.id)).all()
    assert sorted(ranks) == [1, 2]
    again = ingest_batch(db, Actor.system(), batch)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
