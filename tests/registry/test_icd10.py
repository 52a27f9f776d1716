"""ICD-10 codes and ranges for the per-level 诊疗病种目录 (reference/standards.md §2.8), and the
default catalogue file: every range parses and each level holds what its function says."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caregrid.registry.errors import InvalidIcd10Code
from caregrid.registry.icd10 import Icd10Range, normalize_icd10, parse_range, range_covers_any

# --- codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "normal"),
    [
        ("I10.x00", "I10"),
        ("I10.X00", "I10"),
        ("i10.x00x002", "I10"),
        ("E11.900", "E11.9"),
        ("E11.900x001", "E11.9"),
        ("I20.800x007", "I20.8"),
        ("A00.000x001", "A00.0"),
        ("J06.9", "J06.9"),
        ("J06.90", "J06.9"),
        ("K29", "K29"),
        ("k29", "K29"),
        (" S72.001 ", "S72.0"),
        ("E119", "E11.9"),
        ("G63.2*", "G63.2"),
        ("Ｉ１０．ｘ００", "I10"),
        ("U07.1", "U07.1"),
    ],
)
def test_codes_normalise_to_category_and_subdivision(code: str, normal: str) -> None:
    assert normalize_icd10(code) == normal


@pytest.mark.parametrize(
    "code",
    ["", "  ", "hello", "I1", "I100.0", "10.0", "I10.", "I10..0", "I10.0000",
     "I10.9x001", "A00.000x01", "A00.000y001", "I10-I15", "IX0", "I10.A00"],
)  # fmt: skip
def test_malformed_codes_are_rejected_naming_the_code_field(code: str) -> None:
    with pytest.raises(InvalidIcd10Code) as caught:
        normalize_icd10(code)
    assert caught.value.fields == {"field": "code"}
    assert caught.value.status_code == 422


def test_the_placeholder_alone_means_no_subdivision() -> None:
    assert normalize_icd10("I10.x") == "I10"


def test_a_non_text_code_is_rejected() -> None:
    with pytest.raises(InvalidIcd10Code):
        normalize_icd10(None)  # type: ignore[arg-type]


# --- ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "code", "inside"),
    [
        ("I10", "I10.x00", True),
        ("I10", "I10.x00x002", True),
        ("I10", "I11.0", False),
        ("I10-I15", "I10.x00", True),
        ("I10-I15", "I13.2", True),
        ("I10-I15", "I15.900", True),
        ("I10-I15", "I15", True),
        ("I10-I15", "I16", False),
        ("I10-I15", "I09.9", False),
        ("E11.9", "E11.900", True),
        ("E11.9", "E11.900x001", True),
        ("E11.9", "E11.2", False),
        ("E11.9", "E11", False),  # E11 may be any subdivision
        ("E11.2-E11.9", "E11.1", False),
        ("E11.2-E11.9", "E11.500", True),
        ("E11.2-E11.9", "E11", False),
        ("J00-J06.9", "J00", True),
        ("J00-J06.9", "J02.900", True),
        ("J00-J06.9", "J06", True),
        ("J00-J06.9", "J06.9", True),
        ("J00-J06.9", "J07", False),
        ("J00-J06.5", "J06", False),
        ("J00-J06.5", "J06.5", True),
        ("J00-J06.5", "J06.8", False),
        ("C00-C97", "C34.900", True),
        ("C00-C97", "D00.0", False),
        ("A90-B02", "A99", True),  # ranges may cross letters
        ("A90-B02", "B03", False),
        ("I21-I22", "I21.9", True),
    ],
)
def test_ranges_contain_codes_at_category_level(spec: str, code: str, inside: bool) -> None:
    assert parse_range(spec).contains(code) is inside


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("I10", "I10", "I10"),
        ("i10.x00", "I10", "I10"),
        ("I10-I15", "I10", "I15"),
        ("I10 - I15", "I10", "I15"),
        ("I10–I15", "I10", "I15"),
        ("I10～I15", "I10", "I15"),
        ("J00-J06.9", "J00", "J06.9"),
        ("E11.9", "E11.9", "E11.9"),
    ],
)
def test_range_specs_parse_to_normalised_bounds(spec: str, start: str, end: str) -> None:
    parsed = parse_range(spec)
    assert (parsed.start, parsed.end) == (start, end)
    assert parse_range(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "请填写"),
        ("I10-", "范围格式不正确"),
        ("-I15", "范围格式不正确"),
        ("I10-I12-I15", "范围格式不正确"),
        ("I15-I10", "起点 I15 在终点 I10 之后"),
        ("E11.9-E11.2", "起点 E11.9 在终点 E11.2 之后"),
        ("I10-hello", "格式不正确"),
    ],
)
def test_bad_range_specs_are_rejected(spec: str, problem: str) -> None:
    with pytest.raises(InvalidIcd10Code) as caught:
        parse_range(spec)
    assert problem in caught.value.detail
    assert caught.value.fields == {"field": "code"}


def test_a_range_whose_start_is_inside_the_end_category_is_allowed() -> None:
    assert parse_range("E11-E11.5").contains("E11.3")
    assert not parse_range("E11-E11.5").contains("E11.6")


def test_range_covers_any_accepts_parsed_and_text_ranges() -> None:
    ranges: list[Icd10Range | str] = [parse_range("I10-I15"), "E11.2-E11.9"]
    assert range_covers_any(ranges, "E11.900")
    assert range_covers_any(ranges, "I10.x00")
    assert not range_covers_any(ranges, "I21.9")
    assert not range_covers_any([], "I21.9")
    with pytest.raises(InvalidIcd10Code):
        range_covers_any([], "hello")


# --- properties --------------------------------------------------------------------------

letters = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
categories = st.builds(lambda a, n: f"{a}{n:02d}", letters, st.integers(0, 99))


@st.composite
def codes(draw: st.DrawFn) -> str:
    """Codes in the WHO form (J06.9) and the Chinese clinical form (I10.x00, I20.800x007)."""
    category = draw(categories)
    form = draw(st.sampled_from(["category", "who", "who5", "clinical", "placeholder", "ext"]))
    sub = draw(st.integers(0, 9))
    tail = draw(st.integers(0, 99))
    ext = draw(st.integers(1, 999))
    return {
        "category": category,
        "who": f"{category}.{sub}",
        "who5": f"{category}.{sub}{tail % 10}",
        "clinical": f"{category}.{sub}{tail:02d}",
        "placeholder": f"{category}.x{tail:02d}",
        "ext": f"{category}.{sub}{tail:02d}x{ext:03d}",
    }[form]


@given(codes())
def test_every_code_is_in_a00_z99(code: str) -> None:
    assert parse_range("A00-Z99").contains(code)


@given(codes())
def test_normalising_is_idempotent_and_case_blind(code: str) -> None:
    normal = normalize_icd10(code)
    assert normalize_icd10(normal) == normal
    assert normalize_icd10(code.lower()) == normal


@given(codes())
def test_a_code_is_in_its_own_category_and_its_own_range(code: str) -> None:
    normal = normalize_icd10(code)
    assert parse_range(normal[:3]).contains(code)
    assert parse_range(normal).contains(code)


@given(codes(), codes())
def test_a_two_code_range_holds_both_ends_when_ordered(first: str, second: str) -> None:
    a, b = normalize_icd10(first)[:3], normalize_icd10(second)[:3]
    low, high = sorted([a, b])
    spanning = parse_range(f"{low}-{high}")
    assert spanning.contains(first) and spanning.contains(second)


# --- the default catalogue file ----------------------------------------------------------

LEVELS = ("village", "primary", "secondary", "tertiary")
CATEGORIES = {"慢性病", "常见病", "急危重症", "疑难复杂", "康复期"}


@pytest.fixture(scope="module")
def catalog_file() -> dict[str, Any]:
    text = (
        resources.files("caregrid.registry")
        .joinpath("data/disease_catalogs.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def entries(data: dict[str, Any], level: str) -> list[dict[str, str]]:
    return list(data["catalog"][level]["entries"])


def test_the_default_catalogue_is_marked_provisional_and_cites_its_source(
    catalog_file: dict[str, Any],
) -> None:
    assert catalog_file["provisional"] is True
    assert "000 §三(一)2" in catalog_file["source"]
    assert catalog_file["note"]
    assert tuple(catalog_file["catalog"]) == LEVELS


@pytest.mark.parametrize("level", LEVELS)
def test_every_catalogue_line_parses_and_fits_its_columns(
    catalog_file: dict[str, Any], level: str
) -> None:
    lines = entries(catalog_file, level)
    for line in lines:
        assert set(line) == {"range", "name", "category"}, line
        parse_range(line["range"])
        assert len(line["range"]) <= 30
        assert 0 < len(line["name"]) <= 100
        assert line["category"] in CATEGORIES
    ranges = [line["range"] for line in lines]
    assert len(ranges) == len(set(ranges)), "a range appears twice in one level"


def test_catalogue_sizes_follow_the_levels(catalog_file: dict[str, Any]) -> None:
    sizes = {level: len(entries(catalog_file, level)) for level in LEVELS}
    assert 15 <= sizes["village"] <= 30
    # 003 §二(四)14: other primary institutions treat at least 60 common diseases.
    assert sizes["primary"] >= 60
    assert sizes["secondary"] >= sizes["primary"] + 50
    assert sizes["tertiary"] >= 40


def covered(data: dict[str, Any], level: str, code: str) -> bool:
    return range_covers_any([line["range"] for line in entries(data, level)], code)


@pytest.mark.parametrize(
    ("code", "village", "primary", "secondary", "tertiary"),
    [
        ("I10.x00", True, True, True, False),  # hypertension: managed in primary care
        ("E11.900", True, True, True, False),  # type 2 diabetes without complications
        ("E11.100", False, False, True, True),  # diabetic ketoacidosis
        ("J06.900", True, True, True, False),  # upper respiratory infection
        ("J44.100", False, False, True, False),  # COPD exacerbation
        ("J44.900", True, True, True, False),  # stable COPD
        ("I69.300", True, True, True, False),  # post-stroke sequelae: rehabilitation
        ("J18.900", False, False, True, False),  # pneumonia
        ("K81.000", False, False, True, False),  # acute cholecystitis
        ("O80.000", False, False, True, False),  # normal delivery
        ("I21.900", False, False, False, True),  # acute myocardial infarction
        ("I63.900", False, False, True, True),  # cerebral infarction
        ("I61.900", False, False, False, True),  # intracerebral haemorrhage
        ("C34.900", False, False, False, True),  # lung cancer
        ("A41.900", False, False, False, True),  # sepsis
        ("T07.x00", False, False, False, True),  # multiple injuries
    ],
)
def test_each_level_treats_what_its_function_says(
    catalog_file: dict[str, Any],
    code: str,
    village: bool,
    primary: bool,
    secondary: bool,
    tertiary: bool,
) -> None:
    expected = {
        "village": village,
        "primary": primary,
        "secondary": secondary,
        "tertiary": tertiary,
    }
    assert {level: covered(catalog_file, level, code) for level in LEVELS} == expected


def test_everything_the_village_treats_primary_care_treats(catalog_file: dict[str, Any]) -> None:
    primary = [line["range"] for line in entries(catalog_file, "primary")]
    for line in entries(catalog_file, "village"):
        rng = parse_range(line["range"])
        for bound in (rng.start, rng.end):
            assert range_covers_any(primary, bound), line


def test_everything_primary_care_treats_the_secondary_level_treats(
    catalog_file: dict[str, Any],
) -> None:
    secondary = [line["range"] for line in entries(catalog_file, "secondary")]
    for line in entries(catalog_file, "primary"):
        rng = parse_range(line["range"])
        for bound in (rng.start, rng.end):
            assert range_covers_any(secondary, bound), line
