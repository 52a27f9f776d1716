"""A group starts from a profile and overrides values (DESIGN §4)."""

from __future__ import annotations

import pytest

from caregrid.profiles.errors import ProfileInvalid
from caregrid.profiles.loader import apply_overrides, load_profile

KEY = "capacity.reserved_outpatient_share"


def test_override_changes_the_value_and_marks_it() -> None:
    zhongwei = load_profile("zhongwei")
    adjusted = apply_overrides(zhongwei, {KEY: 0.4})
    parameter = adjusted.get(KEY)
    assert parameter is not None
    assert parameter.value == 0.4
    assert parameter.overridden
    assert parameter.note == "集团调整"
    assert parameter.clause == "002 §四(三)1"
    assert parameter.original_value == pytest.approx(1 / 3)


def test_override_leaves_the_cached_profile_untouched() -> None:
    zhongwei = load_profile("zhongwei")
    apply_overrides(zhongwei, {KEY: 0.4})
    original = load_profile("zhongwei").get(KEY)
    assert original is not None
    assert original.value == pytest.approx(1 / 3)
    assert not original.overridden


def test_overriding_twice_keeps_the_profiles_original_value() -> None:
    once = apply_overrides(load_profile("linyi"), {KEY: 0.25})
    twice = apply_overrides(once, {KEY: 0.3})
    parameter = twice.get(KEY)
    assert parameter is not None
    assert (parameter.value, parameter.original_value) == (0.3, 0.2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("referral.response_time_limit_hours", 72),
        ("capacity.priority_requires_contract", False),
        ("payment.mode", "按人头总额预付"),
        ("capacity.referral_priority", ["优先就诊"]),
    ],
)
def test_override_of_each_kind(key: str, value: object) -> None:
    parameter = apply_overrides(load_profile("zhongwei"), {key: value}).get(key)
    assert parameter is not None
    assert parameter.value == value


def test_an_int_may_override_a_float() -> None:
    parameter = apply_overrides(load_profile("zhongwei"), {"targets.cmi": 1}).get("targets.cmi")
    assert parameter is not None and parameter.value == 1


def test_override_of_an_unknown_key_is_rejected() -> None:
    with pytest.raises(ProfileInvalid) as caught:
        apply_overrides(load_profile("lincang"), {KEY: 0.2})
    assert caught.value.fields["key"] == KEY
    assert caught.value.fields["profile"] == "lincang"
    assert "\n" not in caught.value.detail


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (KEY, 1.2, "必须在 0 到 1 之间"),
        (KEY, "0.4", "类型不符"),
        (KEY, True, "类型不符"),
        ("capacity.priority_requires_contract", 1, "类型不符"),
        ("governance.head_office_staff", 25.5, "要求整数"),
        ("capacity.referral_priority", ["优先就诊", 1], "类型不符"),
        ("capacity.referral_priority", [], "非空文本列表"),
        ("mutual_recognition.validity_days", -1, "不能为负数"),
    ],
)
def test_override_with_a_wrong_type_or_range_is_rejected(
    key: str, value: object, problem: str
) -> None:
    with pytest.raises(ProfileInvalid) as caught:
        apply_overrides(load_profile("zhongwei"), {key: value})
    assert caught.value.fields["key"].startswith(key)
    assert problem in caught.value.fields["problem"]


def test_no_overrides_returns_the_profile() -> None:
    profile = load_profile("yunnan_county")
    assert apply_overrides(profile, {}) is profile
