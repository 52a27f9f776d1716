"""One longitudinal record per resident across every member of the group: encounters, results
and prescriptions merged newest first, and the vital-sign series drawn as charts.

Seeds: 001 §三(三)2 "2024年底实现紧密型城市医疗集团内部检查检验结果在线调阅、互认共享"; 000 §三(三)5
and 004 §五(二)4 (电子健康档案和电子病历连续记录). Every read goes through the access check, which
writes the audit entry (DESIGN §8).

Query plan: for a page of `limit` entries at `offset`, each of the three tables gives its newest
`offset + limit` rows through its (resident_id, time) index; the three lists are merged in
Python and cut to the page. The children of the page's rows (diagnoses, procedures,
prescription items) and the names of their institutions and departments are then loaded with
one query each: a page costs a fixed handful of queries whatever its size (no N+1)."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI
from caregrid.core.errors import Invalid
from caregrid.record.models import (
    Diagnosis,
    Encounter,
    Prescription,
    PrescriptionItem,
    Procedure,
    Result,
)
from caregrid.record.schemas import (
    CATEGORY_LABELS,
    DISPOSITION_LABELS,
    ENCOUNTER_CLASS_LABELS,
    ENTRY_TYPES,
    Costs,
    DiagnosisRead,
    EncounterDetail,
    PrescriptionDetail,
    PrescriptionItemRead,
    ProcedureRead,
    ResultDetail,
    SeriesPoint,
    Timeline,
    TimelineEntry,
    VitalSeries,
)
from caregrid.registry import service as registry

MAX_LIMIT = 200
MAX_WINDOW = 10_000  # offset + limit: deeper pages should narrow the period instead

# The item codes that feed each chart: LOINC first, then the local codes members' systems use.
# 8480-6 收缩压 / 8462-4 舒张压 (mmHg); 1558-6 空腹血糖 (mmol/L); 4548-4 糖化血红蛋白 HbA1c (%).
VITAL_CODES: dict[str, tuple[str, ...]] = {
    "sbp": ("8480-6", "SBP"),
    "dbp": ("8462-4", "DBP"),
    "fpg": ("1558-6", "FPG", "GLU"),
    "hba1c": ("4548-4", "HBA1C"),
}
# Target lines on the charts: hypertension control < 140/90 mmHg, diabetes fasting glucose
# < 7.0 mmol/L and HbA1c < 7 % (国家基层高血压/糖尿病防治管理指南).
VITAL_TARGETS: dict[str, float] = {"sbp": 140.0, "dbp": 90.0, "fpg": 7.0, "hba1c": 7.0}


def yuan(fen: int) -> str:
    """Integer fen as 元 with two decimals and thousands separators: 123456 -> "1,234.56"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def as_aware(value: datetime | None) -> datetime | None:
    """A time given without a zone is read as China time (what people type)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=SHANGHAI)


def resident_timeline(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    types: Iterable[str] | None = None,
    institution_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Timeline:
    """The resident's record across all members, newest first (encounters, results,
    prescriptions), after the access check (audited as a read of "Timeline"). Encounters
    outside the group show the external institution's name."""
    registry.get_resident(session, actor, resident_id, resource="Timeline")
    since, until = as_aware(since), as_aware(until)
    wanted = tuple(dict.fromkeys(types)) if types else ENTRY_TYPES
    unknown = [t for t in wanted if t not in ENTRY_TYPES]
    if unknown:
        raise Invalid(
            f"未知的记录类型：{'、'.join(unknown)}（可选 encounter、result、prescription）",
            field="type",
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"每页条数须在 1 到 {MAX_LIMIT} 之间", field="limit")
    if offset < 0 or offset + limit > MAX_WINDOW:
        raise Invalid(f"最多可向前翻阅 {MAX_WINDOW} 条，请缩小时间范围", field="offset")
    if since is not None and until is not None and until <= since:
        raise Invalid("结束时间须晚于开始时间", field="until")
    window = offset + limit

    # The filters of each wanted table; the three counts come back in one statement and each
    # table's newest `window` rows in one more (all through the (resident_id, time) indexes).
    sources: dict[str, tuple[Any, Any, Any]] = {
        "encounter": (Encounter, Encounter.started_at, Encounter.institution_id),
        "result": (Result, Result.observed_at, Result.institution_id),
        "prescription": (Prescription, Prescription.prescribed_at, Prescription.institution_id),
    }
    filters: dict[str, list[Any]] = {}
    for name in ENTRY_TYPES:
        if name not in wanted:
            continue
        model, at, inst = sources[name]
        where: list[Any] = [model.resident_id == resident_id]
        if institution_id is not None:
            where.append(inst == institution_id)
        if since is not None:
            where.append(at >= since)
        if until is not None:
            where.append(at < until)
        filters[name] = where
    totals = session.execute(
        select(
            *(
                select(func.count())
                .select_from(sources[name][0])
                .where(*where)
                .scalar_subquery()
                .label(name)
                for name, where in filters.items()
            )
        )
    ).one()
    counts: dict[str, int] = {name: int(n or 0) for name, n in zip(filters, totals, strict=True)}

    encounters: Sequence[Encounter] = []
    results: Sequence[Result] = []
    prescriptions: Sequence[Prescription] = []
    if "encounter" in filters:
        encounters = session.scalars(
            select(Encounter)
            .where(*filters["encounter"])
            .order_by(Encounter.started_at.desc(), Encounter.id.desc())
            .limit(window)
        ).all()
    if "result" in filters:
        results = session.scalars(
            select(Result)
            .where(*filters["result"])
            .order_by(Result.observed_at.desc(), Result.id.desc())
            .limit(window)
        ).all()
    if "prescription" in filters:
        prescriptions = session.scalars(
            select(Prescription)
            .where(*filters["prescription"])
            .order_by(Prescription.prescribed_at.desc(), Prescription.id.desc())
            .limit(window)
        ).all()

    # Newest first; at the same instant an encounter precedes its results and prescriptions.
    order = {"encounter": 0, "result": 1, "prescription": 2}
    merged = heapq.merge(
        (("encounter", e.started_at, e.id, e) for e in encounters),
        (("result", r.observed_at, r.id, r) for r in results),
        (("prescription", p.prescribed_at, p.id, p) for p in prescriptions),
        key=lambda row: (-row[1].timestamp(), order[row[0]], -row[2]),
    )
    page: list[tuple[str, datetime, int, Any]] = list(merged)[offset:window]

    page_encounters = [row[3] for row in page if row[0] == "encounter"]
    page_prescriptions = [row[3] for row in page if row[0] == "prescription"]
    enc_ids = [e.id for e in page_encounters]
    diagnoses = _by_parent(
        session.scalars(
            select(Diagnosis).where(Diagnosis.encounter_id.in_(enc_ids)).order_by(Diagnosis.rank)
        ).all()
        if enc_ids
        else [],
        "encounter_id",
    )
    procedures = _by_parent(
        session.scalars(
            select(Procedure).where(Procedure.encounter_id.in_(enc_ids)).order_by(Procedure.id)
        ).all()
        if enc_ids
        else [],
        "encounter_id",
    )
    rx_ids = [p.id for p in page_prescriptions]
    items = _by_parent(
        session.scalars(
            select(PrescriptionItem)
            .where(PrescriptionItem.prescription_id.in_(rx_ids))
            .order_by(PrescriptionItem.id)
        ).all()
        if rx_ids
        else [],
        "prescription_id",
    )
    institution_names = registry.institution_names(
        session, {getattr(row[3], "institution_id", None) for row in page}
    )
    departments = registry.department_names(session, {e.department_id for e in page_encounters})

    entries: list[TimelineEntry] = []
    for kind, _at, _id, row in page:
        if kind == "encounter":
            entries.append(
                _encounter_entry(
                    row, institution_names, departments, diagnoses[row.id], procedures[row.id]
                )
            )
        elif kind == "result":
            entries.append(_result_entry(row, institution_names))
        else:
            entries.append(_prescription_entry(row, institution_names, items[row.id]))
    return Timeline(
        resident_id=resident_id,
        items=entries,
        total=sum(counts.values()),
        counts=counts,
        limit=limit,
        offset=offset,
    )


