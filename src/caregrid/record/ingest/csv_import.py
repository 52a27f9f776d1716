"""CSV import into the shared record: documented templates for encounters, results and
prescriptions, Chinese (or English) column headers, all-or-nothing per batch.

Members without a FHIR interface send CSV exports from their HIS/LIS (issue 3 §2; 001 §三(三)2
检查检验结果在线调阅、互认共享; 000 §三(三)5 电子健康档案和电子病历的连续记录). Conventions:

- encoding UTF-8 (with or without BOM), GB18030 accepted (what Excel on Chinese Windows saves);
- money in 元 with at most two decimals, converted exactly to integer fen;
- times as ``2025-03-01 09:30`` in China time (Asia/Shanghai), stored as UTC;
- one row per encounter / result; one row per prescription item, rows of one prescription
  (same 处方编号) next to each other;
- every `batch_size` rows go through `upsert.ingest_batch` in their own transaction; a batch
  with any error is rolled back and reported by line and column, and the import goes on with
  the next batch. Re-importing a file changes nothing (idempotent on source system + id).
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import multiprocessing
import operator
import os
import queue
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI
from caregrid.core.errors import Invalid
from caregrid.record.ingest.records import (
    ENCOUNTER_CONTENT,
    EncounterIn,
    EncounterRow,
    IncomingRecord,
    IngestReport,
    PrescriptionIn,
    RecordError,
    ResultIn,
)
from caregrid.record.ingest.upsert import ingest_batch, ingest_encounter_rows

KINDS = ("encounters", "results", "prescriptions")
KIND_LABELS = {"encounters": "就诊", "results": "检查检验结果", "prescriptions": "处方"}
DEFAULT_BATCH_SIZE = 5000
MAX_REPORTED_ERRORS = 1000


class CsvFileError(Invalid):
    """The file as a whole cannot be imported (unknown kind, missing required column,
    unreadable encoding). The CLI prints it as one line and exits with code 2."""


@dataclass(frozen=True)
class Column:
    """One documented template column: the field name, the accepted headers (the first is the
    template's), whether it is required, and its format."""

    name: str
    headers: tuple[str, ...]
    required: bool
    format: str


_PATIENT = (
    Column(
        "id_number",
        ("身份证号", "居民身份证号", "证件号码"),
        True,
        "18 位居民身份证号（15 位旧号自动升位）",
    ),
    Column("name", ("姓名", "患者姓名"), False, "居民不在主索引时用于登记"),
    Column("sex", ("性别",), False, "男/女（或 male/female、1/2），须与身份证号一致"),
    Column("birth_date", ("出生日期",), False, "YYYY-MM-DD，须与身份证号一致"),
)
_SOURCE = Column(
    "source_system",
    ("来源系统", "系统编码"),
    False,
    "发送系统编码；缺省为命令行 --source，再缺省为机构编码",
)
_MONEY = "金额，单位元，最多两位小数，不得为负"
_TIME = "YYYY-MM-DD HH:MM（北京时间）"

COLUMNS: dict[str, tuple[Column, ...]] = {
    "encounters": (
        Column("source_id", ("就诊流水号", "就诊编号", "住院号"), True, "来源系统内唯一的就诊编号"),
        _SOURCE,
        *_PATIENT,
        Column("institution_code", ("机构编码", "医疗机构编码"), False, "成员单位编码，集团外可空"),
        Column("external_institution", ("集团外机构", "外院名称"), False, "县外/市外机构名称"),
        Column("area_scope", ("就诊地域",), False, "本地/县外/市外/省外，缺省本地"),
        Column("department", ("科室",), False, "科室名称（与机构登记的科室一致时关联）"),
        Column("practitioner_code", ("医师编码", "医生编码"), False, "医务人员编码"),
        Column("encounter_class", ("就诊类型",), True, "门诊/急诊/住院（或英文）"),
        Column("started_at", ("就诊时间", "入院时间", "开始时间"), True, _TIME),
        Column("ended_at", ("出院时间", "结束时间"), False, _TIME + "，不得早于入院时间"),
        Column("disposition", ("离院方式",), False, "回家/转上级/转下级/死亡等"),
        Column("tcm", ("中医",), False, "是/否：中医类诊疗"),
        Column("drg_code", ("DRG编码", "DRG分组"), False, "DRG 分组编码"),
        Column("drg_weight", ("DRG权重",), False, "小数，0-100"),
        Column("primary_dx", ("主要诊断编码",), False, "ICD-10，如 I10.x00"),
        Column("primary_dx_name", ("主要诊断名称", "主要诊断"), False, "文本"),
        Column("other_dx", ("其他诊断编码",), False, "ICD-10，多个以 ; 或 ； 分隔"),
        Column("other_dx_names", ("其他诊断名称",), False, "与其他诊断编码一一对应，以 ; 分隔"),
        Column("procedure_codes", ("手术编码", "手术操作编码"), False, "ICD-9-CM-3，多个以 ; 分隔"),
        Column("procedure_names", ("手术名称", "手术操作名称"), False, "与手术编码一一对应"),
        Column("procedure_grades", ("手术级别",), False, "1-4（或 一级-四级），与手术编码一一对应"),
        Column("total_fen", ("总费用(元)", "总费用"), False, _MONEY),
        Column("drug_fen", ("药品费(元)", "药品费", "西药费"), False, _MONEY),
        Column("consumable_fen", ("耗材费(元)", "耗材费"), False, _MONEY),
        Column("exam_fen", ("检查费(元)", "检查检验费", "检查费"), False, _MONEY),
        Column("treatment_fen", ("治疗费(元)", "治疗费"), False, _MONEY),
        Column("insurance_fen", ("医保支付(元)", "医保支付", "统筹支付"), False, _MONEY),
        Column("out_of_catalogue_fen", ("目录外费用(元)", "目录外费用"), False, _MONEY),
        Column("self_pay_fen", ("自付费用(元)", "自付费用", "个人自付"), False, _MONEY),
    ),
    "results": (
        Column("source_id", ("报告单号", "结果编号", "检验编号"), True, "来源系统内唯一的结果编号"),
        _SOURCE,
        *_PATIENT,
        Column("encounter_source_id", ("就诊流水号", "就诊编号"), False, "所属就诊"),
        Column("encounter_source_system", ("就诊来源系统",), False,
               "所属就诊的来源系统（与本行来源系统不同时填写，如共享中心为他院就诊出具的结果）"),
        Column("institution_code", ("机构编码", "执行机构编码"), False, "执行机构编码"),
        Column("category", ("类别", "结果类别"), True, "检验/影像/心电/病理/超声/体征"),
        Column("item_code", ("检验项目编码", "项目编码"), True, "本地码或 LOINC"),
        Column("item_name", ("检验项目名称", "项目名称"), True, "文本"),
        Column("value", ("结果", "结果值"), False, "数值或文本"),
        Column("unit", ("单位",), False, "如 mmol/L"),
        Column("ref_range", ("参考范围",), False, "如 3.5-5.5、<5.2、>1.0"),
        Column("abnormal_flag", ("异常标志",), False, "N/H/L/A（或 正常/偏高/偏低/异常、↑/↓）"),
        Column("findings", ("检查所见", "所见"), False, "影像等报告的所见"),
        Column("conclusion", ("诊断结论", "结论"), False, "医师结论（不作为互认对象）"),
        Column("observed_at", ("报告时间", "检查时间"), True, _TIME),
        Column("eqa_passed", ("室间质评",), False, "是/否：执行实验室通过室间质评"),
        Column("cost_fen", ("费用(元)", "费用"), False, _MONEY),
    ),
    "prescriptions": (
        Column("source_id", ("处方编号", "处方号"), True, "来源系统内唯一；同一处方的多行药品相邻"),
        _SOURCE,
        *_PATIENT,
        Column("encounter_source_id", ("就诊流水号", "就诊编号"), False, "所属就诊"),
        Column("encounter_source_system", ("就诊来源系统",), False,
               "所属就诊的来源系统（与本行来源系统不同时填写，如共享中心为他院就诊出具的结果）"),
        Column("institution_code", ("机构编码",), False, "开方机构编码"),
        Column("practitioner_code", ("医师编码", "医生编码"), False, "开方医师编码"),
        Column("prescribed_at", ("开方时间", "处方时间"), True, _TIME),
        Column("drug_code", ("药品编码", "医保药品编码"), False, "国家医保药品编码"),
        Column("drug_name", ("药品名称",), True, "文本"),
        Column("dose", ("剂量", "单次剂量"), False, "如 5mg"),
        Column("frequency", ("频次", "用药频次"), False, "如 qd、bid"),
        Column("days_supplied", ("用药天数", "天数"), False, "整数 1-366"),
        Column("quantity", ("数量",), False, "数字"),
        Column("cost_fen", ("金额(元)", "药品金额(元)", "金额"), False, _MONEY),
    ),
}  # fmt: skip

# Where a record field's problem is shown: the CSV column it came from.
_FIELD_COLUMN = {
    "patient.id_number": "id_number",
    "patient.name": "name",
    "patient.sex": "sex",
    "patient.birth_date": "birth_date",
    "value_num": "value",
    "value_text": "value",
    "ref_low": "ref_range",
    "ref_high": "ref_range",
}


def template_text(kind: str) -> str:
    """The template file for `kind` (header row and two example rows)."""
    _check_kind(kind)
    return (resources.files("caregrid.record.ingest") / "templates" / f"{kind}.csv").read_text(
        encoding="utf-8-sig"
    )


def _check_kind(kind: str) -> None:
    if kind not in COLUMNS:
        raise CsvFileError(f"未知的导入类型：{kind}（可选 {' / '.join(KINDS)}）", field="kind")


def _norm_header(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    return "".join(text.split())


# --- value parsers: each returns the value or raises ValueError with a Chinese message ----------


class CellError(ValueError):
    pass


_PLAIN_MONEY = re.compile(r"(\d+)(?:\.(\d{1,2}))?")


def _money(text: str) -> int:
    # The common case (digits, at most two decimals) without Decimal: same result, 3x faster.
    if m := _PLAIN_MONEY.fullmatch(text):
        return int(m[1]) * 100 + int((m[2] or "0").ljust(2, "0"))
    cleaned = text.replace(",", "").replace("¥", "").replace("￥", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise CellError(f"金额格式不正确：“{text}”") from None
    if not amount.is_finite():
        raise CellError(f"金额格式不正确：“{text}”")
    if amount < 0:
        raise CellError("金额不能为负数")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise CellError(f"金额最多两位小数：“{text}”")
    return int(fen)


_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d %H:%M", "%Y%m%d")


def _time(text: str) -> datetime:
    value = text.strip().replace("/", "-")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise CellError(f"时间格式不正确：“{text}”（应形如 2025-03-01 09:30）") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(UTC)


def _date(text: str) -> date:
    value = text.strip().replace("/", "-")
    try:
        return (
            date.fromisoformat(value) if "-" in value else datetime.strptime(value, "%Y%m%d").date()
        )
    except ValueError:
        raise CellError(f"日期格式不正确：“{text}”（应形如 1980-05-03）") from None


def _choice(mapping: dict[str, str], what: str) -> Callable[[str], str]:
    lookup = {_norm_header(k): v for k, v in mapping.items()}

    def parse(text: str) -> str:
        # Normalising is idempotent, so a cell already in normal form is looked up directly.
        value = lookup.get(text) or lookup.get(_norm_header(text))
        if value is None:
            raise CellError(f"{what}取值无效：“{text}”")
        return value

    return parse


_sex = _choice(
    {"男": "male", "女": "female", "male": "male", "female": "female", "m": "male",
     "f": "female", "1": "male", "2": "female"},
    "性别",
)  # fmt: skip
_class = _choice(
    {"门诊": "outpatient", "急诊": "emergency", "住院": "inpatient", "outpatient": "outpatient",
     "emergency": "emergency", "inpatient": "inpatient"},
    "就诊类型",
)  # fmt: skip
_scope = _choice(
    {"本地": "local", "县域内": "local", "local": "local", "县外": "out_of_county",
     "out_of_county": "out_of_county", "市外": "out_of_city", "out_of_city": "out_of_city",
     "省外": "out_of_province", "out_of_province": "out_of_province"},
    "就诊地域",
)  # fmt: skip
_disposition = _choice(
    {"回家": "home", "医嘱离院": "home", "home": "home", "转上级": "transfer_up",
     "上转": "transfer_up", "transfer_up": "transfer_up", "转下级": "transfer_down",
     "下转": "transfer_down", "transfer_down": "transfer_down", "转其他": "transfer_other",
     "转院": "transfer_other", "transfer_other": "transfer_other", "死亡": "death",
     "death": "death", "非医嘱离院": "against_advice", "自动出院": "against_advice",
     "against_advice": "against_advice", "其他": "other", "other": "other"},
    "离院方式",
)  # fmt: skip
_category = _choice(
    {"检验": "lab", "lab": "lab", "影像": "imaging", "imaging": "imaging", "心电": "ecg",
     "心电图": "ecg", "ecg": "ecg", "病理": "pathology", "pathology": "pathology",
     "超声": "ultrasound", "ultrasound": "ultrasound", "体征": "vital", "生命体征": "vital",
     "vital": "vital"},
    "结果类别",
)  # fmt: skip
_flag = _choice(
    {"n": "N", "正常": "N", "h": "H", "高": "H", "偏高": "H", "↑": "H", "l": "L", "低": "L",
     "偏低": "L", "↓": "L", "a": "A", "异常": "A", "阳性": "A"},
    "异常标志",
)  # fmt: skip
_bool_choice = _choice(
    {"是": "1", "否": "0", "y": "1", "n": "0", "yes": "1", "no": "0", "true": "1",
     "false": "0", "1": "1", "0": "0"},
    "是/否",
)  # fmt: skip
_GRADES = {"1": 1, "2": 2, "3": 3, "4": 4, "一级": 1, "二级": 2, "三级": 3, "四级": 4}


def _bool(text: str) -> bool:
    return _bool_choice(text) == "1"


def _float(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise CellError(f"应为数字：“{text}”") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CellError(f"应为整数：“{text}”") from None


def _grade(text: str) -> int:
    key = text.strip().removesuffix("手术")
    if key not in _GRADES:
        raise CellError(f"手术级别应为 1-4（或 一级-四级）：“{text}”")
    return _GRADES[key]


_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*[-~～至]\s*(-?\d+(?:\.\d+)?)$")
_BOUND = re.compile(r"^([<>≤≥]=?)\s*(-?\d+(?:\.\d+)?)$")


def _ref_range(text: str) -> tuple[float | None, float | None]:
    value = unicodedata.normalize("NFKC", text).strip()
    if m := _RANGE.match(value):
        low, high = float(m[1]), float(m[2])
        if low > high:
            raise CellError(f"参考范围下限大于上限：“{text}”")
        return low, high
    if m := _BOUND.match(value):
        bound = float(m[2])
        return (None, bound) if m[1][0] in "<≤" else (bound, None)
    raise CellError(f"参考范围格式不正确：“{text}”（应形如 3.5-5.5、<5.2 或 >1.0）")


def _split(text: str) -> list[str]:
    if ";" not in text and "；" not in text:
        return [text] if text else []
    return [part.strip() for part in re.split(r"[;；]", text) if part.strip()]


# Encounter columns converted alike: (field, parser or None for text, value when absent or
# invalid), in the order their problems are reported.
_ENCOUNTER_FIELDS: tuple[tuple[str, Callable[[str], Any] | None, Any], ...] = (
    ("external_institution", None, None),
    ("area_scope", _scope, "local"),
    ("department", None, None),
    ("practitioner_code", None, None),
    ("encounter_class", _class, None),
    ("disposition", _disposition, None),
    ("tcm", _bool, False),
    ("drg_code", None, None),
    ("drg_weight", _float, None),
    *(
        (name, _money, 0)
        for name in (
            "total_fen", "drug_fen", "consumable_fen", "exam_fen", "treatment_fen",
            "insurance_fen", "out_of_catalogue_fen", "self_pay_fen",
        )
    ),
)  # fmt: skip


# --- rows -> records --------------------------------------------------------------------------


@dataclass
class _Source:
    """Where a record came from in the file: its lines and the column of each diagnosis,
    procedure and item, so that batch errors can name line and column."""

    line: int
    dx_columns: list[str] = field(default_factory=list)
    item_lines: list[int] = field(default_factory=list)


class _RowErrors(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems  # (column name, problem)


class _Reader:
    """Turns the cells of one file's rows into records, knowing which header each column has."""

    def __init__(self, kind: str, header: list[str], source_system: str | None) -> None:
        self.kind = kind
        self.source_system = source_system
        by_header: dict[str, Column] = {}
        for col in COLUMNS[kind]:
            for h in (*col.headers, col.name):
                by_header[_norm_header(h)] = col
                by_header[_norm_header(h.replace("(元)", ""))] = col
        self.index: dict[str, int] = {}
        self.header_of: dict[str, str] = {c.name: c.headers[0] for c in COLUMNS[kind]}
        self.unknown: list[str] = []
        for i, raw in enumerate(header):
            found = by_header.get(_norm_header(raw)) or by_header.get(
                _norm_header(raw).replace("(元)", "")
            )
            if found is None:
                if raw.strip():
                    self.unknown.append(raw.strip())
                continue
            col = found
            if col.name in self.index:
                raise CsvFileError(
                    f"列「{raw.strip()}」与列「{self.header_of[col.name]}」重复（同一字段）",
                    field=col.name,
                )
            self.index[col.name] = i
            self.header_of[col.name] = raw.strip()
        missing = [c.headers[0] for c in COLUMNS[kind] if c.required and c.name not in self.index]
        if missing:
            raise CsvFileError(f"缺少必填列：{'、'.join(missing)}", field="header")

    def cells(self, row: list[str]) -> dict[str, str]:
        out = {}
        width = len(row)
        for name, i in self.index.items():
            if i < width:
                value = row[i].strip()
                if value:
                    out[name] = value
        return out

    def column(self, name: str) -> str:
        return self.header_of.get(name, name)

    def key(self, cells: dict[str, str]) -> str | None:
        """Rows sharing a key form one record (prescription items); None: one row, one record."""
        if self.kind != "prescriptions":
            return None
        return f"{self._system(cells)}\x00{cells.get('source_id', '')}"

    def _system(self, cells: dict[str, str]) -> str | None:
        return self.source_system or cells.get("source_system") or cells.get("institution_code")

    def parse(
        self, cells: dict[str, str], problems: list[tuple[str, str]], src: _Source
    ) -> dict[str, Any]:
        """Common fields plus the kind's own, converted; problems are appended per column."""

        def get(name: str, parser: Callable[[str], Any] | None = None) -> Any:
            text = cells.get(name)
            if text is None:
                return None
            if parser is None:
                return text
            try:
                return parser(text)
            except CellError as exc:
                problems.append((name, str(exc)))
                return None

        system = self._system(cells)
        if system is None:
            problems.append(
                ("source_system", "须提供来源系统（--source、「来源系统」列或机构编码）")
            )
        data: dict[str, Any] = {
            "source_system": system or "?",
            "source_id": cells.get("source_id", ""),
            "patient": {
                "id_number": cells.get("id_number", ""),
                "name": get("name"),
                "sex": get("sex", _sex),
                "birth_date": get("birth_date", _date),
            },
            "institution_code": get("institution_code"),
        }
        if self.kind == "encounters":
            self._encounter(cells, get, data, problems, src)
        elif self.kind == "results":
            self._result(cells, get, data, problems)
        else:
            data.update(
                encounter_source_id=get("encounter_source_id"),
                encounter_source_system=get("encounter_source_system"),
                practitioner_code=get("practitioner_code"),
                prescribed_at=get("prescribed_at", _time),
            )
        return data

    def _encounter(
        self,
        cells: dict[str, str],
        get: Callable[..., Any],
        data: dict[str, Any],
        problems: list[tuple[str, str]],
        src: _Source,
    ) -> None:
        started = get("started_at", _time)
        ended = get("ended_at", _time)
        if started is not None and ended is not None and ended < started:
            problems.append(
                ("ended_at", f"{self.column('ended_at')}早于{self.column('started_at')}")
            )
        diagnoses: list[dict[str, Any]] = []
        if "primary_dx" in cells:
            diagnoses.append(
                {"code": cells["primary_dx"], "name": cells.get("primary_dx_name"), "rank": 1}
            )
            src.dx_columns.append("primary_dx")
        names = _split(cells.get("other_dx_names", ""))
        for n, code in enumerate(_split(cells.get("other_dx", ""))):
            diagnoses.append(
                {
                    "code": code,
                    "name": names[n] if n < len(names) else None,
                    "rank": len(diagnoses) + 1,
                }
            )
            src.dx_columns.append("other_dx")
        procedures: list[dict[str, Any]] = []
        pnames = _split(cells.get("procedure_names", ""))
        grades = _split(cells.get("procedure_grades", ""))
        for n, code in enumerate(_split(cells.get("procedure_codes", ""))):
            grade = None
            if n < len(grades):
                try:
                    grade = _grade(grades[n])
                except CellError as exc:
                    problems.append(("procedure_grades", str(exc)))
            procedures.append(
                {
                    "code": code,
                    "name": pnames[n] if n < len(pnames) else None,
                    "grade": grade,
                    "performed_at": started,
                }
            )
        data["started_at"] = started
        data["ended_at"] = ended
        data["diagnoses"] = diagnoses
        data["procedures"] = procedures
        # The plain columns in one loop: most are absent from a given file, and at ~20 a row
        # a call each cost more than the conversions themselves.
        for name, parser, default in _ENCOUNTER_FIELDS:
            text = cells.get(name)
            if text is None:
                data[name] = default
            elif parser is None:
                data[name] = text
            else:
                try:
                    data[name] = parser(text)
                except CellError as exc:
                    problems.append((name, str(exc)))
                    data[name] = default

    def _result(
        self,
        cells: dict[str, str],
        get: Callable[..., Any],
        data: dict[str, Any],
        problems: list[tuple[str, str]],
    ) -> None:
        value = cells.get("value")
        value_num: float | None = None
        value_text: str | None = None
        if value is not None:
            try:
                value_num = float(value)
            except ValueError:
                value_text = value
        low, high = get("ref_range", _ref_range) or (None, None)
        data.update(
            encounter_source_id=get("encounter_source_id"),
            encounter_source_system=get("encounter_source_system"),
            category=get("category", _category),
            item_code=cells.get("item_code", ""),
            item_name=cells.get("item_name", ""),
            value_num=value_num,
            value_text=value_text,
            unit=get("unit"),
            ref_low=low,
            ref_high=high,
            abnormal_flag=get("abnormal_flag", _flag),
            findings=get("findings"),
            conclusion=get("conclusion"),
            observed_at=get("observed_at", _time),
            eqa_passed=get("eqa_passed", _bool),
            cost_fen=get("cost_fen", _money) or 0,
        )

    def item(self, cells: dict[str, str], problems: list[tuple[str, str]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "drug_code": cells.get("drug_code"),
            "drug_name": cells.get("drug_name", ""),
            "dose": cells.get("dose"),
            "frequency": cells.get("frequency"),
        }
        for name, parser in (("days_supplied", _int), ("quantity", _float), ("cost_fen", _money)):
            text = cells.get(name)
            if text is None:
                continue
            try:
                out[name] = parser(text)
            except CellError as exc:
                problems.append((name, str(exc)))
        return out


_MODEL: dict[str, type[EncounterIn] | type[ResultIn] | type[PrescriptionIn]] = {
    "encounters": EncounterIn,
    "results": ResultIn,
    "prescriptions": PrescriptionIn,
}

_PYDANTIC_MESSAGES = {
    "missing": "必填",
    "string_too_short": "不能为空",
    "too_short": "不能为空",
    "literal_error": "取值无效",
}


def _pydantic_problem(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "string_too_short" and (ctx.get("min_length") or 1) > 1:
        return f"长度至少 {ctx.get('min_length')} 个字符"
    if kind == "string_too_long":
        return f"长度不能超过 {ctx.get('max_length')} 个字符"
    if kind == "greater_than_equal":
        return f"不能小于 {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"不能大于 {ctx.get('le')}"
    if kind == "too_long":
        return f"不能超过 {ctx.get('max_length')} 项"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return _PYDANTIC_MESSAGES.get(kind, str(err["msg"]))


# --- the bulk way for encounters ---------------------------------------------------------


class _Defer(Exception):
    """A row the bulk way does not take as it stands: its batch goes the general way."""


# The encounter columns the bulk way reads, in the order `_FastEncounters._convert` unpacks.
_FAST_FIELDS = (
    "source_id", "source_system", "id_number", "name", "sex", "birth_date", "institution_code",
    "external_institution", "area_scope", "department", "practitioner_code", "encounter_class",
    "started_at", "ended_at", "disposition", "tcm", "drg_code", "drg_weight", "primary_dx",
    "primary_dx_name", "other_dx", "other_dx_names", "procedure_codes", "procedure_names",
    "procedure_grades", *(c for c in ENCOUNTER_CONTENT if c.endswith("_fen")),
)  # fmt: skip


class _FastEncounters:
    """An encounters file's rows converted straight to stored form (`EncounterRow`), with no
    dict or `EncounterIn` per row: the cost of those was most of an import's time, and issue
    3 asks for at least 20,000 encounters per second. The rules are those of `_Reader.parse`
    and `EncounterIn`, with the same cell parsers, but this way never words a problem: a row
    with anything it does not take as it stands (a cell that does not parse, a value out of
    range, a missing required cell) sends its whole batch the general way, which reports it
    by line and column. `tests/record/test_csv_bulk.py` checks that both ways store the same
    rows and take the same batches."""

    def __init__(self, reader: _Reader) -> None:
        self.source_system = reader.source_system
        self.positions = [reader.index.get(name, -1) for name in _FAST_FIELDS]
        # every row gets a blank cell appended, which absent columns (-1) read
        self.cells = operator.itemgetter(*self.positions)

    def rows(self, batch: _Batch) -> list[EncounterRow] | None:
        convert = self._convert
        try:
            return [convert(n, row) for n, (_, row) in enumerate(batch.rows)]
        except (_Defer, CellError):
            return None

    def _convert(self, index: int, row: list[str]) -> EncounterRow:
        try:
            cells: Iterable[str] = map(str.strip, self.cells([*row, ""]))
        except IndexError:  # a row shorter than the header
            cells = [row[i].strip() if 0 <= i < len(row) else "" for i in self.positions]
        (sid, system, number, name, sex, birth, inst, external, scope, dept, prac, cls, started,
         ended, disposition, tcm, drg_code, drg_weight, pdx, pdx_name, odx, odx_names, pcodes,
         pnames, pgrades, *money) = cells  # fmt: skip
        system = self.source_system or system or inst
        if (
            not 0 < len(sid) <= 80
            or not 0 < len(system) <= 60
            or not 15 <= len(number) <= 20
            or len(name) > 30
            or len(inst) > 40
            or len(external) > 100
            or not (inst or external)
            or len(dept) > 60
            or len(prac) > 40
            or len(drg_code) > 20
            or not cls
            or not started
        ):
            raise _Defer
        if sex:
            _sex(sex)
        if birth:
            _date(birth)
        begin = _time(started)
        end = _time(ended) if ended else None
        if end is not None and end < begin:
            raise _Defer
        weight = None
        if drg_weight:
            weight = _float(drg_weight)
            if not 0 <= weight <= 100:  # NaN fails too
                raise _Defer
            weight = round(weight, 4)
        diagnoses: list[tuple[str, str | None, int]] = []
        if pdx:
            diagnoses.append((pdx, pdx_name or None, 1))
        if odx:
            names = _split(odx_names)
            for n, code in enumerate(_split(odx)):
                diagnoses.append((code, names[n] if n < len(names) else None, len(diagnoses) + 1))
        procedures: list[tuple[str, str | None, int | None, bool, datetime | None]] = []
        if pcodes:
            names, grades = _split(pnames), _split(pgrades)
            for n, code in enumerate(_split(pcodes)):
                grade = _grade(grades[n]) if n < len(grades) else None
                procedures.append((code, names[n] if n < len(names) else None, grade, False, begin))
        if len(diagnoses) > 30 or len(procedures) > 30:
            raise _Defer
        for code, text, _ in diagnoses:
            if not 3 <= len(code) <= 20 or (text is not None and len(text) > 100):
                raise _Defer
        for code, text, *_ in procedures:
            if not 2 <= len(code) <= 20 or (text is not None and len(text) > 100):
                raise _Defer
        return EncounterRow(
            index,
            system,
            sid,
            number,
            inst or None,
            dept or None,
            prac or None,
            (
                _class(cls),
                _scope(scope) if scope else "local",
                external or None,
                begin,
                end,
                _disposition(disposition) if disposition else None,
                _bool(tcm) if tcm else False,
                drg_code or None,
                weight,
                *[_money(m) if m else 0 for m in money],
            ),
            diagnoses,
            procedures,
        )


# --- the import ----------------------------------------------------------------------------


@dataclass
class CsvImportSummary:
    """What an import did. `failed_lines` are the (first, last) line ranges of the batches that
    were rolled back; `errors` holds the first `MAX_REPORTED_ERRORS` problems (line and
    column), `error_count` all of them."""

    kind: str
    path: str
    rows: int = 0
    records: int = 0
    batches: int = 0
    batches_failed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    residents_registered: int = 0
    error_count: int = 0
    errors: list[RecordError] = field(default_factory=list)
    failed_lines: list[tuple[int, int]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.batches_failed == 0

    def add(self, report: IngestReport) -> None:
        self.created += report.created
        self.updated += report.updated
        self.unchanged += report.unchanged
        self.residents_registered += report.residents_registered

    def merge(self, part: CsvImportSummary) -> None:
        """Add what one batch did (`part`), batches being merged in file order."""
        self.records += part.records
        self.batches_failed += part.batches_failed
        self.failed_lines.extend(part.failed_lines)
        self.error_count += part.error_count
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(part.errors[: max(room, 0)])
        self.created += part.created
        self.updated += part.updated
        self.unchanged += part.unchanged
        self.residents_registered += part.residents_registered


def format_error(error: RecordError) -> str:
    """``第 12 行，列「出院时间」：出院时间早于入院时间``."""
    where = f"第 {error.line} 行，" if error.line is not None else ""
    return f"{where}列「{error.field}」：{error.problem}"


class _Rollback(Exception):
    pass


Transaction = Callable[[], AbstractContextManager[Session]]


def import_csv(
    path: str | Path,
    kind: str,
    *,
    actor: Actor | None = None,
    source_system: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    engine: Engine | None = None,
    transaction: Transaction | None = None,
    progress: Callable[[int], None] | None = None,
    register_missing: bool = True,
    read_ahead: bool | None = None,
    bulk: bool = True,
    lanes: int | None = None,
) -> CsvImportSummary:
    """Import a CSV file of `kind` (encounters / results / prescriptions), `batch_size` rows at
    a time, each batch all-or-nothing in its own transaction (DESIGN §8: imports are
    transactional and idempotent). A batch with errors is rolled back, reported by line and
    column, and the import goes on. `progress` is called with the number of bytes read since
    the last call. `transaction` (default: `batch_transactions(engine)`) opens one batch's
    transaction. Unless `read_ahead` is False, the next batches are read and converted while
    this one is written: in a forked child process where that is safe (`_can_fork`), else, by
    default only on PostgreSQL, in a thread (on SQLite the writes run in this process and hand
    the interpreter lock back and forth row by row, so a reading thread slows them down:
    measured 2-4x). Encounters take the bulk way (`_FastEncounters`) batch by batch where they
    can; `bulk=False` sends every batch the general way (tests compare the two). On
    PostgreSQL, with the default transactions, such batches are written `lanes` at a time
    (default `LANES`) on as many connections (`_Lanes`). Raises `CsvFileError` for a problem
    with the file as a whole."""
    _check_kind(kind)
    if batch_size < 1:
        raise CsvFileError("批次大小须为正整数", field="batch_size")
    actor = actor or Actor.system("csv-import")
    summary = CsvImportSummary(kind=kind, path=str(path))
    with ExitStack() as stack:
        postgresql = False
        if transaction is None:
            from caregrid.core.db import batch_transactions, get_engine

            engine = engine or get_engine()
            postgresql = engine.dialect.name == "postgresql"
            transaction = stack.enter_context(batch_transactions(engine))
            if read_ahead is None and not _can_fork():
                read_ahead = postgresql
        ahead: Callable[[Iterator[Any]], Iterator[Any]] = _in_turn
        if read_ahead is not False:
            ahead = _forked if _can_fork() else _prefetched if read_ahead else _in_turn
        raw = stack.enter_context(open(path, "rb"))
        encoding = _detect_encoding(raw)
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        rows = csv.reader(text)
        try:
            header = next(rows)
        except StopIteration:
            raise CsvFileError("文件为空（缺少表头行）", field="header") from None
        except UnicodeDecodeError:
            raise CsvFileError("文件编码无法识别（请使用 UTF-8 或 GB18030）") from None
        reader = _Reader(kind, header, source_system)
        fast = _FastEncounters(reader) if bulk and kind == "encounters" else None
        summary.unknown_columns = reader.unknown
        reported = 0
        in_child = ahead is _forked
        parallel: _Lanes | None = None
        residents: dict[str, int] = {}  # 身份证号 -> id, looked up once per import
        if postgresql and fast is not None and (lanes or LANES) > 1:
            assert engine is not None
            others = [
                stack.enter_context(batch_transactions(engine)) for _ in range((lanes or LANES) - 1)
            ]
            write = partial(
                _run_batch, reader=reader, actor=actor, register_missing=register_missing,
                residents=residents,
            )  # fmt: skip
            parallel = stack.enter_context(_Lanes([transaction, *others], summary, write))
        with _gc_paused():
            for built, position in ahead(
                (_prepare(batch, reader, fast, build=not in_child), raw.tell())
                for batch in _batches(rows, reader, batch_size)
            ):
                summary.batches += 1
                summary.rows += len(built.batch.rows)
                if parallel is not None:
                    parallel.run(built)
                else:
                    _run_batch(
                        built, reader, summary, actor, transaction, register_missing,
                        residents=residents,
                    )  # fmt: skip
                if summary.batches % _COLLECT_EVERY == 0:
                    gc.collect(1)  # cyclic garbage of past batches; old objects not scanned
                if progress is not None:
                    progress(position - reported)
                    reported = position
            if parallel is not None:
                parallel.finish()
        if progress is not None:
            # the whole file is read (a child process may have read it: not `raw.tell()`)
            progress(max(os.fstat(raw.fileno()).st_size - reported, 0))
    return summary


_T = TypeVar("_T")


def _in_turn(items: Iterator[_T]) -> Iterator[_T]:
    return items


# Collecting scans every young object, including the batches read ahead (~70 ms a time): only
# every so many batches, which keeps the garbage of sessions and transactions bounded.
_COLLECT_EVERY = 20


def _prefetched(items: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """`items`, produced by a background thread up to `depth` ahead: reading and converting
    the next batch overlaps with writing this one, while the database (or SQLite's B-tree
    work, which runs without the interpreter lock) is busy. Errors of the producer (a broken
    file) are raised here, in order; leaving the loop early stops the producer."""
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put((done, exc))

    worker = threading.Thread(target=produce, name="csv-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            with suppress(queue.Empty):
                slots.get_nowait()  # unblock a producer waiting for room
            worker.join(timeout=0.05)


def _can_fork() -> bool:
    """Whether batches can be read and converted in a forked child process: on a platform
    with fork, and only while this process runs no other thread (a thread holding a lock at
    the fork would leave it held in the child)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _forked(items: Iterator[_T]) -> Iterator[_T]:
    """`items`, produced by a forked child process and handed over through a pipe: reading
    and converting the next batches runs on another core while this process writes, even on
    SQLite, whose writes hold this process's interpreter lock (where a reading thread only
    slowed them). The bulk way's rows cost about 2 µs each to unpickle, a fifth of converting
    them. Errors of the child (a broken file) are raised here, in order; leaving the loop
    early ends the child. The child reads the file from where this process left it and must
    be the only one reading it from then on."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(items, send), daemon=True)
    child.start()
    send.close()
    try:
        while True:
            try:
                kind, payload = receive.recv()
            except EOFError:
                raise RuntimeError("读取 CSV 的子进程意外退出") from None
            if kind == "item":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _produce(items: Iterator[Any], send: Any) -> None:
    try:
        for item in items:
            send.send(("item", item))
        send.send(("done", None))
    except BaseException as exc:  # handed to the parent, raised there
        try:
            send.send(("error", exc))
        except Exception:  # an exception that does not pickle
            send.send(("error", RuntimeError(repr(exc))))


def _detect_encoding(raw: BinaryIO) -> str:
    sample = raw.read(1 << 20)
    raw.seek(0)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


@dataclass
class _Batch:
    first_line: int
    last_line: int
    rows: list[tuple[int, list[str]]]  # (line, cells as read)


def _batches(rows: Iterator[list[str]], reader: _Reader, size: int) -> Iterator[_Batch]:
    """Rows in batches of about `size`, never splitting the rows of one record."""
    pending: list[tuple[int, list[str]]] = []
    last_key: str | None = None
    line = 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except UnicodeDecodeError:
            raise CsvFileError(
                f"第 {line + 1} 行附近编码无法识别（请使用 UTF-8 或 GB18030）"
            ) from None
        except csv.Error as exc:
            raise CsvFileError(f"第 {line + 1} 行 CSV 格式错误：{exc}") from None
        line = rows.line_num  # type: ignore[attr-defined]
        if not "".join(row).strip():
            continue
        key = reader.key(reader.cells(row)) if reader.kind == "prescriptions" else None
        if len(pending) >= size and (key is None or key != last_key):
            yield _Batch(pending[0][0], pending[-1][0], pending)
            pending = []
        pending.append((line, row))
        last_key = key
    if pending:
        yield _Batch(pending[0][0], pending[-1][0], pending)


_Built = tuple[_Batch, list[IncomingRecord], list[_Source], list[RecordError]]


def _build(batch: _Batch, reader: _Reader) -> _Built:
    """Records of a batch (rows of one prescription merged), and the row-level problems."""
    model = _MODEL[reader.kind]
    errors: list[RecordError] = []
    records: list[IncomingRecord] = []
    sources: list[_Source] = []
    grouped: dict[str, tuple[dict[str, Any], _Source, list[tuple[str, str]]]] = {}
    prepared: list[tuple[dict[str, Any], _Source, list[tuple[str, str]]]] = []
    for line, row in batch.rows:
        cells = reader.cells(row)
        problems: list[tuple[str, str]] = []
        key = reader.key(cells)
        if key is not None and key in grouped:
            data, src, _ = grouped[key]
            data["items"].append(reader.item(cells, problems))
            src.item_lines.append(line)
        else:
            src = _Source(line)
            data = reader.parse(cells, problems, src)
            if key is not None:
                data["items"] = [reader.item(cells, problems)]
                src.item_lines.append(line)
                grouped[key] = (data, src, problems)
            prepared.append((data, src, problems))
        for column, problem in problems:
            errors.append(
                RecordError(
                    line=line,
                    source_id=cells.get("source_id"),
                    field=reader.column(column),
                    problem=problem,
                )
            )
    for data, src, problems in prepared:
        if problems:
            continue
        try:
            record = model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                line, column = _locate(reader, src, tuple(str(p) for p in err["loc"]))
                errors.append(
                    RecordError(
                        line=line,
                        source_id=data.get("source_id"),
                        field=column,
                        problem=_pydantic_problem(err),
                    )
                )
            continue
        records.append(record)
        sources.append(src)
    return batch, records, sources, errors


def _locate(reader: _Reader, src: _Source, loc: tuple[str, ...]) -> tuple[int, str]:
    """The line and column header a record field path (``diagnoses.1.code``) came from."""
    if not loc:
        return src.line, "（整行）"
    if loc[0] == "diagnoses" and len(loc) > 1 and loc[1].isdigit():
        n = int(loc[1])
        name = src.dx_columns[n] if n < len(src.dx_columns) else "other_dx"
        if len(loc) > 2 and loc[2] == "name":
            name = "primary_dx_name" if name == "primary_dx" else "other_dx_names"
        return src.line, reader.column(name)
    if loc[0] == "procedures":
        sub = loc[2] if len(loc) > 2 else "code"
        name = {"name": "procedure_names", "grade": "procedure_grades"}.get(sub, "procedure_codes")
        return src.line, reader.column(name)
    if loc[0] == "items" and len(loc) > 1 and loc[1].isdigit():
        n = int(loc[1])
        line = src.item_lines[n] if n < len(src.item_lines) else src.line
        return line, reader.column(loc[2] if len(loc) > 2 else "drug_name")
    path = ".".join(loc[:2]) if loc[0] == "patient" else loc[0]
    return src.line, reader.column(_FIELD_COLUMN.get(path, path))


@dataclass
class _Prepared:
    """A batch ready to write: as `EncounterRow`s when every row takes the bulk way, else
    built as records the general way."""

    batch: _Batch
    rows: list[EncounterRow] | None
    built: _Built | None


def _prepare(
    batch: _Batch, reader: _Reader, fast: _FastEncounters | None, build: bool = True
) -> _Prepared:
    """The batch the bulk way if it takes it, else (with `build`) the general way; without
    `build` the general way is left to `_run_batch` (a child process hands batches over
    cheaply as rows, not as Pydantic records)."""
    rows = fast.rows(batch) if fast is not None else None
    return _Prepared(batch, rows, _build(batch, reader) if rows is None and build else None)


def _run_batch(
    prepared: _Prepared,
    reader: _Reader,
    summary: CsvImportSummary,
    actor: Actor,
    transaction: Transaction,
    register_missing: bool,
    general: AbstractContextManager[Any] | None = None,
    residents: dict[str, int] | None = None,
) -> None:
    """Write one batch in its own transaction: the bulk way when it was prepared so and the
    database side agrees (`ingest_encounter_rows`), else the general way, which reports every
    problem; with any problem the batch is rolled back. `residents` is the import's record of
    residents already looked up (`ingest_encounter_rows`).

    With `general` (`_Lanes`: entered once every earlier batch is done), a batch the bulk way
    hands back is written the general way in a transaction of its own, opened and committed
    inside `general`: residents are then registered in file order, each committed before a
    later batch's general way looks for it (the bulk way writes nothing when it hands a batch
    back)."""
    if general is not None:
        if prepared.rows is not None:
            with transaction() as session:
                written = ingest_encounter_rows(session, actor, prepared.rows, residents)
            if written is not None:
                summary.records += len(prepared.rows)
                summary.add(written)
                return
        with general:
            _run_batch(
                _Prepared(prepared.batch, None, prepared.built),
                reader, summary, actor, transaction, register_missing,
            )  # fmt: skip
        return
    batch = prepared.batch
    built = prepared.built
    errors: list[RecordError] = []
    report: IngestReport | None = None
    try:
        with transaction() as session:
            if prepared.rows is not None:
                report = ingest_encounter_rows(session, actor, prepared.rows, residents)
            if report is not None:
                summary.records += len(prepared.rows or ())
            else:
                built = built or _build(batch, reader)
                _, records, sources, errors = built
                summary.records += len(records)
                report = IngestReport()
                if records:
                    report = ingest_batch(
                        session, actor, records, register_missing=register_missing
                    )
                for e in report.errors:
                    line, column = _locate(reader, sources[e.index or 0], tuple(e.field.split(".")))
                    errors.append(
                        RecordError(
                            line=line, source_id=e.source_id, field=column, problem=e.problem
                        )
                    )
                if errors:
                    raise _Rollback
    except _Rollback:
        pass
    if errors:
        summary.batches_failed += 1
        summary.failed_lines.append((batch.first_line, batch.last_line))
        errors.sort(key=lambda e: e.line or 0)
        summary.error_count += len(errors)
        room = MAX_REPORTED_ERRORS - len(summary.errors)
        summary.errors.extend(errors[: max(room, 0)])
    elif report is not None:
        summary.add(report)


# Batches of encounters written at once on PostgreSQL (`_Lanes`). Measured on a 2-core machine
# (100,000 encounters, alternated, medians of 4): 20,765/s with two against 13,044/s with one;
# three gave 19,455/s against two's 21,030/s.
LANES = 2


class _Lanes:
    """Bulk batches written several at a time, each on its own connection in its own thread
    (PostgreSQL): one server process checks foreign keys and fills indexes for one batch while
    another does the next, and this process prepares rows meanwhile.

    Batches in flight must not depend on each other, as they would not when written in turn:
    - a batch naming a source id that a batch in flight also names waits for that one (its
      stored copy decides between insert, update and unchanged);
    - the general way, which may register residents (and names them from the first row that
      gives the 身份证号), waits for every batch before its own to be done, and is committed
      before a later batch's general way can start (`general`, see `_run_batch`); a batch
      prepared only for it waits for every batch in flight and runs alone;
    - the bulk way reads residents, institutions and practitioners and writes none of them,
      so it needs no more; the audit chain's head is locked by each batch for its last step.
    What each batch did is merged into the summary in file order."""

    def __init__(
        self,
        transactions: list[Transaction],
        summary: CsvImportSummary,
        write: Callable[..., None],
    ) -> None:
        """`write(prepared, summary=, transaction=, general=)` writes one batch
        (`_run_batch` with the import's other arguments)."""
        self._idle = list(transactions)
        self._summary, self._run = summary, write
        self._pool = ThreadPoolExecutor(len(transactions), thread_name_prefix="csv-import-lane")
        self._flight: list[tuple[Future[CsvImportSummary], frozenset[Any], Transaction]] = []
        self._order: deque[Future[CsvImportSummary]] = deque()

    def __enter__(self) -> _Lanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)  # a batch in flight finishes (or rolls back) first

    def run(self, prepared: _Prepared) -> None:
        if prepared.rows is None:
            self.finish()
            part = CsvImportSummary(kind=self._summary.kind, path=self._summary.path)
            self._write(prepared, part, self._idle[0], [])
            self._summary.merge(part)
            return
        keys = frozenset((r.source_system, r.source_id) for r in prepared.rows)
        while True:
            waiting = [f for f, k, _ in self._flight if not keys.isdisjoint(k)]
            if not waiting and self._idle:
                break
            wait(waiting or [f for f, _, _ in self._flight], return_when=FIRST_COMPLETED)
            self._settle()
        transaction = self._idle.pop()
        part = CsvImportSummary(kind=self._summary.kind, path=self._summary.path)
        earlier = [f for f, _, _ in self._flight]  # every batch before this one not yet done
        future = self._pool.submit(self._write, prepared, part, transaction, earlier)
        self._flight.append((future, keys, transaction))
        self._order.append(future)
        self._settle()

    def finish(self) -> None:
        """Wait for every batch in flight and merge what they did."""
        wait([f for f, _, _ in self._flight])
        self._settle()

    def _write(
        self,
        prepared: _Prepared,
        part: CsvImportSummary,
        transaction: Transaction,
        earlier: list[Future[CsvImportSummary]],
    ) -> CsvImportSummary:
        self._run(prepared, summary=part, transaction=transaction, general=_after(earlier))
        return part

    def _settle(self) -> None:
        for item in [i for i in self._flight if i[0].done()]:
            self._flight.remove(item)
            self._idle.append(item[2])
        while self._order and self._order[0].done():
            self._summary.merge(self._order.popleft().result())  # raises the batch's error


@contextmanager
def _after(futures: list[Future[CsvImportSummary]]) -> Iterator[None]:
    """Once the batches of `futures` are done (written, or failed)."""
    wait(futures)
    yield


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the automatic cyclic garbage collector during an import: building tens of
    thousands of short-lived dicts and records triggers repeated full collections that cost
    almost as much as the import itself (measured: 1.8x slower with it on). The import
    collects the young generations after each batch instead, so memory stays bounded, and the
    collector is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def savepoint(session: Session) -> Iterator[Session]:
    """A batch transaction as a savepoint of an existing session (tests, or an importer that
    owns an outer transaction)."""
    with session.begin_nested():
        yield session
