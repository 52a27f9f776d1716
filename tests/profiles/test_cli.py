"""`caregrid profile list|show|validate` (mounted by the main CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from caregrid.profiles.cli import app

runner = CliRunner()


def test_list_shows_all_five_profiles() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("lincang", "linyi", "zhongwei", "yunnan_county", "national_city"):
        assert name in result.output
    assert "卫政办发〔2023〕67号" in result.output
    assert "县域医共体" in result.output


def test_show_prints_sections_and_scorecard() -> None:
    result = runner.invoke(app, ["show", "zhongwei"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "号源与床位" in result.output
    assert "capacity.reserved_outpatient_share" in result.output
    assert "≥ 33.33%" in result.output
    assert "002 §四(三)1" in result.output
    assert "评判标准（002 附件2）" in result.output
    assert "责权协同" in result.output


def test_show_as_json() -> None:
    result = runner.invoke(app, ["show", "linyi", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "linyi"
    assert data["parameters"]["capacity.reserved_bed_share"]["value"] == 0.2
    assert len(data["scorecard"]["criteria"]) == 16


def test_show_unknown_profile_prints_one_line_and_exits_2() -> None:
    result = runner.invoke(app, ["show", "atlantis"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "atlantis" in lines[0]


def test_validate_reports_ok(write_profile: Callable[..., Path]) -> None:
    result = runner.invoke(app, ["validate", str(write_profile())])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK")


def test_validate_reports_the_one_line_error(write_profile: Callable[..., Path]) -> None:
    path = write_profile(replace={"value = 0.3": "value = 1.2"})
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "custom.toml: parameters.capacity.reserved_outpatient_share.value" in lines[0]
