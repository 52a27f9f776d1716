"""Malformed profile files fail with one line naming the file, the key and the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from caregrid.core.errors import Invalid
from caregrid.profiles.errors import ProfileInvalid
from caregrid.profiles.loader import load_profile_file, parse_profile
from caregrid.profiles.schemas import Parameter, ParameterSpec

WriteProfile = Callable[..., Path]
SHARE_KEY = "parameters.capacity.reserved_outpatient_share"


def _error(path: Path) -> ProfileInvalid:
    with pytest.raises(ProfileInvalid) as caught:
        load_profile_file(path)
    error = caught.value
    assert "\n" not in error.detail
    assert error.detail.startswith(f"{path.name}: ")
    assert error.fields["file"] == path.name
    return error


def test_minimal_profile_is_valid(write_profile: WriteProfile) -> None:
    profile = load_profile_file(write_profile())
    assert profile.id == "custom"
    assert profile.value("capacity.reserved_outpatient_share") == 0.3


def test_profile_invalid_is_an_invalid_domain_error() -> None:
    assert issubclass(ProfileInvalid, Invalid)
    assert ProfileInvalid.status_code == 422


def test_toml_syntax_error_names_line_and_column(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={"value = 0.3": "value = = 0.3"}))
    assert error.fields["line"] == 12
    assert error.fields["column"] == 9
    assert "第 12 行第 9 列" in error.detail
    assert "TOML 语法错误" in error.detail


def test_share_above_one_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={"value = 0.3": "value = 1.2"}))
    assert error.detail == f"custom.toml: {SHARE_KEY}.value: 必须在 0 到 1 之间 (got 1.2)"
    assert error.fields["key"] == f"{SHARE_KEY}.value"
    assert error.fields["problem"] == "必须在 0 到 1 之间 (got 1.2)"


def test_missing_clause_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'clause = "002 §四(三)1"\n': ""}))
    assert error.fields["key"] == f"{SHARE_KEY}.clause"
    assert "缺少必填项" in error.detail


@pytest.mark.parametrize("clause", ["§四(三)1", "2 §四", "005 §一", "002", "默认"])
def test_malformed_clause_is_rejected(write_profile: WriteProfile, clause: str) -> None:
    error = _error(write_profile(replace={'clause = "002 §四(三)1"': f'clause = "{clause}"'}))
    assert error.fields["key"] == f"{SHARE_KEY}.clause"


def test_clause_citing_another_seed_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'clause = "002 §四(三)1"': 'clause = "001 §三(三)1"'}))
    assert error.fields["key"] == f"{SHARE_KEY}.clause"
    assert "002" in error.fields["problem"]


def test_profile_id_must_equal_the_file_name(write_profile: WriteProfile) -> None:
    error = _error(write_profile(name="other"))
    assert error.fields["key"] == "profile.id"
    assert error.detail.startswith("other.toml: profile.id: ")


def test_seed_must_match_a_known_profile_id(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'id = "custom"': 'id = "linyi"'}, name="linyi"))
    assert error.fields["key"] == "profile.seed"
    assert '"001"' in error.fields["problem"]


def test_unknown_key_in_a_parameter_table_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'unit = "share"': 'unit = "share"\nsource = "x"'}))
    assert error.fields["key"] == f"{SHARE_KEY}.source"
    assert "未知字段" in error.detail


def test_unknown_top_level_table_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(append="\n[extras]\nx = 1\n"))
    assert error.fields["key"] == "extras"


def test_default_clause_without_provisional_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'clause = "002 §四(三)1"': 'clause = "default"'}))
    assert error.fields["key"] == f"{SHARE_KEY}.provisional"


def test_provisional_default_without_a_note_is_rejected(write_profile: WriteProfile) -> None:
    replace = {'clause = "002 §四(三)1"': 'clause = "default"\nprovisional = true'}
    error = _error(write_profile(replace=replace))
    assert error.fields["key"] == f"{SHARE_KEY}.note"


def test_provisional_default_with_a_note_is_accepted(write_profile: WriteProfile) -> None:
    replace = {
        'clause = "002 §四(三)1"': 'clause = "default"\nprovisional = true\nnote = "种子未规定"'
    }
    profile = load_profile_file(write_profile(replace=replace))
    parameter = profile.get("capacity.reserved_outpatient_share")
    assert parameter is not None and parameter.provisional


@pytest.mark.parametrize(
    ("value", "unit", "problem"),
    [
        ('"多"', "share", "单位 share 要求数值"),
        ("1", "bool", "单位 bool 要求 true 或 false"),
        ("2.5", "count", "单位 count 要求整数"),
        ('"up"', "trend", "单位 trend 要求"),
        ('"2024-13-01"', "date", "日期应写作 YYYY-MM-DD"),
        ("[]", "list", "非空文本列表"),
        ("-1", "days", "不能为负数"),
        ("[1, 2]", "list", "必须是布尔值、数字、文本或文本列表"),
    ],
)
def test_value_type_must_agree_with_unit(
    write_profile: WriteProfile, value: str, unit: str, problem: str
) -> None:
    replace = {
        "value = 0.3": f"value = {value}",
        'comparator = ">="\n': "",
        'unit = "share"': f'unit = "{unit}"',
    }
    error = _error(write_profile(replace=replace))
    assert error.fields["key"] == f"{SHARE_KEY}.value"
    assert problem in error.fields["problem"]


def test_comparator_outside_the_allowed_set_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'comparator = ">="': 'comparator = "=>"'}))
    assert error.fields["key"] == f"{SHARE_KEY}.comparator"


def test_comparator_on_a_non_number_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(
        write_profile(replace={"value = 0.3": "value = true", 'unit = "share"': 'unit = "bool"'})
    )
    assert error.fields["key"] == f"{SHARE_KEY}.comparator"


def test_parameter_that_is_not_a_table_is_rejected(write_profile: WriteProfile) -> None:
    error = _error(write_profile(append="\n[parameters.referral]\nsingle_registration = true\n"))
    assert error.fields["key"] == "parameters.referral.single_registration"


def test_missing_profile_field_is_named(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'name = "测试集团"\n': ""}))
    assert error.fields["key"] == "profile.name"


def test_missing_scorecard_is_named(write_profile: WriteProfile) -> None:
    error = _error(write_profile(replace={'[scorecard]\nsource = "002 附件2"\n': ""}))
    assert error.fields["key"] == "scorecard"


def test_criteria_must_be_numbered_from_one(write_profile: WriteProfile) -> None:
    criterion = """
