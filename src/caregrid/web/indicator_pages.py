"""The group cockpit (指标驾驶舱): target tiles with status and movement, monthly trends and
member comparison bars (ECharts, served locally), drill-down to an indicator's definition and
its members, and the Excel export. Thin pages over `indicators.service.build_report`."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse

from caregrid.core.clock import today
from caregrid.core.errors import Forbidden, NotFound
from caregrid.core.http import DB, api_router
from caregrid.indicators.export import report_xlsx
from caregrid.indicators.registry import BY_SLUG, CATEGORIES, UNIT_LABELS
from caregrid.indicators.rules import STATUS_LABELS
from caregrid.indicators.service import (
    Report,
    Summary,
    build_report,
    comparable,
    format_value,
    visible_indicators,
)
from caregrid.web.auth import PageActor
from caregrid.web.pages import page

router = api_router(include_in_schema=False)
# Compared across members on the cockpit: indicators whose value means something per member
# (a referral rate does not: primary members refer up, hospitals refer down).
COMPARED = (
    "primary_tcm_share",
    "out_of_catalogue_share",
    "hypertension_standard_management",
    "key_population_contract_coverage",
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _default_period() -> str:
    """The last complete year (the demo's year of activity)."""
    return str(today().year - 1)


def _tile(s: Summary) -> dict[str, Any]:
    unit = s.indicator.unit
    arrow = {"up": "↑", "down": "↓", "flat": "→"}.get(s.movement or "", "")
    return {
        "slug": s.indicator.slug,
        "title": s.indicator.title,
        "display": format_value(s.cell.value, unit),
        "previous": format_value(s.previous.value if s.previous else None, unit),
        "target": s.target.display if s.target else None,
        "clause": s.target.clause if s.target else None,
        "status": s.status,
        "status_label": STATUS_LABELS[s.status] if s.target else "无目标",
        "arrow": arrow,
        "improving": s.improving,
        "numerator": s.cell.numerator,
        "denominator": s.cell.denominator,
    }


def _trend(report: Report, slug: str) -> dict[str, Any]:
    summary = report.summary(slug)
    unit = summary.indicator.unit
    cells = sorted(report.breakdown_by("month", slug), key=lambda c: c.month or "")
    target = summary.target
    target_value = (
        comparable(target.value, unit) if target is not None and target.value is not None else None
    )
    return {
        "name": summary.indicator.title,
        "unit": "%" if unit == "share" else UNIT_LABELS[unit],
        "categories": [c.month for c in cells],
        "values": [comparable(c.value, unit) for c in cells],
        "target": target_value,
    }


def _members(report: Report, slug: str) -> dict[str, Any]:
    summary = report.summary(slug)
    unit = summary.indicator.unit
    cells = [c for c in report.breakdown_by("member", slug) if c.member is not None]
    sign = 1 if summary.indicator.direction == "higher" else -1
    # worst first: the members dragging the indicator down lead the list
    cells.sort(key=lambda c: (c.value is None, sign * (c.value or 0)))
    return {
        "name": summary.indicator.title,
        "unit": "%" if unit == "share" else UNIT_LABELS[unit],
        "rows": [
            {
                "member": report.members.get(c.member or -1, str(c.member)),
                "numerator": c.numerator,
                "denominator": c.denominator,
                "display": format_value(c.value, unit),
                "value": comparable(c.value, unit),
            }
            for c in cells
        ],
    }


@router.get("/indicators", response_class=HTMLResponse)
def cockpit(
    request: Request,
    db: DB,
    actor: PageActor,
    period: str | None = Query(default=None, max_length=10),
    group_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
) -> HTMLResponse:
    """Every target of the active profile with value, status and movement, by category;
    monthly trends of the targeted indicators."""
    chosen = period or _default_period()
    report = build_report(db, actor, period=chosen, by="month,member", group_id=group_id)
    categories = []
    for category in CATEGORIES:
        tiles = [_tile(s) for s in report.summaries if s.indicator.category == category]
        if tiles:
            categories.append({"name": category, "tiles": tiles})
    targeted = [
        s.indicator.slug
        for s in report.summaries
        if s.target is not None and "month" in s.indicator.dimensions
    ]
    shown = {s.indicator.slug for s in report.summaries}
    comparisons = [
        chart
        for chart in (_members(report, slug) for slug in COMPARED if slug in shown)
        if len(chart["rows"]) > 1
    ]
    counts = {
        key: sum(1 for s in report.summaries if s.target and s.status == key)
        for key in ("met", "close", "missed")
    }
    return page(
        request,
        db,
        actor,
        "indicators",
        "indicators.html",
        {
            "report": report,
            "period": chosen,
            "group_id": group_id,
            "categories": categories,
            "counts": counts,
            "comparisons": comparisons,
            "trends": [
                t
                for t in (_trend(report, slug) for slug in targeted)
                if any(v is not None for v in t["values"])
            ],
        },
    )


@router.get("/indicators/export.xlsx")
def export(
    db: DB,
    actor: PageActor,
    period: str | None = Query(default=None, max_length=10),
    group_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
) -> Response:
    report = build_report(
        db,
        actor,
        period=period or _default_period(),
        by="group,grid,member,month",
        group_id=group_id,
    )
    return Response(
        report_xlsx(report),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="indicators_{report.period.label}.xlsx"'
        },
    )


