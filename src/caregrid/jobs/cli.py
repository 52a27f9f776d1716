"""`caregrid jobs run [--once]`: the periodic work from the command line (cron, systemd)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from caregrid.core.clock import local

app = typer.Typer(no_args_is_help=True)


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="只执行一轮后退出")] = False,
    interval: Annotated[
        int | None, typer.Option(help="两轮之间的间隔秒数（默认取 CAREGRID_JOBS_INTERVAL_SECONDS）")
    ] = None,
) -> None:
    """执行定时任务：释放到期未用的基层预留号源、将超时未受理的转诊标记为超时并转交协调员、清理过期的号源锁定。"""
    from caregrid.jobs.service import run_in_transaction
    from caregrid.settings import get_settings

    seconds = interval if interval is not None else get_settings().jobs_interval_seconds
    if seconds < 1:
        raise typer.BadParameter("间隔须至少 1 秒", param_hint="--interval")
    console = Console()
    table = Table("执行时间", "清理过期锁定", "释放预留号源", "超时转诊", title="定时任务")
    try:
        while True:
            result = run_in_transaction()
            row = (
                local(result.at).strftime("%Y-%m-%d %H:%M:%S"),
                str(result.holds_dropped),
                str(result.released_slots),
                str(result.expired_referrals),
            )
            if once:
                table.add_row(*row)
                console.print(table)
                return
            console.print(
                f"[bold]{row[0]}[/bold]  清理过期锁定 {row[1]} 个，释放预留号源 {row[2]} 个，"
                f"超时转诊 {row[3]} 件；{seconds} 秒后再次执行（按 Ctrl+C 停止）",
                highlight=False,
            )
            time.sleep(seconds)
    except KeyboardInterrupt:
        console.print("定时任务已停止。")
