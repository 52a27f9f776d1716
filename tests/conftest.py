"""Shared fixtures: real databases (SQLite and PostgreSQL) migrated once per session, each test
inside a transaction rolled back afterwards, and personas with Chinese names.

PostgreSQL runs when CAREGRID_TEST_POSTGRES_URL is set; with CI=true it must be set (tests fail
instead of skipping), on a laptop its tests skip with a message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.db import make_engine
from caregrid.core.migrate import upgrade
from caregrid.domains import load_all

load_all()


def _memoised_hashing() -> None:
    """Argon2 is slow on purpose; the personas share one password, so hash it once per run
    (each stored hash is still a real Argon2 hash that `verify_password` checks)."""
    import functools

    from caregrid.identity import passwords, service

    cached = functools.lru_cache(maxsize=64)(passwords.hash_password)
    service.hash_password = cached  # type: ignore[assignment]


_memoised_hashing()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("CAREGRID_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


def _require_postgres() -> str:
    if PG_URL:
        return PG_URL
    if IN_CI:
        pytest.fail("CI=true but CAREGRID_TEST_POSTGRES_URL is not set: PostgreSQL tests must run")
    pytest.skip("PostgreSQL not available (set CAREGRID_TEST_POSTGRES_URL to run these tests)")


_engines: dict[str, Engine] = {}


def migrated_engine(backend: str, tmp_root: str) -> Engine:
    if backend not in _engines:
        if backend == "sqlite":
            engine = make_engine(f"sqlite:///{tmp_root}/caregrid-test.db")
        else:
            url = _require_postgres()
            engine = make_engine(url)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade(engine)
        _engines[backend] = engine
    return _engines[backend]


@pytest.fixture(scope="session")
def _tmp_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("db"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, _tmp_root: str) -> Engine:
    return migrated_engine(request.param, _tmp_root)


@pytest.fixture
def sqlite_engine(_tmp_root: str) -> Engine:
    return migrated_engine("sqlite", _tmp_root)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; the code under test
    may commit (it commits a savepoint)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@dataclass
class City:
    """A small two-group city with personas (STYLE: gp_wang, specialist_li, coordinator_chen,
    outsider_zhao)."""

    grid_id: int
    group_id: int
    other_group_id: int
    lead_id: int
    township_id: int
    other_lead_id: int
    users: dict[str, Actor]
    password: str = "Passw0rd!"


@pytest.fixture
def city(db: Session) -> City:
    built = build_city(db)
    # Release the savepoint: a failing request in the test then rolls back only its own work.
    db.commit()
    return built


def build_city(db: Session) -> City:
    from caregrid.identity.service import actor_of, create_user
    from caregrid.registry.models import Department, Grid, Group, Institution

    grid = Grid(code="T-G1", name="测试网格", city="测试市", districts="兰山区")
    db.add(grid)
    db.flush()
    group = Group(code="T-GRP1", name="测试市人民医院医疗集团", kind="city_group", grid_id=grid.id)
    other = Group(code="T-GRP2", name="测试市中医医院医疗集团", kind="city_group", grid_id=grid.id)
    db.add_all([group, other])
    db.flush()
    lead = Institution(
        code="T-RMYY",
        name="测试市人民医院",
        level="tertiary",
        kind="general",
        role="lead",
        group_id=group.id,
        grid_id=grid.id,
        district="兰山区",
        beds=2000,
    )
    town = Institution(
        code="T-JQS",
        name="金雀山街道社区卫生服务中心",
        level="primary",
        kind="general",
        role="member",
        group_id=group.id,
        grid_id=grid.id,
        district="兰山区",
        beds=40,
    )
    other_lead = Institution(
        code="T-ZYYY",
        name="测试市中医医院",
        level="tertiary",
        kind="tcm",
        role="lead",
        group_id=other.id,
        grid_id=grid.id,
        district="兰山区",
    )
    db.add_all([lead, town, other_lead])
    db.flush()
    group.lead_institution_id = lead.id
    other.lead_institution_id = other_lead.id
    db.add_all(
        [
            Department(institution_id=lead.id, name="心血管内科"),
            Department(institution_id=town.id, name="全科医疗科"),
        ]
    )
    db.flush()
    password = "Passw0rd!"
    personas = {
        "gp_wang": ("王建国", "doctor", town.id, group.id),
        "specialist_li": ("李明", "doctor", lead.id, group.id),
        "coordinator_chen": ("陈静", "coordinator", lead.id, group.id),
        "outsider_zhao": ("赵强", "doctor", other_lead.id, other.id),
        "admin_sun": ("孙伟", "admin", None, None),
        "manager_zhou": ("周敏", "group_manager", lead.id, group.id),
        "viewer_wu": ("吴芳", "commission_viewer", None, None),
    }
    users = {}
    for username, (name, role, inst, grp) in personas.items():
        user = create_user(
            db,
            username=username,
            password=password,
            role=role,
            display_name=name,
            institution_id=inst,
            group_id=grp,
        )
        users[username] = actor_of(user)
    db.flush()
    return City(grid.id, group.id, other.id, lead.id, town.id, other_lead.id, users, password)


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """The app with the request transaction bound to the test's rolled-back session."""
    from caregrid.app import create_app
    from caregrid.core.http import _transaction

    app = create_app()

    def test_transaction() -> Iterator[Session]:
        try:
            yield db
            db.commit()
            hooks.clear(db)
        except BaseException:
            db.rollback()
            hooks.run_after_rollback(db)
            raise

    app.dependency_overrides[_transaction] = test_transaction
    with TestClient(app) as c:
        yield c


def login(client: TestClient, username: str, password: str = "Passw0rd!") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class LiveServer:
    url: str
    city: City


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real HTTP server on a temporary SQLite database holding the small test city."""
    from caregrid.app import create_app
    from caregrid.core.db import unit_of_work
    from tests.support import serve, use_database

    path = tmp_path_factory.mktemp("live") / "live.db"
    with use_database(f"sqlite:///{path}") as engine:
        upgrade(engine)
        with unit_of_work(engine) as session:
            city = build_city(session)
        with serve(create_app()) as served:
            yield LiveServer(served.base_url, city)
