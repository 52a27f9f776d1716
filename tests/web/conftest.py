"""Page-test helpers: log in through the login form, read a form's CSRF token, build residents
with known ID numbers (through the registry service, as the API would)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.registry import service as registry
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Resident
from caregrid.registry.schemas import ResidentCreate

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def web_login(
    client: TestClient,
    username: str,
    password: str = "Passw0rd!",
    *,
    next_path: str = "/",
    follow: bool = True,
) -> Response:
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_path,
            "csrf_token": csrf_of(form.text),
        },
        follow_redirects=follow,
    )


def signed_in(client: TestClient, username: str) -> TestClient:
    response = web_login(client, username)
    assert response.status_code == 200, response.text
    assert str(response.url).endswith("/"), response.url
    return client


def make_resident(
    db: Session,
    *,
    name: str,
    home_institution_id: int | None,
    grid_id: int | None,
    birth: date = date(1958, 3, 14),
    sequence: int = 21,
) -> tuple[Resident, str]:
    """A resident registered through the service; returns it and its full ID number."""
    number = make_id_number("371302", birth, sequence)
    resident, _ = registry.register_resident(
        db,
        Actor.system(),
        ResidentCreate(
            id_number=number,
            name=name,
            phone="13805391234",
            address="兰山区金雀山路 9 号",
            grid_id=grid_id,
            home_institution_id=home_institution_id,
        ),
    )
    db.commit()  # see `web`: keep it across requests that fail
    return resident, number


def search_residents(client: TestClient, q: str, **headers: str) -> Response:
    page = client.get("/residents")
    return client.post(
        "/residents", data={"q": q, "csrf_token": csrf_of(page.text)}, headers=headers
    )


@dataclass
class Web:
    """The `client` with page-level verbs, for one test."""

    client: TestClient
    db: Session

    def login(self, username: str, password: str = "Passw0rd!", **kw: object) -> Response:
        return web_login(self.client, username, password, **kw)  # type: ignore[arg-type]

    def sign_in(self, username: str) -> TestClient:
        return signed_in(self.client, username)

    def search(self, q: str, **headers: str) -> Response:
        return search_residents(self.client, q, **headers)

    def csrf(self, path: str) -> str:
        return csrf_of(self.client.get(path).text)


@pytest.fixture
def web(client: TestClient, db: Session, city: object) -> Web:
    """The client, with the city's personas committed first.

    The test session is one SAVEPOINT inside a transaction rolled back after the test; a
    request that fails (a login redirect, a refused form) rolls the session back to that
    savepoint, which would also drop data the test has only flushed. Committing releases the
    savepoint into the outer transaction, which is still rolled back at the end."""
    db.commit()
    return Web(client, db)
