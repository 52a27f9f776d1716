"""Family-doctor rules as pure functions: package eligibility, the service schedule of a
contract (due vs delivered), the performance score and the fee allocation in fen.

Sources: 000 §三(五)2 (菜单式签约服务包 for 普通人群、慢性病患者、妇女、儿童、老年人、残疾人、
计划生育特殊家庭); 国卫基层发〔2018〕35号 (one team at a time, contracts of at least one year);
003 §二(六)21 (足额筹措、提前预拨、人头包干、量效挂钩: 80 % prepaid, the rest by annual
performance, tilted to teams with good fulfilment and outcomes)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import TypeVar

from caregrid.core.errors import Invalid

K = TypeVar("K")

MIN_CONTRACT_YEARS = 1
MAX_CONTRACT_YEARS = 3

POPULATION_LABELS = {
    "general": "普通人群",
    "chronic": "慢性病患者",
    "women": "妇女",
    "children": "儿童",
    "elderly": "老年人",
    "disabled": "残疾人",
    "special_family": "计划生育特殊家庭",
}
ROLE_LABELS = {
    "gp": "全科医生",
    "nurse": "护士",
    "public_health": "公卫人员",
    "specialist": "专科医生",
    "tcm": "中医师",
}
# How the member share of a team's fee is weighted by role (the GP leads the contract work;
# 001 §三(三)3 tilts pay towards the doctors who take part). Chosen weights.
ROLE_WEIGHTS = {"gp": 4, "specialist": 2, "nurse": 2, "public_health": 2, "tcm": 1}


@dataclass(frozen=True)
class ServiceSpec:
    code: str
    name: str
    times_per_year: int


@dataclass(frozen=True)
class PackageSpec:
    """One package of the menu. Services and frequencies follow 国家基本公共卫生服务规范（第三版）
    for each group (e.g. 4 face-to-face chronic follow-ups a year, a yearly health check for
    the elderly)."""

    code: str
    name: str
    population: str
    min_age: int | None = None
    max_age: int | None = None
    sex: str | None = None
    required_program: str | None = None
    services: tuple[ServiceSpec, ...] = ()


FOLLOWUP = "chronic_followup"
SERVICE_NAMES = {
    FOLLOWUP: "慢病面对面随访",
    "health_check": "年度健康体检",
    "medication_review": "用药评估与指导",
    "health_education": "健康教育与咨询",
    "child_check": "儿童健康检查",
    "maternal_visit": "孕产妇健康管理随访",
    "home_visit": "上门巡诊/康复指导",
    "tcm_care": "中医药健康管理",
    "referral_booking": "预约转诊",
}


def _s(code: str, times: int) -> ServiceSpec:
    return ServiceSpec(code, SERVICE_NAMES[code], times)


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec(
        "BASIC",
        "基础服务包（普通人群）",
        "general",
        services=(_s("health_education", 1), _s("referral_booking", 1)),
    ),
    PackageSpec(
        "CHRONIC",
        "慢性病患者服务包（高血压/2型糖尿病）",
        "chronic",
        min_age=35,
        required_program="any",
        services=(_s(FOLLOWUP, 4), _s("health_check", 1), _s("medication_review", 1)),
    ),
    PackageSpec(
        "WOMEN",
        "妇女服务包",
        "women",
        min_age=15,
        sex="female",
        services=(_s("maternal_visit", 2), _s("health_education", 1)),
    ),
    PackageSpec(
        "CHILD",
        "儿童服务包（0-6岁）",
        "children",
        max_age=6,
        services=(_s("child_check", 2), _s("tcm_care", 1)),
    ),
    PackageSpec(
        "ELDERLY",
        "老年人服务包（65岁及以上）",
        "elderly",
        min_age=65,
        services=(_s("health_check", 1), _s("tcm_care", 1), _s("health_education", 1)),
    ),
    PackageSpec(
        "DISABLED",
        "残疾人服务包",
        "disabled",
        services=(_s("home_visit", 2), _s("health_check", 1)),
    ),
    PackageSpec(
        "FAMILY",
        "计划生育特殊家庭服务包",
        "special_family",
        services=(_s("home_visit", 2), _s("health_check", 1), _s("health_education", 1)),
    ),
)
PACKAGES_BY_CODE = {p.code: p for p in PACKAGES}


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def check_eligibility(
    *,
    population: str,
    min_age: int | None,
    max_age: int | None,
    sex: str | None,
    required_program: str | None,
    age: int,
    resident_sex: str,
    programs: frozenset[str],
) -> None:
    """Whether the resident fits the package's population group (age, sex, registered
    condition); raises `Invalid` naming the rule."""
    label = POPULATION_LABELS.get(population, population)
    if min_age is not None and age < min_age:
        raise Invalid(
            f"{label}服务包适用于 {min_age} 岁及以上居民（该居民 {age} 岁）",
            field="package_code",
            rule="package_min_age",
        )
    if max_age is not None and age > max_age:
        raise Invalid(
            f"{label}服务包适用于 {max_age} 岁及以下居民（该居民 {age} 岁）",
            field="package_code",
            rule="package_max_age",
        )
    if sex is not None and resident_sex != sex:
        raise Invalid(f"{label}服务包仅适用于女性居民", field="package_code", rule="package_sex")
    if required_program is not None:
        wanted = programs if required_program == "any" else programs & {required_program}
        if not wanted:
            raise Invalid(
                f"{label}服务包须先纳入高血压或糖尿病患者管理",
                field="package_code",
                rule="package_registered_condition",
            )


def contract_end(start: date, years: int) -> date:
    """At least one year (国卫基层发〔2018〕35号: 签约周期原则上不少于一年)."""
    if not MIN_CONTRACT_YEARS <= years <= MAX_CONTRACT_YEARS:
        raise Invalid(
            f"签约周期为 {MIN_CONTRACT_YEARS}–{MAX_CONTRACT_YEARS} 年（原则上不少于一年）",
            field="years",
            rule="contract_at_least_one_year",
        )
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


@lru_cache(maxsize=8192)
def due_dates(start: date, end: date, times_per_year: int) -> tuple[date, ...]:
    """When each delivery of a service falls due: the end of each of `times` equal intervals
    of the contract year (4 a year → after ~91, 182, 273, 364 days), repeated each year.
    Cached: contracts share start dates."""
    out: list[date] = []
    if times_per_year <= 0:
        return ()
    for year_start, length in contract_years(start, end):
        for k in range(1, times_per_year + 1):
            out.append(year_start + timedelta(days=math.ceil(k * length / times_per_year) - 1))
    return tuple(out)


@lru_cache(maxsize=8192)
def contract_years(start: date, end: date) -> tuple[tuple[date, int], ...]:
    """The contract's years as (first day, length in days), the last one cut at `end`. A
    service due `times` a year falls due `times` times in each, at the end of equal intervals
    (`due_dates`); so by day `on` a year has made floor(d x times / length) of them due, with
    d = days from its first day to `on` inclusive (0 before it), capped at `times`: the
    closed form the indicators compute on the analytics engines."""
    out: list[tuple[date, int]] = []
    year_start = start
    while year_start < end:
        next_year = contract_end(year_start, 1)
        out.append((year_start, (min(next_year, end) - year_start).days))
        year_start = next_year
    return tuple(out)


@dataclass(frozen=True)
class ServiceStatus:
    code: str
    name: str
    due: int  # deliveries due by the day
    delivered: int
    next_due: date | None  # when the next undelivered one falls due (None: all done)

    @property
    def outstanding(self) -> int:
        return max(0, self.due - self.delivered)

    def overdue(self, on: date) -> bool:
        return self.next_due is not None and self.next_due < on


def service_status(
    spec: ServiceSpec, *, start: date, end: date, delivered: int, on: date
) -> ServiceStatus:
    dates = due_dates(start, end, spec.times_per_year)
    due = bisect_right(dates, on)
    next_due = dates[delivered] if delivered < len(dates) else None
    return ServiceStatus(spec.code, spec.name, due, delivered, next_due)


def fulfilment_rate(statuses: list[ServiceStatus]) -> Decimal | None:
    """履约率: delivered (capped at due) over due, None when nothing was due yet."""
    due = sum(s.due for s in statuses)
    if due == 0:
        return None
    done = sum(min(s.delivered, s.due) for s in statuses)
    return Decimal(done) / Decimal(due)


# --- fees ------------------------------------------------------------------------------------


def share(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else Decimal(part) / Decimal(whole)


def allocate(total: int, weights: Mapping[K, Decimal | int]) -> dict[K, int]:
    """Split `total` fen in proportion to `weights` by the largest-remainder method: every part
    is an integer, the parts add up to `total` exactly, ties go to the earlier key. All-zero
    weights split evenly."""
    if total < 0:
        raise ValueError("total must be non-negative")
    keys = list(weights)
    if not keys:
        if total:
            raise ValueError("nothing to allocate to")
        return {}
    w = [Decimal(weights[k]) for k in keys]
    if any(x < 0 for x in w):
        raise ValueError("weights must be non-negative")
    if sum(w) == 0:
        w = [Decimal(1)] * len(keys)
    whole = sum(w)
    exact = [Decimal(total) * x / whole for x in w]
    floors = [int(e.to_integral_value(rounding=ROUND_FLOOR)) for e in exact]
    left = total - sum(floors)
    order = sorted(range(len(keys)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return dict(zip(keys, floors, strict=True))


def prepaid_part(pool: int, prepaid_share: Decimal) -> int:
    """The prepaid part of a pool, rounded down to the fen (the remainder is settled later)."""
    return int((Decimal(pool) * prepaid_share).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class Weights:
    quantity: Decimal
    fulfilment: Decimal
    control: Decimal
    satisfaction: Decimal


def performance_score(
    weights: Weights,
    *,
    quantity: Decimal | None,
    fulfilment: Decimal | None,
    control: Decimal | None,
    satisfaction: Decimal | None,
) -> Decimal:
    """The weighted score in [0, 1]. A component that cannot be measured (no chronic patients,
    no survey) is left out and the other weights are rescaled, so it neither helps nor hurts."""
    parts = [
        (weights.quantity, quantity),
        (weights.fulfilment, fulfilment),
        (weights.control, control),
        (weights.satisfaction, satisfaction),
    ]
    used = [(w, min(Decimal(1), max(Decimal(0), v))) for w, v in parts if v is not None]
    total = sum((w for w, _ in used), Decimal(0))
    if total == 0:
        return Decimal(0)
    return sum((w * v for w, v in used), Decimal(0)) / total
