"""The indicator registry: every indicator caregrid computes, declared once (STYLE "Indicators
are declared, not scattered"). The engine, the API, the cockpit, the Excel export and FHIR
Measure / MeasureReport all read `INDICATORS`.

A `Measure` is a count or an integer sum over one store table (see `store.py`), restricted by
a filter, dated by one date column (which decides the period and the month), and broken down
by the table's `group_id`, `member` and grid columns. The grid (网格) of a row is the
resident's for what residents do or have (care-seeking, chronic management, contracts, deaths)
and the institution's for what an institution does (`Measure.grid` names the column); lead
hospital indicators have no grid breakdown (one hospital is in one grid).

An indicator is a numerator measure, an optional denominator measure and a scale; the value
is ``numerator / denominator x scale``, taken in Decimal after both engines have returned
integers.

Choices where the seeds and national documents leave room are written in each `definition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import ibis
from ibis.expr.types import BooleanValue, Table

from caregrid.chronic import rules as chronic_rules
from caregrid.familydoctor import rules as fd_rules

Tables = dict[str, Table]
Dimension = Literal["month", "member", "group", "grid"]
DIMENSIONS: tuple[Dimension, ...] = ("group", "grid", "member", "month")
DIMENSION_LABELS = {"group": "集团", "grid": "网格", "member": "成员单位", "month": "月份"}
Unit = Literal["share", "ratio", "days", "index", "count", "yuan", "per_1000", "per_100k"]
UNIT_LABELS = {
    "share": "%",
    "ratio": ":1",
    "days": "天",
    "index": "",
    "count": "人次",
    "yuan": "元",
    "per_1000": "‰",
    "per_100k": "/10万",
}
Direction = Literal["higher", "lower"]
Day = date  # (Measure has a field named `date`)


@dataclass(frozen=True)
class Measure:
    """Count rows (``column`` None) or sum an integer column of one store table.

    `prepare`, when given, builds the table to measure from all store tables and the period
    (for measures over derived facts: enrolments with their follow-ups, deaths with ages)."""

    table: str
    date: str | None
    where: Callable[[Table], BooleanValue] | None = None
    column: str | None = None
    distinct: bool = False
    prepare: Callable[[Tables, Day, Day], Table] | None = None
    band: str | None = None  # an extra grouping column (life-table age bands)
    grid: str = "grid"  # the column giving the row's grid (see the module docstring)
    # the column giving the row's group: the institution's by default; the resident's home
    # group for where a group's own residents sought care (their visits outside the group,
    # at no member, count too)
    group: str = "group_id"


@dataclass(frozen=True)
class Indicator:
    slug: str
    title: str  # 中文名称
    title_en: str
    unit: Unit
    numerator: Measure
    denominator: Measure | None
    numerator_label: str
    denominator_label: str | None
    definition: str  # numerator, denominator and the choices made, in Chinese
    source: str  # seed clause or national definition
    direction: Direction
    category: str  # 就医秩序 / 服务效能 / 协同服务 / 健康结果
    dimensions: tuple[Dimension, ...] = ("group", "grid", "member", "month")
    scale: Decimal = Decimal(1)
    target_keys: tuple[str, ...] = ()  # profile keys, first one present wins
    combine: Callable[[dict[object, int], dict[object, int]], Decimal | None] | None = field(
        default=None, repr=False
    )

    def supports(self, dimension: str) -> bool:
        return dimension in self.dimensions


# --- measure building blocks ----------------------------------------------------------------


def _visits(t: Table) -> BooleanValue:
    return t.is_visit == 1


def _admissions(t: Table) -> BooleanValue:
    return t.is_inpatient == 1


def _lead_discharges(t: Table) -> BooleanValue:
    return (t.is_inpatient == 1) & (t.is_lead == 1)


def _member_visits(t: Table) -> BooleanValue:
    return (t.is_visit == 1) & (t.in_group == 1)


def _primary_visits(t: Table) -> BooleanValue:
    return (t.is_visit == 1) & (t.is_primary == 1) & (t.in_group == 1)


def _submitted(t: Table) -> BooleanValue:
    return t.cancelled == 0


# A follow-up's place in an enrolment's history as one integer: its date (yyyymmdd), then its
# id (later ids win ties on a day), then its control flag in the last bit; the largest value
# per enrolment is its latest follow-up with its outcome (one aggregate, no window function).
_ID_SPAN = 10**11


def _day_key(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _enrolment_facts(program: str) -> Callable[[Tables, date, date], Table]:
    """One row per enrolment of `program` under management in the period (enrolled by its
    end, not closed before its start), with its face-to-face follow-ups (clinic or home) in
    the period against the required number, and whether it was controlled on the period's
    last day.

    Controlled: the chronic domain's rule (chronic.service.program_statuses, the source of
    truth): the latest follow-up on or before the last day, in or before the period, ties on
    a day broken by the later record, found the disease controlled, and the patient was not
    lost to follow-up (no follow-up for more than chronic.rules.LOST_AFTER_DAYS days before
    the last day; 国家基本公共卫生服务规范 考核指标: 若失访则判断为未达标).

    Required face-to-face follow-ups: 4 a year (国家基本公共卫生服务规范), pro rata from the
    later of enrolment and 1 January to the period's end, halves up, at least 1: the same
    rule as chronic.rules.required_face_to_face, in integer arithmetic so that both engines
    agree: floor((8 x days + year_days) / (2 x year_days))."""

    def build(tables: Tables, start: date, end: date) -> Table:
        year_start = date(start.year, 1, 1)
        year_days = (date(start.year + 1, 1, 1) - year_start).days
        e = tables["enrolment"]
        e = e.filter(
            (e.program == program)
            & (e.enrolled_on <= end)
            & (e.closed_on.isnull() | (e.closed_on >= start))
        )
        first = ibis.greatest(e.enrolled_ord, ibis.literal(year_start.toordinal()))
        days = end.toordinal() - first + 1
        required = ibis.greatest((8 * days + year_days) // (2 * year_days), 1)
        e = e.mutate(required=required.cast("int64"))
        f = tables["followup"]
        f = f.filter(f.followed_on <= end)
        in_period = f.followed_on >= start
        day = f.followed_on.year() * 10000 + f.followed_on.month() * 100 + f.followed_on.day()
        rank = (day.cast("int64") * _ID_SPAN + f.id) * 2 + f.controlled
        last = f.group_by(fid=f.enrolment_id).aggregate(
            face_n=ibis.ifelse(in_period, f.face, 0).sum(), latest=rank.max()
        )
        fresh_from = _day_key(end - timedelta(days=chronic_rules.LOST_AFTER_DAYS))
        joined = e.left_join(last, e.id == last.fid)
        latest = joined.latest.fill_null(0)
        controlled = (latest % 2 == 1) & (latest // (2 * _ID_SPAN) >= fresh_from)
        return joined.select(
            group_id=joined.group_id,
            member=joined.member,
            grid=joined.grid,
            managed=ibis.literal(1),
            standard=ibis.ifelse(joined.face_n.fill_null(0) >= joined.required, 1, 0),
            controlled=ibis.ifelse(controlled, 1, 0),
        )

    return build


HYPERTENSION = _enrolment_facts("hypertension")
DIABETES = _enrolment_facts("diabetes")


def _fulfilment(tables: Tables, start: date, end: date) -> Table:
    """履约率 as the family-doctor domain defines it (familydoctor.measures,
    familydoctor.service.fulfilment_where), on the period's last day: for every contract in
    force that day and every service of its package, the deliveries due since the contract
    began (familydoctor.rules.due_dates, in closed form per contract year, see
    familydoctor.rules.contract_years) and those delivered by that day, capped at what was
    due. Chronic follow-ups are delivered by the resident's face-to-face follow-ups within
    the contract's term; every other service by its recorded deliveries."""
    on = end.toordinal()
    c = tables["contract"]
    c = c.filter((c.start_date <= end) & (c.last_day >= end))
    p = tables["package_service"]
    cs = c.join(p, c.package_id == p.package_id)
    due: Any = ibis.literal(0)
    for index in range(fd_rules.MAX_CONTRACT_YEARS):
        first, days = cs[f"y{index}_ord"], cs[f"y{index}_days"]
        elapsed = ibis.greatest(on - first + 1, 0)
        # (LEAST and GREATEST skip NULLs on both engines: a missing year is tested first)
        in_year = ibis.least((elapsed * cs.times) // days, cs.times)
        due = due + ibis.ifelse(first.isnull(), 0, in_year)
    cs = cs.mutate(due=due.cast("int64"))
    d = tables["delivery"]
    d = d.filter(d.day <= end)
    done = d.group_by(dcid=d.contract_id, dcode=d.code).aggregate(dn=d.count())
    f = tables["followup"]
    f = f.filter((f.face == 1) & (f.followed_on <= end))
    fc = c.join(
        f,
        (c.resident_id == f.resident_id)
        & (f.followed_on >= c.start_date)
        & (f.followed_on < c.end_date),
    )
    seen = fc.group_by(fcid=fc.id).aggregate(fn=fc.count())
    j = cs.left_join(done, (cs.id == done.dcid) & (cs.code == done.dcode))
    j = j.left_join(seen, j.id == seen.fcid)
    delivered = ibis.ifelse(j.followup == 1, j.fn.fill_null(0), j.dn.fill_null(0))
    return j.select(
        group_id=j.group_id,
        member=j.member,
        grid=j.grid,
        due=j.due,
        done=ibis.least(delivered, j.due).cast("int64"),
    )


def _coverage(tables: Tables, start: date, end: date) -> Table:
    """Residents alive on the period's last day (by their home member's group), whether a
    family-doctor contract covered that day, and whether they belong to a key population:
    65 and over, under 7 (0-6 岁儿童), or under hypertension / diabetes management that day
    (the same groups as familydoctor.measures)."""
    r = tables["resident"]
    r = r.filter((r.birth_date <= end) & (r.deceased_on.isnull() | (r.deceased_on > end)))
    c = tables["contract"]
    c = c.filter((c.start_date <= end) & (c.last_day >= end))
    covered = c.group_by(cid=c.resident_id).aggregate(signed=c.count())
    e = tables["enrolment"]
    e = e.filter((e.enrolled_on <= end) & (e.closed_on.isnull() | (e.closed_on > end)))
    chronic = e.group_by(eid=e.resident_id).aggregate(enrolled=e.count())
    j = r.left_join(covered, r.id == covered.cid).left_join(chronic, r.id == chronic.eid)
    elderly = _years_before(end, 65)
    child = _years_before(end, 7)
    key = (j.birth_date <= elderly) | (j.birth_date > child) | j.enrolled.notnull()
    return j.select(
        group_id=j.group_id,
        member=j.member,
        grid=j.grid,
        contracted=ibis.ifelse(j.signed.notnull(), 1, 0),
        key=ibis.ifelse(key, 1, 0),
    )


def _beds(tables: Tables, start: date, end: date) -> Table:
    """The beds in a pool on the period's last day, with their pool. A bed's pool is set when
    its ward's pool is created and never moved (capacity.models.BedPool), so this is the
    state of that day; pools created before the date was recorded count in every period."""
    b = tables["bed"]
    return b.filter(b.since.isnull() | (b.since <= end))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _deaths(tables: Tables, start: date, end: date) -> Table:
    """Residents who died in the period, with their age in completed years at death and
    whether they died in hospital of one of the four chronic diseases or within 42 days of a
    delivery (maternal death, ICD-10 definition; cause not checked: the record has no cause
    of death outside hospital, see the MMR definition)."""
    r = tables["resident"]
    r = r.filter(r.deceased_on.notnull() & (r.deceased_on >= start) & (r.deceased_on <= end))
    had_birthday = (r.deceased_on.month() * 100 + r.deceased_on.day()) >= (
        r.birth_date.month() * 100 + r.birth_date.day()
    )
    age = r.deceased_on.year() - r.birth_date.year() - ibis.ifelse(had_birthday, 0, 1)
    r = r.mutate(age=age)
    enc = tables["encounter"]
    chronic = enc.filter((enc.died == 1) & (enc.chronic4 == 1))
    chronic = chronic.group_by(rid=chronic.resident_id).aggregate(c4=chronic.chronic4.max())
    deliveries = enc.filter(enc.delivery == 1)
    r2 = r.left_join(chronic, r.id == chronic.rid)
    r2 = r2.select(*[r2[c] for c in r.columns], c4=r2.c4.fill_null(0))
    maternal = r2.join(deliveries, r2.id == deliveries.resident_id)
    maternal = maternal.filter(
        (maternal.deceased_on >= maternal.visit_day)
        & (maternal.maternal_until.isnull() | (maternal.deceased_on <= maternal.maternal_until))
    )
    mat = maternal.group_by(mid=maternal.id).aggregate(m=maternal.female.max())
    r3 = r2.left_join(mat, r2.id == mat.mid)
    return r3.select(
        group_id=r3.group_id,
        member=r3.member,
        grid=r3.grid,
        deceased_on=r3.deceased_on,
        age=r3.age,
        c4=r3.c4,
        maternal=r3.m.fill_null(0),
        band=ibis.ifelse(
            (r3.age >= 30) & (r3.age < 70),
            ((r3.age - 30) // 5).cast("int64"),
            -1,
        ),
    )


def _population(tables: Tables, start: date, end: date) -> Table:
    """Residents alive at the middle of the period with their five-year band (30-34 -> 0 ...
    65-69 -> 7; -1 outside 30-69), the life table's person-years approximation."""
    mid = start + (end - start) / 2
    r = tables["resident"]
    r = r.filter((r.birth_date <= mid) & (r.deceased_on.isnull() | (r.deceased_on >= mid)))
    mid_key = mid.month * 100 + mid.day
    had_birthday = (r.birth_date.month() * 100 + r.birth_date.day()) <= mid_key
    age = mid.year - r.birth_date.year() - ibis.ifelse(had_birthday, 0, 1)
    return r.select(
        group_id=r.group_id,
        member=r.member,
        grid=r.grid,
        band=ibis.ifelse((age >= 30) & (age < 70), ((age - 30) // 5).cast("int64"), -1),
    )


def premature_mortality(deaths: dict[object, int], population: dict[object, int]) -> Decimal | None:
    """30-70 岁重大慢性病过早死亡率 by the life-table method (WHO / 中国死因监测):
    per five-year band x in 30..65, m = deaths / mid-year population,
    q = 5m / (1 + 2.5m), capped at 1 (tiny populations); the probability is 1 - prod(1 - q).
    None when a band has no people."""
    survive = Decimal(1)
    for band in range(8):
        people = population.get(band, 0)
        if people == 0:
            return None
        m = Decimal(deaths.get(band, 0)) / Decimal(people)
        q = min(Decimal(1), (5 * m) / (1 + Decimal("2.5") * m))
        survive *= 1 - q
    return 1 - survive


# --- the registry ---------------------------------------------------------------------------

E = "encounter"
RG = "resident_group"  # a resident's home group (their home institution's), see Measure.group
INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        slug="primary_visit_share",
        title="基层诊疗人次占比",
        title_en="Share of visits at primary level",
        unit="share",
        numerator=Measure(E, "visit_day", _primary_visits),
        denominator=Measure(E, "visit_day", _visits),
        numerator_label="基层医疗卫生机构（含村卫生室）门急诊人次",
        denominator_label="网格居民门急诊总人次（含集团外就诊）",
        definition=(
            "基层医疗卫生机构诊疗人次 ÷ 总诊疗人次。诊疗人次按门诊、急诊计（不含住院）；"
            "分母含居民在集团外（县外、市外、省外）的门急诊，以反映居民就医去向。"
        ),
        source="002 §四(一)3；003 §一；国家卫生健康统计调查制度“基层医疗卫生机构诊疗量占比”",
        direction="higher",
        category="就医秩序",
        dimensions=("group", "grid", "month"),
        target_keys=("targets.primary_visit_share",),
    ),
    Indicator(
        slug="county_visit_share",
        title="县域内就诊率",
        title_en="Share of care within the county",
        unit="share",
        numerator=Measure(E, "visit_day", lambda t: t.local == 1, group=RG),
        denominator=Measure(E, "visit_day", group=RG),
        numerator_label="县域内门急诊与入院人次",
        denominator_label="网格居民门急诊与入院总人次",
        definition=(
            "县域内就诊人次 ÷ 居民全部就诊人次，门急诊与住院（按入院日）合计；"
            "就诊地由就诊记录的 area_scope（local = 县域内）判断。"
        ),
        source="003 §一“县域就诊率达到90%”；国家卫生健康委县域医共体监测指标",
        direction="higher",
        category="就医秩序",
        dimensions=("group", "grid", "month"),
        target_keys=("targets.county_visit_share",),
    ),
    Indicator(
        slug="city_visit_share",
        title="市域内就诊率",
        title_en="Share of care within the city",
        unit="share",
        numerator=Measure(E, "visit_day", lambda t: t.in_city == 1, group=RG),
        denominator=Measure(E, "visit_day", group=RG),
        numerator_label="市域内门急诊与入院人次",
        denominator_label="网格居民门急诊与入院总人次",
        definition="市域内（本县及本市他县）就诊人次 ÷ 居民全部就诊人次，口径同县域内就诊率。",
        source="004 §四(三)6（城市医疗集团监测：市域内就医）；口径同县域内就诊率",
        direction="higher",
        category="就医秩序",
        dimensions=("group", "grid", "month"),
    ),
    Indicator(
        slug="county_inpatient_share",
        title="参保人县域内住院人次占比",
        title_en="Share of admissions within the county",
        unit="share",
        numerator=Measure(
            E, "visit_day", lambda t: (t.is_inpatient == 1) & (t.local == 1), group=RG
        ),
        denominator=Measure(E, "visit_day", _admissions, group=RG),
        numerator_label="县域内入院人次",
        denominator_label="网格居民入院总人次",
        definition=(
            "县域内住院人次 ÷ 住院总人次（按入院日）。替代口径：记录中没有参保身份，"
            "以网格常住居民的全部住院代替参保人住院。"
        ),
        source="003 §一“县域外住院人次占比逐年下降”的补数；医保结算口径以居民记录替代",
        direction="higher",
        category="就医秩序",
        dimensions=("group", "grid", "month"),
    ),
    Indicator(
        slug="out_of_county_inpatient_share",
        title="县域外住院人次占比",
        title_en="Share of admissions outside the county",
        unit="share",
        numerator=Measure(
            E, "visit_day", lambda t: (t.is_inpatient == 1) & (t.local == 0), group=RG
        ),
        denominator=Measure(E, "visit_day", _admissions, group=RG),
        numerator_label="县域外入院人次",
        denominator_label="网格居民入院总人次",
        definition="县域外住院人次 ÷ 住院总人次（按入院日），即 1 − 参保人县域内住院人次占比。",
        source="003 §一",
        direction="lower",
        category="就医秩序",
        dimensions=("group", "grid", "month"),
        target_keys=("targets.out_of_county_inpatient_share",),
    ),
    Indicator(
        slug="lead_cmi",
        title="牵头医院病例组合指数（CMI）",
        title_en="Case-mix index of the lead hospital",
        unit="index",
        numerator=Measure(
            E, "discharge_day", lambda t: _lead_discharges(t) & t.drg_w.notnull(), "drg_w"
        ),
        denominator=Measure(E, "discharge_day", lambda t: _lead_discharges(t) & t.drg_w.notnull()),
        numerator_label="出院病例 DRG 权重之和",
        denominator_label="入组出院病例数",
        definition=(
            "牵头医院出院病例 DRG 权重之和 ÷ 入组出院病例数（按出院日）；无 DRG 权重的病例不入组。"
        ),
        source="002 §四(一)3；国家三级公立医院绩效考核指标（CMI）",
        direction="higher",
        category="服务效能",
        dimensions=("group", "member", "month"),
        scale=Decimal("0.0001"),
        target_keys=("targets.cmi",),
    ),
    Indicator(
        slug="average_length_of_stay",
        title="牵头医院平均住院日",
        title_en="Average length of stay at the lead hospital",
        unit="days",
        numerator=Measure(E, "discharge_day", _lead_discharges, "los_days"),
        denominator=Measure(E, "discharge_day", _lead_discharges),
        numerator_label="出院者占用总床日数",
        denominator_label="出院人数",
        definition=(
            "出院者占用总床日数 ÷ 出院人数（按出院日）。住院天数 = 出院日期 − 入院日期，"
            "当日入出院计 1 日；死亡与转院出院均计入。"
        ),
        source="002 §四(一)3；卫生健康统计指标解释“出院者平均住院日”",
        direction="lower",
        category="服务效能",
        dimensions=("group", "member", "month"),
        target_keys=("targets.average_length_of_stay",),
    ),
    Indicator(
        slug="grade4_surgery_share",
        title="出院患者四级手术比例",
        title_en="Grade-4 share of operations on discharged patients",
        unit="share",
        numerator=Measure(E, "discharge_day", _lead_discharges, "n_grade4"),
        denominator=Measure(E, "discharge_day", _lead_discharges, "n_graded"),
        numerator_label="出院患者四级手术台次",
        denominator_label="出院患者手术台次（有手术分级者）",
        definition="牵头医院出院患者四级手术台次 ÷ 同期出院患者手术台次（按出院日）。",
        source="002 §四(一)3；国家三级公立医院绩效考核指标 1.3",
        direction="higher",
        category="服务效能",
        dimensions=("group", "member", "month"),
        target_keys=("targets.grade4_surgery_share",),
    ),
    Indicator(
        slug="surgery_share",
        title="出院患者手术占比",
        title_en="Share of discharged patients operated on",
        unit="share",
        numerator=Measure(E, "discharge_day", lambda t: _lead_discharges(t) & (t.operated == 1)),
        denominator=Measure(E, "discharge_day", _lead_discharges),
        numerator_label="有手术的出院人次",
        denominator_label="出院人次",
        definition=(
            "牵头医院有分级手术的出院人次 ÷ 出院人次（按出院日）。选择：以人次而非台次计，"
            "一次住院多台手术只计一次。"
        ),
        source="国家三级公立医院绩效考核指标 1.2（出院患者手术占比）",
        direction="higher",
        category="服务效能",
        dimensions=("group", "member", "month"),
    ),
    Indicator(
        slug="outpatient_discharge_ratio",
        title="门诊人次数与出院人次数比",
        title_en="Outpatient visits per discharge (lead hospital)",
        unit="ratio",
        numerator=Measure(E, "visit_day", lambda t: (t.is_visit == 1) & (t.is_lead == 1)),
        denominator=Measure(E, "discharge_day", _lead_discharges),
        numerator_label="牵头医院门急诊人次",
        denominator_label="牵头医院出院人次",
        definition="牵头医院门急诊人次（按就诊日）÷ 出院人次（按出院日）。",
        source="002 §四(一)3；国家三级公立医院绩效考核指标 1.1",
        direction="lower",
        category="服务效能",
        dimensions=("group", "member", "month"),
        target_keys=("targets.outpatient_discharge_ratio",),
    ),
    Indicator(
        slug="primary_tcm_share",
        title="基层中医诊疗量占比",
        title_en="TCM share of primary-level visits",
        unit="share",
        numerator=Measure(
            E, "visit_day", lambda t: _primary_visits(t) & (t.tcm == 1), grid="member_grid"
        ),
        denominator=Measure(E, "visit_day", _primary_visits, grid="member_grid"),
        numerator_label="基层中医类门急诊人次",
        denominator_label="基层门急诊人次",
        definition="基层医疗卫生机构中医类诊疗人次 ÷ 基层医疗卫生机构诊疗总人次。",
        source="003 §二(四)14",
        direction="higher",
        category="服务效能",
        target_keys=("targets.primary_tcm_visit_share",),
    ),
    Indicator(
        slug="out_of_catalogue_share",
        title="目录外费用占比",
        title_en="Out-of-catalogue share of costs",
        unit="share",
        numerator=Measure(E, "bill_day", lambda t: t.in_group == 1, "ooc_fen", grid="member_grid"),
        denominator=Measure(
            E, "bill_day", lambda t: t.in_group == 1, "total_fen", grid="member_grid"
        ),
        numerator_label="医保目录外费用（分）",
        denominator_label="医疗总费用（分）",
        definition=("集团成员单位医保目录外费用 ÷ 医疗总费用；门急诊按就诊日、住院按出院日计费。"),
        source="国家医保局 DIP/DRG 监测“目录外费用占比”；000、002 医保支付改革条款",
        direction="lower",
        category="运营管理",
    ),
    Indicator(
        slug="recognition_used",
        title="检查检验结果互认次数",
        title_en="Repeat tests avoided by mutual recognition",
        unit="count",
        numerator=Measure("decision", "day", lambda t: t.used == 1),
        denominator=None,
        numerator_label="采用既有结果（互认）次数",
        denominator_label=None,
        definition="医生开单前被提示可互认结果并选择采用的次数。",
        source="国卫医发〔2022〕6号；001、002 检查检验结果互认条款",
        direction="higher",
        category="协同服务",
    ),
    Indicator(
        slug="recognition_rate",
        title="检查检验结果互认率",
        title_en="Share of prompts resolved by recognition",
        unit="share",
        numerator=Measure("decision", "day", lambda t: t.used == 1),
        denominator=Measure("decision", "day"),
        numerator_label="采用既有结果次数",
        denominator_label="提示可互认的开单决定次数",
        definition="采用既有结果次数 ÷ 提示可互认后的全部开单决定次数（含坚持重新检查）。",
        source="国卫医发〔2022〕6号",
        direction="higher",
        category="协同服务",
    ),
    Indicator(
        slug="recognition_avoided_cost",
        title="互认节约费用",
        title_en="Cost avoided by mutual recognition",
        unit="yuan",
        numerator=Measure("decision", "day", lambda t: t.used == 1, "avoided_fen"),
        denominator=None,
        numerator_label="避免重复检查的费用（分）",
        denominator_label=None,
        definition="采用既有结果时记录的避免费用之和，单位元。",
        source="国卫医发〔2022〕6号",
        direction="higher",
        category="协同服务",
        scale=Decimal("0.01"),
    ),
    Indicator(
        slug="up_referrals",
        title="上转人次",
        title_en="Upward referrals",
        unit="count",
        numerator=Measure("referral", "submitted_day", lambda t: _submitted(t) & (t.up == 1)),
        denominator=None,
        numerator_label="提交的上转申请（不含撤销）",
        denominator_label=None,
        definition="按提交日统计的上转人次，不含撤销；成员单位按转出机构计。",
        source="001 §三(二)；002 §四(三)1 转诊监测制度",
        direction="higher",
        category="协同服务",
    ),
    Indicator(
        slug="down_referrals",
        title="下转人次",
        title_en="Downward referrals",
        unit="count",
        numerator=Measure("referral", "submitted_day", lambda t: _submitted(t) & (t.down == 1)),
        denominator=None,
        numerator_label="提交的下转申请（不含撤销）",
        denominator_label=None,
        definition="按提交日统计的下转人次，不含撤销；成员单位按转出机构计。",
        source="001 §二；002 §四(三)1",
        direction="higher",
        category="协同服务",
    ),
    Indicator(
        slug="down_referral_rate",
        title="集团内向下转诊率",
        title_en="Downward share of referrals",
        unit="share",
        numerator=Measure("referral", "submitted_day", lambda t: _submitted(t) & (t.down == 1)),
        denominator=Measure("referral", "submitted_day", _submitted),
        numerator_label="下转人次",
        denominator_label="上转与下转人次合计",
        definition=(
            "下转人次 ÷ 转诊总人次（上转 + 下转，按提交日，不含撤销）。选择：种子只要求"
            "“逐年提升”而未给出口径，取转诊中下转所占比例。"
        ),
        source="001 §二“集团内向下转诊率、基层就诊率逐年提升”",
        direction="higher",
        category="协同服务",
        target_keys=("targets.down_referral_rate",),
    ),
    Indicator(
        slug="closed_loop_rate",
        title="转诊闭环率",
        title_en="Closed-loop rate of referrals",
        unit="share",
        numerator=Measure(
            "referral",
            "submitted_day",
            lambda t: _submitted(t) & (t.accepted == 1) & (t.closed == 1),
        ),
        denominator=Measure(
            "referral", "submitted_day", lambda t: _submitted(t) & (t.accepted == 1)
        ),
        numerator_label="已完成（回执、到诊、结果反馈）的转诊",
        denominator_label="已接收的转诊",
        definition="已接收的转诊中完成闭环（状态 completed 或已关闭）的比例，按提交日。",
        source="001 §三(二)；002 §四(三)1（上下转诊流程闭环）",
        direction="higher",
        category="协同服务",
    ),
    Indicator(
        slug="reserved_slot_share",
        title="牵头医院下沉号源比例",
        title_en="Share of outpatient slots reserved for primary care",
        unit="share",
        numerator=Measure("slot", "day", lambda t: t.reserved_offered == 1),
        denominator=Measure("slot", "day"),
        numerator_label="作为预留号源发布的号源数",
        denominator_label="发布的号源总数",
        definition="按就诊日统计，发布时进入预留池（向基层和家庭医生团队下沉）的号源 ÷ 全部号源。",
        source="001 §三(二)（20%）；002 §四(三)1（至少 1/3）",
        direction="higher",
        category="协同服务",
        dimensions=("group", "member", "month"),
        target_keys=("capacity.reserved_outpatient_share",),
    ),
    Indicator(
        slug="reserved_slot_use",
        title="下沉号源使用率",
        title_en="Share of reserved slots booked by primary care",
        unit="share",
        numerator=Measure("slot", "day", lambda t: t.reserved_used == 1),
        denominator=Measure("slot", "day", lambda t: t.reserved_offered == 1),
        numerator_label="在预留池内被预约的号源",
        denominator_label="预留号源",
        definition="预留号源中在释放前被基层或家庭医生团队预约的比例；释放后被普通预约的不计。",
        source="002 §四(三)1；001 §三(二)",
        direction="higher",
        category="协同服务",
        dimensions=("group", "member", "month"),
    ),
    Indicator(
        slug="reserved_bed_share",
        title="牵头医院下沉床位比例",
        title_en="Share of inpatient beds reserved for primary care",
        unit="share",
        numerator=Measure("bed", None, lambda t: t.reserved == 1, prepare=_beds),
        denominator=Measure("bed", None, prepare=_beds),
        numerator_label="期末预留（下沉）床位数",
        denominator_label="期末纳入统筹的床位总数",
        definition=(
            "统计期最后一天在预留池（向基层和家庭医生团队下沉）的床位 ÷ 当天纳入集团统筹的"
            "床位。床位的池别在建立病区床位池时确定、之后不再调整，所以按床位池的建立日期"
            "即可还原任一天的状态；建立日期未记录的床位池视为一直在池。按月份不拆分。"
        ),
        source="001 §三(二)（20%）；002 §四(三)1（至少 1/4）",
        direction="higher",
        category="协同服务",
        dimensions=("group", "member"),
        target_keys=("capacity.reserved_bed_share",),
    ),
    Indicator(
        slug="reserved_bed_use",
        title="下沉床位使用占比",
        title_en="Share of pooled admissions through reserved beds",
        unit="share",
        numerator=Measure("bed_stay", "day", lambda t: t.reserved == 1),
        denominator=Measure("bed_stay", "day"),
        numerator_label="经预留床位入院的人次",
        denominator_label="统筹床位入院人次",
        definition="按入院日，经预留（下沉）床位入院的人次 ÷ 统筹床位的全部入院人次。",
        source="002 §四(三)1；001 §三(二)",
        direction="higher",
        category="协同服务",
        dimensions=("group", "member", "month"),
    ),
    Indicator(
        slug="hypertension_standard_management",
        title="高血压患者规范管理率",
        title_en="Hypertension: share under standard management",
        unit="share",
        numerator=Measure("enrolment", None, lambda t: t.standard == 1, prepare=HYPERTENSION),
        denominator=Measure("enrolment", None, prepare=HYPERTENSION),
        numerator_label="期内面对面随访达到要求次数的在管患者",
        denominator_label="期内在管高血压患者",
        definition=(
            "按规范要求管理的患者 ÷ 期内在管患者。规范管理：面对面（门诊、入户）随访达到"
            "要求次数，全年 4 次，年中纳入者按纳入日至期末的天数折算（四舍五入，至少 1 次），"
            "与慢病管理模块的规则一致；电话、网络随访不计。按月份不拆分。"
        ),
        source="国家基本公共卫生服务规范（第三版）高血压患者健康管理；003 §二(四)15",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
        target_keys=("targets.chronic_standard_management_rate",),
    ),
    Indicator(
        slug="diabetes_standard_management",
        title="2型糖尿病患者规范管理率",
        title_en="Diabetes: share under standard management",
        unit="share",
        numerator=Measure("enrolment", None, lambda t: t.standard == 1, prepare=DIABETES),
        denominator=Measure("enrolment", None, prepare=DIABETES),
        numerator_label="期内面对面随访达到要求次数的在管患者",
        denominator_label="期内在管糖尿病患者",
        definition="口径同高血压患者规范管理率。",
        source="国家基本公共卫生服务规范（第三版）2型糖尿病患者健康管理；003 §二(四)15",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
        target_keys=("targets.chronic_standard_management_rate",),
    ),
    Indicator(
        slug="hypertension_control",
        title="高血压患者血压控制率",
        title_en="Hypertension: share controlled",
        unit="share",
        numerator=Measure("enrolment", None, lambda t: t.controlled == 1, prepare=HYPERTENSION),
        denominator=Measure("enrolment", None, prepare=HYPERTENSION),
        numerator_label="期末最近一次随访血压达标且未失访的患者",
        denominator_label="期内在管高血压患者",
        definition=(
            "期末最近一次随访血压达标（收缩压<140 且舒张压<90 mmHg）的人数 ÷ 期内在管患者"
            "人数。与慢病管理模块同一规则：取统计期最后一天及以前的最近一次随访（可早于统计期，"
            "同日多次取最后录入的一次）；失访（期末前超过 182 天无随访）或从未随访者计为未达标。"
        ),
        source="国家基本公共卫生服务规范（第三版）；003 §二(四)15“控制率持续提高”",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
        target_keys=("targets.chronic_control_rate",),
    ),
    Indicator(
        slug="diabetes_control",
        title="2型糖尿病患者血糖控制率",
        title_en="Diabetes: share controlled",
        unit="share",
        numerator=Measure("enrolment", None, lambda t: t.controlled == 1, prepare=DIABETES),
        denominator=Measure("enrolment", None, prepare=DIABETES),
        numerator_label="期末最近一次随访血糖达标且未失访的患者",
        denominator_label="期内在管糖尿病患者",
        definition=(
            "期末最近一次随访空腹血糖达标（<7.0 mmol/L）的人数 ÷ 期内在管患者人数；"
            "口径同高血压患者血压控制率（慢病管理模块的规则，失访计为未达标）。"
        ),
        source="国家基本公共卫生服务规范（第三版）；003 §二(四)15",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
        target_keys=("targets.chronic_control_rate",),
    ),
    Indicator(
        slug="contract_coverage",
        title="家庭医生签约覆盖率",
        title_en="Family-doctor contract coverage",
        unit="share",
        numerator=Measure("resident", None, lambda t: t.contracted == 1, prepare=_coverage),
        denominator=Measure("resident", None, prepare=_coverage),
        numerator_label="期末有有效签约的居民",
        denominator_label="期末在册居民",
        definition=(
            "统计期最后一天有有效家庭医生签约的居民 ÷ 当天在册（在世）居民；"
            "按居民所属基层成员单位的集团计。"
        ),
        source="000 §三(五)1；国家家庭医生签约服务指导意见",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
    ),
    Indicator(
        slug="key_population_contract_coverage",
        title="重点人群签约覆盖率",
        title_en="Contract coverage of key populations",
        unit="share",
        numerator=Measure(
            "resident", None, lambda t: (t.key == 1) & (t.contracted == 1), prepare=_coverage
        ),
        denominator=Measure("resident", None, lambda t: t.key == 1, prepare=_coverage),
        numerator_label="期末已签约的重点人群",
        denominator_label="期末重点人群（65 岁及以上、0-6 岁儿童、在管高血压和糖尿病患者）",
        definition=(
            "重点人群中期末有有效签约者的比例。重点人群与家庭医生模块一致：65 岁及以上老年人、"
            "0-6 岁儿童、在管高血压和糖尿病患者（孕产妇、残疾人等记录中无标识，未纳入）。"
        ),
        source="000 §三(五)1；国家家庭医生签约服务指导意见（重点人群）",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
    ),
    Indicator(
        slug="contract_fulfilment",
        title="家庭医生签约履约率",
        title_en="Fulfilment of family-doctor contracts",
        unit="share",
        numerator=Measure("contract", None, column="done", prepare=_fulfilment),
        denominator=Measure("contract", None, column="due", prepare=_fulfilment),
        numerator_label="已履约服务次数（每项不超过应履约次数）",
        denominator_label="截至期末应履约服务次数",
        definition=(
            "期末有效签约的服务包中，截至期末已提供的服务次数（每项服务以应提供次数为上限）"
            "÷ 截至期末应提供的服务次数，与家庭医生模块的履约率同一口径：应提供次数按服务包"
            "每年频次在签约年度内均分到期（如每年 4 次面对面随访，约每 91 天到期 1 次），自签约"
            "起累计；慢病随访以签约期内的面对面随访计，其他服务以登记的履约记录计。"
            "按签约团队所在成员单位、居民所在网格统计；期末无应提供服务时无值。"
        ),
        source="003 §二(六)21（向履约质量高的家庭医生团队倾斜）；000 §三(五)2（签约服务包）",
        direction="higher",
        category="健康管理",
        dimensions=("group", "grid", "member"),
    ),
    Indicator(
        slug="maternal_mortality",
        title="孕产妇死亡率",
        title_en="Maternal mortality ratio",
        unit="per_100k",
        numerator=Measure("resident", None, lambda t: t.maternal == 1, prepare=_deaths),
        denominator=Measure(E, "visit_day", lambda t: t.delivery == 1),
        numerator_label="孕产妇死亡数",
        denominator_label="活产数（以分娩住院计）",
        definition=(
            "孕产妇死亡数 ÷ 活产数 × 10万。孕产妇死亡：分娩住院期间或出院后 42 天内死亡的"
            "女性（记录无死因，不排除意外死亡）；活产数以分娩入院人次代替（记录无新生儿）。"
        ),
        source="002 §四(一)3；《中国妇幼卫生监测方案》",
        direction="lower",
        category="健康结果",
        dimensions=("group", "grid"),
        scale=Decimal(100_000),
        target_keys=("targets.maternal_mortality",),
    ),
    Indicator(
        slug="infant_mortality",
        title="婴儿死亡率",
        title_en="Infant mortality rate",
        unit="per_1000",
        numerator=Measure("resident", None, lambda t: t.age < 1, prepare=_deaths),
        denominator=Measure(E, "visit_day", lambda t: t.delivery == 1),
        numerator_label="不满 1 周岁死亡数",
        denominator_label="活产数（以分娩住院计）",
        definition="期内不满 1 周岁的居民死亡数 ÷ 同期活产数 × 1000（时期率）。",
        source="002 §四(一)3；《中国妇幼卫生监测方案》",
        direction="lower",
        category="健康结果",
        dimensions=("group", "grid"),
        scale=Decimal(1000),
        target_keys=("targets.infant_mortality",),
    ),
    Indicator(
        slug="under5_mortality",
        title="5岁以下儿童死亡率",
        title_en="Under-five mortality rate",
        unit="per_1000",
        numerator=Measure("resident", None, lambda t: t.age < 5, prepare=_deaths),
        denominator=Measure(E, "visit_day", lambda t: t.delivery == 1),
        numerator_label="不满 5 周岁死亡数",
        denominator_label="活产数（以分娩住院计）",
        definition="期内不满 5 周岁的居民死亡数 ÷ 同期活产数 × 1000（时期率）。",
        source="002 §四(一)3；《中国妇幼卫生监测方案》",
        direction="lower",
        category="健康结果",
        dimensions=("group", "grid"),
        scale=Decimal(1000),
        target_keys=("targets.under5_mortality",),
    ),
    Indicator(
        slug="premature_chronic_mortality",
        title="重大慢性病过早死亡率（30-70岁）",
        title_en="Premature mortality from the four major chronic diseases (30-70)",
        unit="share",
        numerator=Measure(
            "resident", None, lambda t: (t.c4 == 1) & (t.band >= 0), prepare=_deaths, band="band"
        ),
        denominator=Measure(
            "resident", None, lambda t: t.band >= 0, prepare=_population, band="band"
        ),
        numerator_label="30-69 岁四类慢病院内死亡数",
        denominator_label="30-69 岁年中人口",
        definition=(
            "寿命表法：按 30-34 … 65-69 八个年龄组，m = 死亡数 ÷ 年中人口，"
            "q = 5m ÷ (1 + 2.5m)，过早死亡率 = 1 − ∏(1 − q)。四类慢病为心脑血管疾病 I00-I99、"
            "癌症 C00-C97、糖尿病 E10-E14、慢性呼吸系统疾病 J30-J98，以临终住院的主要诊断为"
            "死因；院外死亡没有死因记录，不计入（低估），按年计算。"
        ),
        source="《健康中国行动(2019-2030年)》重大慢性病过早死亡率；003 §二(四)15",
        direction="lower",
        category="健康结果",
        dimensions=("group", "grid"),
        combine=premature_mortality,
    ),
)

BY_SLUG = {indicator.slug: indicator for indicator in INDICATORS}
CATEGORIES = tuple(dict.fromkeys(indicator.category for indicator in INDICATORS))


def get(slug: str) -> Indicator:
    return BY_SLUG[slug]
