"""Every route of the app commits its transaction as its endpoint returns
(core.http.CommitOnReturnRoute): a route built on a bare APIRouter would hold its locks while
FastAPI waits for another worker thread, and deadlock the server under load."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from caregrid.app import create_app
from caregrid.core.http import CommitOnReturnRoute


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # an included router's own routes
        if included is not None:
            yield from _api_routes(included.routes)


def test_every_api_route_commits_on_return() -> None:
    routes = list(_api_routes(create_app().routes))
    assert len(routes) > 50
    plain = sorted(r.path for r in routes if not isinstance(r, CommitOnReturnRoute))
    assert plain == [], f"routes on a plain APIRouter (use core.http.api_router): {plain}"
