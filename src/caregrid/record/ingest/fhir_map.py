"""FHIR R4 resources (JSON dicts) → the normalised records of `records.py`. Pure functions: no
database. Feeds the shared record (电子健康档案和电子病历连续记录, 003 §二(四)12; 001 §三(三)2
"检查检验结果在线调阅、互认共享"; 004 §五(二)4).

Every resource is first validated with the independent `fhir.resources.R4B` models; a
structural problem becomes a `RecordError` whose `field` is the FHIRPath inside the resource
(e.g. ``period.end``), `index` the entry index (Bundle) or `line` the line number (NDJSON).

Rules (documented here because members' systems must follow them):

- **Idempotency key.** ``source_system`` is the institution code (identifier system
  ``https://caregrid.org/fhir/sid/institution-code``) of the resource's own organisation:
  ``Encounter.serviceProvider``, ``Observation.performer`` / ``DiagnosticReport.performer``
  (first Organization), ``MedicationRequest.requester`` (an Organization, or a PractitionerRole's
  organization); else that of the referenced Encounter; else ``meta.source``. ``source_id``
  is the value of the resource's first ``identifier`` (``use = official`` preferred), else its
  ``id``. A DiagnosticReport's source_id is prefixed ``DiagnosticReport/`` (Observations and
  reports share the result table); an Observation component gets ``#<component code>``.
  MedicationRequests sharing a ``groupIdentifier`` become one prescription keyed by it.
- **Patient.** ``subject`` references a Patient in the same Bundle (``fullUrl`` urn:uuid or
  ``Patient/<id>``), a Patient already in caregrid (``Patient/<n>``, resolved by the caller),
  or is a logical reference whose ``identifier.system`` is the 身份证号 system
  (`caregrid.core.fhir.ID_CARD_SYSTEM`).
- **Encounter.** ``class`` (v3 ActCode AMB/EMER/IMP…, or caregrid's own codes
  outpatient/emergency/inpatient); diagnoses are the Conditions whose ``encounter`` references
  it (and those listed in ``Encounter.diagnosis``), sent in the same Bundle or file. Rank =
  ``Encounter.diagnosis.rank``, else the Condition's ``diagnosis-rank`` extension, else a
  category coded ``primary`` (CodeSystem ``…/CodeSystem/diagnosis-role``) ranks 1, else bundle
  order. Procedures (ICD-9-CM-3) reference the Encounter the same way; surgery grade 1-4 is the
  ``surgery-grade`` extension (valueInteger) or a ``category`` coding in CodeSystem
  ``…/CodeSystem/surgery-grade``; ``minimally-invasive`` extension (valueBoolean).
- **Costs** (extension ``…/StructureDefinition/encounter-cost``): sub-extensions ``total``,
  ``drug``, ``consumable``, ``exam``, ``treatment``, ``insurance``, ``out-of-catalogue``,
  ``self-pay``, each ``valueInteger`` in fen (分), or ``valueMoney`` in yuan (CNY, converted
  exactly). Claim is out of scope. ``encounter-drg`` (sub-extensions ``code``, ``weight``),
  ``encounter-tcm`` (valueBoolean), ``area-scope`` (valueCode local / out_of_county /
  out_of_city / out_of_province).
- **Out of area.** A ``serviceProvider`` with only a ``display`` (no known code) is an external
  institution (县外/市外就诊); its scope comes from the ``area-scope`` extension
  (``out_of_county`` when absent) and its source_system from ``meta.source``.
- **Times** without an offset are Asia/Shanghai; a bare date is midnight Asia/Shanghai.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from caregrid.core.fhir import CODESYSTEM_BASE, ID_CARD_SYSTEM
from caregrid.record.ingest.records import (
    DiagnosisIn,
    EncounterIn,
    IncomingRecord,
    PatientRef,
    PrescriptionIn,
    PrescriptionItemIn,
    ProcedureIn,
    RecordError,
    ResultIn,
)

INSTITUTION_CODE_SYSTEM = "https://caregrid.org/fhir/sid/institution-code"
PRACTITIONER_CODE_SYSTEM = "https://caregrid.org/fhir/sid/practitioner-code"
EXT = "https://caregrid.org/fhir/StructureDefinition"
COST_EXT = f"{EXT}/encounter-cost"
DRG_EXT = f"{EXT}/encounter-drg"
TCM_EXT = f"{EXT}/encounter-tcm"
AREA_EXT = f"{EXT}/area-scope"
RANK_EXT = f"{EXT}/diagnosis-rank"
GRADE_EXT = f"{EXT}/surgery-grade"
MINIMALLY_INVASIVE_EXT = f"{EXT}/minimally-invasive"
EQA_EXT = f"{EXT}/result-eqa"
RESULT_COST_EXT = f"{EXT}/result-cost"
ITEM_COST_EXT = f"{EXT}/medication-cost"
DIAGNOSIS_ROLE_SYSTEM = f"{CODESYSTEM_BASE}/diagnosis-role"
GRADE_SYSTEM = f"{CODESYSTEM_BASE}/surgery-grade"
# Identifiers of stored records: system = SOURCE_SYSTEM_BASE/<source system>, value = source id.
SOURCE_SYSTEM_BASE = "https://caregrid.org/fhir/sid/source"
ENCOUNTER_CLASS_SYSTEM = f"{CODESYSTEM_BASE}/encounter-class"
DISPOSITION_SYSTEM = f"{CODESYSTEM_BASE}/discharge-disposition"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cn")
REPORT_PREFIX = "DiagnosticReport/"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Cost sub-extension → EncounterIn field (all in fen).
COST_PARTS = {
    "total": "total_fen",
    "drug": "drug_fen",
    "consumable": "consumable_fen",
    "exam": "exam_fen",
    "treatment": "treatment_fen",
    "insurance": "insurance_fen",
    "out-of-catalogue": "out_of_catalogue_fen",
    "self-pay": "self_pay_fen",
}
CLASS_CODES = {
    "AMB": "outpatient",
    "HH": "outpatient",
    "VR": "outpatient",
    "EMER": "emergency",
    "OBSENC": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
    "PRENC": "outpatient",
    "outpatient": "outpatient",
    "emergency": "emergency",
    "inpatient": "inpatient",
}
# http://terminology.hl7.org/CodeSystem/discharge-disposition, plus caregrid's own codes.
DISPOSITION_CODES = {
    "home": "home",
    "alt-home": "home",
    "exp": "death",
    "aadvice": "against_advice",
    "hosp": "transfer_other",
    "other-hcf": "transfer_other",
    "long": "transfer_other",
    "rehab": "transfer_other",
    "snf": "transfer_other",
    "psy": "transfer_other",
    "oth": "other",
    "death": "death",
    "transfer_up": "transfer_up",
    "transfer_down": "transfer_down",
    "transfer_other": "transfer_other",
    "against_advice": "against_advice",
    "other": "other",
}
# HL7 v2 table 0074 diagnostic service sections → result category.
REPORT_CATEGORIES = {
    "RAD": "imaging",
    "CT": "imaging",
    "NMR": "imaging",
    "NMS": "imaging",
    "RX": "imaging",
    "VR": "imaging",
    "XRC": "imaging",
    "EC": "ecg",
    "ECG": "ecg",
    "PAT": "pathology",
    "SP": "pathology",
    "CP": "pathology",
    "US": "ultrasound",
    "RUS": "ultrasound",
    "CUS": "ultrasound",
    "OUS": "ultrasound",
    "VUS": "ultrasound",
    "LAB": "lab",
    "HM": "lab",
    "CH": "lab",
    "SR": "lab",
    "MB": "lab",
    "BG": "lab",
    "imaging": "imaging",
    "ecg": "ecg",
    "pathology": "pathology",
    "ultrasound": "ultrasound",
    "lab": "lab",
}
OBSERVATION_CATEGORIES = {
    "laboratory": "lab",
    "vital-signs": "vital",
    "lab": "lab",
    "vital": "vital",
}
INTERPRETATION = {"N": "N", "H": "H", "HH": "H", "HU": "H", "L": "L", "LL": "L", "LU": "L"}
INTERPRETATION_ABNORMAL = {"A", "AA", "POS", "DET", "R", "I"}
SUPPLY_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "mo": 30, "month": 30}
INGESTED = ("Encounter", "Condition", "Procedure", "Observation", "DiagnosticReport")
SUPPORTED = (*INGESTED, "MedicationRequest", "Patient")
# Resources accepted only so that other entries can reference them (not stored).
SUPPORTING = ("Organization", "Practitioner", "PractitionerRole")

# Record field → FHIRPath inside the resource, to name the element in an error.
FIELD_PATHS: dict[str, dict[str, str]] = {
    "Encounter": {
        "patient": "subject",
        "institution_code": "serviceProvider",
        "external_institution": "serviceProvider.display",
        "practitioner_code": "participant.individual",
        "department": "serviceType",
        "encounter_class": "class",
        "started_at": "period.start",
        "ended_at": "period.end",
        "disposition": "hospitalization.dischargeDisposition",
        "drg_code": f"extension('{DRG_EXT}')",
        "drg_weight": f"extension('{DRG_EXT}')",
        "source_system": "meta.source",
        "source_id": "identifier",
        "diagnoses": "diagnosis",
        "procedures": "Procedure",
        **{f: f"extension('{COST_EXT}').extension('{k}')" for k, f in COST_PARTS.items()},
    },
    "Observation": {
        "patient": "subject",
        "institution_code": "performer",
        "item_code": "code",
        "item_name": "code",
        "value_num": "valueQuantity.value",
        "value_text": "valueString",
        "unit": "valueQuantity.unit",
        "abnormal_flag": "interpretation",
        "observed_at": "effectiveDateTime",
        "encounter_source_id": "encounter",
        "source_system": "meta.source",
        "source_id": "identifier",
        "cost_fen": f"extension('{RESULT_COST_EXT}')",
    },
    "DiagnosticReport": {
        "patient": "subject",
        "institution_code": "performer",
        "category": "category",
        "item_code": "code",
        "item_name": "code",
        "findings": "presentedForm",
        "conclusion": "conclusion",
        "observed_at": "effectiveDateTime",
        "encounter_source_id": "encounter",
        "source_system": "meta.source",
        "source_id": "identifier",
        "cost_fen": f"extension('{RESULT_COST_EXT}')",
    },
    "MedicationRequest": {
        "patient": "subject",
        "institution_code": "requester",
        "practitioner_code": "requester",
        "prescribed_at": "authoredOn",
        "encounter_source_id": "encounter",
        "items": "medicationCodeableConcept",
        "source_system": "meta.source",
        "source_id": "identifier",
    },
}

PYDANTIC_MESSAGES = {
    "extra_forbidden": "不允许的元素（FHIR R4 中不存在）",
    "missing": "缺少必填元素",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "bool_parsing": "须为布尔值",
    "bool_type": "须为布尔值",
    "string_type": "须为字符串",
    "decimal_parsing": "须为数值",
    "float_parsing": "须为数值",
    "list_type": "须为数组",
    "dict_type": "须为对象",
    "model_type": "须为对象",
}


class MappingError(Exception):
    """Raised inside a mapper; becomes a RecordError for the entry."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


