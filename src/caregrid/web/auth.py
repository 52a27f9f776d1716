"""Who is looking at a page: the session cookie, the login redirect and CSRF tokens.

The session itself is `identity.service`'s (a web session row, looked up by the SHA-256 of the
cookie value). A page without a valid session answers with a redirect to `/login?next=...`.

CSRF: every POST form carries a hidden `csrf_token`. For a signed-in user it is
HMAC-SHA256(session token, purpose): only someone who holds the HttpOnly cookie can compute it,
and a cross-site page can neither read the cookie nor the form. Before login there is no session
yet, so the login form uses a double-submit cookie (random value in a SameSite=Strict cookie
and in the form) against login CSRF."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from caregrid.core.actor import Actor
from caregrid.core.db import commit
from caregrid.core.http import DB
from caregrid.identity import service as identity
from caregrid.identity.deps import SESSION_COOKIE
from caregrid.identity.errors import SessionExpired
from caregrid.settings import get_settings

CSRF_FIELD = "csrf_token"
LOGIN_CSRF_COOKIE = "caregrid_login_csrf"
_CSRF_PURPOSE = b"caregrid web form v1"


class LoginRequired(Exception):
    """Raised by page dependencies; rendered as a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfFailed(Exception):
    """A POST form without the right token (forged, or from a session that has ended)."""


def safe_next(value: str | None) -> str:
    """Only a local path may be a redirect target after login (no open redirect)."""
    if not value or len(value) > 2000:
        return "/"
    if any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    if value.startswith(("/login", "/logout")):
        return "/"
    return value


def login_url(next_path: str) -> str:
    target = safe_next(next_path)
    return "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"


def _request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def page_actor(request: Request, db: DB) -> Actor:
    """The signed-in user of a page, or a redirect to the login page."""
    token = session_token(request)
    if not token:
        raise LoginRequired(_request_path(request))
    try:
        user = identity.resolve_session(db, token, kind="web")
    except SessionExpired as exc:
        raise LoginRequired(_request_path(request)) from exc
    actor = identity.actor_of(user)
    commit(db)  # as in identity.deps.current_actor: no transaction open between threads
    request.state.actor = actor
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


def csrf_token_for(session_token_value: str) -> str:
    return hmac.new(session_token_value.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in this user's forms ("" when not signed in)."""
    token = session_token(request)
    return csrf_token_for(token) if token else ""


def check_csrf(request: Request, submitted: str | None) -> None:
    token = session_token(request)
    if not token or not submitted:
        raise CsrfFailed
    if not hmac.compare_digest(csrf_token_for(token), submitted):
        raise CsrfFailed


def set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    settings = get_settings()
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=get_settings().cookie_secure,
        path="/login",
    )


def login_csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(cookie and submitted and hmac.compare_digest(cookie, submitted))
