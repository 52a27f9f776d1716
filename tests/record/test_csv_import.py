"""CSV import end to end: templates with Chinese headers, idempotent re-import, per-batch
all-or-nothing with errors by line and column, encodings, and the `caregrid import` CLI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from caregrid.audit.models import AuditEntry
from caregrid.record.cli import app
from caregrid.record.ingest.csv_import import (
    CsvFileError,
    format_error,
    import_csv,
    savepoint,
    template_text,
)
from caregrid.record.models import Diagnosis, Encounter, Prescription, PrescriptionItem, Result
from caregrid.registry.idnumber import make_id_number
from tests.conftest import City

ZHANG = make_id_number("371302", date(1958, 3, 12), 123)
LI = make_id_number("371302", date(1990, 11, 2), 246)
HEADER = (
    "就诊流水号,身份证号,姓名,机构编码,就诊类型,入院时间,出院时间,"
    "主要诊断编码,其他诊断编码,总费用(元),药品费(元)"
)


def row(sid: str, number: str = ZHANG, **cells: str) -> str:
    values = {
        "inst": "T-RMYY",
        "cls": "住院",
        "start": "2025-03-05 14:10",
        "end": "2025-03-11 10:00",
        "dx": "K35.800",
        "other": "K65.000；E86.x00",
        "total": "12580.40",
        "drug": "3120.75",
    } | cells
    name = "张建国" if number == ZHANG else "李秀英"
    return (
        f"{sid},{number},{name},{values['inst']},{values['cls']},{values['start']},"
        f"{values['end']},{values['dx']},{values['other']},{values['total']},{values['drug']}"
    )


def write(tmp_path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "encounters.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding=encoding)
    return path


def count(db: Session, model: object) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]


@pytest.fixture
def tx(db: Session, city: City) -> Callable[[], AbstractContextManager[Session]]:
    return lambda: savepoint(db)


def test_a_file_imported_twice_is_written_once(
    db: Session, tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    path = write(tmp_path, [row("ZY1"), row("ZY2", LI, dx="I10", other="")])
    first = import_csv(path, "encounters", transaction=tx)
    assert first.ok and first.created == 2 and first.residents_registered == 2
    second = import_csv(path, "encounters", transaction=tx)
    assert second.ok and (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert count(db, Encounter) == 2 and count(db, Diagnosis) == 4
    enc = db.scalars(select(Encounter).where(Encounter.source_id == "ZY1")).one()
    assert enc.total_fen == 1258040 and enc.drug_fen == 312075
    assert enc.started_at == datetime(2025, 3, 5, 6, 10, tzinfo=UTC)  # 14:10 China time
    assert enc.source_system == "T-RMYY"  # defaults to the institution code
    residents = {enc.resident_id}
    entries = db.scalars(select(AuditEntry.resident_id).where(AuditEntry.action == "import"))
    assert residents <= set(entries)


def test_a_changed_row_is_updated_not_duplicated(
    db: Session, tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    import_csv(write(tmp_path, [row("ZY1"), row("ZY2", LI)]), "encounters", transaction=tx)
    summary = import_csv(
        write(tmp_path, [row("ZY1", total="13000.00"), row("ZY2", LI)]),
        "encounters",
        transaction=tx,
    )
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
    assert count(db, Encounter) == 2
    assert db.scalar(select(Encounter.total_fen).where(Encounter.source_id == "ZY1")) == 1300000


@pytest.mark.parametrize(
    ("cells", "column", "problem"),
    [
        ({"total": "-5.00"}, "总费用(元)", "金额不能为负数"),
        ({"end": "2025-03-01 08:00"}, "出院时间", "出院时间早于入院时间"),
        ({"inst": "NOPE"}, "机构编码", "机构编码不存在"),
        ({"dx": "XYZ"}, "主要诊断编码", "ICD-10"),
        ({"other": "I10;1234"}, "其他诊断编码", "ICD-10"),
        ({"other": "I10;12"}, "其他诊断编码", "长度至少 3 个字符"),
        ({"cls": "住店"}, "就诊类型", "取值无效"),
        ({"drug": "1.234"}, "药品费(元)", "两位小数"),
    ],
)
def test_a_bad_row_rolls_back_its_batch_and_names_line_and_column(
    db: Session,
    tmp_path: Path,
    tx: Callable[[], AbstractContextManager[Session]],
    cells: dict[str, str],
    column: str,
    problem: str,
) -> None:
    lines = [row("ZY1"), row("ZY2", **cells), row("ZY3"), row("ZY4", LI)]
    summary = import_csv(write(tmp_path, lines), "encounters", batch_size=2, transaction=tx)
    assert not summary.ok and summary.batches == 2 and summary.batches_failed == 1
    assert summary.failed_lines == [(2, 3)]
    [error] = summary.errors
    assert (error.line, error.field) == (3, column)
    assert problem in error.problem
    assert format_error(error).startswith(f"第 3 行，列「{column}」：")
    # nothing of the failed batch, all of the next one
    stored = set(db.scalars(select(Encounter.source_id)))
    assert stored == {"ZY3", "ZY4"}


def test_each_resident_is_looked_up_once_per_import(
    db: Session,
    tmp_path: Path,
    tx: Callable[[], AbstractContextManager[Session]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from caregrid.registry import service as registry

    asked: list[str] = []
    look_up = registry.resident_ids_by_number

    def counted(session: Session, numbers: Any) -> dict[str, int]:
        asked.extend(numbers)
        return look_up(session, numbers)

    # the first import registers both residents (the general way, which looks up its own)
    import_csv(write(tmp_path, [row("ZY1"), row("ZY2", LI)]), "encounters", transaction=tx)
    monkeypatch.setattr(registry, "resident_ids_by_number", counted)
    lines = [row("ZY3"), row("ZY4", LI), row("ZY5"), row("ZY6", LI), row("ZY7")]
    summary = import_csv(write(tmp_path, lines), "encounters", batch_size=2, transaction=tx)
    assert summary.created == 5 and summary.batches == 3
    assert sorted(asked) == sorted([ZHANG, LI])


@pytest.mark.parametrize("ahead", ["process", "thread"])
def test_reading_ahead_reports_exactly_what_reading_in_turn_does(
    db: Session,
    tmp_path: Path,
    tx: Callable[[], AbstractContextManager[Session]],
    monkeypatch: pytest.MonkeyPatch,
    ahead: str,
) -> None:
    import multiprocessing

    from caregrid.record.ingest import csv_import

    if ahead == "process" and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform cannot fork")
    # Forced: earlier tests may have left idle threads in this process, which makes the
    # importer itself choose the thread.
    monkeypatch.setattr(csv_import, "_can_fork", lambda: ahead == "process")
    lines = [row("ZY1"), row("ZY2", cls="住店"), row("ZY3"), row("ZY4", LI), row("ZY5", end="x")]
    path = write(tmp_path, lines)
    summaries = []
    read: list[int] = []
    for read_ahead in (False, True):
        with db.begin_nested() as outer:
            summaries.append(
                import_csv(path, "encounters", batch_size=2, transaction=tx,
                           read_ahead=read_ahead, progress=read.append)
            )  # fmt: skip
            outer.rollback()
    in_turn, ahead_summary = summaries
    assert in_turn.failed_lines == [(2, 3), (6, 6)] and in_turn.created == 2
    assert ahead_summary == in_turn
    # both report the whole file as read, once each
    assert sum(read) == 2 * path.stat().st_size and all(n >= 0 for n in read)


def test_a_broken_line_stops_the_import_after_the_batches_before_it_are_written(
    db: Session, tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    # Batches are read ahead of the writes: a file error (here a cell beyond the csv module's
    # size limit) found while reading must still come after the complete batches before it,
    # and leave them written (ZY3's batch is still open when line 5 fails: not written).
    lines = [row("ZY1"), row("ZY2", LI), row("ZY3"), "ZY4," + "x" * 200_000, row("ZY5")]
    progressed: list[int] = []
    with pytest.raises(CsvFileError, match="第 5 行 CSV 格式错误"):
        import_csv(
            write(tmp_path, lines), "encounters", batch_size=1, transaction=tx,
            progress=progressed.append, read_ahead=True,
        )  # fmt: skip
    assert set(db.scalars(select(Encounter.source_id))) == {"ZY1", "ZY2"}
    assert len(progressed) == 2 and all(n >= 0 for n in progressed)


def test_a_bad_id_number_is_reported_on_its_column(
    db: Session, tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    bad = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    summary = import_csv(write(tmp_path, [row("ZY1", bad)]), "encounters", transaction=tx)
    [error] = summary.errors
    assert (error.line, error.field) == (2, "身份证号") and "校验码" in error.problem
    assert count(db, Encounter) == 0


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_bom_and_gb18030_files_are_read(
    db: Session,
    tmp_path: Path,
    tx: Callable[[], AbstractContextManager[Session]],
    encoding: str,
) -> None:
    summary = import_csv(write(tmp_path, [row("ZY1")], encoding), "encounters", transaction=tx)
    assert summary.ok and summary.created == 1


def test_a_missing_required_column_is_a_file_error(
    tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("就诊流水号,姓名\nZY1,张三\n", encoding="utf-8")
    with pytest.raises(CsvFileError, match="缺少必填列：身份证号"):
        import_csv(path, "encounters", transaction=tx)
    with pytest.raises(CsvFileError, match="未知的导入类型"):
        import_csv(path, "patients", transaction=tx)


def test_the_three_templates_import_as_they_are(
    db: Session, tmp_path: Path, tx: Callable[[], AbstractContextManager[Session]]
) -> None:
    for kind in ("encounters", "results", "prescriptions"):
        text = template_text(kind).replace("LY-JQS", "T-JQS").replace("LY-RMYY", "T-RMYY")
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        summary = import_csv(path, kind, transaction=tx)
        assert summary.ok, [format_error(e) for e in summary.errors]
    assert count(db, Encounter) == 2 and count(db, Result) == 3
    assert count(db, Prescription) == 1 and count(db, PrescriptionItem) == 2
    glu = db.scalars(select(Result).where(Result.item_code == "GLU")).one()
    assert (glu.ref_low, glu.ref_high, glu.abnormal_flag, glu.cost_fen) == (3.9, 6.1, "H", 800)
    assert glu.encounter_id is not None
    # the ECG read by the lead hospital (its own source system) belongs to the township visit
    ecg = db.scalars(select(Result).where(Result.item_code == "ECG-12")).one()
    assert ecg.source_system == "T-RMYY"
    assert ecg.encounter_id == glu.encounter_id


# --- the CLI on a real database file --------------------------------------------------------


def test_the_cli_imports_reports_and_exits_with_the_right_code(tmp_path: Path) -> None:
    from caregrid.core.db import unit_of_work
    from caregrid.core.migrate import upgrade
    from tests.conftest import build_city
    from tests.support import use_database

    with use_database(f"sqlite:///{tmp_path / 'cli.db'}") as engine:
        upgrade(engine)
        with unit_of_work(engine) as session:
            build_city(session)
        runner = CliRunner()
        good = write(tmp_path, [row("ZY1"), row("ZY2", LI)])
        result = runner.invoke(app, ["csv", "encounters", str(good)])
        assert result.exit_code == 0, result.output
        assert "新增 2 条" in result.output
        result = runner.invoke(app, ["csv", "encounters", str(good), "--batch-size", "1"])
        assert result.exit_code == 0 and "未变 2 条" in result.output
        bad = write(tmp_path, [row("ZY3", end="2025-03-01 08:00")])
        result = runner.invoke(app, ["csv", "encounters", str(bad)])
        assert result.exit_code == 1
        assert "第 2 行，列「出院时间」：出院时间早于入院时间" in result.output
        assert runner.invoke(app, ["csv", "patients", str(good)]).exit_code == 2
        template = runner.invoke(app, ["template", "results"])
        assert template.exit_code == 0 and template.output.startswith("报告单号,")


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12", 1200), ("12.5", 1250), ("12.05", 1205), ("0.00", 0), ("007", 700),
     ("1,234.5", 123450), ("¥8.60", 860), (" 3.1 ", 310)],
)  # fmt: skip
def test_money_in_yuan_becomes_exact_fen_on_the_fast_and_the_general_path(
    text: str, fen: int
) -> None:
    from caregrid.record.ingest.csv_import import _money

    assert _money(text) == fen


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("12.345", "金额最多两位小数"),
        ("-1", "金额不能为负数"),
        ("12.", "金额"),
        ("abc", "金额格式不正确"),
    ],
)
def test_money_that_is_not_plain_yuan_keeps_its_message(text: str, problem: str) -> None:
    from caregrid.record.ingest.csv_import import CellError, _money

    try:
        value = _money(text)
    except CellError as exc:
        assert problem in str(exc)
    else:  # "12." is a valid Decimal: the general path accepts it as before
        assert text == "12." and value == 1200


def test_an_import_commits_batch_by_batch_on_one_connection_that_checkpoints_rarely(
    tmp_path: Path,
) -> None:
    from caregrid.core.db import (
        BATCH_CHECKPOINT_PAGES,
        batch_transactions,
        make_engine,
        unit_of_work,
    )
    from caregrid.core.migrate import upgrade
    from tests.conftest import build_city

    engine = make_engine(f"sqlite:///{tmp_path / 'import.db'}")
    upgrade(engine)
    with unit_of_work(engine) as session:
        build_city(session)
    lines = [row("ZY1"), row("ZY2", end="2025-03-01 08:00"), row("ZY3"), row("ZY4", LI)]
    summary = import_csv(write(tmp_path, lines), "encounters", batch_size=1, engine=engine)
    assert summary.batches == 4 and summary.batches_failed == 1 and summary.created == 3
    with engine.connect() as conn:
        assert set(conn.scalars(select(Encounter.source_id))) == {"ZY1", "ZY3", "ZY4"}

    def autocheckpoint(session: Session) -> int:
        driver: Any = session.connection().connection.driver_connection
        return int(driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    with batch_transactions(engine) as transaction, transaction() as session:
        assert autocheckpoint(session) == BATCH_CHECKPOINT_PAGES
    # the connection goes back to the pool with SQLite's default
    with unit_of_work(engine) as session:
        assert autocheckpoint(session) == 1000
    engine.dispose()