def _by_parent(rows: Sequence[Any], key: str) -> defaultdict[int, list[Any]]:
    grouped: defaultdict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


def _encounter_entry(
    e: Encounter,
    names: dict[int, str],
    departments: dict[int, str],
    diagnoses: list[Diagnosis],
    procedures: list[Procedure],
) -> TimelineEntry:
    place = names.get(e.institution_id) if e.institution_id else e.external_institution
    class_label = ENCOUNTER_CLASS_LABELS.get(e.encounter_class, e.encounter_class)
    primary = next((d for d in diagnoses if d.rank == 1), diagnoses[0] if diagnoses else None)
    title = class_label + (f"：{primary.name or primary.code}" if primary else "")
    return TimelineEntry(
        type="encounter",
        id=e.id,
        at=e.started_at,
        institution_id=e.institution_id,
        institution_name=place,
        title=title,
        encounter=EncounterDetail(
            encounter_class=e.encounter_class,
            class_label=class_label,
            area_scope=e.area_scope,
            external_institution=e.external_institution,
            department=departments.get(e.department_id) if e.department_id else None,
            ended_at=e.ended_at,
            disposition=e.disposition,
            disposition_label=DISPOSITION_LABELS.get(e.disposition, e.disposition)
            if e.disposition
            else None,
            drg_code=e.drg_code,
            drg_weight=e.drg_weight,
            tcm=e.tcm,
            diagnoses=[
                DiagnosisRead(code=d.code, name=d.name, rank=d.rank, primary=d.rank == 1)
                for d in sorted(diagnoses, key=lambda d: d.rank)
            ],
            procedures=[
                ProcedureRead(
                    code=p.code,
                    name=p.name,
                    grade=p.grade,
                    minimally_invasive=p.minimally_invasive,
                    performed_at=p.performed_at,
                )
                for p in procedures
            ],
            costs=Costs(
                total_fen=e.total_fen,
                drug_fen=e.drug_fen,
                consumable_fen=e.consumable_fen,
                exam_fen=e.exam_fen,
                treatment_fen=e.treatment_fen,
                insurance_fen=e.insurance_fen,
                out_of_catalogue_fen=e.out_of_catalogue_fen,
                self_pay_fen=e.self_pay_fen,
                total_yuan=yuan(e.total_fen),
            ),
        ),
    )


