"""Synthetic people for the demo city: the 2023 age/sex structure (reference/statistics.md §7),
realistic names, phones and addresses; deterministic for a seed and fast at a million."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from datetime import date
from itertools import pairwise

import pytest

from caregrid.core.synthetic.names import NameGenerator
from caregrid.core.synthetic.population import (
    AGE_BANDS,
    TARGET_0_15,
    TARGET_16_59,
    TARGET_60_PLUS,
    TARGET_65_PLUS,
    TARGET_SEX_RATIO,
    age_on,
    sample_birth_dates,
    share_between,
)
from caregrid.registry.idnumber import make_id_number, parse_id_number

REFERENCE = date(2025, 12, 31)
PHONE = re.compile(r"^1(3\d|5[0-35-9]|8\d|9[13589])\d{8}$")


def test_band_weights_add_up_to_the_2023_targets() -> None:
    assert share_between(0, 16) == pytest.approx(TARGET_0_15)
    assert share_between(16, 60) == pytest.approx(TARGET_16_59)
    assert share_between(60, 200) == pytest.approx(TARGET_60_PLUS)
    assert share_between(65, 200) == pytest.approx(TARGET_65_PLUS)
    assert sum(b.share for b in AGE_BANDS) == pytest.approx(100)
    males = sum(b.share * b.male_share for b in AGE_BANDS)
    assert males / (100 - males) * 100 == pytest.approx(TARGET_SEX_RATIO)


def test_bands_are_contiguous_and_old_age_is_mostly_female() -> None:
    assert AGE_BANDS[0].low == 0
    for before, after in pairwise(AGE_BANDS):
        assert before.high == after.low
    assert AGE_BANDS[1].male_share > 0.5  # more boys than girls
    assert AGE_BANDS[-1].male_share < 0.4  # centenarians are mostly women


def test_a_200_000_sample_matches_the_age_and_sex_targets_within_a_point() -> None:
    people = sample_birth_dates(random.Random(20231231), 200_000, reference_date=REFERENCE)
    ages = [age_on(birth, REFERENCE) for birth, _ in people]
    n = len(people)

    def pct(count: int) -> float:
        return 100 * count / n

    assert abs(pct(sum(a < 16 for a in ages)) - TARGET_0_15) < 1
    assert abs(pct(sum(16 <= a < 60 for a in ages)) - TARGET_16_59) < 1
    assert abs(pct(sum(a >= 60 for a in ages)) - TARGET_60_PLUS) < 1
    assert abs(pct(sum(a >= 65 for a in ages)) - TARGET_65_PLUS) < 1
    sexes = Counter(sex for _, sex in people)
    assert set(sexes) == {"male", "female"}
    male_share = 100 * sexes["male"] / n
    target_share = 100 * TARGET_SEX_RATIO / (100 + TARGET_SEX_RATIO)
    assert abs(male_share - target_share) < 1


def test_nobody_is_born_after_the_reference_date_and_every_birth_makes_a_valid_id() -> None:
    people = sample_birth_dates(random.Random(1), 50_000, reference_date=REFERENCE)
    births = [birth for birth, _ in people]
    assert max(births) <= REFERENCE
    assert min(births) > date(REFERENCE.year - 105, REFERENCE.month, REFERENCE.day)
    oldest = min(births)
    info = parse_id_number(make_id_number("371302", oldest, 1), today=REFERENCE)
    assert info.birth_date == oldest


def test_a_reference_date_of_29_february_works() -> None:
    people = sample_birth_dates(random.Random(3), 10_000, reference_date=date(2024, 2, 29))
    assert max(birth for birth, _ in people) <= date(2024, 2, 29)


def test_zero_people_is_an_empty_list() -> None:
    assert sample_birth_dates(random.Random(0), 0, reference_date=REFERENCE) == []
    assert NameGenerator(random.Random(0)).addresses(0, ["兰山区"], "临沂市") == []


def generate(seed: int, n: int) -> tuple[list[tuple[date, str]], list[str], list[str], list[str]]:
    rng = random.Random(seed)
    people = sample_birth_dates(rng, n, reference_date=REFERENCE)
    gen = NameGenerator(rng)
    names = gen.names(n, [sex for _, sex in people])
    phones = gen.phones(n)
    addresses = gen.addresses(n, ["兰山区", "罗庄区", "河东区"], "临沂市")
    return people, names, phones, addresses


def test_everything_is_deterministic_for_a_seed() -> None:
    assert generate(42, 2_000) == generate(42, 2_000)
    assert generate(42, 2_000) != generate(43, 2_000)


def test_names_look_chinese_and_follow_the_surname_table() -> None:
    rng = random.Random(5)
    sexes = ["male", "female"] * 25_000
    names = NameGenerator(rng).names(len(sexes), sexes)
    assert all(2 <= len(name) <= 4 for name in names)
    assert all(all("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)
    firsts = Counter(name[0] for name in names)
    top = [s for s, _ in firsts.most_common(3)]
    assert set(top) == {"王", "李", "张"}
    assert 0.05 < firsts["王"] / len(names) < 0.11
    assert any(name.startswith("欧阳") for name in names)
    two_char_given = sum(len(n) == 3 for n in names if not n.startswith(("欧阳", "司马")))
    assert 0.7 < two_char_given / len(names) < 0.85


def test_given_names_differ_by_sex() -> None:
    gen = NameGenerator(random.Random(9))
    men = gen.names(5_000, ["male"] * 5_000)
    women = gen.names(5_000, ["female"] * 5_000)
    men_chars = Counter(ch for n in men for ch in n[1:])
    women_chars = Counter(ch for n in women for ch in n[1:])
    assert men_chars["伟"] > 0 and women_chars["伟"] == 0
    assert women_chars["芳"] > 0 and men_chars["芳"] == 0


def test_names_need_one_sex_per_name() -> None:
    with pytest.raises(ValueError):
        NameGenerator(random.Random(0)).names(3, ["male"])


def test_phones_are_mainland_mobile_numbers() -> None:
    phones = NameGenerator(random.Random(11)).phones(20_000)
    assert all(PHONE.match(p) for p in phones), [p for p in phones if not PHONE.match(p)][:5]
    assert len(set(phones)) > 19_900
    assert {p[:2] for p in phones} == {"13", "15", "18", "19"}


def test_addresses_name_the_city_and_one_of_the_districts() -> None:
    districts = ["兰山区", "罗庄区", "河东区"]
    addresses = NameGenerator(random.Random(13)).addresses(10_000, districts, "临沂市")
    assert all(a.startswith("临沂市") for a in addresses)
    assert {d for a in addresses for d in districts if a.startswith("临沂市" + d)} == set(districts)
    urban = [a for a in addresses if "街道" in a]
    rural = [a for a in addresses if "村" in a]
    assert len(urban) + len(rural) == len(addresses)
    assert 0.55 < len(urban) / len(addresses) < 0.75
    assert all(re.search(r"\d+号\d单元\d{3,4}$", a) for a in urban)
    assert all(re.search(r"村\d+组\d+号$", a) for a in rural)
    assert max(len(a) for a in addresses) <= 60


@pytest.mark.slow
def test_a_million_people_generate_quickly() -> None:
    n = 1_000_000
    rng = random.Random(2025)
    started = time.perf_counter()
    people = sample_birth_dates(rng, n, reference_date=REFERENCE)
    births_done = time.perf_counter()
    gen = NameGenerator(rng)
    names = gen.names(n, [sex for _, sex in people])
    names_done = time.perf_counter()
    phones = gen.phones(n)
    addresses = gen.addresses(n, ["兰山区", "罗庄区", "河东区"], "临沂市")
    finished = time.perf_counter()
    print(
        f"\n1M birth dates {births_done - started:.2f}s, names {names_done - births_done:.2f}s, "
        f"phones + addresses {finished - names_done:.2f}s, total {finished - started:.2f}s"
    )
    assert len(names) == len(phones) == len(addresses) == n
    assert names_done - started < 20
