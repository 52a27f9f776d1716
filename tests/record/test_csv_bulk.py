"""The CSV importer's bulk way for encounters (`_FastEncounters` and
`upsert.ingest_encounter_rows`) against its general way: for any file, good or bad, both
must store the same rows, take and refuse the same batches and report the same errors. The
bulk way is what makes large imports fast; the general way is the reference that words every
problem, so a difference between them is a bug in the bulk way."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.audit.models import AuditEntry
from caregrid.record.ingest import csv_import
from caregrid.record.ingest.csv_import import format_error, import_csv, savepoint
from caregrid.record.models import Diagnosis, Encounter, Procedure
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Practitioner, Resident
from tests.conftest import City

ZHANG = make_id_number("371302", date(1958, 3, 12), 123)
LI = make_id_number("371302", date(1990, 11, 2), 246)
NEWCOMER = make_id_number("371302", date(2001, 6, 9), 368)  # not in the index: registered
BROKEN = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")  # check digit wrong

HEADER = [
    "就诊流水号", "来源系统", "身份证号", "姓名", "性别", "机构编码", "集团外机构", "就诊地域",
    "科室", "医师编码", "就诊类型", "入院时间", "出院时间", "离院方式", "中医", "DRG编码",
    "DRG权重", "主要诊断编码", "主要诊断名称", "其他诊断编码", "其他诊断名称", "手术编码",
    "手术名称", "手术级别", "总费用(元)", "药品费(元)", "自付费用(元)",
]  # fmt: skip


# Per column: the good values, then the bad ones (each makes its row fail, or at least go the
# general way, as registering a newcomer does).
COLUMNS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("ZY1", "ZY2", "ZY3", "ZY4", "ZY5", "ZY6", "ZY7", "ZY8"), ()),
    (("", "", "HIS-A"), ("S" * 61,)),
    ((ZHANG, ZHANG, LI), (NEWCOMER, BROKEN, "12345")),
    (("", "张建国"), ("名" * 31,)),
    (("", "男", "女"), ("未知",)),
    (("T-RMYY", "T-RMYY", "T-JQS", ""), ("NOPE",)),
    (("", "", "北京协和医院"), ()),
    (("", "本地", "县外", "市外"), ("火星",)),
    (("", "心血管内科", "全科医疗科", "无此科"), ()),
    (("", "", "P-001"), ("P-NOPE",)),
    (("门诊", "住院", "急诊"), ("", "住店")),
    (("2025-03-05 14:10", "2025/03/06 08:00", "2025-03-07"), ("", "昨天")),
    (("", "", "2025-03-11 10:00"), ("2025-03-01 08:00", "明天")),
    (("", "回家", "死亡", "转上级"), ("失踪",)),
    (("", "是", "否"), ("也许",)),
    (("", "GB19"), ("G" * 21,)),
    (("", "1.23456", "0"), ("-1", "101", "nan", "重")),
    (("", "K35.800", "I10", "i10.x00"), ("XYZ", "12")),
    (("", "急性阑尾炎"), ("名" * 101,)),
    (("", "", "K65.000；E86.x00", "E11.900"), ("I10;12", "I10;XYZ")),
    (("", "", "腹膜炎;脱水"), ()),
    (("", "", "47.0901", "47.0901;54.1101"), ("1",)),
    (("", "阑尾切除术"), ()),
    (("", "3", "三级;2"), ("五级",)),
    (("", "12580.40", "0.5", "¥1,200.00"), ("-5.00", "1.234", "abc")),
    (("", "3120.75", "30"), ()),
    (("", "100"), ()),
]
BAD_COLUMNS = [n for n, (_, bad) in enumerate(COLUMNS) if bad]


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, ...]:
    """A row of good cells; about one in eight has one bad cell."""
    row = [draw(st.sampled_from(good)) for good, _ in COLUMNS]
    if draw(st.integers(0, 7)) == 0:
        n = draw(st.sampled_from(BAD_COLUMNS))
        row[n] = draw(st.sampled_from(COLUMNS[n][1]))
    return tuple(row)


def text(rows: Sequence[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


def stored(db: Session) -> dict[str, Any]:
    """Everything an import writes, without ids or times of writing."""
    enc = Encounter.__table__.c
    content = [c for c in enc if c.name not in {"id", "updated_at"}]
    encounters = {
        (row.source_system, row.source_id): tuple(row) for row in db.execute(select(*content))
    }
    diagnoses = Counter(
        db.execute(
            select(Encounter.source_id, Diagnosis.resident_id, Diagnosis.code, Diagnosis.name,
                   Diagnosis.rank).join(Encounter)
        ).all()
    )  # fmt: skip
    procedures = Counter(
        db.execute(
            select(Encounter.source_id, Procedure.resident_id, Procedure.code, Procedure.name,
                   Procedure.grade, Procedure.minimally_invasive, Procedure.performed_at)
            .join(Encounter)
        ).all()
    )  # fmt: skip
    audit = Counter(
        db.execute(
            select(AuditEntry.resource, AuditEntry.resident_id, AuditEntry.detail).where(
                AuditEntry.action == "import"
            )
        ).all()
    )
    residents = set(db.scalars(select(Resident.id_number)))
    return {
        "encounters": encounters,
        "diagnoses": diagnoses,
        "procedures": procedures,
        "audit": audit,
        "residents": residents,
    }


def summary_of(summary: csv_import.CsvImportSummary) -> tuple[Any, ...]:
    return (
        summary.rows,
        summary.records,
        summary.batches,
        summary.batches_failed,
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.residents_registered,
        summary.error_count,
        [format_error(e) for e in summary.errors],
        summary.failed_lines,
    )


def run_both(db: Session, tmp_path: Path, files: list[str], batch_size: int) -> list[Any]:
    """Import `files` one after the other the bulk way, then (from the same start) the general
    way; what each left behind and reported."""
    outcomes = []
    for bulk in (True, False):
        outer = db.begin_nested()
        try:
            reports = []
            for n, content in enumerate(files):
                path = tmp_path / f"file-{n}.csv"
                path.write_text(content, encoding="utf-8")
                summary = import_csv(
                    path,
                    "encounters",
                    batch_size=batch_size,
                    transaction=lambda: savepoint(db),
                    bulk=bulk,
                )
                reports.append(summary_of(summary))
            outcomes.append((reports, stored(db)))
        finally:
            outer.rollback()
    return outcomes


def add_people(db: Session) -> None:
    """Two residents and a practitioner the files name (committed to the test's savepoint,
    rolled back with the test)."""
    db.add(Practitioner(code="P-001", name="王医生", sex="male", title="主治医师"))
    for number, name, sex, born in ((ZHANG, "张建国", "male", date(1958, 3, 12)),
                                    (LI, "李秀英", "female", date(1990, 11, 2))):  # fmt: skip
        db.add(Resident(id_number=number, name=name, sex=sex, birth_date=born))
    db.commit()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(rows(), min_size=1, max_size=8),
    second=st.lists(rows(), min_size=1, max_size=8),
    batch_size=st.integers(1, 4),
)
def test_the_bulk_way_stores_and_reports_exactly_what_the_general_way_does(
    db: Session,
    city: City,
    tmp_path: Path,
    first: list[tuple[str, ...]],
    second: list[tuple[str, ...]],
    batch_size: int,
) -> None:
    if db.scalar(select(Practitioner.id).where(Practitioner.code == "P-001")) is None:
        add_people(db)
    # the second file repeats the first in part (unchanged and changed records, new ones)
    files = [text(first), text(first[: len(first) // 2] + second)]
    bulk, general = run_both(db, tmp_path, files, batch_size)
    assert bulk == general


def test_a_clean_file_takes_the_bulk_way_and_a_bad_batch_the_general_way(
    db: Session, city: City, tmp_path: Path, monkeypatch: Any
) -> None:
    good = ("ZY1", "", ZHANG, "张建国", "男", "T-RMYY", "", "", "心血管内科", "", "住院",
            "2025-03-05 14:10", "2025-03-11 10:00", "回家", "否", "GB19", "1.2", "K35.800",
            "急性阑尾炎", "K65.000；E86.x00", "腹膜炎;脱水", "47.0901", "阑尾切除术", "3",
            "12580.40", "3120.75", "100")  # fmt: skip
    bad = (*good[:17], "XYZ", *good[18:])
    general: list[int] = []
    build = csv_import._build

    def counted(batch: Any, reader: Any) -> Any:
        general.append(batch.first_line)
        return build(batch, reader)

    monkeypatch.setattr(csv_import, "_build", counted)
    lines = [good, ("ZY2", "", LI, "李秀英", "女", *good[5:]), ("ZY3", *good[1:]),
             ("ZY4", *bad[1:])]  # fmt: skip
    path = tmp_path / "encounters.csv"
    path.write_text(text(lines[:2]), encoding="utf-8")
    first = import_csv(path, "encounters", transaction=lambda: savepoint(db))
    # the two residents are not in the index yet: registering them is the general way's
    assert (first.created, first.residents_registered, general) == (2, 2, [2])
    general.clear()
    path.write_text(text(lines), encoding="utf-8")
    summary = import_csv(path, "encounters", batch_size=2, transaction=lambda: savepoint(db))
    # lines 2-3 are stored and unchanged, lines 4-5 hold a bad code: the first batch takes the
    # bulk way, the second the general way, which words the error and rolls the batch back
    assert general == [4]
    assert (summary.unchanged, summary.created, summary.batches_failed) == (2, 0, 1)
    [error] = summary.errors
    assert (error.line, error.field) == (5, "主要诊断编码")
    assert set(db.scalars(select(Encounter.source_id))) == {"ZY1", "ZY2"}
    weight = db.scalar(select(Encounter.drg_weight).where(Encounter.source_id == "ZY1"))
    assert weight is not None and float(weight) == 1.2
