"""Family-doctor rules: eligibility per package (000 §三(五)2), contract period (国卫基层发
〔2018〕35号), the service schedule, and fee arithmetic (003 §二(六)21) with hypothesis."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caregrid.core.errors import Invalid
from caregrid.familydoctor import rules


def _check(code: str, age: int, sex: str = "male", programs: frozenset[str] = frozenset()) -> None:
    spec = rules.PACKAGES_BY_CODE[code]
    rules.check_eligibility(
        population=spec.population,
        min_age=spec.min_age,
        max_age=spec.max_age,
        sex=spec.sex,
        required_program=spec.required_program,
        age=age,
        resident_sex=sex,
        programs=programs,
    )


@pytest.mark.parametrize(
    ("clause", "code", "age", "sex", "programs", "rule"),
    [
        ("老年人服务包: 65岁及以上", "ELDERLY", 64, "male", frozenset(), "package_min_age"),
        ("儿童服务包: 0-6岁", "CHILD", 7, "female", frozenset(), "package_max_age"),
        ("妇女服务包: 女性", "WOMEN", 30, "male", frozenset(), "package_sex"),
        ("慢性病患者服务包: 已纳入高血压或糖尿病管理", "CHRONIC", 60, "male", frozenset(),
         "package_registered_condition"),
        ("慢性病患者服务包: 35岁及以上", "CHRONIC", 30, "male", frozenset({"diabetes"}),
         "package_min_age"),
    ],
)  # fmt: skip
def test_package_eligibility_is_checked(
    clause: str, code: str, age: int, sex: str, programs: frozenset[str], rule: str
) -> None:
    with pytest.raises(Invalid) as caught:
        _check(code, age, sex, programs)
    assert caught.value.fields["rule"] == rule, clause


@pytest.mark.parametrize(
    ("code", "age", "sex", "programs"),
    [
        ("BASIC", 30, "male", frozenset()),
        ("ELDERLY", 65, "female", frozenset()),
        ("CHILD", 6, "male", frozenset()),
        ("WOMEN", 28, "female", frozenset()),
        ("CHRONIC", 58, "male", frozenset({"hypertension"})),
    ],
)
def test_eligible_residents_pass(code: str, age: int, sex: str, programs: frozenset[str]) -> None:
    _check(code, age, sex, programs)


def test_every_population_group_of_the_menu_has_a_package() -> None:
    """000 §三(五)2: 普通人群、慢性病患者、妇女、儿童、老年人、残疾人、计划生育特殊家庭."""
    assert {p.population for p in rules.PACKAGES} == set(rules.POPULATION_LABELS)


@pytest.mark.parametrize("years", [0, 4])
def test_contract_period_is_at_least_one_year(years: int) -> None:
    with pytest.raises(Invalid) as caught:
        rules.contract_end(date(2026, 1, 1), years)
    assert caught.value.fields["rule"] == "contract_at_least_one_year"


def test_contract_end_handles_29_february() -> None:
    assert rules.contract_end(date(2028, 2, 29), 1) == date(2029, 2, 28)


def test_four_follow_ups_fall_due_each_quarter_of_the_contract_year() -> None:
    dates = rules.due_dates(date(2026, 1, 1), date(2027, 1, 1), 4)
    assert dates == (date(2026, 4, 2), date(2026, 7, 2), date(2026, 10, 1), date(2026, 12, 31))


def test_service_status_counts_due_and_finds_the_next_one() -> None:
    spec = rules.ServiceSpec(rules.FOLLOWUP, "随访", 4)
    status = rules.service_status(
        spec, start=date(2026, 1, 1), end=date(2027, 1, 1), delivered=1, on=date(2026, 8, 1)
    )
    assert (status.due, status.delivered, status.outstanding) == (2, 1, 1)
    assert status.next_due == date(2026, 7, 2)
    assert status.overdue(date(2026, 8, 1))
    assert rules.fulfilment_rate([status]) == Decimal(1) / Decimal(2)


@given(
    total=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(
        st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=4),
        min_size=1,
        max_size=30,
    ),
)
def test_allocation_adds_up_to_the_pool_exactly(total: int, weights: list[Decimal]) -> None:
    parts = rules.allocate(total, dict(enumerate(weights)))
    assert sum(parts.values()) == total
    assert all(p >= 0 for p in parts.values())
    whole = sum(weights)
    if whole:
        for key, weight in enumerate(weights):
            assert abs(parts[key] - total * weight / whole) < 1


@given(
    pools=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=20),
    scores=st.lists(st.decimals(min_value=0, max_value=1, places=3), min_size=20, max_size=20),
    share=st.decimals(min_value=0, max_value=1, places=2),
)
def test_prepaid_plus_performance_adds_up_to_the_pool(
    pools: list[int], scores: list[Decimal], share: Decimal
) -> None:
    """003 §二(六)21: 80 % prepaid, the rest by performance; no fen lost or created."""
    prepaid = [rules.prepaid_part(p, share) for p in pools]
    remainder = sum(pools) - sum(prepaid)
    weights = {i: p * scores[i] for i, p in enumerate(pools)}
    if not any(weights.values()):
        weights = {i: Decimal(p) for i, p in enumerate(pools)}
    performance = rules.allocate(remainder, weights)
    assert sum(prepaid) + sum(performance.values()) == sum(pools)
    assert all(0 <= pp <= p for pp, p in zip(prepaid, pools, strict=True))


def test_performance_score_leaves_out_what_cannot_be_measured() -> None:
    weights = rules.Weights(Decimal("0.3"), Decimal("0.3"), Decimal("0.3"), Decimal("0.1"))
    full = rules.performance_score(
        weights, quantity=Decimal(1), fulfilment=Decimal(1), control=Decimal(0), satisfaction=None
    )
    assert full == Decimal("0.6") / Decimal("0.9")
    assert rules.performance_score(
        weights, quantity=None, fulfilment=None, control=None, satisfaction=None
    ) == Decimal(0)
