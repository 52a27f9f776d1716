"""`caregrid demo`: build a profile's synthetic city, print the accounts, serve it."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from caregrid.demo.builder import DemoReport, StepProgress

console = Console()


class RichSteps(StepProgress):
    """Each builder step as a line with a bar (a spinner until its total is known)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, name: str, total: int | None = None) -> None:
        self.task = self.progress.add_task(name, total=total)

    def advance(self, amount: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def done(self) -> None:
        if self.task is not None:
            total = self.progress.tasks[-1].total or 1
            self.progress.update(self.task, total=total, completed=total)


ProfileOption = Annotated[
    str, typer.Option(help="政策方案：lincang / linyi / zhongwei / yunnan_county / national_city")
]
ResidentsOption = Annotated[int, typer.Option(min=0, max=5_000_000, help="生成的居民人数")]
SeedOption = Annotated[int, typer.Option(help="随机种子（相同种子生成相同城市）")]
PasswordOption = Annotated[
    str | None,
    typer.Option(envvar="CAREGRID_DEMO_PASSWORD", help="所有演示账户的密码（默认随机生成）"),
]
ResetOption = Annotated[bool, typer.Option(help="PostgreSQL 已有数据时确认清空重建")]


def build(profile: str, residents: int, seed: int, password: str | None, reset: bool) -> None:
    """Build the demo city and print the accounts (serving is the caller's step)."""
    from caregrid.core.console import fail
    from caregrid.core.db import get_engine, is_sqlite
    from caregrid.demo.builder import build_demo, has_data
    from caregrid.profiles.errors import UnknownProfile
    from caregrid.profiles.loader import load_profile
    from caregrid.settings import get_settings

    try:
        load_profile(profile)
    except UnknownProfile as exc:
        raise fail(exc.detail) from exc
    if password is not None and len(password) < 8:
        raise fail("演示密码至少 8 位")
    url = get_settings().database_url
    engine = get_engine()
    if not is_sqlite(url) and has_data(engine) and not reset:
        raise fail("目标 PostgreSQL 数据库已有数据；确认清空重建请加 --reset")
    console.print(
        f"正在生成演示城市：方案 [bold]{profile}[/bold]，居民 {residents:,} 人，种子 {seed}"
    )
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        report = build_demo(
            engine,
            profile_id=profile,
            residents=residents,
            seed=seed,
            password=password,
            progress=RichSteps(progress),
        )
    elapsed = time.perf_counter() - started
    print_report(report, elapsed, url)


def print_report(report: DemoReport, elapsed: float, url: str) -> None:
    console.print(
        f"[green]演示城市已建成[/green]（{elapsed:.1f} 秒）：{report.profile_name}；"
        f"网格 {report.grids} 个，医疗集团 {report.groups} 个，成员单位 {report.institutions} 家，"
        f"医务人员 {report.practitioners:,} 人，居民 {report.residents:,} 人。"
    )
    if report.activity is not None:
        for line in report.activity.lines():
            console.print(f"  {line}")
    if report.family_doctor is not None:
        for line in report.family_doctor.lines():
            console.print(f"  {line}")
    if report.referrals is not None:
        for line in report.referrals.lines():
            console.print(f"  {line}")
    console.print(f"数据库：{url}")
    table = Table(title="演示账户", show_lines=False)
    for col in ("用户名", "角色", "姓名", "所在机构"):
        table.add_column(col)
    for a in report.accounts:
        table.add_row(a.username, a.role_label, a.display_name, a.institution)
    console.print(table)
    note = "（随机生成，请妥善保存）" if report.password_generated else ""
    console.print(f"所有演示账户的密码：[bold]{report.password}[/bold]{note}")
    if os.environ.get("CAREGRID_DEMO_PASSWORD") is None and report.password_generated:
        console.print("可用 --password 或环境变量 CAREGRID_DEMO_PASSWORD 指定密码。")