@dataclass
class MappedRecord:
    """One normalised record and the positions (entry indices or line numbers) it came from;
    `positions[0]` is the main resource (the Encounter, the first MedicationRequest)."""

    record: IncomingRecord
    resource_type: str
    positions: list[int]
    # positions of nested parts in record order: "diagnoses", "procedures", "items"
    children: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class MapResult:
    records: list[MappedRecord] = field(default_factory=list)
    patients: dict[int, PatientRef] = field(default_factory=dict)  # Patient entries
    supporting: list[int] = field(default_factory=list)  # Organization, Practitioner…
    errors: list[RecordError] = field(default_factory=list)
    # Condition / Procedure position → the position of the Encounter they belong to
    attached: dict[int, int] = field(default_factory=dict)


PatientLookup = Callable[[str], PatientRef | None]
OrganizationLookup = Callable[[str], str | None]


@dataclass
class Context:
    """Resolution of references that point outside the resources being mapped: `known` holds
    resources from elsewhere in the file (NDJSON), the lookups resolve caregrid's own ids
    (``Patient/12`` → its 身份证号, ``Organization/3`` → its institution code)."""

    known: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    patient_lookup: PatientLookup | None = None
    organization_lookup: OrganizationLookup | None = None


# --- small helpers ----------------------------------------------------------------------------


