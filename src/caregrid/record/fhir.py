"""FHIR R4 side of the shared record: ingestion of transaction / batch Bundles at
``POST /fhir/R4`` and search / read of what was ingested (Encounter, Condition, Observation,
DiagnosticReport). 电子健康档案和电子病历连续记录 (003 §二(四)12), 检查检验结果在线调阅、互认共享
(001 §三(三)2; 004 §五(二)4).

Reading goes through `registry.service.get_resident` (the access check, which also writes the
audit entry): a resident the caller has no care relationship with gives an empty searchset or
404, audited as denied (DESIGN §8). Mapping FHIR → records lives in `ingest/fhir_map.py`;
writing in `ingest/upsert.py`."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Body, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.errors import DomainError, Invalid, NotFound
from caregrid.core.fhir import (
    CODESYSTEM_BASE,
    FhirResponse,
    SearchParam,
    capability,
    reference_id,
    searchset,
    split_token,
)
from caregrid.core.http import DB, api_router
from caregrid.core.ids import MAX_ID
from caregrid.identity.access import load_for_resident
from caregrid.identity.deps import CurrentActor
from caregrid.record.ingest.fhir_map import (
    AREA_EXT,
    COST_EXT,
    COST_PARTS,
    DISPOSITION_SYSTEM,
    DRG_EXT,
    EQA_EXT,
    FIELD_PATHS,
    GRADE_EXT,
    ITEM_COST_EXT,
    MINIMALLY_INVASIVE_EXT,
    RANK_EXT,
    REPORT_PREFIX,
    SHANGHAI,
    SOURCE_SYSTEM_BASE,
    TCM_EXT,
    Context,
    MappedRecord,
    MapResult,
    map_bundle_entries,
)
from caregrid.record.ingest.fhir_map import (
    REPORT_CATEGORIES as REPORT_CATEGORIES_IN,
)
from caregrid.record.ingest.records import PatientRef, RecordError
from caregrid.record.ingest.upsert import ingest_batch
from caregrid.record.models import (
    Diagnosis,
    Encounter,
    Prescription,
    PrescriptionItem,
    Procedure,
    Result,
)
from caregrid.registry import service as registry
from caregrid.registry.schemas import ResidentCreate

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD9CM3 = "http://hl7.org/fhir/sid/icd-9-cm"
LOINC = "http://loinc.org"
LOCAL_ITEM_SYSTEM = f"{CODESYSTEM_BASE}/result-item"
DRUG_SYSTEM = f"{CODESYSTEM_BASE}/nhsa-drug"  # 国家医保药品编码
CLASS_OUT = {
    "outpatient": ("AMB", "门诊"),
    "emergency": ("EMER", "急诊"),
    "inpatient": ("IMP", "住院"),
}
REPORT_OUT = {
    "imaging": ("RAD", "影像"),
    "ecg": ("EC", "心电"),
    "pathology": ("PAT", "病理"),
    "ultrasound": ("RUS", "超声"),
    "lab": ("LAB", "检验"),
}
REPORT_CATEGORIES = ("imaging", "ecg", "pathology", "ultrasound")
TX_STATUS = {201: "201 Created", 200: "200 OK", 422: "422 Unprocessable Entity"}
MAX_COUNT = 100

Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)]
PageNo = Annotated[int, Query(alias="_page", ge=1, le=10_000)]
DateParams = Annotated[list[str] | None, Query(alias="date")]

_PATIENT = SearchParam("patient", "reference", "Patient/<id>（须有诊疗关系，否则为空）")
_DATE = SearchParam("date", "date", "时间，可带前缀 eq/ge/gt/le/lt，可重复")
capability("Encounter", ["read", "search-type"], [_PATIENT, _DATE])
capability(
    "Observation",
    ["read", "search-type"],
    [
        _PATIENT,
        SearchParam("code", "token", "检验/体征项目：system|code 或 code"),
        SearchParam("category", "token", "laboratory 或 vital-signs"),
        _DATE,
    ],
)
capability(
    "DiagnosticReport",
    ["read", "search-type"],
    [_PATIENT, SearchParam("category", "token", "RAD/EC/PAT/RUS/LAB"), _DATE],
)
capability(
    "Condition",
    ["read", "search-type"],
    [_PATIENT, SearchParam("code", "token", "ICD-10 编码")],
)
capability(
    "Procedure",
    ["read", "search-type"],
    [_PATIENT, SearchParam("code", "token", "ICD-9-CM-3 手术操作编码"), _DATE],
)
capability("MedicationRequest", ["read", "search-type"], [_PATIENT, _DATE])

_Row = TypeVar("_Row", Encounter, Diagnosis, Procedure, Result)


def _int_id(value: str) -> int:
    """An id from a path or reference; anything not a valid id matches nothing."""
    try:
        number = int(value)
    except ValueError:
        return -1
    return number if 0 < number <= MAX_ID else -1


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(SHANGHAI).isoformat() if value else None


def _identifier(source_system: str | None, source_id: str | None) -> list[dict[str, Any]]:
    if not source_system or not source_id:
        return []
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in source_system)
    system = f"{SOURCE_SYSTEM_BASE}/{safe}"
    return [{"system": system, "value": source_id}]


# --- rows → FHIR ------------------------------------------------------------------------------


def encounter_to_fhir(enc: Encounter, diagnoses: list[Diagnosis]) -> dict[str, Any]:
    code, display = CLASS_OUT[enc.encounter_class]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(enc.id),
        "identifier": _identifier(enc.source_system, enc.source_id),
        "status": "finished"
        if enc.ended_at or enc.encounter_class != "inpatient"
        else "in-progress",
        "class": {"system": ACT_CODE_SYSTEM, "code": code, "display": display},
        "subject": {"reference": f"Patient/{enc.resident_id}"},
        "period": {"start": _iso(enc.started_at)},
    }
    if enc.ended_at:
        resource["period"]["end"] = _iso(enc.ended_at)
    if enc.institution_id is not None:
        resource["serviceProvider"] = {"reference": f"Organization/{enc.institution_id}"}
    elif enc.external_institution:
        resource["serviceProvider"] = {"display": enc.external_institution}
    if enc.practitioner_id is not None:
        resource["participant"] = [
            {"individual": {"reference": f"Practitioner/{enc.practitioner_id}"}}
        ]
    if diagnoses:
        resource["diagnosis"] = [
            {"condition": {"reference": f"Condition/{d.id}"}, "rank": d.rank}
            for d in sorted(diagnoses, key=lambda d: d.rank)
        ]
    if enc.disposition:
        resource["hospitalization"] = {
            "dischargeDisposition": {
                "coding": [{"system": DISPOSITION_SYSTEM, "code": enc.disposition}]
            }
        }
    extensions: list[dict[str, Any]] = [{"url": AREA_EXT, "valueCode": enc.area_scope}]
    costs = [
        {"url": name, "valueInteger": getattr(enc, column)}
        for name, column in COST_PARTS.items()
        if getattr(enc, column)
    ]
    if costs:
        extensions.append({"url": COST_EXT, "extension": costs})
    if enc.drg_code:
        drg: list[dict[str, Any]] = [{"url": "code", "valueCode": enc.drg_code}]
        if enc.drg_weight is not None:
            drg.append({"url": "weight", "valueDecimal": enc.drg_weight})
        extensions.append({"url": DRG_EXT, "extension": drg})
    if enc.tcm:
        extensions.append({"url": TCM_EXT, "valueBoolean": True})
    resource["extension"] = extensions
    if not resource["identifier"]:
        del resource["identifier"]
    return resource


def condition_to_fhir(d: Diagnosis, enc: Encounter) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": ICD10, "code": d.code}
    if d.name:
        coding["display"] = d.name
    return {
        "resourceType": "Condition",
        "id": str(d.id),
        "extension": [{"url": RANK_EXT, "valueInteger": d.rank}],
        "category": [
            {
                "coding": [
                    {
                        "system": CONDITION_CATEGORY_SYSTEM,
                        "code": "encounter-diagnosis",
                        "display": "主要诊断" if d.rank == 1 else "其他诊断",
                    }
                ]
            }
        ],
        "code": {"coding": [coding], **({"text": d.name} if d.name else {})},
        "subject": {"reference": f"Patient/{d.resident_id}"},
        "encounter": {"reference": f"Encounter/{d.encounter_id}"},
        "recordedDate": _iso(enc.started_at),
    }


def procedure_to_fhir(p: Procedure) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": ICD9CM3, "code": p.code}
    if p.name:
        coding["display"] = p.name
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(p.id),
        "status": "completed",
        "code": {"coding": [coding], **({"text": p.name} if p.name else {})},
        "subject": {"reference": f"Patient/{p.resident_id}"},
        "encounter": {"reference": f"Encounter/{p.encounter_id}"},
    }
    if p.performed_at is not None:
        resource["performedDateTime"] = _iso(p.performed_at)
    extensions: list[dict[str, Any]] = []
    if p.grade is not None:
        extensions.append({"url": GRADE_EXT, "valueInteger": p.grade})
    if p.minimally_invasive:
        extensions.append({"url": MINIMALLY_INVASIVE_EXT, "valueBoolean": True})
    if extensions:
        resource["extension"] = extensions
    return resource


def medication_request_to_fhir(item: PrescriptionItem, rx: Prescription) -> dict[str, Any]:
    """One prescription item as a MedicationRequest; the items of one prescription share its
    `groupIdentifier` (the member's prescription number), as they were sent."""
    coding: dict[str, Any] = {"display": item.drug_name}
    if item.drug_code:
        coding = {"system": DRUG_SYSTEM, "code": item.drug_code, "display": item.drug_name}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": str(item.id),
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [coding], "text": item.drug_name},
        "subject": {"reference": f"Patient/{rx.resident_id}"},
        "authoredOn": _iso(rx.prescribed_at),
    }
    group = _identifier(rx.source_system, rx.source_id)
    if group:
        resource["groupIdentifier"] = group[0]
    if rx.encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{rx.encounter_id}"}
    if rx.institution_id is not None:
        resource["requester"] = {"reference": f"Organization/{rx.institution_id}"}
    dosage: dict[str, Any] = {}
    if item.dose:
        dosage["text"] = " ".join(x for x in (item.dose, item.frequency) if x)
    if item.frequency:
        dosage["timing"] = {"code": {"text": item.frequency}}
    if dosage:
        resource["dosageInstruction"] = [dosage]
    dispense: dict[str, Any] = {}
    if item.days_supplied is not None:
        dispense["expectedSupplyDuration"] = {
            "value": item.days_supplied,
            "unit": "天",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    if item.quantity is not None:
        dispense["quantity"] = {"value": item.quantity}
    if dispense:
        resource["dispenseRequest"] = dispense
    if item.cost_fen:
        resource["extension"] = [{"url": ITEM_COST_EXT, "valueInteger": item.cost_fen}]
    return resource


def _item_coding(r: Result) -> dict[str, Any]:
    # LOINC codes look like 8480-6; anything else is the member's local code.
    code = r.item_code
    is_loinc = "-" in code and code.replace("-", "").isdigit()
    return {
        "system": LOINC if is_loinc else LOCAL_ITEM_SYSTEM,
        "code": code,
        "display": r.item_name,
    }


def _is_report(r: Result) -> bool:
    return r.category in REPORT_CATEGORIES or (r.source_id or "").startswith(REPORT_PREFIX)


def observation_to_fhir(r: Result) -> dict[str, Any]:
    category = "vital-signs" if r.category == "vital" else "laboratory"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(r.id),
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY_SYSTEM, "code": category}]}],
        "code": {"coding": [_item_coding(r)], "text": r.item_name},
        "subject": {"reference": f"Patient/{r.resident_id}"},
        "effectiveDateTime": _iso(r.observed_at),
    }
    identifier = _identifier(r.source_system, r.source_id)
    if identifier:
        resource["identifier"] = identifier
    if r.encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{r.encounter_id}"}
    if r.institution_id is not None:
        resource["performer"] = [{"reference": f"Organization/{r.institution_id}"}]
    if r.value_num is not None:
        quantity: dict[str, Any] = {"value": r.value_num}
        if r.unit:
            quantity["unit"] = r.unit
        resource["valueQuantity"] = quantity
    elif r.value_text is not None:
        resource["valueString"] = r.value_text
    if r.abnormal_flag:
        resource["interpretation"] = [
            {"coding": [{"system": INTERPRETATION_SYSTEM, "code": r.abnormal_flag}]}
        ]
    if r.ref_low is not None or r.ref_high is not None:
        ref: dict[str, Any] = {}
        if r.ref_low is not None:
            ref["low"] = {"value": r.ref_low, **({"unit": r.unit} if r.unit else {})}
        if r.ref_high is not None:
            ref["high"] = {"value": r.ref_high, **({"unit": r.unit} if r.unit else {})}
        resource["referenceRange"] = [ref]
    if r.eqa_passed is not None:
        resource["extension"] = [{"url": EQA_EXT, "valueBoolean": r.eqa_passed}]
    return resource


