"""The `caregrid` command. Sub-commands live in their domains; this file only mounts them.

Messages are in Chinese. A user error prints one line to stderr and exits with code 2."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from caregrid.core.console import err
from caregrid.core.errors import DomainError
from caregrid.demo import cli as demo_cli

app = typer.Typer(
    name="caregrid",
    help="caregrid 紧密型医疗集团协同平台",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


JobsOption = Annotated[
    bool,
    typer.Option(
        "--jobs/--no-jobs",
        help="在服务进程内定时释放预留号源、处理超时转诊（也可用 caregrid jobs run 单独运行）",
    ),
]


@app.command()
def init(
    profile: Annotated[str | None, typer.Option(help="要启用的政策方案")] = None,
) -> None:
    """创建或升级数据库（应用全部迁移），并装入默认病种目录与互认规则（可重复执行）。"""
    from caregrid.core.db import get_engine, unit_of_work
    from caregrid.core.migrate import upgrade
    from caregrid.profiles.service import set_active_profile
    from caregrid.record.recognition import install_default_rules
    from caregrid.registry.service import install_default_catalogs
    from caregrid.settings import get_settings

    engine = get_engine()
    upgrade(engine)
    with unit_of_work(engine) as session:
        install_default_catalogs(session)
        install_default_rules(session)
        if profile:
            set_active_profile(session, profile)
    typer.echo(f"数据库已就绪：{get_settings().database_url}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 8000,
    jobs: JobsOption = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="工作进程数（每个进程占用一个 CPU 核；多进程仅适用于 PostgreSQL）",
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="每个工作进程处理请求的线程数（默认 8，即 CAREGRID_THREADS）",
        ),
    ] = None,
) -> None:
    """在浏览器中提供已有数据库的服务（启动前自动应用迁移）。"""
    from caregrid.core.migrate import upgrade
    from caregrid.settings import get_settings

    if threads is not None:
        # before the engine is made (its pool follows the threads) and for worker processes
        os.environ["CAREGRID_THREADS"] = str(threads)
        get_settings.cache_clear()
    upgrade()
    _serve(host, port, jobs, workers)


def _serve(host: str, port: int, jobs: bool, workers: int = 1) -> None:
    import uvicorn

    from caregrid.app import create_app
    from caregrid.core.db import is_sqlite
    from caregrid.settings import get_settings

    settings = get_settings()
    if workers > 1 and is_sqlite(settings.database_url):
        # SQLite has one writer; the server queues its transactions inside one process.
        raise typer.BadParameter(
            "SQLite 数据库只能由 1 个工作进程提供服务；多进程请使用 PostgreSQL",
            param_hint="--workers",
        )
    typer.echo(f"caregrid 已启动：http://{host}:{port}  （按 Ctrl+C 停止）")
    if jobs:
        typer.echo(f"定时任务每 {settings.jobs_interval_seconds} 秒执行一次（--no-jobs 关闭）")
    if workers == 1:
        uvicorn.run(create_app(jobs=jobs), host=host, port=port, log_level="warning")
        return
    # Worker processes import the app themselves; they read the jobs choice from the setting
    # (each runs them: expiry skips rows another pass holds, releases and lapsed holds are
    # plain conditional updates).
    os.environ["CAREGRID_JOBS_IN_PROCESS"] = "true" if jobs else "false"
    uvicorn.run(
        "caregrid.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@app.command()
def demo(
    profile: demo_cli.ProfileOption = "linyi",
    residents: demo_cli.ResidentsOption = 20_000,
    seed: demo_cli.SeedOption = 2024,
    password: demo_cli.PasswordOption = None,
    reset: demo_cli.ResetOption = False,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="建成后启动网页服务")] = True,
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 8000,
    jobs: JobsOption = True,
) -> None:
    """生成演示城市（真实集团结构 + 合成人员与居民），打印演示账户并启动网页服务。"""
    demo_cli.build(profile, residents, seed, password, reset)
    if serve:
        _serve(host, port, jobs)


def _mount() -> None:
    from caregrid.audit.cli import app as audit_app
    from caregrid.indicators.cli import indicators
    from caregrid.jobs.cli import app as jobs_app
    from caregrid.profiles.cli import app as profile_app
    from caregrid.record.cli import app as import_app

    app.add_typer(profile_app, name="profile", help="政策方案")
    app.add_typer(audit_app, name="audit", help="审计日志")
    app.add_typer(import_app, name="import", help="导入成员单位数据（CSV / FHIR）")
    app.add_typer(jobs_app, name="jobs", help="定时任务（释放预留号源、超时转诊）")
    app.command("indicators")(indicators)


_mount()


def main() -> None:
    try:
        app()
    except DomainError as exc:
        err.print(f"[red]错误：[/red]{exc.detail}", highlight=False, soft_wrap=True)
        sys.exit(2)
