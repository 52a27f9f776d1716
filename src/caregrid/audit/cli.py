"""`caregrid audit verify`: recompute the hash chain and report any edit or deletion."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True)


@app.command()
def verify() -> None:
    """校验审计日志哈希链：发现任何篡改或删除时以退出码 1 结束。"""
    from caregrid.audit.service import verify as verify_chain
    from caregrid.core.db import unit_of_work

    console = Console()
    with unit_of_work() as session:
        result = verify_chain(session)
    if result.ok:
        console.print(
            f"[green]审计日志完整[/green]：共校验 {result.checked} 条记录，哈希链无断裂。"
        )
        return
    console.print(
        f"[red]审计日志已被篡改[/red]：共校验 {result.checked} 条记录，"
        f"发现 {len(result.problems)} 处问题："
    )
    for problem in result.problems[:50]:
        console.print(f"  - {problem}")
    raise typer.Exit(1)