def report_to_fhir(r: Result) -> dict[str, Any]:
    code, display = REPORT_OUT.get(r.category, ("OTH", "其他"))
    source_id = (r.source_id or "").removeprefix(REPORT_PREFIX)
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(r.id),
        "status": "final",
        "category": [{"coding": [{"system": V2_0074, "code": code, "display": display}]}],
        "code": {"coding": [_item_coding(r)], "text": r.item_name},
        "subject": {"reference": f"Patient/{r.resident_id}"},
        "effectiveDateTime": _iso(r.observed_at),
    }
    identifier = _identifier(r.source_system, source_id)
    if identifier:
        resource["identifier"] = identifier
    if r.encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{r.encounter_id}"}
    if r.institution_id is not None:
        resource["performer"] = [{"reference": f"Organization/{r.institution_id}"}]
    if r.conclusion:
        resource["conclusion"] = r.conclusion
    if r.findings:
        resource["presentedForm"] = [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "zh-CN",
                "data": base64.b64encode(r.findings.encode("utf-8")).decode("ascii"),
                "title": "检查所见",
            }
        ]
    return resource


# --- ingestion --------------------------------------------------------------------------------


def _issue(expression: str | None, problem: str, code: str = "invalid") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": problem}
    if expression:
        issue["expression"] = [expression]
    return issue


