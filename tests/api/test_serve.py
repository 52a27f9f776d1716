"""`caregrid serve --workers N`: several worker processes only on PostgreSQL; SQLite, whose
writes the server queues inside one process, is refused with a clear message."""

from __future__ import annotations

from pathlib import Path

from tests.support import use_database
from typer.testing import CliRunner

from caregrid.cli import app


def test_serving_sqlite_with_several_workers_is_refused(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'serve.db'}"):
        result = CliRunner().invoke(
            app, ["serve", "--workers", "2", "--no-jobs"], env={"COLUMNS": "200"}
        )
    assert result.exit_code == 2
    assert "SQLite 数据库只能由 1 个工作进程提供服务" in result.output
    assert "caregrid 已启动" not in result.output
