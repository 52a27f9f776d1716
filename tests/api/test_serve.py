"""`caregrid serve --workers N`: several worker processes only on PostgreSQL; SQLite, whose
writes the server queues inside one process, is refused with a clear message."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from tests.conftest import _require_postgres
from tests.support import use_database
from typer.testing import CliRunner

from caregrid.app import create_app
from caregrid.cli import app
from caregrid.core.db import make_engine
from caregrid.settings import get_settings


def test_serving_sqlite_with_several_workers_is_refused(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'serve.db'}"):
        result = CliRunner().invoke(
            app, ["serve", "--workers", "2", "--no-jobs"], env={"COLUMNS": "200"}
        )
    assert result.exit_code == 2
    assert "SQLite 数据库只能由 1 个工作进程提供服务" in result.output
    assert "caregrid 已启动" not in result.output


def test_the_server_runs_its_endpoints_on_the_configured_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CAREGRID_THREADS (`serve --threads`) is the number of threads the synchronous
    endpoints share: at most that many run at once, the rest wait for a thread."""
    monkeypatch.setenv("CAREGRID_THREADS", "3")
    with use_database(f"sqlite:///{tmp_path / 'threads.db'}"):
        application = create_app(jobs=False)
        running = 0
        most = 0
        lock = threading.Lock()

        @application.get("/_probe")
        def probe() -> dict[str, int]:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.2)
            with lock:
                running -= 1
            return {"ok": 1}

        async def eight_at_once(client: httpx.AsyncClient) -> list[int]:
            replies = await asyncio.gather(*(client.get("/_probe") for _ in range(8)))
            return [r.status_code for r in replies]

        with TestClient(application) as client:
            limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
            assert limiter.total_tokens == 3

            async def run() -> list[int]:
                transport = httpx.ASGITransport(app=application)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    return await eight_at_once(c)

            assert client.portal.call(run) == [200] * 8
    assert most == 3


def test_the_postgresql_pool_keeps_a_connection_per_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each request thread holds at most one connection: the pool keeps as many (plus two for
    the jobs and the event loop), so a busy server does not open and close connections."""
    monkeypatch.setenv("CAREGRID_THREADS", "12")
    get_settings.cache_clear()
    try:
        engine = make_engine("postgresql+psycopg://caregrid@127.0.0.1:1/none")
        assert engine.pool.size() == 14  # type: ignore[attr-defined]
        engine.dispose()
    finally:
        get_settings.cache_clear()


def test_a_pooled_postgresql_connection_the_server_dropped_is_replaced_before_use() -> None:
    """The pool checks a connection before handing it out (pre-ping): one the server dropped
    while it sat in the pool (a restart, an idle timeout) is replaced, and the request never
    sees it."""
    url = _require_postgres()
    engine = make_engine(url)
    outside = create_engine(url, poolclass=NullPool)  # the server's administrator

    def backend_pid() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    try:
        first = backend_pid()
        with outside.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
            deadline = time.monotonic() + 10
            while not admin.execute(gone, {"pid": first}).scalar_one():  # ends a moment later
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert backend_pid() != first
    finally:
        engine.dispose()
        outside.dispose()