def _entry_path(index: int | None, path: str) -> str:
    base = f"Bundle.entry[{index}].resource" if index is not None else "Bundle"
    return f"{base}.{path}" if path else base


def _outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    unique: list[dict[str, Any]] = []
    for issue in issues:  # Observation components share their entry: report once
        if issue not in unique:
            unique.append(issue)
    return {"resourceType": "OperationOutcome", "issue": unique}


def _map_errors(errors: list[RecordError]) -> list[dict[str, Any]]:
    return [
        _issue(
            _entry_path(e.index, e.field),
            f"第 {e.index} 项：{e.problem}" if e.index is not None else e.problem,
        )
        for e in errors
    ]


def _ingest_error_issue(mapped: MappedRecord, error: RecordError) -> dict[str, Any]:
    """An error from `ingest_batch` (named by record field) → the entry and FHIRPath."""
    parts = error.field.split(".")
    position = mapped.positions[0]
    path = FIELD_PATHS.get(mapped.resource_type, {}).get(parts[0], "")
    if parts[0] == "patient":
        path = "subject"
    elif parts[0] in mapped.children and len(parts) > 1 and parts[1].isdigit():
        children = mapped.children[parts[0]]
        n = int(parts[1])
        if n < len(children):
            position = children[n]
            path = {"diagnoses": "code", "procedures": "code", "items": ""}.get(parts[0], "")
            if parts[0] == "items":
                path = "medicationCodeableConcept"
    return _issue(_entry_path(position, path), f"第 {position} 项：{error.problem}")


