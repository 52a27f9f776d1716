"""FastAPI dependencies: who is calling (bearer token or web session cookie) and role gates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from caregrid.core.actor import Actor
from caregrid.core.db import commit
from caregrid.core.http import DB
from caregrid.identity import service
from caregrid.identity.errors import RoleNotAllowed, SessionExpired

SESSION_COOKIE = "caregrid_session"

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def current_actor(request: Request, db: DB, token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """A bearer token (API clients) or the web session cookie (browser calling the API)."""
    if token:
        user = service.resolve_session(db, token, kind="api")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise SessionExpired("未登录：请先获取访问令牌（POST /api/v1/auth/token）")
        user = service.resolve_session(db, cookie, kind="web")
    actor = service.actor_of(user)
    # End the sign-in's transaction here, in this dependency's worker thread: the endpoint
    # runs in another, and a transaction left open in between would hold SQLite's write lock
    # while this request waits for a free thread (see core.http.CommitOnReturnRoute).
    commit(db)
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_roles(*roles: str) -> Callable[[Actor], Actor]:
    allowed = frozenset(roles)

    def check(actor: CurrentActor) -> Actor:
        if actor.role not in allowed:
            raise RoleNotAllowed("当前角色无权执行此操作", role=actor.role)
        return actor

    return check
