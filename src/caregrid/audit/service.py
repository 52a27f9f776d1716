"""Append to and verify the hash-chained audit log (DESIGN §8: every read and write of a
resident's data is audited: who, role, institution, resident, action, reason, time)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Insert, Table, Text, bindparam, func, insert, literal, select, text, update
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from caregrid.audit.models import AuditEntry, AuditHead
from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.db import (
    bulk_insert,
    insert_ignoring_duplicates,
    sqlite_utc_text,
    unit_of_work,
)

GENESIS = "0" * 64


HASHED_FIELDS = (
    "seq",
    "at",
    "user_id",
    "username",
    "role",
    "institution_id",
    "resident_id",
    "action",
    "resource",
    "outcome",
    "basis",
    "reason",
    "detail",
)


def _canonical(fields: Mapping[str, Any]) -> str:
    values = [fields[name] for name in HASHED_FIELDS]
    values[1] = fields["at"].isoformat(timespec="microseconds")
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def compute_hash(prev_hash: str, entry: AuditEntry | Mapping[str, Any]) -> str:
    fields = entry if isinstance(entry, Mapping) else {n: getattr(entry, n) for n in HASHED_FIELDS}
    return hashlib.sha256((prev_hash + _canonical(fields)).encode("utf-8")).hexdigest()


def _take_head(session: Session, count: int = 1) -> tuple[int, str]:
    """Lock the chain head by updating it first (reserving `count` numbers); returns the
    previous (seq, hash). Before the first entry ever the head is created at the genesis, by
    an insert that gives way to a concurrent writer's (which it waits for on PostgreSQL), so
    two first appends in parallel both chain, one after the other, instead of one failing."""
    for _ in range(2):
        row = session.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(seq=AuditHead.seq + count)
            .returning(AuditHead.seq, AuditHead.entry_hash)
        ).one_or_none()
        if row is not None:
            return row.seq - count, row.entry_hash
        insert_ignoring_duplicates(session, _HEAD, [{"id": 1, "seq": 0, "entry_hash": GENESIS}])
    raise RuntimeError("audit chain head missing after it was created")


def append(
    session: Session,
    actor: Actor,
    *,
    action: str,
    resource: str,
    resident_id: int | None = None,
    outcome: str = "allowed",
    basis: str | None = None,
    reason: str | None = None,
    detail: dict[str, object] | str | None = None,
    at: datetime | None = None,
) -> None:
    """Write one entry in the caller's transaction.

    A denied access must be on record even though the request then fails: its entry is also
    queued to be written in a fresh transaction should this one roll back."""
    detail_text = (
        json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        if isinstance(detail, dict)
        else detail
    )
    fields = dict(
        user_id=actor.user_id,
        username=actor.username,
        role=actor.role,
        institution_id=actor.institution_id,
        resident_id=resident_id,
        action=action,
        resource=resource,
        outcome=outcome,
        basis=basis,
        reason=reason,
        detail=detail_text,
    )
    when = (at or now()).astimezone(UTC)
    _write(session, when, fields)
    if outcome != "allowed":
        bind = session.get_bind()

        def rewrite() -> None:
            with unit_of_work(bind) as fresh:  # type: ignore[arg-type]
                _write(fresh, when, fields)

        hooks.on_rollback(session, rewrite)


_ENTRIES = cast(Table, AuditEntry.__table__)
_HEAD = cast(Table, AuditHead.__table__)


def _write(session: Session, at: datetime, fields: Mapping[str, Any]) -> None:
    """Take the head, write the entry and move the head onto it. The head stays locked from
    then to the commit, so every audited transaction queues there: on PostgreSQL all of it is
    one statement (`_write_in_one_statement`), so that only the COMMIT is left inside the
    queue, not a Python thread's turn between statements."""
    if _server_side_hashing(session) and _write_in_one_statement(session, at, fields):
        return
    prev_seq, prev_hash = _take_head(session)
    seq = prev_seq + 1
    entry_hash = compute_hash(prev_hash, {"seq": seq, "at": at, **fields})
    session.execute(
        insert(_ENTRIES).values(
            seq=seq, at=at, prev_hash=prev_hash, entry_hash=entry_hash, **fields
        )
    )
    session.execute(update(_HEAD).where(_HEAD.c.id == 1).values(entry_hash=entry_hash))


_utf8_servers: dict[str, bool] = {}


def _server_side_hashing(session: Session) -> bool:
    """PostgreSQL with a UTF-8 database: its sha256 over the UTF-8 text is Python's."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    key = bind.engine.url.render_as_string(hide_password=True)
    if key not in _utf8_servers:
        encoding = session.execute(text("SHOW server_encoding")).scalar()
        _utf8_servers[key] = str(encoding).upper() in ("UTF8", "UTF-8")
    return _utf8_servers[key]


def _write_in_one_statement(session: Session, at: datetime, fields: Mapping[str, Any]) -> bool:
    """PostgreSQL: the head advanced, the entry hashed by the server (sha256 of the previous
    hash and the canonical text, which is the same text `compute_hash` hashes: the seq spliced
    into the rest, encoded here) and written, in one statement. False when there is no head
    yet (the first entry ever), for `_write` to create it."""
    canonical = _canonical({"seq": 0, "at": at, **fields})
    tail = canonical[canonical.index(",") :]  # everything after "[<seq>"
    written = session.execute(
        _one_statement(tuple(fields)), {"audit_at": at, "audit_tail": tail, **fields}
    ).first()
    return written is not None


@lru_cache(maxsize=4)
def _one_statement(names: tuple[str, ...]) -> Insert:
    """`_write_in_one_statement`'s INSERT for entries with these fields, built once: the
    entry's values are parameters named after its columns."""
    seq = _HEAD.c.seq + 1
    tail = bindparam("audit_tail", type_=Text)
    text_to_hash = _HEAD.c.entry_hash + literal("[") + cast_(seq, Text) + tail
    head = (
        update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(
            seq=seq,
            prev_hash=_HEAD.c.entry_hash,
            entry_hash=func.encode(func.sha256(func.convert_to(text_to_hash, "UTF8")), "hex"),
        )
        .returning(_HEAD.c.seq, _HEAD.c.prev_hash, _HEAD.c.entry_hash)
        .cte("head")
    )
    columns = ["seq", "at", *names, "prev_hash", "entry_hash"]
    values = [
        head.c.seq,
        bindparam("audit_at", type_=_ENTRIES.c.at.type),
        *(bindparam(name, type_=_ENTRIES.c[name].type) for name in names),
        head.c.prev_hash,
        head.c.entry_hash,
    ]
    return insert(_ENTRIES).from_select(columns, select(*values)).returning(_ENTRIES.c.seq)