@dataclass
class _Outcome:
    status: int
    location: str | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)


_TABLES: dict[str, Any] = {
    "Encounter": Encounter,
    "Observation": Result,
    "DiagnosticReport": Result,
    "MedicationRequest": Prescription,
}


def _existing_ids(db: Session, records: list[MappedRecord]) -> dict[tuple[str, str, str], int]:
    """Ids of stored rows for the records' (table, source_system, source_id) keys."""
    found: dict[tuple[str, str, str], int] = {}
    by_table: dict[Any, set[tuple[str, str]]] = {}
    for m in records:
        by_table.setdefault(_TABLES[m.resource_type], set()).add(
            (m.record.source_system, m.record.source_id)
        )
    for model, keys in by_table.items():
        systems: dict[str, list[str]] = {}
        for system, sid in keys:
            systems.setdefault(system, []).append(sid)
        for system, ids in systems.items():
            for start in range(0, len(ids), 2000):
                rows = db.execute(
                    select(model.id, model.source_id).where(
                        model.source_system == system,
                        model.source_id.in_(ids[start : start + 2000]),
                    )
                )
                for rid, sid in rows:
                    found[(model.__tablename__, system, sid)] = rid
    return found


def _key(m: MappedRecord) -> tuple[str, str, str]:
    return (_TABLES[m.resource_type].__tablename__, m.record.source_system, m.record.source_id)


def _record_outcomes(
    db: Session, records: list[MappedRecord], before: dict[tuple[str, str, str], int]
) -> dict[int, _Outcome]:
    """201/200 and location for every entry of successfully written records."""
    after = _existing_ids(db, records)
    out: dict[int, _Outcome] = {}
    for m in records:
        key = _key(m)
        rid = after.get(key)
        status = 200 if key in before else 201
        main = m.positions[0]
        if m.resource_type in ("Observation", "DiagnosticReport"):
            previous = out.get(main)
            if previous is not None:  # Observation components: created if any was
                previous.status = max(previous.status, status)
                continue
            out[main] = _Outcome(status, f"{m.resource_type}/{rid}" if rid else None)
        elif m.resource_type == "Encounter":
            out[main] = _Outcome(status, f"Encounter/{rid}" if rid else None)
            diagnoses = (
                {
                    d.rank: d.id
                    for d in db.scalars(select(Diagnosis).where(Diagnosis.encounter_id == rid))
                }
                if rid
                else {}
            )
            record_diagnoses = getattr(m.record, "diagnoses", [])
            for position, dx in zip(
                m.children.get("diagnoses", []), record_diagnoses, strict=False
            ):
                did = diagnoses.get(dx.rank)
                out[position] = _Outcome(status, f"Condition/{did}" if did else None)
            procedures = _child_ids(db, Procedure, Procedure.encounter_id, rid)
            for position, pid in zip(m.children.get("procedures", []), procedures, strict=False):
                out[position] = _Outcome(status, f"Procedure/{pid}")
        else:
            items = _child_ids(db, PrescriptionItem, PrescriptionItem.prescription_id, rid)
            for position, iid in zip(m.positions, items, strict=False):
                out[position] = _Outcome(status, f"MedicationRequest/{iid}")
            for position in m.positions[len(items) :]:
                out.setdefault(position, _Outcome(status))
    return out


def _child_ids(db: Session, model: Any, parent: Any, parent_id: int | None) -> list[int]:
    """Ids of a record's children in the order they were written (the order of the entries)."""
    if not parent_id:
        return []
    return list(db.scalars(select(model.id).where(parent == parent_id).order_by(model.id)))


