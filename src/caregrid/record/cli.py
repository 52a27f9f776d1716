"""`caregrid import ...`: load members' data into the shared record (issue 3 §2).

`csv KIND PATH` imports a CSV file with a documented template, batch by batch, each batch
all-or-nothing; `template KIND` prints the template. Exit codes: 0 all imported, 1 some batches
were rolled back (the report names their lines), 2 the file itself cannot be imported."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from caregrid.core.console import fail
from caregrid.record.ingest import ndjson

app = typer.Typer(help="导入成员单位数据（CSV / FHIR）", no_args_is_help=True)
app.command("fhir")(ndjson.fhir)
console = Console()

KindArg = Annotated[str, typer.Argument(help="导入类型：encounters / results / prescriptions")]
MAX_ERROR_LINES = 50


@app.command("csv")
def import_csv_command(
    kind: KindArg,
    path: Annotated[str, typer.Argument(help="CSV 文件路径")],
    source: Annotated[
        str | None, typer.Option("--source", help="来源系统编码（缺省取「来源系统」列或机构编码）")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="每批行数")] = 5000,
) -> None:
    """导入 CSV 文件（按批提交，每批全部成功或全部不导入；重复导入不会产生重复记录）。"""
    from caregrid.record.ingest.csv_import import (
        KIND_LABELS,
        CsvFileError,
        format_error,
        import_csv,
    )

    if not os.path.isfile(path):
        raise fail(f"文件不存在：{path}")
    total = os.path.getsize(path)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            # Redrawn as each batch is written, not by Rich's refresh thread: with no other
            # thread running, the import reads ahead in a forked process (see import_csv).
            auto_refresh=False,
        ) as progress:
            task = progress.add_task(f"导入 {os.path.basename(path)}", total=total)

            def advance(read: int) -> None:
                progress.advance(task, read)
                progress.refresh()

            summary = import_csv(
                path, kind, source_system=source, batch_size=batch_size, progress=advance
            )
    except CsvFileError as exc:
        raise fail(exc.detail) from exc
    label = KIND_LABELS[kind]
    console.print(
        f"{label}导入完成：共 {summary.rows:,} 行、{summary.batches} 批；"
        f"新增 {summary.created:,} 条，更新 {summary.updated:,} 条，未变 {summary.unchanged:,} 条；"
        f"新登记居民 {summary.residents_registered:,} 人。",
        highlight=False,
    )
    if summary.unknown_columns:
        console.print(
            f"未识别的列（已忽略）：{'、'.join(summary.unknown_columns)}", highlight=False
        )
    if summary.ok:
        return
    ranges = "、".join(
        f"第 {a}-{b} 行" if a != b else f"第 {a} 行" for a, b in summary.failed_lines
    )
    console.print(
        f"[red]{summary.batches_failed} 批未导入[/red]"
        f"（共 {summary.error_count:,} 处错误）：{ranges}",
        highlight=False,
        soft_wrap=True,
    )
    for error in summary.errors[:MAX_ERROR_LINES]:
        console.print(f"  {format_error(error)}", highlight=False, soft_wrap=True, markup=False)
    if summary.error_count > MAX_ERROR_LINES:
        console.print(f"  …… 另有 {summary.error_count - MAX_ERROR_LINES:,} 处错误未列出")
    raise typer.Exit(1)


@app.command()
def template(kind: KindArg) -> None:
    """打印 CSV 模板（表头 + 两行示例）及各列说明。"""
    from caregrid.record.ingest.csv_import import COLUMNS, CsvFileError, template_text

    try:
        text = template_text(kind)
    except CsvFileError as exc:
        raise fail(exc.detail) from exc
    # The template on stdout (redirect it to a file); the column notes on stderr.
    typer.echo(text, nl=False)
    for col in COLUMNS[kind]:
        need = "必填" if col.required else "可选"
        others = f"（亦可写作：{'、'.join(col.headers[1:])}）" if len(col.headers) > 1 else ""
        typer.echo(f"# {col.headers[0]} [{col.name}] {need}：{col.format}{others}", err=True)
