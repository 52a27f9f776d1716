"""The report as JSON (API, CLI) and as an Excel workbook (openpyxl) in the layout a health
commission expects: a summary sheet (指标汇总) with value, target and status, one sheet per
requested dimension (按集团 / 按网格 / 按成员单位 / 按月份) and the definitions sheet (指标定义),
all with Chinese headers."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from caregrid.indicators.engine import Cell
from caregrid.indicators.registry import DIMENSION_LABELS, UNIT_LABELS, Indicator
from caregrid.indicators.rules import STATUS_LABELS
from caregrid.indicators.service import Report, Summary, comparable, format_value


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def definition_json(indicator: Indicator) -> dict[str, Any]:
    return {
        "slug": indicator.slug,
        "title": indicator.title,
        "title_en": indicator.title_en,
        "unit": indicator.unit,
        "category": indicator.category,
        "numerator": indicator.numerator_label,
        "denominator": indicator.denominator_label,
        "definition": indicator.definition,
        "source": indicator.source,
        "direction": indicator.direction,
        "dimensions": list(indicator.dimensions),
        "target_keys": list(indicator.target_keys),
    }


def cell_json(cell: Cell, report: Report, unit: str) -> dict[str, Any]:
    return {
        "group_id": cell.group,
        "group": report.groups.get(cell.group) if cell.group is not None else None,
        "member_id": cell.member,
        "member": report.members.get(cell.member) if cell.member is not None else None,
        "month": cell.month,
        "grid_id": cell.grid,
        "grid": report.grids.get(cell.grid) if cell.grid is not None else None,
        "numerator": cell.numerator,
        "denominator": cell.denominator,
        "value": _num(cell.value),
        "display": format_value(cell.value, unit),
    }


def summary_json(s: Summary, report: Report) -> dict[str, Any]:
    unit = s.indicator.unit
    target = s.target
    return {
        **definition_json(s.indicator),
        "numerator_value": s.cell.numerator,
        "denominator_value": s.cell.denominator,
        "value": _num(s.cell.value),
        "display": format_value(s.cell.value, unit),
        "previous_value": _num(s.previous.value) if s.previous else None,
        "movement": s.movement,
        "improving": s.improving,
        "target": None
        if target is None
        else {
            "key": target.key,
            "label": target.label,
            "display": target.display,
            "clause": target.clause,
            "comparator": target.comparator,
            "value": _num(target.value),
            "trend": target.trend,
        },
        "status": s.status,
        "status_label": STATUS_LABELS[s.status] if target is not None else None,
        "breakdown": [cell_json(c, report, unit) for c in report.breakdown(s.indicator.slug)],
    }


def report_json(report: Report) -> dict[str, Any]:
    return {
        "profile": report.profile_id,
        "profile_name": report.profile_name,
        "period": report.period.label,
        "start": report.period.start.isoformat(),
        "end": report.period.end.isoformat(),
        "engine": report.engine,
        "by": list(report.by),
        "group_id": report.group_id,
        "indicators": [summary_json(s, report) for s in report.summaries],
    }


HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
STATUS_FILLS = {
    "met": PatternFill("solid", fgColor="C6EFCE"),
    "close": PatternFill("solid", fgColor="FFEB9C"),
    "missed": PatternFill("solid", fgColor="FFC7CE"),
}


def _header(ws: Any, titles: list[str]) -> None:
    ws.append(titles)
    for col in range(1, len(titles) + 1):
        cell = ws.cell(row=1, column=col)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    ws.freeze_panes = "A2"


def _widths(ws: Any, widths: list[int]) -> None:
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def _chart_value(value: Decimal | None, unit: str) -> float | None:
    return comparable(value, unit)


def report_xlsx(report: Report) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "指标汇总"
    _header(
        ws,
        ["类别", "指标", "单位", "分子", "分母", "当期值", "上期值", "目标值", "状态", "目标出处"],
    )
    for s in report.summaries:
        unit = s.indicator.unit
        ws.append(
            [
                s.indicator.category,
                s.indicator.title,
                UNIT_LABELS[unit],
                s.cell.numerator,
                s.cell.denominator,
                _chart_value(s.cell.value, unit),
                _chart_value(s.previous.value, unit) if s.previous else None,
                s.target.display if s.target else "—",
                STATUS_LABELS[s.status] if s.target else "无目标",
                s.target.clause if s.target else "",
            ]
        )
        if s.status in STATUS_FILLS:
            ws.cell(row=ws.max_row, column=9).fill = STATUS_FILLS[s.status]
    _widths(ws, [10, 30, 8, 14, 14, 12, 12, 18, 8, 16])
    ws.append([])
    ws.append(
        [f"方案：{report.profile_name}；统计期：{report.period.label}；计算引擎：{report.engine}"]
    )

    for dim in report.by:
        sheet = wb.create_sheet(f"按{DIMENSION_LABELS[dim]}")
        _header(sheet, ["指标", DIMENSION_LABELS[dim], "分子", "分母", "值", "显示值"])
        for s in report.summaries:
            unit = s.indicator.unit
            for cell in report.breakdown_by(dim, s.indicator.slug):
                label = _dim_label(cell, dim, report)
                if label is None:
                    continue
                sheet.append(
                    [
                        s.indicator.title,
                        label,
                        cell.numerator,
                        cell.denominator,
                        _chart_value(cell.value, unit),
                        format_value(cell.value, unit),
                    ]
                )
        _widths(sheet, [30, 28, 14, 14, 12, 16])

    defs = wb.create_sheet("指标定义")
    _header(defs, ["标识", "指标", "英文名", "单位", "分子", "分母", "定义与口径", "依据", "方向"])
    for s in report.summaries:
        i = s.indicator
        defs.append(
            [
                i.slug,
                i.title,
                i.title_en,
                UNIT_LABELS[i.unit],
                i.numerator_label,
                i.denominator_label or "—",
                i.definition,
                i.source,
                "越高越好" if i.direction == "higher" else "越低越好",
            ]
        )
    _widths(defs, [28, 28, 36, 8, 30, 30, 70, 40, 10])
    for row in defs.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _dim_label(cell: Cell, dim: str, report: Report) -> str | None:
    if dim == "group":
        return report.groups.get(cell.group, str(cell.group)) if cell.group is not None else None
    if dim == "grid":
        return report.grids.get(cell.grid, str(cell.grid)) if cell.grid is not None else None
    if dim == "member":
        if cell.member is None:
            return None
        return report.members.get(cell.member, str(cell.member))
    return cell.month
