"""居民身份证号 (GB 11643-1999): validation with a precise reason, generation, agreement with
stated sex and birth date, and masking (reference/standards.md §2.7)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from caregrid.registry.errors import InvalidIdNumber
from caregrid.registry.idnumber import (
    EARLIEST_BIRTH,
    PROVINCE_CODES,
    check_agrees,
    check_digit,
    make_id_number,
    mask_id_number,
    mask_name,
    mask_phone,
    parse_id_number,
)

TODAY = date(2025, 6, 30)


def with_check(first17: str) -> str:
    return first17 + check_digit(first17)


# --- the verified examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region", "birth", "sex", "sequence"),
    [
        ("11010519491231002X", "110105", date(1949, 12, 31), "female", 2),
        ("440524188001010014", "440524", date(1880, 1, 1), "male", 1),
        ("34052419800101001X", "340524", date(1980, 1, 1), "male", 1),
    ],
)
def test_the_verified_examples_are_valid(
    number: str, region: str, birth: date, sex: str, sequence: int
) -> None:
    assert check_digit(number[:17]) == number[17]
    info = parse_id_number(number, today=TODAY)
    assert info.number == number
    assert info.region_code == region
    assert info.birth_date == birth
    assert info.sex == sex
    assert info.sequence == sequence


def test_spaces_lower_case_x_and_full_width_digits_are_normalised() -> None:
    assert parse_id_number(" 110105 19491231 002x ", today=TODAY).number == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ", today=TODAY).number == (
        "11010519491231002X"
    )


def test_a_legacy_15_digit_number_is_converted_with_its_check_digit() -> None:
    info = parse_id_number("110105491231002", today=TODAY)
    assert info.number == "11010519491231002X"
    assert info.birth_date == date(1949, 12, 31)
    assert info.sex == "female"


def test_without_today_the_china_date_is_used() -> None:
    assert parse_id_number("34052419800101001X").birth_date == date(1980, 1, 1)


# --- each problem has its own message ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "请填写身份证号"),
        ("   ", "请填写身份证号"),
        ("1101051949123100", "实际为 16 位"),
        ("11010519491231002X1", "实际为 19 位"),
        ("11010519491231002Y", "第 18 位（校验码）只能是数字或 X"),
        ("1101051949123100X2", "前 17 位只能是数字"),
        ("11010A19491231002X", "前 17 位只能是数字"),
        ("11010549123100X", "只能由数字组成"),
        (with_check("990105194912310021"[:17]), "前两位 99 不是有效的省级行政区划代码"),
        (with_check("000105194912310021"[:17]), "前两位 00"),
        (with_check("16010519491231002"), "前两位 16"),
        (with_check("11010519491301002"), "1949-13-01 不是有效日期"),
        (with_check("11010519490230002"), "1949-02-30 不是有效日期"),
        (with_check("11010519010229002"), "1901-02-29 不是有效日期"),
        (with_check("11010520300101002"), "2030-01-01 晚于今天"),
        (with_check("11010518791231002"), "1879-12-31 早于 1880 年"),
        ("110105194912310021", "第 18 位应为 X，实际为 1"),
        ("440524188001010015", "第 18 位应为 4，实际为 5"),
    ],
)
def test_a_bad_number_says_exactly_what_is_wrong(raw: str, problem: str) -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(raw, today=TODAY)
    assert problem in caught.value.detail
    assert caught.value.fields == {"field": "id_number"}
    assert caught.value.status_code == 422


def test_a_wrong_check_digit_message_names_the_check() -> None:
    with pytest.raises(InvalidIdNumber, match="校验"):
        parse_id_number("110105194912310021", today=TODAY)


def test_a_birth_date_of_today_is_accepted_and_tomorrow_is_not() -> None:
    assert parse_id_number(make_id_number("110105", TODAY, 1), today=TODAY).birth_date == TODAY
    with pytest.raises(InvalidIdNumber, match="晚于今天"):
        parse_id_number(make_id_number("110105", TODAY + timedelta(days=1), 1), today=TODAY)


def test_the_earliest_birth_date_is_the_standards_own_example() -> None:
    assert date(1880, 1, 1) == EARLIEST_BIRTH


@pytest.mark.parametrize("code", ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54"])
def test_mainland_province_codes_are_plausible(code: str) -> None:
    assert code in PROVINCE_CODES


@pytest.mark.parametrize("code", ["71", "81", "82", "83"])
def test_taiwan_hong_kong_macao_and_residence_permit_codes_are_plausible(code: str) -> None:
    assert parse_id_number(make_id_number(code + "0000", date(1990, 5, 1), 11), today=TODAY)


@pytest.mark.parametrize("code", ["10", "16", "20", "24", "30", "38", "40", "47", "49", "55", "60"])
def test_codes_between_the_provinces_are_not(code: str) -> None:
    assert code not in PROVINCE_CODES


# --- generation and agreement ------------------------------------------------------------


def test_make_id_number_uses_odd_sequences_for_men() -> None:
    assert make_id_number("371302", date(1958, 3, 14), 2)[14:17] == "002"
    assert parse_id_number(make_id_number("371302", date(1958, 3, 14), 3)).sex == "male"
    assert parse_id_number(make_id_number("371302", date(1958, 3, 14), 0)).sex == "female"


@pytest.mark.parametrize(
    ("region", "sequence"),
    [("37130", 1), ("3713021", 1), ("37130A", 1), ("371302", -1), ("371302", 1000)],
)
def test_make_id_number_rejects_bad_arguments(region: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        make_id_number(region, date(1980, 1, 1), sequence)


@pytest.mark.parametrize(
    "bad", ["", "1234", "1234567890123456", "1234567890123456X", "123456789012345678"]
)
def test_check_digit_needs_17_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


def test_stated_values_that_agree_pass() -> None:
    info = parse_id_number("11010519491231002X", today=TODAY)
    check_agrees(info, sex="female", birth_date=date(1949, 12, 31))
    check_agrees(info, sex=None, birth_date=None)


def test_a_stated_sex_that_disagrees_names_the_sex_field() -> None:
    info = parse_id_number("11010519491231002X", today=TODAY)
    with pytest.raises(InvalidIdNumber) as caught:
        check_agrees(info, sex="male", birth_date=None)
    assert caught.value.fields == {"field": "sex"}
    assert "女性" in caught.value.detail


def test_a_stated_birth_date_that_disagrees_names_the_birth_date_field() -> None:
    info = parse_id_number("11010519491231002X", today=TODAY)
    with pytest.raises(InvalidIdNumber) as caught:
        check_agrees(info, sex="female", birth_date=date(1949, 12, 30))
    assert caught.value.fields == {"field": "birth_date"}
    assert "1949-12-31" in caught.value.detail


# --- masks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("37130219580314002X", "3713**********002X"),
        ("110105491231002", "1101*******1002"),
        ("123456789", "1234*6789"),
        ("12345678", "********"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_id_numbers_are_masked_keeping_four_and_four(raw: str, masked: str) -> None:
    assert mask_id_number(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("0539-8314140", "053*****4140"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_phones_are_masked_keeping_three_and_four(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("张三", "张*"),
        ("王小明", "王*明"),
        ("李春华华", "李**华"),
        ("欧阳娜娜", "欧阳**"),
        ("司马光", "司马*"),
        ("欧阳", "欧*"),
        ("张", "*"),
        (" 王小明 ", "王*明"),
        ("", ""),
    ],
)
def test_names_keep_the_surname(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


def test_masks_never_raise_on_odd_input() -> None:
    for odd in (None, 42, "\u3000", "😀" * 20):
        mask_id_number(odd)  # type: ignore[arg-type]
        mask_phone(odd)  # type: ignore[arg-type]
        mask_name(odd)  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------

regions = st.builds(
    lambda province, rest: province + rest,
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
births = st.dates(min_value=EARLIEST_BIRTH, max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999)


@given(regions, births, sequences)
def test_a_made_number_parses_back_to_its_parts(region: str, birth: date, sequence: int) -> None:
    number = make_id_number(region, birth, sequence)
    info = parse_id_number(number, today=TODAY)
    assert (info.number, info.region_code, info.birth_date, info.sequence) == (
        number,
        region,
        birth,
        sequence,
    )
    assert info.sex == ("male" if sequence % 2 == 1 else "female")


@given(regions, births, sequences)
def test_the_legacy_form_of_a_20th_century_number_converts_to_the_same_number(
    region: str, birth: date, sequence: int
) -> None:
    assume(1900 <= birth.year <= 1999)
    number = make_id_number(region, birth, sequence)
    legacy = number[:6] + number[8:17]
    assert parse_id_number(legacy, today=TODAY).number == number


@given(
    regions,
    births,
    sequences,
    st.integers(min_value=0, max_value=17),
    st.sampled_from("0123456789X"),
)
def test_every_single_character_change_is_detected(
    region: str, birth: date, sequence: int, position: int, replacement: str
) -> None:
    number = make_id_number(region, birth, sequence)
    assume(number[position] != replacement)
    changed = number[:position] + replacement + number[position + 1 :]
    try:
        info = parse_id_number(changed, today=TODAY)
    except InvalidIdNumber:
        return
    assert info.number != number


@given(regions, births, sequences)
def test_a_masked_number_never_shows_the_birth_date_or_sequence(
    region: str, birth: date, sequence: int
) -> None:
    number = make_id_number(region, birth, sequence)
    masked = mask_id_number(number)
    assert masked[:4] == number[:4] and masked[-4:] == number[-4:]
    assert masked[4:14] == "*" * 10


@given(st.text(alphabet=st.characters(exclude_categories=["Zs", "Zl", "Zp", "Cc"]), max_size=40))
def test_masking_any_text_hides_the_middle(text: str) -> None:
    masked = mask_id_number(text)
    assert len(masked) == len(text)
    if len(text) <= 8:
        assert set(masked) <= {"*"}
    else:
        assert masked[4:-4] == "*" * (len(text) - 8)
    phone = mask_phone(text)
    assert len(phone) == len(text)
    assert set(phone[3:-4] if len(text) > 7 else phone) <= {"*"}