[[scorecard.criteria]]
number = 2
dimension = "资源协同"
title = "甲"
text = "甲。乙"
"""
    error = _error(write_profile(append=criterion))
    assert error.fields["key"] == "scorecard.criteria.0.number"


def test_criterion_title_must_lead_its_text(write_profile: WriteProfile) -> None:
    criterion = """
[[scorecard.criteria]]
number = 1
dimension = "资源协同"
title = "丙"
text = "甲。乙"
"""
    error = _error(write_profile(append=criterion))
    assert error.fields["key"] == "scorecard.criteria.0.title"


def test_group_needs_exactly_one_lead(write_profile: WriteProfile) -> None:
    group = """
[[groups]]
name = "集团"
clause = "002 §四(一)1"

[[groups.members]]
name = "甲"
tier = "member"
"""
    error = _error(write_profile(append=group))
    assert error.fields["key"] == "groups.0.members"


def test_file_that_is_not_toml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("x: 1", encoding="utf-8")
    error = _error(path)
    assert ".toml" in error.detail


def test_missing_file_is_reported(tmp_path: Path) -> None:
    error = _error(tmp_path / "absent.toml")
    assert "无法读取文件" in error.detail


def test_parse_profile_reports_the_given_file_name() -> None:
    with pytest.raises(ProfileInvalid) as caught:
        parse_profile({"parameters": {}}, file="inline.toml")
    assert caught.value.detail == "inline.toml: profile: 缺少 [profile] 表"


def test_models_enforce_the_rules_outside_the_loader_too() -> None:
    with pytest.raises(ValueError):
        ParameterSpec(value=1.5, label="比例", clause="002 §四(三)1", unit="share")
    with pytest.raises(ValueError):
        Parameter(value=0.5, label="比例", clause="002 §四(三)1", unit="share", key="no_section")
