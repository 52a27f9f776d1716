"""The real structure of each profile's demo city (demo/data/structures): every reference
resolves, the seeds' named members are all there, region codes make valid ID numbers, and each
structure loads into the registry."""

from __future__ import annotations

import random
import re
import tomllib
from datetime import date
from importlib import resources
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.registry import demo as registry_demo
from caregrid.registry.idnumber import PROVINCE_CODES, make_id_number, parse_id_number
from caregrid.registry.models import GROUP_KINDS, KINDS, LEVELS, ROLES_IN_GROUP, Department

PROFILES = ("lincang", "linyi", "zhongwei", "yunnan_county", "national_city")
CODE = re.compile(r"^[A-Z0-9-]+$")


def structure(profile_id: str) -> dict[str, Any]:
    return registry_demo.load_structure(profile_id)


def profile(profile_id: str) -> dict[str, Any]:
    text = (
        resources.files("caregrid.profiles")
        .joinpath(f"data/{profile_id}.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def by_code(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in data["institutions"]}


@pytest.mark.parametrize("profile_id", PROFILES)
def test_city_has_population_source_and_valid_region_codes(profile_id: str) -> None:
    city = structure(profile_id)["city"]
    assert city["name"] and city["province"]
    assert city["population"] > 0 and city["population_source"]
    assert city["region_codes"]
    for district, code in city["region_codes"].items():
        assert re.fullmatch(r"\d{6}", code), (district, code)
        assert code[:2] in PROVINCE_CODES
        assert parse_id_number(make_id_number(code, date(1970, 1, 1), 1)).region_code == code


@pytest.mark.parametrize("profile_id", PROFILES)
def test_grids_and_groups_resolve(profile_id: str) -> None:
    data = structure(profile_id)
    region_codes = data["city"]["region_codes"]
    grid_codes = {g["code"] for g in data["grids"]}
    assert len(grid_codes) == len(data["grids"])
    for grid in data["grids"]:
        assert CODE.match(grid["code"])
        assert grid["districts"] and all(d in region_codes for d in grid["districts"])
        assert 0 < grid["population"] <= data["city"]["population"]
    assert sum(g["population"] for g in data["grids"]) <= data["city"]["population"]
    institutions = by_code(data)
    for group in data["groups"]:
        assert CODE.match(group["code"])
        assert group["grid"] in grid_codes
        assert group["kind"] in GROUP_KINDS
        lead = institutions[group["lead"]]
        assert lead["group"] == group["code"] and lead["role"] == "lead"
        leads = [
            i
            for i in data["institutions"]
            if i.get("group") == group["code"] and i["role"] == "lead"
        ]
        assert len(leads) == 1


@pytest.mark.parametrize("profile_id", PROFILES)
def test_institutions_are_well_formed(profile_id: str) -> None:
    data = structure(profile_id)
    institutions = by_code(data)
    assert len(institutions) == len(data["institutions"]), "duplicate institution code"
    names = [i["name"] for i in data["institutions"]]
    assert len(names) == len(set(names)), "duplicate institution name"
    group_codes = {g["code"] for g in data["groups"]}
    grid_codes = {g["code"] for g in data["grids"]}
    for inst in data["institutions"]:
        assert CODE.match(inst["code"]) and len(inst["code"]) <= 40
        assert 0 < len(inst["name"]) <= 100
        assert inst["level"] in LEVELS
        assert inst["kind"] in KINDS
        assert inst["role"] in ROLES_IN_GROUP
        assert inst.get("district") and len(inst["district"]) <= 40
        assert len(inst["clause"]) <= 40
        if inst["clause"] == "generated":
            assert inst.get("generated") is True, inst["code"]
        if inst.get("group"):
            assert inst["group"] in group_codes
            assert inst["role"] != "collaborator"
        else:
            assert inst["role"] == "collaborator"
            assert inst.get("grid") in grid_codes, "a collaborator needs a grid"
        if "parent" in inst:
            parent = institutions[inst["parent"]]
            assert parent["code"] != inst["code"]
            assert parent.get("group") == inst.get("group")
            assert LEVELS.index(parent["level"]) <= LEVELS.index(inst["level"])
        if inst["level"] == "village":
            assert "parent" in inst, f"{inst['code']}: a village clinic belongs to a centre"
            assert "beds" not in inst
        if "beds" in inst:
            assert 0 < inst["beds"] <= 8000
        if inst["role"] == "sub_centre":
            assert "parent" in inst


@pytest.mark.parametrize("profile_id", PROFILES)
def test_every_grid_has_primary_care_for_its_residents(profile_id: str) -> None:
    data = structure(profile_id)
    group_grid = {g["code"]: g["grid"] for g in data["groups"]}
    for grid in data["grids"]:
        primary = [
            i
            for i in data["institutions"]
            if i["level"] == "primary"
            and i["kind"] == "general"
            and (group_grid.get(i.get("group", "")) or i.get("grid")) == grid["code"]
        ]
        assert primary, grid["code"]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_every_institution_gets_departments(profile_id: str) -> None:
    data = structure(profile_id)
    departments = data["departments"]
    valid = set(LEVELS) | {f"{level}_{kind}" for level in LEVELS for kind in KINDS}
    assert set(departments) <= valid
    for names in departments.values():
        assert names and all(0 < len(n) <= 60 for n in names)
    for inst in data["institutions"]:
        own = departments.get(inst["level"], []) + departments.get(
            f"{inst['level']}_{inst['kind']}", []
        )
        assert own, inst["code"]
    assert "中医内科" in departments["tertiary_tcm"]
    assert departments["village"] == ["全科"]


@pytest.mark.parametrize("profile_id", ["linyi", "zhongwei", "lincang"])
def test_every_member_the_seed_names_is_in_the_structure(profile_id: str) -> None:
    """The profile lists the members each seed names (001 附件1, 002 §四(一)1-2, 000 §三(一)1);
    the structure carries each of them (with the city prefix the seed drops, e.g. 市人民医院 ->
    中卫市人民医院) in the same group, with the district the annex gives."""
    data = structure(profile_id)
    groups = {g["name"]: g["code"] for g in data["groups"]}
    for layout in profile(profile_id)["groups"]:
        assert layout["name"] in groups
        members = [i for i in data["institutions"] if i.get("group") == groups[layout["name"]]]
        for member in layout["members"]:
            matches = [i for i in members if i["name"].endswith(member["name"])]
            assert len(matches) == 1, member["name"]
            if member.get("district"):
                assert matches[0]["district"] == member["district"], member["name"]
            if member["tier"] == "lead":
                assert matches[0]["role"] == "lead"


def test_linyi_has_the_annex_counts() -> None:
    """001 §二: the first batch covers 6 secondary hospitals and 21 primary institutions."""
    data = structure("linyi")
    named = [i for i in data["institutions"] if i["clause"] == "001 附件1"]
    assert sum(i["level"] == "tertiary" for i in named) == 2
    assert sum(i["level"] == "secondary" for i in named) == 6
    assert sum(i["level"] == "primary" for i in named) == 21
    assert {i["district"] for i in named if i["level"] == "primary"} == {
        "兰山区",
        "河东区",
        "罗庄区",
        "高新区",
        "沂河新区",
    }


def test_zhongwei_has_four_sub_centres_under_the_district_general_hospital() -> None:
    data = structure("zhongwei")
    subs = [i for i in data["institutions"] if i["role"] == "sub_centre"]
    assert {i["name"] for i in subs} == {
        f"{town}县域医疗分中心" for town in ("宣和", "兴仁", "镇罗", "迎水桥")
    }
    assert {i["parent"] for i in subs} == {"ZW-SPT"}
    assert len(data["grids"]) == 1 and len(data["groups"]) == 1


def test_the_national_city_is_fictional_and_fully_generated() -> None:
    data = structure("national_city")
    assert data["city"]["fictional"] is True
    assert 3 <= len(data["grids"]) <= 4
    assert all(i.get("generated") is True for i in data["institutions"])
    for group in data["groups"]:
        members = [i for i in data["institutions"] if i.get("group") == group["code"]]
        assert sum(i["level"] == "tertiary" for i in members) == 1
        assert 1 <= sum(i["level"] == "secondary" for i in members) <= 2
        assert any(i["level"] == "village" for i in members)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_structure_loads_into_the_registry_with_residents(
    db: Session, profile_id: str
) -> None:
    data = structure(profile_id)
    built = registry_demo.build_structure(db, data)
    assert len(built.institution_ids) == len(data["institutions"])
    assert db.scalar(select(func.count()).select_from(Department)) > len(data["institutions"])
    rows = [
        row
        for batch in registry_demo.resident_rows(
            random.Random(7), built, 500, reference_date=date(2025, 12, 31)
        )
        for row in batch.rows
    ]
    assert len(rows) == 500
    codes = set(data["city"]["region_codes"].values())
    for id_number, _name, sex, birth, _phone, address, grid_id, home_id in rows:
        info = parse_id_number(id_number, today=date(2025, 12, 31))
        assert info.region_code in codes
        assert (info.sex, info.birth_date) == (sex, birth)
        assert address.startswith(data["city"]["name"])
        assert home_id in built.primary_by_grid[grid_id]


@pytest.mark.parametrize("profile_id", ["linyi", "zhongwei", "lincang"])
def test_the_demo_city_contains_every_member_the_plan_names(profile_id: str) -> None:
    """The profile lists the members its seed names; the demo structure builds the city from
    them. The two files must not drift apart."""
    from caregrid.profiles.loader import load_profile
    from caregrid.registry.demo import load_structure

    structure = load_structure(profile_id)
    built = {i["name"] for i in structure["institutions"]} | {
        i["alias"] for i in structure["institutions"] if i.get("alias")
    }
    built_groups = {g["name"] for g in structure["groups"]}
    for group in load_profile(profile_id).groups:
        assert group.name in built_groups or group.lead.name in built, group.name
        # The seeds say "市人民医院" where the city is implied: match on the full name's ending.
        missing = [m.name for m in group.members if not any(b.endswith(m.name) for b in built)]
        assert not missing, f"{profile_id}: {missing}"
