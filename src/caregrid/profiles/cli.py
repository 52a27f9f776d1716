"""`caregrid profile ...`: list, show and validate policy profiles.

A user error (unknown name, invalid file) prints one line to stderr and exits with code 2."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from caregrid.core.errors import DomainError
from caregrid.profiles.loader import list_profiles, load_profile, load_profile_file
from caregrid.profiles.schemas import GROUP_KIND_LABELS, SECTION_TITLES, TIER_LABELS, PolicyProfile

app = typer.Typer(help="政策方案", no_args_is_help=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def _fail(exc: DomainError) -> typer.Exit:
    typer.echo(f"错误：{exc.detail}", err=True)
    return typer.Exit(2)


@app.command("list")
def list_command() -> None:
    """列出全部政策方案。"""
    try:
        metas = list_profiles()
    except DomainError as exc:
        raise _fail(exc) from None
    table = Table(title="政策方案")
    for column in ("id", "名称", "方案", "文号", "类型"):
        table.add_column(column, overflow="fold")
    for meta in metas:
        table.add_row(
            meta.id,
            meta.name,
            meta.plan_title,
            meta.document_number or "—",
            GROUP_KIND_LABELS[meta.group_kind],
        )
    Console().print(table)


@app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="方案标识，如 zhongwei")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="输出格式：table 或 json")
    ] = OutputFormat.table,
) -> None:
    """显示一个政策方案的全部参数与评判标准。"""
    try:
        profile = load_profile(name)
    except DomainError as exc:
        raise _fail(exc) from None
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(profile.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    _print_profile(profile, Console())


@app.command("validate")
def validate_command(
    path: Annotated[Path, typer.Argument(help="要校验的方案文件（.toml）")],
) -> None:
    """校验一个政策方案文件。"""
    try:
        profile = load_profile_file(path)
    except DomainError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"OK：{path.name}（{profile.name}，{len(profile.parameters)} 个参数，"
        f"{len(profile.scorecard.criteria)} 条评判标准）"
    )


def _print_profile(profile: PolicyProfile, console: Console) -> None:
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    header.add_row("方案", profile.plan_title)
    header.add_row("发文机关", profile.issuer)
    header.add_row("文号", profile.document_number or "—")
    header.add_row("日期", profile.issued)
    header.add_row("种子", profile.seed)
    header.add_row("类型", GROUP_KIND_LABELS[profile.group_kind])
    header.add_row("布局", profile.structure)
    if profile.note:
        header.add_row("说明", profile.note)
    console.print(f"[bold]{profile.name}[/bold]（{profile.id}）")
    console.print(header)

    for section, parameters in profile.sections().items():
        table = Table(title=f"{SECTION_TITLES.get(section, section)}（{section}）", show_lines=True)
        for column in ("键", "名称", "值", "条款", "说明"):
            table.add_column(column, overflow="fold")
        for parameter in parameters:
            notes = [parameter.note or ""]
            if parameter.provisional:
                notes.insert(0, "【暂定】")
            if parameter.overridden:
                notes.insert(0, f"【原值 {parameter.original_value}】")
            table.add_row(
                parameter.key,
                parameter.label,
                parameter.display_value(),
                parameter.clause,
                "".join(notes),
            )
        console.print(table)

    for group in profile.groups:
        table = Table(title=f"{group.name}（{group.clause}）")
        for column in ("成员单位", "类别", "所在区", "说明"):
            table.add_column(column, overflow="fold")
        for member in group.members:
            table.add_row(
                member.name, TIER_LABELS[member.tier], member.district or "", member.note or ""
            )
        console.print(table)

    scorecard = profile.scorecard
    if scorecard.criteria:
        table = Table(title=f"评判标准（{scorecard.source}）", show_lines=True)
        for column in ("序号", "评判维度", "评判标准"):
            table.add_column(column, overflow="fold")
        for criterion in scorecard.criteria:
            table.add_row(str(criterion.number), criterion.dimension, criterion.text)
        console.print(table)
    else:
        console.print(f"评判标准：无（{scorecard.source}）")
    if scorecard.monitoring:
        table = Table(title="监测与考核项")
        for column in ("项目", "条款", "原文"):
            table.add_column(column, overflow="fold")
        for item in scorecard.monitoring:
            table.add_row(item.title, item.clause, item.text)
        console.print(table)
    if scorecard.note:
        console.print(f"说明：{scorecard.note}")
