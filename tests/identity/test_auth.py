"""Login, lockout, session and token expiry, through the service and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from tests.conftest import City, login

from caregrid.core.clock import frozen_clock, now
from caregrid.identity import service
from caregrid.identity.errors import AccountLocked, BadCredentials, SessionExpired
from caregrid.identity.models import User
from caregrid.settings import get_settings


def test_the_right_password_logs_in_and_resets_the_failure_count(db: Session, city: City) -> None:
    with pytest.raises(BadCredentials):
        service.authenticate(db, "gp_wang", "wrong-password")
    user = service.authenticate(db, "gp_wang", city.password)
    assert user.failed_logins == 0
    assert user.last_login_at is not None


def test_passwords_are_stored_as_argon2_hashes(db: Session, city: City) -> None:
    user = db.query(User).filter_by(username="gp_wang").one()
    assert user.password_hash.startswith("$argon2id$")
    assert city.password not in user.password_hash


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    db: Session, city: City
) -> None:
    limit = get_settings().max_failed_logins
    for _ in range(limit - 1):
        with pytest.raises(BadCredentials):
            service.authenticate(db, "gp_wang", "wrong")
    with pytest.raises(AccountLocked):
        service.authenticate(db, "gp_wang", "wrong")
    with pytest.raises(AccountLocked, match="锁定"):
        service.authenticate(db, "gp_wang", city.password)
    later = now() + timedelta(minutes=get_settings().lockout_minutes + 1)
    with frozen_clock(later):
        assert service.authenticate(db, "gp_wang", city.password).username == "gp_wang"


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(db: Session, city: City) -> None:
    with pytest.raises(BadCredentials) as unknown:
        service.authenticate(db, "nobody", "whatever")
    with pytest.raises(BadCredentials) as wrong:
        service.authenticate(db, "gp_wang", "whatever")
    assert unknown.value.detail == wrong.value.detail


def test_an_api_token_expires(db: Session, city: City) -> None:
    user = db.query(User).filter_by(username="gp_wang").one()
    token, _ = service.open_session(db, user, kind="api")
    assert service.resolve_session(db, token, kind="api").id == user.id
    expiry = now() + timedelta(minutes=get_settings().token_ttl_minutes + 1)
    with frozen_clock(expiry), pytest.raises(SessionExpired):
        service.resolve_session(db, token, kind="api")


def test_a_web_session_expires_when_idle_but_slides_while_used(db: Session, city: City) -> None:
    user = db.query(User).filter_by(username="gp_wang").one()
    token, _ = service.open_session(db, user, kind="web")
    ttl = timedelta(minutes=get_settings().session_ttl_minutes)
    start = now()
    with frozen_clock(start + ttl * 0.9):
        service.resolve_session(db, token, kind="web")  # in use: pushed forward
    with frozen_clock(start + ttl * 1.5):
        service.resolve_session(db, token, kind="web")
    with frozen_clock(start + ttl * 3), pytest.raises(SessionExpired):
        service.resolve_session(db, token, kind="web")


def test_a_web_session_is_not_an_api_token(db: Session, city: City) -> None:
    user = db.query(User).filter_by(username="gp_wang").one()
    token, _ = service.open_session(db, user, kind="web")
    with pytest.raises(SessionExpired):
        service.resolve_session(db, token, kind="api")


def test_token_endpoint_issues_a_bearer_token(client: TestClient, city: City) -> None:
    headers = login(client, "specialist_li")
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["role_label"] == "医生"


def test_wrong_password_is_401_with_a_named_field(client: TestClient, city: City) -> None:
    response = client.post("/api/v1/auth/token", data={"username": "gp_wang", "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {
        "error": "BadCredentials",
        "detail": "用户名或密码错误",
        "field": "password",
    }


def test_failures_through_the_api_are_remembered_and_lock(client: TestClient, city: City) -> None:
    for _ in range(get_settings().max_failed_logins - 1):
        assert (
            client.post(
                "/api/v1/auth/token", data={"username": "gp_wang", "password": "nope"}
            ).status_code
            == 401
        )
    locked = client.post("/api/v1/auth/token", data={"username": "gp_wang", "password": "nope"})
    assert locked.status_code == 423
    right = client.post(
        "/api/v1/auth/token", data={"username": "gp_wang", "password": city.password}
    )
    assert right.status_code == 423


def test_an_expired_or_bogus_token_is_401(client: TestClient, city: City) -> None:
    response = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/institutions").status_code == 401


def test_logout_revokes_the_token(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
