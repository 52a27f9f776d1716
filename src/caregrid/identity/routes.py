"""Auth API: OAuth2 password flow for bearer tokens, who am I, logout."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from caregrid.core.http import DB, api_router
from caregrid.identity import service
from caregrid.identity.deps import CurrentActor, oauth2
from caregrid.identity.schemas import Me, Token

router = api_router(prefix="/api/v1/auth", tags=["auth"])

_errors: dict[int | str, dict[str, Any]] = {
    401: {"description": "用户名或密码错误"},
    423: {"description": "账户已锁定"},
}


@router.post("/token", response_model=Token, responses=_errors)
def issue_token(form: Annotated[OAuth2PasswordRequestForm, Depends()], db: DB) -> Token:
    """OAuth2 password grant: exchange a username and password for a bearer token."""
    user = service.authenticate(db, form.username, form.password)
    token, row = service.open_session(db, user, kind="api")
    return Token(access_token=token, expires_at=row.expires_at)


@router.get("/me", response_model=Me, responses={401: {"description": "未登录"}})
def me(actor: CurrentActor) -> Me:
    return Me(
        id=actor.user_id,
        username=actor.username,
        display_name=actor.display_name,
        role=actor.role,
        role_label=service.ROLE_LABELS.get(actor.role, actor.role),
        institution_id=actor.institution_id,
        group_id=actor.group_id,
        practitioner_id=actor.practitioner_id,
    )


@router.post("/logout", status_code=204, responses={401: {"description": "未登录"}})
def logout(
    request: Request, db: DB, actor: CurrentActor, token: Annotated[str | None, Depends(oauth2)]
) -> None:
    """Revoke the bearer token used for this call."""
    if token:
        service.close_session(db, token)