def _patient_outcomes(
    db: Session, actor: Actor, patients: dict[int, PatientRef], known_before: set[str]
) -> tuple[dict[int, _Outcome], list[RecordError]]:
    """Patient entries: the resident is matched by 身份证号; one not in the master index (and
    not registered by a record of the Bundle) is registered here."""
    out: dict[int, _Outcome] = {}
    errors: list[RecordError] = []
    for position, ref in patients.items():
        resident_id = registry.resident_ids_by_number(db, [ref.id_number]).get(ref.id_number)
        if resident_id is None:
            try:
                resident, _ = registry.register_resident(
                    db,
                    actor,
                    ResidentCreate(
                        id_number=ref.id_number,
                        name=ref.name or "",
                        sex=ref.sex,
                        birth_date=ref.birth_date,
                    ),
                )
            except DomainError as exc:
                errors.append(RecordError(index=position, field="identifier", problem=exc.detail))
                continue
            except ValidationError as exc:
                problem = str(exc.errors()[0].get("msg", ""))
                errors.append(
                    RecordError(index=position, field="name", problem=f"无法登记居民：{problem}")
                )
                continue
            resident_id = resident.id
        status = 200 if ref.id_number in known_before else 201
        out[position] = _Outcome(status, f"Patient/{resident_id}")
    return out, errors


def _known_numbers(db: Session, patients: dict[int, PatientRef]) -> set[str]:
    return set(registry.resident_ids_by_number(db, {p.id_number for p in patients.values()}))


def _context(db: Session) -> Context:
    def patient_lookup(fhir_id: str) -> PatientRef | None:
        number = registry.resident_numbers(db, [_int_id(fhir_id)]).get(_int_id(fhir_id))
        return PatientRef(id_number=number) if number else None

    def organization_lookup(fhir_id: str) -> str | None:
        return registry.institution_codes(db, [_int_id(fhir_id)]).get(_int_id(fhir_id))

    return Context(patient_lookup=patient_lookup, organization_lookup=organization_lookup)


def _check_shell(bundle: Any) -> tuple[str, list[RecordError]]:
    """Validate the Bundle itself (without the resources, checked one by one later)."""
    from fhir.resources.R4B.bundle import Bundle

    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Invalid(
            "请求体须为 FHIR Bundle（resourceType = Bundle）", field="Bundle.resourceType"
        )
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise Invalid(f"Bundle.type 须为 transaction 或 batch（收到 {kind}）", field="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise Invalid("Bundle.entry 须为数组", field="Bundle.entry")
    shell = {**bundle, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries]}
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        from caregrid.record.ingest.fhir_map import fhir_path

        first = exc.errors()[0]
        path = fhir_path(first.get("loc", ()))
        raise Invalid(
            f"Bundle 结构无效：{path}：{first.get('msg')}", field=f"Bundle.{path}"
        ) from exc
    problems = []
    for i, entry in enumerate(entries):
        if not isinstance(entry.get("resource"), dict):
            problems.append(RecordError(index=i, field="", problem="缺少 resource"))
            continue
        method = (entry.get("request") or {}).get("method")
        if method not in (None, "POST", "PUT"):
            problems.append(
                RecordError(index=i, field="", problem=f"不支持的操作 {method}（仅接收 POST、PUT）")
            )
    return str(kind), problems


def _response_entry(outcome: _Outcome) -> dict[str, Any]:
    response: dict[str, Any] = {"status": TX_STATUS.get(outcome.status, str(outcome.status))}
    if outcome.location:
        response["location"] = outcome.location
    if outcome.issues:
        response["outcome"] = _outcome(outcome.issues)
    return {"response": response}