# The commission and administrators oversee every group (service.ALL_GROUP_ROLES); the
# comparison page is theirs (a group manager sees only their own group).
COMPARE_ROLES = frozenset({"admin", "commission_viewer"})
DEFAULT_COMPARED = "primary_visit_share"


def _bars(report: Report, slug: str, dimension: str) -> dict[str, Any]:
    """One bar per group or grid, in name order, with the target as a line."""
    summary = report.summary(slug)
    unit = summary.indicator.unit
    names = report.groups if dimension == "group" else report.grids
    cells = [
        c
        for c in report.breakdown_by(dimension, slug)
        if (c.group if dimension == "group" else c.grid) is not None
    ]
    labelled = []
    for c in cells:
        key = c.group if dimension == "group" else c.grid
        labelled.append((names.get(key or -1, str(key)), c))
    labelled.sort(key=lambda pair: pair[0])
    rows = [
        {
            "label": label,
            "numerator": c.numerator,
            "denominator": c.denominator,
            "display": format_value(c.value, unit),
            "value": comparable(c.value, unit),
        }
        for label, c in labelled
    ]
    target = summary.target
    return {
        "name": summary.indicator.title,
        "dimension": "集团" if dimension == "group" else "网格",
        "unit": "%" if unit == "share" else UNIT_LABELS[unit],
        "target": comparable(target.value, unit) if target and target.value is not None else None,
        "target_display": target.display if target else None,
        "rows": rows,
    }


@router.get("/indicators/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    db: DB,
    actor: PageActor,
    period: str | None = Query(default=None, max_length=10),
    indicator: str = Query(default=DEFAULT_COMPARED, max_length=60),
) -> HTMLResponse:
    """The commission's view: one indicator compared across every group and every grid (bars
    with the target line), with the counts behind each bar."""
    if actor.role not in COMPARE_ROLES:
        raise Forbidden("仅卫健委/管委会和管理员可对比各医疗集团与网格")
    if indicator not in BY_SLUG:
        raise NotFound("没有这个指标", indicator=indicator)
    chosen = period or _default_period()
    report = build_report(db, actor, period=chosen, by="group,grid", slugs=[indicator])
    summary = report.summary(indicator)
    options = [
        {"slug": i.slug, "title": i.title, "category": i.category}
        for i in visible_indicators(actor)
        if i.supports("group")
    ]
    charts = [_bars(report, indicator, "group")]
    if summary.indicator.supports("grid"):
        charts.append(_bars(report, indicator, "grid"))
    return page(
        request,
        db,
        actor,
        "comparison",
        "indicator_compare.html",
        {
            "report": report,
            "period": chosen,
            "i": summary.indicator,
            "tile": _tile(summary),
            "target": summary.target,
            "options": options,
            "charts": charts,
            "by_grid": summary.indicator.supports("grid"),
        },
    )


@router.get("/indicators/{slug}", response_class=HTMLResponse)
def detail(
    request: Request,
    db: DB,
    actor: PageActor,
    slug: str,
    period: str | None = Query(default=None, max_length=10),
    group_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
) -> HTMLResponse:
    """One indicator: definition (numerator, denominator, source), target and status, the
    monthly trend, and the members from worst to best with their counts."""
    if slug not in BY_SLUG:
        raise NotFound("没有这个指标", indicator=slug)
    chosen = period or _default_period()
    report = build_report(
        db, actor, period=chosen, by="member,month", group_id=group_id, slugs=[slug]
    )
    summary = report.summary(slug)
    return page(
        request,
        db,
        actor,
        "indicators",
        "indicator_detail.html",
        {
            "report": report,
            "period": chosen,
            "group_id": group_id,
            "i": summary.indicator,
            "tile": _tile(summary),
            "target": summary.target,
            "trend": _trend(report, slug) if "month" in summary.indicator.dimensions else None,
            "members": _members(report, slug) if "member" in summary.indicator.dimensions else None,
            "unit_label": UNIT_LABELS[summary.indicator.unit],
        },
    )
