"""Test helpers shared across folders: pointing the application at another database, a
fresh PostgreSQL database of a test's own, and serving the app over real HTTP on a free
loopback port."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from caregrid.core import db as core_db
from caregrid.settings import get_settings


@contextmanager
def use_database(url: str) -> Iterator[Engine]:
    """Set CAREGRID_DATABASE_URL (as a deployment would) for the block, then restore it."""
    saved = os.environ.get("CAREGRID_DATABASE_URL")
    os.environ["CAREGRID_DATABASE_URL"] = url
    get_settings.cache_clear()
    core_db.get_engine.cache_clear()
    try:
        yield core_db.get_engine()
    finally:
        core_db.get_engine().dispose()
        if saved is None:
            os.environ.pop("CAREGRID_DATABASE_URL", None)
        else:
            os.environ["CAREGRID_DATABASE_URL"] = saved
        get_settings.cache_clear()
        core_db.get_engine.cache_clear()


@contextmanager
def fresh_postgres_database(url: str) -> Iterator[Engine]:
    """A migrated, empty database created beside `url`'s for the block, then dropped: for
    tests whose writes must be committed on several connections (not rolled back)."""
    from caregrid.core.db import make_engine
    from caregrid.core.migrate import upgrade

    base = make_url(url)
    name = f"{base.database}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    engine: Engine | None = None
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(base.set(database=name).render_as_string(hide_password=False))
        upgrade(engine)
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Served:
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def serve(app: Any) -> Iterator[Served]:
    """Run `app` with uvicorn in a thread on 127.0.0.1:<free port> until the block ends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="caregrid-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