def ingest_transaction(
    db: Session, actor: Actor, bundle: dict[str, Any], mapped: MapResult
) -> tuple[int, dict[str, Any]]:
    """All or nothing: any problem in any entry → 422 OperationOutcome listing every problem,
    nothing written (issue 3 "Each file is all-or-nothing per bundle")."""
    if mapped.errors:
        return 422, _outcome(_map_errors(mapped.errors))
    records = [m.record for m in mapped.records]
    nested = db.begin_nested()
    try:
        before = _existing_ids(db, mapped.records)
        known = _known_numbers(db, mapped.patients)
        report = ingest_batch(db, actor, records)
        issues = [_ingest_error_issue(mapped.records[e.index or 0], e) for e in report.errors]
        outcomes: dict[int, _Outcome] = {}
        if not issues:
            outcomes = _record_outcomes(db, mapped.records, before)
            patient_out, patient_errors = _patient_outcomes(db, actor, mapped.patients, known)
            outcomes.update(patient_out)
            issues = _map_errors(patient_errors)
    except BaseException:
        nested.rollback()
        raise
    if issues:
        nested.rollback()
        return 422, _outcome(issues)
    nested.commit()
    for position in mapped.supporting:
        outcomes[position] = _Outcome(200)
    entries = [
        _response_entry(outcomes.get(i, _Outcome(200)))
        for i in range(len(bundle.get("entry") or []))
    ]
    return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def ingest_batch_bundle(
    db: Session, actor: Actor, bundle: dict[str, Any], mapped: MapResult
) -> tuple[int, dict[str, Any]]:
    """Each entry on its own: failures get an OperationOutcome in their response entry, the
    others are written (Condition / Procedure entries share their Encounter's fate)."""
    count = len(bundle.get("entry") or [])
    outcomes: dict[int, _Outcome] = {}
    for error in mapped.errors:
        index = error.index if error.index is not None else 0
        previous = outcomes.setdefault(index, _Outcome(422))
        previous.issues.append(_issue(_entry_path(index, error.field), error.problem))
    failed = set(outcomes)
    for m in mapped.records:
        if any(p in failed for p in m.positions):
            continue
        nested = db.begin_nested()
        try:
            before = _existing_ids(db, [m])
            report = ingest_batch(db, actor, [m.record])
            if report.errors:
                nested.rollback()
                for error in report.errors:
                    issue = _ingest_error_issue(m, error)
                    for position in m.positions:
                        entry = outcomes.setdefault(position, _Outcome(422))
                        entry.issues.append(issue)
                continue
            written = _record_outcomes(db, [m], before)
        except BaseException:
            nested.rollback()
            raise
        nested.commit()
        for position, outcome in written.items():
            if position not in outcomes:
                outcomes[position] = outcome
    for position, ref in mapped.patients.items():
        if position in outcomes:
            continue
        nested = db.begin_nested()
        known = _known_numbers(db, {position: ref})
        patient_out, patient_errors = _patient_outcomes(db, actor, {position: ref}, known)
        if patient_errors:
            nested.rollback()
            error = patient_errors[0]
            outcomes[position] = _Outcome(
                422, issues=[_issue(_entry_path(position, error.field), error.problem)]
            )
        else:
            nested.commit()
            outcomes.update(patient_out)
    for position in mapped.supporting:
        outcomes.setdefault(position, _Outcome(200))
    entries = [_response_entry(outcomes.get(i, _Outcome(200))) for i in range(count)]
    return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": entries}


def process_bundle(db: Session, actor: Actor, bundle: Any) -> tuple[int, dict[str, Any]]:
    """Ingest a transaction or batch Bundle; (HTTP status, response resource)."""
    kind, problems = _check_shell(bundle)
    mapped = map_bundle_entries(bundle, _context(db))
    mapped.errors.extend(problems)
    if kind == "transaction":
        return ingest_transaction(db, actor, bundle, mapped)
    return ingest_batch_bundle(db, actor, bundle, mapped)


@router.post("", response_class=FhirResponse)
def post_bundle(
    db: DB,
    actor: CurrentActor,
    body: Annotated[Any, Body(media_type="application/fhir+json")],
) -> Response:
    """Receive a transaction or batch Bundle from a member's system (Patient, Encounter,
    Condition, Procedure, Observation, DiagnosticReport, MedicationRequest; entries reference
    each other by fullUrl). Idempotent on the source identifiers (issue 3 §2)."""
    status, resource = process_bundle(db, actor, body)
    return FhirResponse(resource, status_code=status)


# --- search and read --------------------------------------------------------------------------


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    """A FHIR date search value → (prefix, start, end) of the instant range it denotes."""
    prefix = value[:2] if value[:2] in ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb") else "eq"
    raw = value[2:] if value[:2] == prefix else value
    try:
        if len(raw) == 10:
            start = datetime.combine(datetime.fromisoformat(raw).date(), time(), SHANGHAI)
            end = start + timedelta(days=1)
        elif len(raw) == 7:
            start = datetime.combine(datetime.fromisoformat(raw + "-01").date(), time(), SHANGHAI)
            end = (start + timedelta(days=32)).replace(day=1)
        elif len(raw) == 4:
            start = datetime(int(raw), 1, 1, tzinfo=SHANGHAI)
            end = datetime(int(raw) + 1, 1, 1, tzinfo=SHANGHAI)
        else:
            start = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if start.tzinfo is None:
                start = start.replace(tzinfo=SHANGHAI)
            end = start + timedelta(seconds=1)
    except ValueError as exc:
        raise Invalid(f"date 参数无效：{value}（如 ge2025-01-01）", field="date") from exc
    return prefix, start.astimezone(UTC), end.astimezone(UTC)