@dataclass(frozen=True)
class Access:
    """One access to record in `append_many`."""

    action: str
    resource: str
    resident_id: int | None
    detail: dict[str, object] | None = None


def append_many(session: Session, actor: Actor, accesses: Sequence[Access]) -> int:
    """Record many allowed accesses by one actor at once (bulk imports): the chain head is
    taken once and the entries written through the driver in one step, so an import of
    thousands of residents is not slowed by thousands of round trips. Same chain, same hashes
    as `append`: the canonical text is assembled from pieces encoded once, and a test checks
    it against `compute_hash`."""
    if not accesses:
        return 0
    prev_seq, prev_hash = _take_head(session, len(accesses))
    at = now().astimezone(UTC)
    connection = session.connection()
    stored_at: object = at if connection.dialect.name == "postgresql" else sqlite_utc_text(at)
    dumps = json.dumps
    # [seq, at, user_id, username, role, institution_id, resident_id, action, resource,
    #  outcome, basis, reason, detail]: the actor's part and the tail are the same for all.
    actor_part = dumps(
        [actor.user_id, actor.username, actor.role, actor.institution_id],
        ensure_ascii=False,
        separators=(",", ":"),
    )[1:-1]
    head = "," + dumps(at.isoformat(timespec="microseconds")) + "," + actor_part + ","
    encoded: dict[tuple[str, str, str | None], str] = {}
    # a detail object shared by many accesses is encoded once (keyed by identity: the objects
    # stay alive in `accesses` for the whole call)
    details: dict[int, str] = {}
    sha256 = hashlib.sha256
    rows: list[tuple[Any, ...]] = []
    for access in accesses:
        prev_seq += 1
        detail: str | None = None
        if access.detail is not None:
            detail = details.get(id(access.detail))
            if detail is None:
                detail = details[id(access.detail)] = dumps(
                    access.detail, ensure_ascii=False, sort_keys=True, default=str
                )
        key = (access.action, access.resource, detail)
        tail = encoded.get(key)
        if tail is None:
            tail = encoded[key] = dumps(
                [access.action, access.resource, "allowed", None, None, detail],
                ensure_ascii=False,
                separators=(",", ":"),
            )[1:]
        resident = "null" if access.resident_id is None else str(access.resident_id)
        canonical = f"[{prev_seq}{head}{resident},{tail}"
        entry_hash = sha256((prev_hash + canonical).encode("utf-8")).hexdigest()
        rows.append((
            prev_seq, stored_at, actor.user_id, actor.username, actor.role,
            actor.institution_id, access.resident_id, access.action, access.resource,
            "allowed", detail, prev_hash, entry_hash,
        ))  # fmt: skip
        prev_hash = entry_hash
    bulk_insert(connection, AuditEntry.__tablename__, _BULK_COLUMNS, rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(entry_hash=prev_hash))
    return len(rows)


_BULK_COLUMNS = (
    "seq", "at", "user_id", "username", "role", "institution_id", "resident_id", "action",
    "resource", "outcome", "detail", "prev_hash", "entry_hash",
)  # fmt: skip


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str]


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain. Any edited, inserted or deleted entry shows up as a broken
    link, a hash mismatch, a gap in `seq`, or a head that no longer matches the last entry."""
    problems: list[str] = []
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    for entry in _iter_entries(session, batch):
        checked += 1
        if entry.seq != expected_seq:
            problems.append(f"第 {expected_seq} 条至第 {entry.seq - 1} 条记录缺失（已被删除）")
            expected_seq = entry.seq
        if entry.prev_hash != expected_prev:
            problems.append(f"第 {entry.seq} 条记录的前序哈希与上一条不符（链条断裂）")
        if compute_hash(entry.prev_hash, entry) != entry.entry_hash:
            problems.append(f"第 {entry.seq} 条记录内容与其哈希不符（已被篡改）")
        expected_prev = entry.entry_hash
        expected_seq += 1
    head = session.get(AuditHead, 1)
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.entry_hash != expected_prev):
        problems.append(
            f"链头记录为第 {head.seq} 条，而日志最后一条为第 {last_seq} 条（末尾记录被删除或篡改）"
        )
    if head is None and checked:
        problems.append("链头记录缺失")
    return VerifyResult(ok=not problems, checked=checked, problems=problems)


def _iter_entries(session: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def entries_for_resident(
    session: Session, resident_id: int, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[AuditEntry], int]:
    total = session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.resident_id == resident_id)
    )
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.resident_id == resident_id)
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total or 0
