"""`caregrid indicators`: table, JSON and Excel output from the configured database, targets
from the named profile, and one-line errors for bad input."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from caregrid.cli import app
from caregrid.core.db import unit_of_work
from caregrid.core.migrate import upgrade
from caregrid.record.models import Encounter
from tests.conftest import build_city
from tests.support import use_database
from tests.web.conftest import make_resident


def test_cli_reports_json_table_and_xlsx(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path}/cli.db") as engine:
        upgrade(engine)
        with unit_of_work(engine) as session:
            city = build_city(session)
            resident, _ = make_resident(session, name="钱七", home_institution_id=city.township_id,
                                        grid_id=city.grid_id)  # fmt: skip
            for institution in (city.township_id, city.township_id, city.lead_id, city.lead_id):
                session.add(
                    Encounter(
                        resident_id=resident.id,
                        institution_id=institution,
                        group_id=city.group_id,
                        encounter_class="outpatient",
                        started_at=datetime(2025, 8, 8, 2, tzinfo=UTC),
                    )
                )
        runner = CliRunner()
        result = runner.invoke(
            app, ["indicators", "--period", "2025", "--profile", "zhongwei", "--by", "month",
                  "--format", "json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        body = json.loads(result.output)
        primary = next(i for i in body["indicators"] if i["slug"] == "primary_visit_share")
        # 2 of 4 visits at the township centre: 50 % against Zhongwei's 65 % -> missed
        assert (primary["value"], primary["status"]) == ("0.500000", "missed")
        assert primary["breakdown"][0]["month"] == "2025-08"

        table = runner.invoke(app, ["indicators", "--period", "2025", "--profile", "zhongwei"])
        assert table.exit_code == 0 and "未达标" in table.output  # the primary-visit row

        out = tmp_path / "report.xlsx"
        xlsx = runner.invoke(app, ["indicators", "--period", "2025", "--by", "member",
                                   "--format", "xlsx", "-o", str(out)])  # fmt: skip
        assert xlsx.exit_code == 0, xlsx.output
        book = load_workbook(io.BytesIO(out.read_bytes()))
        assert book.sheetnames == ["指标汇总", "按成员单位", "指标定义"]

        by_grid = runner.invoke(app, ["indicators", "--period", "2025", "--by", "grid"])
        assert by_grid.exit_code == 0, by_grid.output
        assert "按网格" in by_grid.output and "测试网格" in by_grid.output

        bad = runner.invoke(app, ["indicators", "--period", "2025-13"])
        assert bad.exit_code == 2 and "月份" in bad.output