def _date_filter(column: Any, values: list[str] | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for value in values or []:
        prefix, start, end = _date_range(value)
        if prefix in ("ge",):
            conditions.append(column >= start)
        elif prefix in ("gt", "sa"):
            conditions.append(column >= end)
        elif prefix in ("le",):
            conditions.append(column < end)
        elif prefix in ("lt", "eb"):
            conditions.append(column < start)
        elif prefix == "ne":
            conditions.append(or_(column < start, column >= end))
        else:
            conditions.append(and_(column >= start, column < end))
    return conditions


def _resident_for(db: Session, actor: Actor, patient: str | None, resource: str) -> int | None:
    """The resident named by `patient` if the caller may see them (audited), else None."""
    if not patient:
        raise Invalid(f"{resource} 检索须提供 patient 参数", field="patient")
    resident_id = _int_id(reference_id(patient, "Patient"))
    try:
        resident, _ = registry.get_resident(db, actor, resident_id, resource=resource)
    except NotFound:
        return None
    return resident.id


def _load(
    db: Session,
    actor: Actor,
    model: type[_Row],
    fhir_id: str,
    resource: str,
    valid: Callable[[_Row], bool] = lambda _: True,
) -> _Row:
    """The row behind `resource/fhir_id` if the caller may see its resident (the access check
    writes the audit entry); 404 otherwise, the same answer whether it exists or not."""
    missing = NotFound(f"{resource}/{fhir_id} 不存在")
    row_id = _int_id(fhir_id)
    if row_id <= 0:
        raise missing
    row = load_for_resident(db, actor, model, row_id, missing, action="read", resource=resource)
    if not valid(row):  # a row of another resource type (a report read as an Observation)
        raise missing
    return row


def _diagnoses_of(db: Session, encounter_ids: list[int]) -> dict[int, list[Diagnosis]]:
    out: dict[int, list[Diagnosis]] = {i: [] for i in encounter_ids}
    if encounter_ids:
        for d in db.scalars(select(Diagnosis).where(Diagnosis.encounter_id.in_(encounter_ids))):
            out[d.encounter_id].append(d)
    return out


def _search(
    request: Request,
    db: Session,
    actor: Actor,
    patient: str | None,
    resource: str,
    query: Callable[[int], Any],
    order: Sequence[Any],
    render: Callable[[list[Any]], list[dict[str, Any]]],
    page: int,
    count: int,
) -> FhirResponse:
    """One resident's resources as a searchset: the resident must be visible to the caller (the
    access check audits the search), else the set is empty. `query(resident_id)` selects the
    rows (ORM objects, or tuples when it selects several), `render` maps a page of them."""
    resident_id = _resident_for(db, actor, patient, resource)
    if resident_id is None:
        return FhirResponse(searchset(request, [], 0, page=page, count=count))
    stmt: Select[Any] = query(resident_id)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    paged = stmt.order_by(*order).limit(count).offset((page - 1) * count)
    rows = list(db.execute(paged).all() if len(stmt.column_descriptions) > 1 else db.scalars(paged))
    return FhirResponse(searchset(request, render(rows), total, page=page, count=count))


@router.get("/Encounter", response_class=FhirResponse)
def search_encounter(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    date: DateParams = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """A resident's encounters across every member, newest first (one longitudinal record)."""

    def render(rows: list[Encounter]) -> list[dict[str, Any]]:
        diagnoses = _diagnoses_of(db, [e.id for e in rows])
        return [encounter_to_fhir(e, diagnoses[e.id]) for e in rows]

    return _search(
        request, db, actor, patient, "Encounter",
        lambda rid: select(Encounter).where(
            Encounter.resident_id == rid, *_date_filter(Encounter.started_at, date)
        ),
        [Encounter.started_at.desc()], render, page, count,
    )  # fmt: skip


@router.get("/Encounter/{fhir_id}", response_class=FhirResponse)
def read_encounter(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    enc = _load(db, actor, Encounter, fhir_id, "Encounter")
    return FhirResponse(encounter_to_fhir(enc, _diagnoses_of(db, [enc.id])[enc.id]))


@router.get("/Condition", response_class=FhirResponse)
def search_condition(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    code: str | None = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """A resident's diagnoses (ICD-10) from every encounter."""

    def query(rid: int) -> Select[Any]:
        stmt = select(Diagnosis).where(Diagnosis.resident_id == rid)
        return stmt.where(Diagnosis.code == split_token(code)[1].upper()) if code else stmt

    def render(rows: list[Diagnosis]) -> list[dict[str, Any]]:
        encounters = {
            e.id: e
            for e in db.scalars(
                select(Encounter).where(Encounter.id.in_({d.encounter_id for d in rows}))
            )
        }
        return [condition_to_fhir(d, encounters[d.encounter_id]) for d in rows]

    return _search(
        request, db, actor, patient, "Condition", query, [Diagnosis.id], render, page, count
    )


@router.get("/Condition/{fhir_id}", response_class=FhirResponse)
def read_condition(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    d = _load(db, actor, Diagnosis, fhir_id, "Condition")
    enc = db.get(Encounter, d.encounter_id)
    assert enc is not None
    return FhirResponse(condition_to_fhir(d, enc))


def _report_filter() -> ColumnElement[bool]:
    return or_(Result.category.in_(REPORT_CATEGORIES), Result.source_id.startswith(REPORT_PREFIX))


@router.get("/Observation", response_class=FhirResponse)
def search_observation(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    code: str | None = None,
    category: str | None = None,
    date: DateParams = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """Lab items and vital signs of a resident, newest first (trend charts, 互认 look-ups)."""

    def query(rid: int) -> Select[Any]:
        stmt = select(Result).where(
            Result.resident_id == rid, ~_report_filter(), *_date_filter(Result.observed_at, date)
        )
        if code:
            stmt = stmt.where(Result.item_code.in_([split_token(c)[1] for c in code.split(",")]))
        if category:
            wanted = {"laboratory": "lab", "vital-signs": "vital"}.get(split_token(category)[1])
            stmt = stmt.where(Result.category == wanted) if wanted else stmt.where(false())
        return stmt

    return _search(
        request, db, actor, patient, "Observation", query, [Result.observed_at.desc()],
        lambda rows: [observation_to_fhir(r) for r in rows], page, count,
    )  # fmt: skip


@router.get("/Observation/{fhir_id}", response_class=FhirResponse)
def read_observation(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    r = _load(db, actor, Result, fhir_id, "Observation", lambda r: not _is_report(r))
    return FhirResponse(observation_to_fhir(r))


@router.get("/DiagnosticReport", response_class=FhirResponse)
def search_report(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    category: str | None = None,
    date: DateParams = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """Imaging, ECG, pathology and ultrasound reports (and lab panels) of a resident."""

    def query(rid: int) -> Select[Any]:
        stmt = select(Result).where(
            Result.resident_id == rid, _report_filter(), *_date_filter(Result.observed_at, date)
        )
        if category:
            wanted = REPORT_CATEGORIES_IN.get(split_token(category)[1])
            stmt = stmt.where(Result.category == wanted) if wanted else stmt.where(false())
        return stmt

    return _search(
        request, db, actor, patient, "DiagnosticReport", query, [Result.observed_at.desc()],
        lambda rows: [report_to_fhir(r) for r in rows], page, count,
    )  # fmt: skip


@router.get("/DiagnosticReport/{fhir_id}", response_class=FhirResponse)
def read_report(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    r = _load(db, actor, Result, fhir_id, "DiagnosticReport", _is_report)
    return FhirResponse(report_to_fhir(r))


@router.get("/Procedure", response_class=FhirResponse)
def search_procedure(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    code: str | None = None,
    date: DateParams = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """A resident's operations and procedures (ICD-9-CM-3, surgery grade), newest first."""

    def query(rid: int) -> Select[Any]:
        stmt = select(Procedure).where(
            Procedure.resident_id == rid, *_date_filter(Procedure.performed_at, date)
        )
        if code:
            stmt = stmt.where(Procedure.code.in_([split_token(c)[1] for c in code.split(",")]))
        return stmt

    return _search(
        request, db, actor, patient, "Procedure", query, [Procedure.performed_at.desc()],
        lambda rows: [procedure_to_fhir(p) for p in rows], page, count,
    )  # fmt: skip


@router.get("/Procedure/{fhir_id}", response_class=FhirResponse)
def read_procedure(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    return FhirResponse(procedure_to_fhir(_load(db, actor, Procedure, fhir_id, "Procedure")))


@router.get("/MedicationRequest", response_class=FhirResponse)
def search_medication_request(
    request: Request,
    db: DB,
    actor: CurrentActor,
    patient: str | None = None,
    date: DateParams = None,
    count: Count = 20,
    page: PageNo = 1,
) -> FhirResponse:
    """A resident's prescription items (one MedicationRequest each), newest first."""

    return _search(
        request, db, actor, patient, "MedicationRequest",
        lambda rid: select(PrescriptionItem, Prescription)
        .join(Prescription, PrescriptionItem.prescription_id == Prescription.id)
        .where(
            Prescription.resident_id == rid, *_date_filter(Prescription.prescribed_at, date)
        ),
        [Prescription.prescribed_at.desc(), PrescriptionItem.id],
        lambda rows: [medication_request_to_fhir(item, rx) for item, rx in rows], page, count,
    )  # fmt: skip


@router.get("/MedicationRequest/{fhir_id}", response_class=FhirResponse)
def read_medication_request(fhir_id: str, db: DB, actor: CurrentActor) -> FhirResponse:
    item_id = _int_id(fhir_id)
    item = db.get(PrescriptionItem, item_id) if item_id > 0 else None
    rx = db.get(Prescription, item.prescription_id) if item is not None else None
    if item is None or rx is None:
        raise NotFound(f"MedicationRequest/{fhir_id} 不存在")
    registry.get_resident(db, actor, rx.resident_id, resource="MedicationRequest")
    return FhirResponse(medication_request_to_fhir(item, rx))
