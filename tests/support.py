"""Test helpers shared across folders: pointing the application at another database, and
serving the app over real HTTP on a free loopback port."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from sqlalchemy import Engine

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