def fhir_path(loc: Iterable[Any]) -> str:
    """A pydantic location → FHIRPath (``("diagnosis", 0, "rank")`` → ``diagnosis[0].rank``)."""
    out = ""
    for part in loc:
        if part == "__root__":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def structure_errors(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate with the fhir.resources R4B model; (FHIRPath, Chinese problem) pairs."""
    resource_type = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(resource_type))
    except (KeyError, ValueError):
        return [("resourceType", f"未知的资源类型：{resource_type}")]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:20]:
            message = PYDANTIC_MESSAGES.get(error.get("type", ""), "")
            detail = error.get("msg", "")
            problems.append(
                (
                    fhir_path(error.get("loc", ())),
                    f"结构无效：{message or '格式不符合 FHIR R4'}（{detail}）",
                )
            )
        return problems
    return []


def parse_datetime(value: Any, path: str) -> datetime:
    """A FHIR date or dateTime → an aware datetime (no offset: Asia/Shanghai)."""
    if not isinstance(value, str) or not value:
        raise MappingError(path, "缺少时间")
    try:
        if len(value) == 10:
            parsed = datetime.combine(datetime.fromisoformat(value).date(), time(), SHANGHAI)
        elif len(value) in (4, 7):
            raise ValueError
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(path, f"时间格式无效，须为完整日期或日期时间：{value}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(UTC)


def extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == url:
            return dict(ext)
    return None


def codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def first_code(concept: dict[str, Any] | None, systems: Sequence[str] = ()) -> tuple[str, str]:
    """(code, display) of the coding in one of `systems` (any coding when none matches)."""
    all_codings = [c for c in codings(concept) if c.get("code")]
    preferred = [c for c in all_codings if c.get("system") in systems] or all_codings
    if not preferred:
        return "", (concept or {}).get("text") or ""
    coding = preferred[0]
    return str(coding["code"]), (concept or {}).get("text") or coding.get("display") or ""


def money_fen(ext: dict[str, Any], path: str) -> int:
    if "valueInteger" in ext:
        return int(ext["valueInteger"])
    money = ext.get("valueMoney")
    if isinstance(money, dict) and "value" in money:
        if money.get("currency", "CNY") != "CNY":
            raise MappingError(path, "金额币种须为 CNY")
        try:
            fen = Decimal(str(money["value"])) * 100
        except InvalidOperation as exc:
            raise MappingError(path, "金额无效") from exc
        if fen != fen.to_integral_value():
            raise MappingError(path, "金额精确到分")
        return int(fen)
    raise MappingError(path, "费用须为 valueInteger（分）或 valueMoney（元）")


def source_id_of(resource: dict[str, Any]) -> str | None:
    identifiers = [i for i in resource.get("identifier") or [] if i.get("value")]
    if not identifiers:
        # Some resources (e.g. Encounter.identifier) are lists; MedicationRequest too.
        return resource.get("id")
    official = [i for i in identifiers if i.get("use") == "official"]
    return str((official or identifiers)[0]["value"])


# --- the mapper -------------------------------------------------------------------------------


class BundleMapper:
    """Maps a set of resources (Bundle entries or NDJSON lines) that may reference each other.

    `items` are (position, fullUrl or None, resource). Positions are what errors report:
    entry indices for a Bundle, line numbers for NDJSON."""

    def __init__(
        self,
        items: Sequence[tuple[int, str | None, dict[str, Any]]],
        context: Context | None = None,
    ) -> None:
        self.items = items
        self.context = context or Context()
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.result = MapResult()
        self.failed: set[int] = set()
        for position, full_url, resource in items:
            if full_url:
                self.by_key[full_url] = (position, resource)
            if resource.get("resourceType") and resource.get("id"):
                self.by_key[f"{resource['resourceType']}/{resource['id']}"] = (position, resource)

    # errors
    def error(self, position: int, path: str, problem: str, source_id: str | None = None) -> None:
        self.failed.add(position)
        self.result.errors.append(
            RecordError(index=position, source_id=source_id, field=path, problem=problem)
        )

    # references
    def resolve(self, ref: dict[str, Any] | None) -> tuple[int, dict[str, Any]] | None:
        reference = (ref or {}).get("reference")
        if not reference:
            return None
        if reference in self.by_key:
            return self.by_key[reference]
        if "/" in reference and not reference.startswith("urn:"):
            tail = "/".join(reference.rstrip("/").split("/")[-2:])
            if tail in self.by_key:
                return self.by_key[tail]
            if tail in self.context.known:
                return self.context.known[tail]
        return self.context.known.get(reference)

    def organization_code(self, ref: dict[str, Any] | None) -> tuple[str | None, str | None]:
        """(institution code, display) of an Organization reference."""
        if not ref:
            return None, None
        identifier = ref.get("identifier") or {}
        if identifier.get("system") == INSTITUTION_CODE_SYSTEM and identifier.get("value"):
            return str(identifier["value"]), ref.get("display")
        target = self.resolve(ref)
        if target is not None:
            resource = target[1]
            if resource.get("resourceType") == "PractitionerRole":
                return self.organization_code(resource.get("organization"))
            for ident in resource.get("identifier") or []:
                if ident.get("system") == INSTITUTION_CODE_SYSTEM and ident.get("value"):
                    return str(ident["value"]), resource.get("name")
            return None, resource.get("name") or ref.get("display")
        reference = ref.get("reference") or ""
        if reference.startswith("Organization/") and self.context.organization_lookup:
            code = self.context.organization_lookup(reference.removeprefix("Organization/"))
            if code:
                return code, ref.get("display")
        return None, ref.get("display")

    def practitioner_code(self, ref: dict[str, Any] | None) -> str | None:
        if not ref:
            return None
        identifier = ref.get("identifier") or {}
        if identifier.get("system") == PRACTITIONER_CODE_SYSTEM and identifier.get("value"):
            return str(identifier["value"])
        target = self.resolve(ref)
        if target is None:
            return None
        resource = target[1]
        if resource.get("resourceType") == "PractitionerRole":
            return self.practitioner_code(resource.get("practitioner"))
        for ident in resource.get("identifier") or []:
            if ident.get("system") == PRACTITIONER_CODE_SYSTEM and ident.get("value"):
                return str(ident["value"])
        return None

    def patient(self, resource: dict[str, Any]) -> PatientRef:
        ref = resource.get("subject")
        if not ref:
            raise MappingError("subject", "缺少患者引用（subject）")
        identifier = ref.get("identifier") or {}
        if identifier.get("system") == ID_CARD_SYSTEM and identifier.get("value"):
            return PatientRef(id_number=str(identifier["value"]))
        target = self.resolve(ref)
        if target is not None:
            position, patient = target
            if patient.get("resourceType") != "Patient":
                raise MappingError("subject", "subject 须引用 Patient")
            if position in self.failed:
                raise MappingError("subject", f"引用的 Patient（位置 {position}）本身有错误")
            return patient_ref(patient)
        reference = ref.get("reference") or ""
        if reference.startswith("Patient/") and self.context.patient_lookup:
            found = self.context.patient_lookup(reference.removeprefix("Patient/"))
            if found is not None:
                return found
        raise MappingError("subject", f"无法解析患者引用：{reference or '（空）'}")

    def source_system(
        self, resource: dict[str, Any], own: str | None, encounter: dict[str, Any] | None = None
    ) -> str:
        if own:
            return own
        if encounter is not None:
            code, _ = self.organization_code(encounter.get("serviceProvider"))
            if code:
                return code
            if (encounter.get("meta") or {}).get("source"):
                return str(encounter["meta"]["source"])
        meta_source = (resource.get("meta") or {}).get("source")
        if meta_source:
            return str(meta_source)
        raise MappingError(
            "meta.source",
            "无法确定来源系统：须引用带机构编码的机构（identifier.system = "
            f"{INSTITUTION_CODE_SYSTEM}），或填写 meta.source",
        )

    def encounter_of(self, resource: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """(source_id, resource) of the Encounter a result or prescription belongs to."""
        ref = resource.get("encounter")
        if not ref:
            return None, None
        identifier = ref.get("identifier") or {}
        if identifier.get("value"):
            return str(identifier["value"]), None
        target = self.resolve(ref)
        if target is None or target[1].get("resourceType") != "Encounter":
            raise MappingError("encounter", "encounter 须引用同一批数据中的 Encounter")
        return source_id_of(target[1]), target[1]

    def encounter_system(
        self, resource: dict[str, Any], encounter: dict[str, Any] | None, own: str
    ) -> str | None:
        """The Encounter's source system when it differs from the record's own `own` (a result
        performed at a shared diagnostic centre for a visit at another member, 003 §二(四)12
        乡检查、县诊断): from a logical reference's identifier system
        (``…/fhir/sid/source/<system>``), or from the referenced Encounter itself."""
        if encounter is None:
            system = str(((resource.get("encounter") or {}).get("identifier") or {}).get("system"))
            prefix = SOURCE_SYSTEM_BASE + "/"
            found = system[len(prefix) :] if system.startswith(prefix) else None
        else:
            code, _ = self.organization_code(encounter.get("serviceProvider"))
            try:
                found = self.source_system(encounter, code)
            except MappingError:
                found = None
        return found if found and found != own else None

    # the run
    def run(self) -> MapResult:
        valid: list[tuple[int, dict[str, Any]]] = []
        for position, _full_url, resource in self.items:
            resource_type = resource.get("resourceType")
            if resource_type not in SUPPORTED and resource_type not in SUPPORTING:
                self.error(
                    position,
                    "resourceType",
                    f"不支持的资源类型：{resource_type}（支持 {'、'.join(SUPPORTED)}）",
                )
                continue
            problems = structure_errors(resource)
            for path, problem in problems:
                self.error(position, path, problem, source_id_of(resource))
            if not problems:
                valid.append((position, resource))
        for position, resource in valid:
            kind = resource["resourceType"]
            if kind in SUPPORTING:
                self.result.supporting.append(position)
            elif kind == "Patient":
                self._guard(position, resource, partial(self._patient, position, resource))
        details: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for position, resource in valid:
            if resource["resourceType"] in ("Condition", "Procedure"):
                self._guard(position, resource, partial(self._attach, position, resource, details))
        groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for position, resource in valid:
            kind = resource["resourceType"]
            if kind == "Encounter":
                self._guard(
                    position,
                    resource,
                    partial(self._encounter, position, resource, details.get(position, [])),
                )
            elif kind == "Observation":
                self._guard(position, resource, partial(self._observation, position, resource))
            elif kind == "DiagnosticReport":
                self._guard(position, resource, partial(self._report, position, resource))
            elif kind == "MedicationRequest":
                group = (resource.get("groupIdentifier") or {}).get("value")
                key = f"group:{group}" if group else f"single:{position}"
                groups.setdefault(key, []).append((position, resource))
        for members in groups.values():
            first_position, first = members[0]
            self._guard(first_position, first, partial(self._prescription, members))
        return self.result

    def _guard(self, position: int, resource: dict[str, Any], fn: Callable[[], None]) -> None:
        try:
            fn()
        except MappingError as exc:
            self.error(position, exc.path, exc.problem, source_id_of(resource))
        except ValidationError as exc:
            kind = resource.get("resourceType", "")
            for error in exc.errors():
                loc = [str(p) for p in error.get("loc", ())]
                top = loc[0] if loc else ""
                path = FIELD_PATHS.get(kind, {}).get(top, top or kind)
                message = str(error.get("msg", "")).removeprefix("Value error, ")
                self.error(position, path, f"字段无效：{message}", source_id_of(resource))

    # Patient
    def _patient(self, position: int, resource: dict[str, Any]) -> None:
        self.result.patients[position] = patient_ref(resource)

    # Condition / Procedure attach to their Encounter
    def _attach(
        self,
        position: int,
        resource: dict[str, Any],
        details: dict[int, list[tuple[int, dict[str, Any]]]],
    ) -> None:
        target = self.resolve(resource.get("encounter"))
        if target is None or target[1].get("resourceType") != "Encounter":
            raise MappingError(
                "encounter",
                f"{resource['resourceType']} 须通过 encounter 引用同一批数据中的 Encounter",
            )
        if resource.get("subject") is None:
            raise MappingError("subject", "缺少患者引用（subject）")
        details.setdefault(target[0], []).append((position, resource))
        self.result.attached[position] = target[0]

    # Encounter
    def _encounter(
        self, position: int, resource: dict[str, Any], parts: list[tuple[int, dict[str, Any]]]
    ) -> None:
        status = resource.get("status")
        if status in ("planned", "cancelled", "entered-in-error"):
            raise MappingError("status", f"不接收状态为 {status} 的就诊")
        patient = self.patient(resource)
        class_code = (resource.get("class") or {}).get("code")
        encounter_class = CLASS_CODES.get(str(class_code))
        if encounter_class is None:
            raise MappingError(
                "class", f"未知就诊类型：{class_code}（AMB 门诊、EMER 急诊、IMP 住院）"
            )
        period = resource.get("period") or {}
        started = parse_datetime(period.get("start"), "period.start")
        ended = parse_datetime(period["end"], "period.end") if period.get("end") else None
        if ended is not None and ended < started:
            raise MappingError("period.end", "出院/结束时间早于入院/开始时间")
        code, display = self.organization_code(resource.get("serviceProvider"))
        area_ext = extension(resource, AREA_EXT)
        area = str(area_ext.get("valueCode")) if area_ext else None
        external = None
        if code is None:
            if not display:
                raise MappingError(
                    "serviceProvider", "缺少就诊机构：须引用带机构编码的机构，或给出集团外机构名称"
                )
            external = display
            area = area or "out_of_county"
        source_system = self.source_system(resource, code)
        source_id = source_id_of(resource)
        if not source_id:
            raise MappingError("identifier", "缺少 identifier 或 id，无法保证重复导入不重复")
        values: dict[str, Any] = {}
        cost = extension(resource, COST_EXT)
        for sub in (cost or {}).get("extension") or []:
            name = sub.get("url")
            path = f"extension('{COST_EXT}').extension('{name}')"
            if name not in COST_PARTS:
                raise MappingError(path, f"未知费用项：{name}（{'、'.join(COST_PARTS)}）")
            fen = money_fen(sub, path)
            if fen < 0:
                raise MappingError(path, "费用不能为负数")
            values[COST_PARTS[name]] = fen
        drg = extension(resource, DRG_EXT)
        for sub in (drg or {}).get("extension") or []:
            if sub.get("url") == "code":
                values["drg_code"] = sub.get("valueCode") or sub.get("valueString")
            elif sub.get("url") == "weight":
                values["drg_weight"] = float(sub.get("valueDecimal", 0))
        tcm = extension(resource, TCM_EXT)
        disposition = None
        hospitalization = resource.get("hospitalization") or {}
        if hospitalization.get("dischargeDisposition"):
            disp_code, _ = first_code(hospitalization["dischargeDisposition"])
            disposition = DISPOSITION_CODES.get(disp_code)
            if disposition is None:
                raise MappingError(
                    "hospitalization.dischargeDisposition", f"未知离院方式：{disp_code}"
                )
        practitioner = None
        for participant in resource.get("participant") or []:
            practitioner = self.practitioner_code(participant.get("individual"))
            if practitioner:
                break
        department = None
        if resource.get("serviceType"):
            _, department = first_code(resource["serviceType"])
        diagnoses, procedures = self._encounter_parts(position, resource, parts, patient)
        record = EncounterIn(
            source_system=source_system,
            source_id=source_id,
            patient=patient,
            institution_code=code,
            external_institution=external,
            area_scope=area or "local",
            department=department or None,
            practitioner_code=practitioner,
            encounter_class=encounter_class,
            started_at=started,
            ended_at=ended,
            disposition=disposition,
            tcm=bool(tcm and tcm.get("valueBoolean")),
            diagnoses=diagnoses,
            procedures=procedures,
            **values,
        )
        self.result.records.append(
            MappedRecord(
                record,
                "Encounter",
                [position, *(p for p, _ in parts)],
                {
                    "diagnoses": [p for p, r in parts if r["resourceType"] == "Condition"],
                    "procedures": [p for p, r in parts if r["resourceType"] == "Procedure"],
                },
            )
        )

    def _encounter_parts(
        self,
        position: int,
        resource: dict[str, Any],
        parts: list[tuple[int, dict[str, Any]]],
        patient: PatientRef,
    ) -> tuple[list[DiagnosisIn], list[ProcedureIn]]:
        listed: dict[int, int] = {}  # condition position → rank from Encounter.diagnosis
        for i, item in enumerate(resource.get("diagnosis") or []):
            target = self.resolve(item.get("condition"))
            if target is None or target[1].get("resourceType") != "Condition":
                raise MappingError(
                    f"diagnosis[{i}].condition",
                    "diagnosis.condition 须引用同一批数据中的 Condition",
                )
            if item.get("rank"):
                listed[target[0]] = int(item["rank"])
        conditions = [(p, r) for p, r in parts if r["resourceType"] == "Condition"]
        for p, _ in conditions:
            if p in self.failed:
                raise MappingError("diagnosis", f"所属诊断（位置 {p}）有错误")
        ranked: list[tuple[int, dict[str, Any], int | None]] = []
        for p, condition in conditions:
            rank = listed.get(p)
            rank_ext = extension(condition, RANK_EXT)
            if rank is None and rank_ext and rank_ext.get("valueInteger"):
                rank = int(rank_ext["valueInteger"])
            if rank is None and any(
                c.get("system") == DIAGNOSIS_ROLE_SYSTEM and c.get("code") == "primary"
                for cat in condition.get("category") or []
                for c in codings(cat)
            ):
                rank = 1
            ranked.append((p, condition, rank))
        taken = {r for _, _, r in ranked if r is not None}
        next_rank = 1
        diagnoses: list[DiagnosisIn] = []
        for p, condition, rank in ranked:
            if rank is None:
                while next_rank in taken:
                    next_rank += 1
                rank = next_rank
                taken.add(rank)
            code, name = first_code(condition.get("code"), ICD10_SYSTEMS)
            if not code:
                self.error(p, "code", "诊断缺少 ICD-10 编码")
                raise MappingError("diagnosis", f"所属诊断（位置 {p}）缺少编码")
            try:
                diagnoses.append(DiagnosisIn(code=code, name=name[:100] or None, rank=rank))
            except ValidationError as exc:
                self.error(p, "code", f"诊断无效：{exc.errors()[0].get('msg')}")
                raise MappingError("diagnosis", f"所属诊断（位置 {p}）无效") from exc
        procedures: list[ProcedureIn] = []
        for p, proc in parts:
            if proc["resourceType"] != "Procedure":
                continue
            if p in self.failed:
                raise MappingError("Procedure", f"所属手术操作（位置 {p}）有错误")
            try:
                procedures.append(self._procedure(proc))
            except MappingError as exc:
                self.error(p, exc.path, exc.problem)
                raise MappingError("Procedure", f"所属手术操作（位置 {p}）有错误") from exc
            except ValidationError as exc:
                error = exc.errors()[0]
                self.error(p, "code", f"手术操作无效：{error.get('msg')}")
                raise MappingError("Procedure", f"所属手术操作（位置 {p}）无效") from exc
        return diagnoses, procedures

    def _procedure(self, resource: dict[str, Any]) -> ProcedureIn:
        code, name = first_code(resource.get("code"))
        if not code:
            raise MappingError("code", "手术操作缺少编码（ICD-9-CM-3）")
        grade: int | None = None
        grade_ext = extension(resource, GRADE_EXT)
        if grade_ext is not None:
            grade = grade_ext.get("valueInteger")
        else:
            for coding in codings(resource.get("category")):
                if coding.get("system") == GRADE_SYSTEM:
                    if str(coding.get("code")) not in ("1", "2", "3", "4"):
                        raise MappingError("category", "手术分级须为 1-4")
                    grade = int(coding["code"])
        if grade is not None and not 1 <= int(grade) <= 4:
            raise MappingError(f"extension('{GRADE_EXT}')", "手术分级须为 1-4")
        performed = None
        if resource.get("performedDateTime"):
            performed = parse_datetime(resource["performedDateTime"], "performedDateTime")
        elif (resource.get("performedPeriod") or {}).get("start"):
            performed = parse_datetime(
                resource["performedPeriod"]["start"], "performedPeriod.start"
            )
        mi = extension(resource, MINIMALLY_INVASIVE_EXT)
        return ProcedureIn(
            code=code,
            name=name[:100] or None,
            grade=grade,
            minimally_invasive=bool(mi and mi.get("valueBoolean")),
            performed_at=performed,
        )

    # Observation
    def _observation(self, position: int, resource: dict[str, Any]) -> None:
        category = None
        for cat in resource.get("category") or []:
            for coding in codings(cat):
                category = OBSERVATION_CATEGORIES.get(str(coding.get("code"))) or category
        if category is None:
            raise MappingError("category", "Observation.category 须为 laboratory 或 vital-signs")
        patient = self.patient(resource)
        encounter_id, encounter = self.encounter_of(resource)
        code = self._performer_code(resource)
        source_system = self.source_system(resource, code, encounter)
        source_id = source_id_of(resource)
        if not source_id:
            raise MappingError("identifier", "缺少 identifier 或 id，无法保证重复导入不重复")
        observed = observed_at(resource)
        common: dict[str, Any] = {
            "source_system": source_system,
            "patient": patient,
            "encounter_source_id": encounter_id,
            "encounter_source_system": self.encounter_system(resource, encounter, source_system),
            "institution_code": code,
            "category": category,
            "observed_at": observed,
            "eqa_passed": eqa(resource),
            "cost_fen": result_cost(resource),
        }
        has_value = any(k.startswith("value") for k in resource)
        if not has_value and resource.get("component"):
            for i, component in enumerate(resource["component"]):
                item_code, item_name = first_code(component.get("code"))
                if not item_code:
                    raise MappingError(f"component[{i}].code", "检验/体征项目缺少编码")
                self.result.records.append(
                    MappedRecord(
                        ResultIn(
                            source_id=f"{source_id}#{item_code}"[:80],
                            item_code=item_code,
                            item_name=(item_name or item_code)[:100],
                            **value_fields(component, f"component[{i}]"),
                            **common,
                        ),
                        "Observation",
                        [position],
                    )
                )
            return
        item_code, item_name = first_code(resource.get("code"))
        if not item_code:
            raise MappingError("code", "检验/体征项目缺少编码")
        self.result.records.append(
            MappedRecord(
                ResultIn(
                    source_id=source_id,
                    item_code=item_code,
                    item_name=(item_name or item_code)[:100],
                    **value_fields(resource, ""),
                    **common,
                ),
                "Observation",
                [position],
            )
        )

    def _performer_code(self, resource: dict[str, Any]) -> str | None:
        for performer in resource.get("performer") or []:
            code, _ = self.organization_code(performer)
            if code:
                return code
        return None

    # DiagnosticReport
    def _report(self, position: int, resource: dict[str, Any]) -> None:
        category = None
        for cat in resource.get("category") or []:
            for coding in codings(cat):
                category = category or REPORT_CATEGORIES.get(str(coding.get("code")))
        if category is None:
            raise MappingError(
                "category", "DiagnosticReport.category 须为 RAD/CT/EC/PAT/US/LAB 等（HL7 v2 0074）"
            )
        patient = self.patient(resource)
        encounter_id, encounter = self.encounter_of(resource)
        code = self._performer_code(resource)
        source_system = self.source_system(resource, code, encounter)
        source_id = source_id_of(resource)
        if not source_id:
            raise MappingError("identifier", "缺少 identifier 或 id，无法保证重复导入不重复")
        item_code, item_name = first_code(resource.get("code"))
        if not item_code:
            raise MappingError("code", "检查项目缺少编码")
        findings = []
        for i, form in enumerate(resource.get("presentedForm") or []):
            content_type = str(form.get("contentType") or "text/plain")
            if form.get("data") and content_type.startswith("text/"):
                try:
                    findings.append(base64.b64decode(form["data"]).decode("utf-8"))
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise MappingError(
                        f"presentedForm[{i}].data", "报告正文须为 UTF-8 文本的 base64"
                    ) from exc
        self.result.records.append(
            MappedRecord(
                ResultIn(
                    source_system=source_system,
                    source_id=f"{REPORT_PREFIX}{source_id}"[:80],
                    patient=patient,
                    encounter_source_id=encounter_id,
                    encounter_source_system=self.encounter_system(
                        resource, encounter, source_system
                    ),
                    institution_code=code,
                    category=category,
                    item_code=item_code,
                    item_name=(item_name or item_code)[:100],
                    findings="\n".join(findings) or None,
                    conclusion=resource.get("conclusion"),
                    observed_at=observed_at(resource),
                    eqa_passed=eqa(resource),
                    cost_fen=result_cost(resource),
                ),
                "DiagnosticReport",
                [position],
            )
        )

    # MedicationRequest
    def _prescription(self, members: list[tuple[int, dict[str, Any]]]) -> None:
        first_position, first = members[0]
        patient = self.patient(first)
        encounter_id, encounter = self.encounter_of(first)
        requester = first.get("requester")
        code, _ = self.organization_code(requester)
        source_system = self.source_system(first, code, encounter)
        group = (first.get("groupIdentifier") or {}).get("value")
        source_id = str(group) if group else source_id_of(first)
        if not source_id:
            raise MappingError("identifier", "缺少 identifier 或 id，无法保证重复导入不重复")
        items = []
        for position, resource in members:
            if position != first_position:
                other = self.patient(resource)
                if other.id_number != patient.id_number:
                    self.error(position, "subject", "同一处方（groupIdentifier）的患者不一致")
                    raise MappingError("groupIdentifier", "同一处方中的患者不一致")
            try:
                items.append(prescription_item(resource))
            except MappingError as exc:
                if position == first_position:
                    raise
                self.error(position, exc.path, exc.problem)
                raise MappingError(
                    "groupIdentifier", f"同一处方中的第 {position} 项有错误"
                ) from exc
        record = PrescriptionIn(
            source_system=source_system,
            source_id=source_id,
            patient=patient,
            encounter_source_id=encounter_id,
            encounter_source_system=self.encounter_system(first, encounter, source_system),
            institution_code=code,
            practitioner_code=self.practitioner_code(requester),
            prescribed_at=parse_datetime(first.get("authoredOn"), "authoredOn"),
            items=items,
        )
        self.result.records.append(
            MappedRecord(
                record,
                "MedicationRequest",
                [p for p, _ in members],
                {"items": [p for p, _ in members]},
            )
        )


def patient_ref(resource: dict[str, Any]) -> PatientRef:
    """Patient → PatientRef: the 身份证号 identifier, name, gender, birthDate."""
    numbers = [
        i.get("value")
        for i in resource.get("identifier") or []
        if i.get("system") == ID_CARD_SYSTEM and i.get("value")
    ]
    if not numbers:
        raise MappingError(
            "identifier", f"缺少居民身份证号（identifier.system = {ID_CARD_SYSTEM}）"
        )
    name = None
    names = resource.get("name") or []
    if names:
        name = names[0].get("text") or (
            (names[0].get("family") or "") + "".join(names[0].get("given") or [])
        )
    gender = resource.get("gender")
    if gender not in (None, "male", "female"):
        raise MappingError("gender", "性别须为 male 或 female（与身份证号一致）")
    birth = resource.get("birthDate")
    birth_date = parse_datetime(birth, "birthDate").astimezone(SHANGHAI).date() if birth else None
    return PatientRef(
        id_number=str(numbers[0]), name=(name or None), birth_date=birth_date, sex=gender
    )


def observed_at(resource: dict[str, Any]) -> datetime:
    if resource.get("effectiveDateTime"):
        return parse_datetime(resource["effectiveDateTime"], "effectiveDateTime")
    if (resource.get("effectivePeriod") or {}).get("start"):
        return parse_datetime(resource["effectivePeriod"]["start"], "effectivePeriod.start")
    if resource.get("issued"):
        return parse_datetime(resource["issued"], "issued")
    raise MappingError("effectiveDateTime", "缺少检查/检验时间（effectiveDateTime 或 issued）")


def eqa(resource: dict[str, Any]) -> bool | None:
    ext = extension(resource, EQA_EXT)
    return bool(ext.get("valueBoolean")) if ext else None


def result_cost(resource: dict[str, Any]) -> int:
    ext = extension(resource, RESULT_COST_EXT)
    if ext is None:
        return 0
    path = f"extension('{RESULT_COST_EXT}')"
    fen = money_fen(ext, path)
    if fen < 0:
        raise MappingError(path, "费用不能为负数")
    return fen


def value_fields(element: dict[str, Any], prefix: str) -> dict[str, Any]:
    """valueQuantity / valueString / valueCodeableConcept, referenceRange, interpretation."""
    at = f"{prefix}." if prefix else ""
    out: dict[str, Any] = {}
    quantity = element.get("valueQuantity")
    if quantity is not None:
        if quantity.get("value") is None:
            raise MappingError(f"{at}valueQuantity.value", "缺少数值")
        out["value_num"] = float(quantity["value"])
        unit = quantity.get("unit") or quantity.get("code")
        out["unit"] = str(unit)[:20] if unit else None
    elif element.get("valueString") is not None:
        out["value_text"] = str(element["valueString"])[:200]
    elif element.get("valueCodeableConcept") is not None:
        code, text = first_code(element["valueCodeableConcept"])
        out["value_text"] = (text or code)[:200] or None
    elif element.get("valueInteger") is not None:
        out["value_num"] = float(element["valueInteger"])
    elif element.get("valueBoolean") is not None:
        out["value_text"] = "阳性" if element["valueBoolean"] else "阴性"
    ranges = element.get("referenceRange") or []
    if ranges:
        low = (ranges[0].get("low") or {}).get("value")
        high = (ranges[0].get("high") or {}).get("value")
        out["ref_low"] = float(low) if low is not None else None
        out["ref_high"] = float(high) if high is not None else None
    for concept in element.get("interpretation") or []:
        for coding in codings(concept):
            code = str(coding.get("code"))
            if code in INTERPRETATION:
                out["abnormal_flag"] = INTERPRETATION[code]
            elif code in INTERPRETATION_ABNORMAL:
                out["abnormal_flag"] = "A"
            else:
                raise MappingError(f"{at}interpretation", f"未知结果标志：{code}（H/L/N/A）")
    return out


def prescription_item(resource: dict[str, Any]) -> PrescriptionItemIn:
    """One MedicationRequest → one prescription item: drug, dose, frequency, days supplied
    (dispenseRequest.expectedSupplyDuration, in d / wk / mo), quantity."""
    concept = resource.get("medicationCodeableConcept")
    if concept is None:
        raise MappingError(
            "medicationCodeableConcept",
            "须以 medicationCodeableConcept 给出药品（国家医保药品编码）",
        )
    drug_code, drug_name = first_code(concept)
    if not drug_name:
        raise MappingError("medicationCodeableConcept", "缺少药品名称（text 或 coding.display）")
    dose = frequency = None
    dosages = resource.get("dosageInstruction") or []
    if dosages:
        dosage = dosages[0]
        for rate in dosage.get("doseAndRate") or []:
            quantity = rate.get("doseQuantity")
            if quantity and quantity.get("value") is not None:
                dose = f"{quantity['value']}{quantity.get('unit') or quantity.get('code') or ''}"
        timing = dosage.get("timing") or {}
        if timing.get("code"):
            code, text = first_code(timing["code"])
            frequency = text or code
        repeat = timing.get("repeat") or {}
        if frequency is None and repeat.get("frequency"):
            frequency = (
                f"{repeat['frequency']}次/{repeat.get('period', 1)}{repeat.get('periodUnit', 'd')}"
            )
        if dose is None and frequency is None and dosage.get("text"):
            frequency = str(dosage["text"])
    days = None
    quantity_value = None
    dispense = resource.get("dispenseRequest") or {}
    duration = dispense.get("expectedSupplyDuration")
    if duration:
        unit = duration.get("code") or duration.get("unit") or "d"
        if unit not in SUPPLY_UNIT_DAYS or duration.get("value") is None:
            raise MappingError(
                "dispenseRequest.expectedSupplyDuration", f"用药天数单位须为 d / wk / mo：{unit}"
            )
        days = round(float(duration["value"]) * SUPPLY_UNIT_DAYS[unit])
    if (dispense.get("quantity") or {}).get("value") is not None:
        quantity_value = float(dispense["quantity"]["value"])
    cost = extension(resource, ITEM_COST_EXT)
    return PrescriptionItemIn(
        drug_code=drug_code or None,
        drug_name=drug_name[:100],
        dose=dose[:40] if dose else None,
        frequency=frequency[:40] if frequency else None,
        days_supplied=days,
        quantity=quantity_value,
        cost_fen=money_fen(cost, f"extension('{ITEM_COST_EXT}')") if cost else 0,
    )


def map_resources(
    items: Sequence[tuple[int, str | None, dict[str, Any]]], context: Context | None = None
) -> MapResult:
    """Map resources that may reference each other (a Bundle's entries, a batch of NDJSON
    lines) to normalised records, collecting every problem instead of stopping at the first."""
    return BundleMapper(items, context).run()


def map_bundle_entries(bundle: dict[str, Any], context: Context | None = None) -> MapResult:
    """The entries of a transaction/batch Bundle, positions = entry indices."""
    items = [
        (i, entry.get("fullUrl"), entry["resource"])
        for i, entry in enumerate(bundle.get("entry") or [])
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]
    return map_resources(items, context)
