"""Accounts, login with lockout, sessions and bearer tokens, break-the-glass grants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.db import unit_of_work
from caregrid.core.errors import Invalid
from caregrid.identity.access import CLINICAL_ROLES
from caregrid.identity.errors import (
    AccountLocked,
    BadCredentials,
    ReasonRequired,
    RoleNotAllowed,
    SessionExpired,
    UsernameTaken,
)
from caregrid.identity.models import ROLES, AuthSession, EmergencyAccess, User
from caregrid.identity.passwords import hash_password, needs_rehash, verify_password
from caregrid.settings import get_settings

ROLE_LABELS = {
    "admin": "系统管理员",
    "group_manager": "集团管理者",
    "coordinator": "转诊协调员",
    "doctor": "医生",
    "centre_staff": "资源中心人员",
    "pharmacist": "药师",
    "insurance_officer": "医保经办人员",
    "commission_viewer": "卫健委/管委会（只读）",
}
MIN_PASSWORD_LENGTH = 8
MIN_REASON_LENGTH = 4


def actor_of(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        role=user.role,
        institution_id=user.institution_id,
        group_id=user.group_id,
        practitioner_id=user.practitioner_id,
        display_name=user.display_name,
    )


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    institution_id: int | None = None,
    group_id: int | None = None,
    practitioner_id: int | None = None,
    password_hash: str | None = None,
) -> User:
    """Create an account. `password_hash` lets a caller that creates many accounts with one
    password (the demo) hash it once; the password itself is still checked."""
    if role not in ROLES:
        raise Invalid(f"未知角色：{role}", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"密码至少 {MIN_PASSWORD_LENGTH} 位", field="password")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(f"用户名已存在：{username}", field="username")
    user = User(
        username=username,
        password_hash=password_hash or hash_password(password),
        role=role,
        display_name=display_name,
        institution_id=institution_id,
        group_id=group_id,
        practitioner_id=practitioner_id,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a password. After `max_failed_logins` failures in a row the account locks for
    `lockout_minutes`; a locked account is refused even with the right password."""
    settings = get_settings()
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not user.active:
        raise BadCredentials("用户名或密码错误", field="password")
    current = now()
    if user.locked_until is not None and user.locked_until > current:
        minutes = max(1, int((user.locked_until - current).total_seconds() // 60) + 1)
        raise AccountLocked(
            f"登录失败次数过多，账户已锁定，请 {minutes} 分钟后再试", field="username"
        )
    if not ok:
        failures = user.failed_logins + 1
        values: dict[str, object] = {"failed_logins": failures}
        if failures >= settings.max_failed_logins:
            values = {
                "failed_logins": 0,
                "locked_until": current + timedelta(minutes=settings.lockout_minutes),
            }
        # The failure must be remembered although the request fails and rolls back: the
        # transaction owner re-applies it in a fresh transaction after the rollback.
        stmt = update(User).where(User.id == user.id).values(**values)
        session.execute(stmt)
        bind = session.get_bind()

        def remember_failure() -> None:
            with unit_of_work(bind) as fresh:  # type: ignore[arg-type]
                fresh.execute(stmt)

        hooks.on_rollback(session, remember_failure)
        if "locked_until" in values:
            raise AccountLocked(
                f"连续 {settings.max_failed_logins} 次密码错误，账户已锁定 "
                f"{settings.lockout_minutes} 分钟",
                field="username",
            )
        raise BadCredentials("用户名或密码错误", field="password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = current
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: User, *, kind: str) -> tuple[str, AuthSession]:
    """Issue a web session (kind "web") or an API bearer token (kind "api")."""
    settings = get_settings()
    ttl = settings.session_ttl_minutes if kind == "web" else settings.token_ttl_minutes
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        token_hash=_digest(token),
        user_id=user.id,
        kind=kind,
        expires_at=now() + timedelta(minutes=ttl),
    )
    session.add(row)
    session.flush()
    return token, row


_SESSION_AND_USER = (
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)


def resolve_session(session: Session, token: str, *, kind: str) -> User:
    """The user behind a token, or SessionExpired. Web sessions slide: each use pushes the
    idle expiry forward (written at most once a minute)."""
    found = session.execute(_SESSION_AND_USER, {"token_hash": _digest(token)}).one_or_none()
    current = now()
    if found is None or found[0].kind != kind or found[0].revoked_at is not None:
        raise SessionExpired("登录已失效，请重新登录")
    row, user = found
    if row.expires_at <= current:
        raise SessionExpired("登录已过期，请重新登录")
    if not user.active:
        raise SessionExpired("账户已停用")
    if kind == "web":
        ttl = timedelta(minutes=get_settings().session_ttl_minutes)
        if row.expires_at - current < ttl - timedelta(minutes=1):
            row.expires_at = current + ttl
            session.flush()
    return user


def close_session(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == _digest(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )


def grant_emergency_access(
    session: Session, actor: Actor, resident_id: int, reason: str
) -> EmergencyAccess:
    """Break the glass: a clinical user states a reason and gets `break_glass_hours` of access
    to one resident's record. The grant and its reason go to the audit log."""
    if actor.role not in CLINICAL_ROLES or actor.user_id is None:
        raise RoleNotAllowed("仅临床角色可以紧急调阅（破窗）")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ReasonRequired(
            f"紧急调阅必须填写理由（至少 {MIN_REASON_LENGTH} 个字）", field="reason"
        )
    hours = get_settings().break_glass_hours
    grant = EmergencyAccess(
        user_id=actor.user_id,
        resident_id=resident_id,
        reason=reason,
        expires_at=now() + timedelta(hours=hours),
    )
    session.add(grant)
    session.flush()
    audit.append(
        session,
        actor,
        action="break_glass",
        resource="Resident",
        resident_id=resident_id,
        basis="break_glass",
        reason=reason,
        detail={"hours": hours},
    )
    return grant
