"""`caregrid indicators --profile P --period 2025 [--by member,month] [--engine duckdb|spark]
[--format table|json|xlsx]`: the indicator report from the operational database, with
targets and status from the profile (the active one unless --profile names another)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from caregrid.core.actor import Actor
from caregrid.core.console import fail
from caregrid.core.errors import DomainError


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    xlsx = "xlsx"


class EngineOption(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


STATUS_STYLE = {"met": "green", "close": "yellow", "missed": "red"}


def indicators(
    period: Annotated[str, typer.Option(help="统计期：2025、2025-03 或 2025Q2")],
    profile: Annotated[
        str | None, typer.Option(help="政策方案（目标值来源）；默认为当前启用的方案")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="分组维度，逗号分隔：group,grid,member,month")
    ] = None,
    engine: Annotated[EngineOption, typer.Option(help="计算引擎")] = EngineOption.duckdb,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="输出格式：table、json 或 xlsx")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="xlsx 输出文件（默认 指标_<统计期>.xlsx）")
    ] = None,
    group: Annotated[int | None, typer.Option(help="只统计这个医疗集团（id）")] = None,
) -> None:
    """计算指标并与政策方案的目标值比较（表格、JSON 或 Excel）。"""
    from caregrid.core.db import new_session
    from caregrid.indicators.export import report_json, report_xlsx
    from caregrid.indicators.service import build_report, format_value
    from caregrid.profiles.loader import load_profile

    try:
        chosen = load_profile(profile) if profile else None
        with new_session() as session:
            report = build_report(
                session,
                Actor.system("cli"),
                period=period,
                by=by,
                engine=engine.value,
                group_id=group,
                profile=chosen,
            )
    except DomainError as exc:
        raise fail(exc.detail) from None
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n")
        return
    if output_format is OutputFormat.xlsx:
        path = output or Path(f"指标_{report.period.label}.xlsx")
        path.write_bytes(report_xlsx(report))
        typer.echo(f"已导出：{path}")
        return
    console = Console()
    table = Table(title=f"{report.profile_name} 指标（{report.period.label}，{report.engine}）")
    for column in ("类别", "指标", "分子", "分母", "当期值", "上期值", "目标值", "状态"):
        table.add_column(column, overflow="fold")
    from caregrid.indicators.rules import STATUS_LABELS

    for s in report.summaries:
        unit = s.indicator.unit
        status = STATUS_LABELS[s.status] if s.target else "—"
        style = STATUS_STYLE.get(s.status or "", "")
        table.add_row(
            s.indicator.category,
            s.indicator.title,
            f"{s.cell.numerator:,}",
            "—" if s.cell.denominator is None else f"{s.cell.denominator:,}",
            format_value(s.cell.value, unit),
            format_value(s.previous.value if s.previous else None, unit),
            s.target.display if s.target else "—",
            f"[{style}]{status}[/{style}]" if style else status,
        )
    console.print(table)
    for dim in report.by:
        sub = Table(title=f"按{_dim_name(dim)}")
        for column in ("指标", _dim_name(dim), "分子", "分母", "值"):
            sub.add_column(column, overflow="fold")
        for s in report.summaries:
            if not s.indicator.supports(dim):  # reported across it: nothing to break down
                continue
            for cell in report.breakdown_by(dim, s.indicator.slug):
                key = {"group": cell.group, "member": cell.member, "grid": cell.grid}.get(dim)
                names = {"group": report.groups, "member": report.members, "grid": report.grids}
                label = (
                    (cell.month or "—")
                    if dim == "month"
                    else "未归属"
                    if key is None
                    else names[dim].get(key, str(key))
                )
                sub.add_row(
                    s.indicator.title,
                    label,
                    f"{cell.numerator:,}",
                    "—" if cell.denominator is None else f"{cell.denominator:,}",
                    format_value(cell.value, s.indicator.unit),
                )
        console.print(sub)


def _dim_name(dim: str) -> str:
    from caregrid.indicators.registry import DIMENSION_LABELS

    return DIMENSION_LABELS[dim]
