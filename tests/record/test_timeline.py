"""The resident's longitudinal record across members (001 §三(三)2 在线调阅): one merged,
newest-first timeline behind the access check, and the vital-sign series, on SQLite and
PostgreSQL. Data is inserted directly with the models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from caregrid.audit.models import AuditEntry
from caregrid.core.actor import Actor
from caregrid.core.errors import Invalid, NotFound
from caregrid.record.models import (
    Diagnosis,
    Encounter,
    Prescription,
    PrescriptionItem,
    Procedure,
    Result,
)
from caregrid.record.timeline import resident_timeline, vital_series, yuan
from caregrid.registry import service as registry
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Department
from caregrid.registry.schemas import ResidentCreate

NOW = datetime(2025, 6, 15, 2, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@dataclass
class Record:
    resident_id: int
    id_number: str
    township_visit: int
    lead_stay: int
    external_visit: int
    cbc_recent: int
    cbc_expired: int
    cbc_other_group: int
    fpg_no_eqa: int
    hba1c: int
    ct: int
    prescription: int


def build_record(db: Session, city: object, *, sequence: int = 31) -> Record:
    """A resident of the township centre seen at both members (and once outside the group),
    with results of several items and dates."""
    c = city  # the conftest City
    number = make_id_number("371302", date(1956, 8, 9), sequence)
    resident, _ = registry.register_resident(
        db,
        Actor.system(),
        ResidentCreate(
            id_number=number,
            name="刘桂兰",
            phone="13805390001",
            grid_id=c.grid_id,  # type: ignore[attr-defined]
            home_institution_id=c.township_id,  # type: ignore[attr-defined]
        ),
    )
    rid = resident.id
    town, lead, other = c.township_id, c.lead_id, c.other_lead_id  # type: ignore[attr-defined]
    group, other_group = c.group_id, c.other_group_id  # type: ignore[attr-defined]
    dept = db.scalar(select(Department.id).where(Department.institution_id == town))
    visit = Encounter(
        resident_id=rid,
        institution_id=town,
        group_id=group,
        department_id=dept,
        encounter_class="outpatient",
        started_at=days_ago(5),
        total_fen=12345,
        drug_fen=8000,
        insurance_fen=9000,
        self_pay_fen=3345,
    )
    stay = Encounter(
        resident_id=rid,
        institution_id=lead,
        group_id=group,
        encounter_class="inpatient",
        started_at=days_ago(100),
        ended_at=days_ago(93),
        disposition="transfer_down",
        drg_code="FM19",
        drg_weight=1.52,
        total_fen=3_456_700,
    )
    external = Encounter(
        resident_id=rid,
        institution_id=None,
        group_id=None,
        encounter_class="outpatient",
        area_scope="out_of_city",
        external_institution="山东第一医科大学附属省立医院",
        started_at=days_ago(200),
        total_fen=50000,
    )
    db.add_all([visit, stay, external])
    db.flush()
    db.add_all(
        [
            Diagnosis(
                encounter_id=visit.id, resident_id=rid, code="E11.9", name="2型糖尿病", rank=2
            ),
            Diagnosis(
                encounter_id=visit.id, resident_id=rid, code="I10", name="原发性高血压", rank=1
            ),
            Diagnosis(encounter_id=stay.id, resident_id=rid, code="I25.1", name="冠心病", rank=1),
            Procedure(
                encounter_id=stay.id,
                resident_id=rid,
                code="36.0601",
                name="冠状动脉支架置入术",
                grade=4,
                minimally_invasive=True,
                performed_at=days_ago(98),
            ),
        ]
    )

    def result(**kw: object) -> Result:
        row = Result(resident_id=rid, **kw)
        db.add(row)
        return row

    cbc_recent = result(
        institution_id=lead, group_id=group, category="lab", item_code="CBC", item_name="血常规",
        value_text="WBC 6.1, HGB 132, PLT 210", observed_at=days_ago(5), eqa_passed=True,
        cost_fen=2000,
    )  # fmt: skip
    cbc_expired = result(
        institution_id=town, group_id=group, category="lab", item_code="CBC", item_name="血常规",
        value_text="WBC 5.8", observed_at=days_ago(20), eqa_passed=True,
    )  # fmt: skip
    cbc_other = result(
        institution_id=other, group_id=other_group, category="lab", item_code="CBC",
        item_name="血常规", value_text="WBC 6.0", observed_at=days_ago(1), eqa_passed=True,
    )  # fmt: skip
    fpg = result(
        institution_id=town, group_id=group, category="lab", item_code="1558-6",
        item_name="空腹血糖", value_num=7.8, unit="mmol/L", ref_low=3.9, ref_high=6.1,
        abnormal_flag="H", observed_at=days_ago(2), eqa_passed=None,
    )  # fmt: skip
    result(
        institution_id=town, group_id=group, category="lab", item_code="FPG",
        item_name="空腹血糖", value_num=8.4, unit="mmol/L", abnormal_flag="H",
        observed_at=days_ago(60), eqa_passed=True,
    )  # fmt: skip
    hba1c = result(
        institution_id=lead, group_id=group, category="lab", item_code="4548-4",
        item_name="糖化血红蛋白", value_num=7.4, unit="%", ref_high=6.0, abnormal_flag="H",
        observed_at=days_ago(30), eqa_passed=True,
    )  # fmt: skip
    ct = result(
        institution_id=lead, group_id=group, category="imaging", item_code="CT",
        item_name="胸部CT平扫", findings="右肺上叶见约 6mm 磨玻璃结节，边界清。",
        conclusion="右肺上叶磨玻璃结节，建议随访", observed_at=days_ago(10), eqa_passed=None,
    )  # fmt: skip
    for n, (sbp, dbp) in enumerate([(162, 98), (150, 92), (138, 86)]):
        at = days_ago(90 - n * 40)
        result(
            institution_id=town, group_id=group, category="vital", item_code="8480-6",
            item_name="收缩压", value_num=sbp, unit="mmHg", observed_at=at,
        )  # fmt: skip
        result(
            institution_id=town, group_id=group, category="vital", item_code="DBP",
            item_name="舒张压", value_num=dbp, unit="mmHg", observed_at=at,
        )  # fmt: skip
    rx = Prescription(
        resident_id=rid, encounter_id=None, institution_id=town, group_id=group,
        prescribed_at=days_ago(5) + timedelta(minutes=20),
    )  # fmt: skip
    db.add(rx)
    db.flush()
    db.add_all(
        [
            PrescriptionItem(prescription_id=rx.id, drug_name="氨氯地平片", dose="5mg",
                             frequency="qd", days_supplied=28),
            PrescriptionItem(prescription_id=rx.id, drug_name="二甲双胍片", dose="0.5g",
                             frequency="tid", days_supplied=56),
        ]
    )  # fmt: skip
    db.flush()
    return Record(
        rid, number, visit.id, stay.id, external.id, cbc_recent.id, cbc_expired.id,
        cbc_other.id, fpg.id, hba1c.id, ct.id, rx.id,
    )  # fmt: skip


@pytest.fixture
def record(db: Session, city: object) -> Record:
    built = build_record(db, city)
    db.commit()
    return built


def test_timeline_merges_every_member_newest_first(db: Session, city, record: Record) -> None:
    tl = resident_timeline(db, city.users["gp_wang"], record.resident_id, limit=200)
    times = [e.at for e in tl.items]
    assert times == sorted(times, reverse=True)
    assert tl.counts == {"encounter": 3, "result": 13, "prescription": 1}
    assert tl.total == 17 and len(tl.items) == 17
    kinds = {(e.type, e.id) for e in tl.items}
    assert ("encounter", record.lead_stay) in kinds and ("result", record.ct) in kinds
    # The prescription written 20 minutes after the township visit comes before it; at the same
    # instant the visit precedes its result.
    assert [(e.type, e.id) for e in tl.items[:5]] == [
        ("result", record.cbc_other_group),
        ("result", record.fpg_no_eqa),
        ("prescription", record.prescription),
        ("encounter", record.township_visit),
        ("result", record.cbc_recent),
    ]


def test_encounters_carry_diagnoses_procedures_costs_and_places(
    db: Session, city, record: Record
) -> None:
    tl = resident_timeline(db, city.users["gp_wang"], record.resident_id, types=["encounter"])
    by_id = {e.id: e for e in tl.items}
    visit = by_id[record.township_visit]
    assert visit.institution_name == "金雀山街道社区卫生服务中心"
    assert visit.title == "门诊：原发性高血压"
    assert visit.encounter is not None
    assert [d.code for d in visit.encounter.diagnoses] == ["I10", "E11.9"]
    assert visit.encounter.diagnoses[0].primary
    assert visit.encounter.department == "全科医疗科"
    assert visit.encounter.costs.total_yuan == "123.45"
    stay = by_id[record.lead_stay].encounter
    assert stay is not None
    assert stay.procedures[0].grade == 4 and stay.disposition_label == "下转"
    assert stay.costs.total_yuan == "34,567.00"
    external = by_id[record.external_visit]
    assert external.institution_id is None
    assert external.institution_name == "山东第一医科大学附属省立医院"


def test_results_and_prescriptions_show_their_details(db: Session, city, record: Record) -> None:
    tl = resident_timeline(
        db, city.users["gp_wang"], record.resident_id, types=["result", "prescription"]
    )
    by_key = {(e.type, e.id): e for e in tl.items}
    fpg = by_key[("result", record.fpg_no_eqa)].result
    assert fpg is not None and (fpg.value_num, fpg.unit, fpg.abnormal_flag) == (7.8, "mmol/L", "H")
    assert fpg.ref_low == 3.9 and fpg.ref_high == 6.1
    ct = by_key[("result", record.ct)].result
    assert ct is not None and ct.findings and ct.conclusion  # the record shows both
    rx = by_key[("prescription", record.prescription)]
    assert rx.prescription is not None
    assert [i.drug_name for i in rx.prescription.items] == ["氨氯地平片", "二甲双胍片"]
    assert rx.prescription.days_supplied == 56


def test_filters_by_type_institution_and_period(db: Session, city, record: Record) -> None:
    gp = city.users["gp_wang"]
    only_lead = resident_timeline(db, gp, record.resident_id, institution_id=city.lead_id)
    assert only_lead.items and all(e.institution_id == city.lead_id for e in only_lead.items)
    recent = resident_timeline(db, gp, record.resident_id, since=days_ago(7), until=NOW)
    assert recent.items and all(e.at >= days_ago(7) for e in recent.items)
    assert {e.type for e in recent.items} == {"encounter", "result", "prescription"}
    prescriptions = resident_timeline(db, gp, record.resident_id, types=["prescription"])
    assert [e.type for e in prescriptions.items] == ["prescription"]
    assert prescriptions.counts == {"prescription": 1}


def test_pages_do_not_overlap(db: Session, city, record: Record) -> None:
    gp = city.users["gp_wang"]
    whole = resident_timeline(db, gp, record.resident_id, limit=200)
    pages = [
        resident_timeline(db, gp, record.resident_id, limit=5, offset=o).items
        for o in range(0, 20, 5)
    ]
    joined = [(e.type, e.id) for p in pages for e in p]
    assert joined == [(e.type, e.id) for e in whole.items]


def test_a_page_costs_a_fixed_number_of_queries(db: Session, city, record: Record) -> None:
    for n in range(30):  # many more encounters: the number of queries must not grow
        db.add(
            Encounter(
                resident_id=record.resident_id, institution_id=city.township_id,
                group_id=city.group_id, encounter_class="outpatient", started_at=days_ago(300 + n),
            )
        )  # fmt: skip
    db.flush()
    engine = db.get_bind()

    def queries_for(limit: int) -> int:
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            tl = resident_timeline(db, city.users["gp_wang"], record.resident_id, limit=limit)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(tl.items) == min(limit, 47)
        return len(statements)

    small, large = queries_for(10), queries_for(50)
    assert small == large  # no N+1: the access check and audit, then a handful per page
    assert large <= 20


def test_outsider_gets_not_found_and_the_denial_is_audited(
    db: Session, city, record: Record
) -> None:
    with pytest.raises(NotFound):
        resident_timeline(db, city.users["outsider_zhao"], record.resident_id)
    denied = db.scalars(
        select(AuditEntry).where(
            AuditEntry.resident_id == record.resident_id,
            AuditEntry.resource == "Timeline",
            AuditEntry.outcome == "denied",
        )
    ).all()
    assert len(denied) == 1
    with pytest.raises(NotFound):
        vital_series(db, city.users["outsider_zhao"], record.resident_id)


def test_reading_the_timeline_is_audited(db: Session, city, record: Record) -> None:
    resident_timeline(db, city.users["specialist_li"], record.resident_id)
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.resident_id == record.resident_id, AuditEntry.resource == "Timeline"
        )
    ).one()
    assert entry.outcome == "allowed" and entry.basis == "encounter"


def test_bad_filters_name_the_field(db: Session, city, record: Record) -> None:
    gp = city.users["gp_wang"]
    with pytest.raises(Invalid) as exc:
        resident_timeline(db, gp, record.resident_id, types=["visit"])
    assert exc.value.fields["field"] == "type"
    with pytest.raises(Invalid) as exc:
        resident_timeline(db, gp, record.resident_id, since=NOW, until=days_ago(1))
    assert exc.value.fields["field"] == "until"


def test_vital_series_for_the_charts(db: Session, city, record: Record) -> None:
    series = vital_series(db, city.users["gp_wang"], record.resident_id)
    assert [p.value for p in series.sbp] == [162, 150, 138]  # oldest first
    assert [p.value for p in series.dbp] == [98, 92, 86]
    assert [p.value for p in series.fpg] == [8.4, 7.8]  # "FPG" and LOINC 1558-6 together
    assert [p.value for p in series.hba1c] == [7.4]
    assert series.targets == {"sbp": 140.0, "dbp": 90.0, "fpg": 7.0, "hba1c": 7.0}


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (5, "0.05"), (12345, "123.45"), (123456789, "1,234,567.89")]
)
def test_yuan_formats_fen(fen: int, text: str) -> None:
    assert yuan(fen) == text