def _result_entry(r: Result, names: dict[int, str]) -> TimelineEntry:
    return TimelineEntry(
        type="result",
        id=r.id,
        at=r.observed_at,
        institution_id=r.institution_id,
        institution_name=names.get(r.institution_id) if r.institution_id else None,
        title=r.item_name,
        result=ResultDetail(
            category=r.category,
            category_label=CATEGORY_LABELS.get(r.category, r.category),
            item_code=r.item_code,
            item_name=r.item_name,
            value_num=r.value_num,
            value_text=r.value_text,
            unit=r.unit,
            ref_low=r.ref_low,
            ref_high=r.ref_high,
            abnormal_flag=r.abnormal_flag,
            findings=r.findings,
            conclusion=r.conclusion,
            eqa_passed=r.eqa_passed,
        ),
    )


def _prescription_entry(
    p: Prescription, names: dict[int, str], items: list[PrescriptionItem]
) -> TimelineEntry:
    days = [i.days_supplied for i in items if i.days_supplied]
    title = "处方：" + "、".join(i.drug_name for i in items[:3]) + ("等" if len(items) > 3 else "")
    return TimelineEntry(
        type="prescription",
        id=p.id,
        at=p.prescribed_at,
        institution_id=p.institution_id,
        institution_name=names.get(p.institution_id) if p.institution_id else None,
        title=title if items else "处方",
        prescription=PrescriptionDetail(
            items=[
                PrescriptionItemRead(
                    drug_code=i.drug_code,
                    drug_name=i.drug_name,
                    dose=i.dose,
                    frequency=i.frequency,
                    days_supplied=i.days_supplied,
                    quantity=i.quantity,
                )
                for i in items
            ],
            days_supplied=max(days) if days else None,
        ),
    )


def vital_series(session: Session, actor: Actor, resident_id: int) -> VitalSeries:
    """Blood pressure, fasting glucose and HbA1c over time (oldest first) for the charts, after
    the access check (audited as a read of "VitalSigns"). One indexed query on
    (resident_id, item_code, observed_at); the codes are those of `VITAL_CODES`."""
    registry.get_resident(session, actor, resident_id, resource="VitalSigns")
    series_of = {code: series for series, codes in VITAL_CODES.items() for code in codes}
    rows = session.execute(
        select(Result.item_code, Result.observed_at, Result.value_num, Result.institution_id)
        .where(
            Result.resident_id == resident_id,
            Result.item_code.in_(list(series_of)),
            Result.value_num.is_not(None),
        )
        .order_by(Result.observed_at, Result.id)
    ).all()
    points: dict[str, list[SeriesPoint]] = {name: [] for name in VITAL_CODES}
    for code, at, value, inst in rows:
        points[series_of[code]].append(SeriesPoint(at=at, value=value, institution_id=inst))
    return VitalSeries(resident_id=resident_id, targets=dict(VITAL_TARGETS), **points)
