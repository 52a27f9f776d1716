"""FHIR R4 Measure and MeasureReport for the indicator registry.

- ``GET /fhir/R4/Measure`` and ``GET /fhir/R4/Measure/<slug>``: each registry entry as a
  Measure (numerator / denominator populations with their plain-language criteria, scoring,
  improvement notation, the definition and its source).
- ``GET /fhir/R4/Measure/<slug>/$evaluate-measure?periodStart=2025-01-01&periodEnd=2025-12-31``
  (the standard operation; ``period=2025`` is accepted as a shorthand): a summary
  MeasureReport with the population counts and the score, stratified by member when the
  indicator breaks down by member. Same access rules as the API (indicators.service)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query, Request

from caregrid.core.errors import Invalid, NotFound
from caregrid.core.fhir import FhirResponse, SearchParam, base_url, capability
from caregrid.core.http import DB, api_router
from caregrid.identity.deps import CurrentActor
from caregrid.indicators.registry import BY_SLUG, Indicator
from caregrid.indicators.service import Report, build_report, visible_indicators

router = api_router(prefix="/fhir/R4", tags=["fhir"], include_in_schema=False)
MEASURE_BASE = "https://caregrid.org/fhir/Measure"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
UNITS = {
    "share": ("1", "1"),
    "ratio": ("1", "1"),
    "days": ("d", "天"),
    "index": ("1", "1"),
    "count": ("1", "人次"),
    "yuan": ("[CNY]", "元"),
    "per_1000": ("/10*3", "‰"),
    "per_100k": ("/10*5", "/10万"),
}

capability(
    "Measure",
    ["read", "search-type"],
    [SearchParam("_id", "token", "指标标识（slug）")],
)
capability("MeasureReport", [], [])


def _scoring(indicator: Indicator) -> str:
    if indicator.denominator is None:
        return "continuous-variable" if indicator.unit == "yuan" else "cohort"
    if indicator.unit == "share" and indicator.combine is None:
        return "proportion"
    return "ratio"


def _criteria(text: str) -> dict[str, Any]:
    return {"language": "text/plain", "expression": text}


def measure_resource(indicator: Indicator) -> dict[str, Any]:
    populations = [
        {
            "code": {"coding": [{"system": POPULATION, "code": "numerator"}]},
            "description": indicator.numerator_label,
            "criteria": _criteria(indicator.numerator_label),
        }
    ]
    if indicator.denominator_label is not None:
        populations.append(
            {
                "code": {"coding": [{"system": POPULATION, "code": "denominator"}]},
                "description": indicator.denominator_label,
                "criteria": _criteria(indicator.denominator_label),
            }
        )
    return {
        "resourceType": "Measure",
        "id": indicator.slug.replace("_", "-"),
        "url": f"{MEASURE_BASE}/{indicator.slug}",
        "name": "".join(part.title() for part in indicator.slug.split("_")),
        "title": indicator.title,
        "subtitle": indicator.title_en,
        "status": "active",
        "publisher": "caregrid",
        "description": indicator.definition,
        "purpose": indicator.source,
        "topic": [{"text": indicator.category}],
        "scoring": {"coding": [{"system": SCORING, "code": _scoring(indicator)}]},
        "improvementNotation": {
            "coding": [
                {
                    "system": IMPROVEMENT,
                    "code": "increase" if indicator.direction == "higher" else "decrease",
                }
            ]
        },
        "group": [{"population": populations}],
    }


def _indicator(slug_or_id: str, actor: Any) -> Indicator:
    slug = slug_or_id.replace("-", "_")
    if slug not in BY_SLUG or BY_SLUG[slug] not in visible_indicators(actor):
        raise NotFound("没有这个指标", indicator=slug_or_id)
    return BY_SLUG[slug]


def _score(value: Decimal | None, unit: str) -> dict[str, Any] | None:
    if value is None:
        return None
    code, display = UNITS[unit]
    return {"value": float(value), "unit": display, "system": "http://unitsofmeasure.org",
            "code": code}  # fmt: skip


def _counts(numerator: int, denominator: int | None) -> list[dict[str, Any]]:
    out = [{"code": {"coding": [{"system": POPULATION, "code": "numerator"}]}, "count": numerator}]
    if denominator is not None:
        out.append(
            {
                "code": {"coding": [{"system": POPULATION, "code": "denominator"}]},
                "count": denominator,
            }
        )
    return out


def measure_report(report: Report, indicator: Indicator) -> dict[str, Any]:
    summary = report.summary(indicator.slug)
    group: dict[str, Any] = {
        "population": _counts(summary.cell.numerator, summary.cell.denominator)
    }
    score = _score(summary.cell.value, indicator.unit)
    if score is not None:
        group["measureScore"] = score
    strata = [c for c in report.breakdown_by("member", indicator.slug) if c.member is not None]
    if strata:
        group["stratifier"] = [
            {
                "code": [{"text": "成员单位"}],
                "stratum": [
                    {
                        "value": {"text": report.members.get(c.member or -1, str(c.member))},
                        "population": _counts(c.numerator, c.denominator),
                        **(
                            {"measureScore": _score(c.value, indicator.unit)}
                            if c.value is not None
                            else {}
                        ),
                    }
                    for c in strata
                ],
            }
        ]
    resource: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": f"{MEASURE_BASE}/{indicator.slug}",
        "date": date.today().isoformat(),
        "period": {
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
        },
        "improvementNotation": measure_resource(indicator)["improvementNotation"],
        "group": [group],
    }
    if report.group_id is not None:
        resource["subject"] = {"reference": f"Group/{report.group_id}"}
    return resource


@router.get("/Measure", response_class=FhirResponse)
def search_measures(request: Request, actor: CurrentActor, _id: str | None = None) -> Any:
    found = [i for i in visible_indicators(actor) if _id is None or i.slug == _id.replace("-", "_")]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {
                "fullUrl": f"{base_url(request)}/Measure/{i.slug.replace('_', '-')}",
                "resource": measure_resource(i),
                "search": {"mode": "match"},
            }
            for i in found
        ],
    }


@router.get("/Measure/{measure_id}", response_class=FhirResponse)
def read_measure(measure_id: str, actor: CurrentActor) -> Any:
    return measure_resource(_indicator(measure_id, actor))


@router.get("/Measure/{measure_id}/$evaluate-measure", response_class=FhirResponse)
def evaluate_measure(
    measure_id: str,
    db: DB,
    actor: CurrentActor,
    periodStart: Annotated[str | None, Query(max_length=10)] = None,
    periodEnd: Annotated[str | None, Query(max_length=10)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    group_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Any:
    indicator = _indicator(measure_id, actor)
    label = period or _period_label(periodStart, periodEnd)
    by = "member" if indicator.supports("member") else None
    report = build_report(db, actor, period=label, by=by, group_id=group_id,
                          slugs=[indicator.slug])  # fmt: skip
    return measure_report(report, indicator)


def _period_label(start: str | None, end: str | None) -> str:
    """periodStart/periodEnd must cover a whole year, quarter or month (the periods caregrid
    reports); they name it as ``2025``, ``2025Q2`` or ``2025-03``."""
    from caregrid.indicators.service import parse_period

    if not start or not end:
        raise Invalid("需要 periodStart 和 periodEnd（或 period）", field="periodStart")
    year = start[:4]
    candidates = [year, f"{year}-{start[5:7]}"] + [f"{year}Q{q}" for q in range(1, 5)]
    for label in candidates:
        try:
            p = parse_period(label)
        except Invalid:
            continue
        if p.start.isoformat() == start and p.end.isoformat() == end:
            return label
    raise Invalid("统计期须为整年、整季度或整月", field="periodStart", value=f"{start}..{end}")
