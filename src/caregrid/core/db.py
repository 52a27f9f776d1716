"""Engine, sessions and the unit of work.

The request (or the CLI's `unit_of_work()`) owns the transaction: it commits on success and
rolls back on any error; services only ``flush()``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from caregrid.core import hooks
from caregrid.settings import get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored in UTC on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use caregrid.core.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_BUSY_MS = 30_000
_GATE = "caregrid_write_gate"
_gates: dict[str, threading.Lock] = {}
_gates_lock = threading.Lock()


def _write_gate(url: URL) -> threading.Lock:
    """One lock per SQLite database in this process, shared by every engine on its file."""
    with _gates_lock:
        return _gates.setdefault(url.render_as_string(hide_password=False), threading.Lock())


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _sqlite_gated).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def _sqlite_gated(engine: Engine) -> None:
    """Serialise this process's SQLite transactions on an in-process lock, then BEGIN IMMEDIATE.

    Every transaction takes SQLite's write lock when it starts: a deferred transaction that
    read first cannot upgrade to a writer once another connection has committed
    (SQLITE_BUSY_SNAPSHOT, no retry), and nearly every request writes (the audit log).
    Serialising transactions is the price of the embedded default; PostgreSQL runs them
    concurrently. Waiting for that lock in SQLite's busy handler means sleeping and polling
    with growing back-off, so under many concurrent requests some wait past the busy timeout
    while the file sits idle between polls ("database is locked"). Queueing first on a lock in
    the process hands the database to the next transaction as soon as one ends; the busy
    handler is left for other processes on the same file (the CLI beside the server)."""
    gate = _write_gate(engine.url)

    def begin(connection: Connection) -> None:
        if not gate.acquire(timeout=SQLITE_BUSY_MS / 1000):
            raise sqlite3.OperationalError("database is locked")
        connection.info[_GATE] = gate
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            connection.info.pop(_GATE, None)
            gate.release()
            raise

    def end(info: dict[Any, Any]) -> None:
        held = info.pop(_GATE, None)
        if held is not None:
            held.release()

    event.listen(engine, "begin", begin)
    event.listen(engine, "commit", lambda connection: end(connection.info))
    event.listen(engine, "rollback", lambda connection: end(connection.info))

    # A connection that is invalidated or returned without its transaction ending through
    # the Connection still lets the next one in.
    def reset(_dbapi: Any, record: Any, reset_state: Any) -> None:
        end(record.info)

    def invalidate(_dbapi: Any, record: Any, exception: Any) -> None:
        end(record.info)

    def close(_dbapi: Any, record: Any) -> None:
        end(record.info)

    event.listen(engine.pool, "reset", reset)
    event.listen(engine.pool, "invalidate", invalidate)
    event.listen(engine.pool, "close", close)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if is_sqlite(url):
        # One writer at a time (BEGIN IMMEDIATE): under concurrent load the waiting requests
        # each hold a pooled connection while they queue, so the pool is sized for the
        # server's worker threads rather than the default 5 + 10.
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False},
            pool_size=20,
            max_overflow=40,
            pool_timeout=60,
        )
        event.listen(engine, "connect", _sqlite_connect)
        _sqlite_gated(engine)
        return engine
    # As many kept connections as the server has worker threads (`threads`, each holds at
    # most one: it goes back to the pool when its transaction commits, in the thread that used
    # it, see core.http.CommitOnReturnRoute), and two for the periodic jobs and the event
    # loop's own work: with fewer, every request beyond them opened and closed a connection
    # of its own. The overflow serves scripts and tests that run more threads; several worker
    # processes stay within the server's max_connections (100 by default).
    kept = max(get_settings().threads + 2, 5)
    return create_engine(url, echo=echo, pool_size=kept, max_overflow=20, pool_pre_ping=True)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, echo=settings.echo_sql)


@lru_cache
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def new_session(engine: Engine | None = None) -> Session:
    return _session_factory(engine or get_engine())()


def commit(session: Session) -> None:
    """Commit the session's transaction; the after-rollback callbacks are then void."""
    session.commit()
    hooks.clear(session)


def unit_of_work(engine: Engine | None = None) -> AbstractContextManager[Session]:
    """One transaction: commit if the block finishes, roll back if it raises."""
    return _committed(new_session(engine))


@contextmanager
def _committed(session: Session) -> Iterator[Session]:
    try:
        yield session
        commit(session)
    except BaseException:
        session.rollback()
        session.close()
        hooks.run_after_rollback(session)
        raise
    finally:
        session.close()


# Pages of write-ahead log between checkpoints while an import writes batch after batch
# (SQLite's default is 1,000 pages of 4 KiB).
BATCH_CHECKPOINT_PAGES = 25_000


@contextmanager
def batch_transactions(
    engine: Engine | None = None,
) -> Iterator[Callable[[], AbstractContextManager[Session]]]:
    """Transactions for a long run of write batches (a file import): each call opens one,
    committed when its block finishes and rolled back if it raises, as `unit_of_work`, all on
    one connection.

    On SQLite that connection checkpoints the write-ahead log only every
    `BATCH_CHECKPOINT_PAGES` pages instead of every 1,000, and once at the end. A batch of a
    few thousand encounters dirties more than 1,000 pages of indexes, so with the default
    nearly every commit copied the same pages into the database file again and synced it.

    On PostgreSQL that connection prepares no statements: each batch's look-ups are planned
    for the table as it is then. psycopg prepares a statement run five times, and the server
    may then keep one plan for it; planned while the table looked empty (a first import, or
    one after old rows were deleted and vacuumed), that plan read the whole growing table on
    every batch (measured: 0.7 s a batch, the import 2-10x slower). Other connections keep
    the defaults."""
    with (engine or get_engine()).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver: Any = connection.connection.driver_connection
        threshold = None
        if sqlite:
            driver.execute(f"PRAGMA wal_autocheckpoint={BATCH_CHECKPOINT_PAGES}")
        else:
            threshold, driver.prepare_threshold = driver.prepare_threshold, None
        try:
            yield lambda: _committed(Session(bind=connection, expire_on_commit=False))
        finally:
            if sqlite:
                driver.execute("PRAGMA wal_autocheckpoint=1000")
                driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
            else:
                driver.prepare_threshold = threshold


@contextmanager
def bulk_load_session(engine: Engine) -> Iterator[Session]:
    """A session for filling a fresh database in bulk (the demo city). The caller commits.

    On SQLite, foreign-key checks are off for its connection: checking every reference of
    tens of millions of generated rows costs about a fifth of the insert time, and the rows
    are generated from ids that were just inserted (tests check the built city with
    ``PRAGMA foreign_key_check``). The rollback journal is kept in memory instead of the WAL:
    a fresh file's pages are new, so there is little to journal, while the WAL would write
    every page of a multi-gigabyte load twice (once to the log, once at the checkpoint). A
    failed load still rolls back. Both pragmas only take effect outside a transaction, so they
    are set on the raw connection before the session begins, and set back before the
    connection returns to the pool."""
    connection = engine.connect()
    sqlite = connection.dialect.name == "sqlite"
    driver = connection.connection.driver_connection
    if sqlite:
        driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        driver.execute("PRAGMA journal_mode=MEMORY")  # type: ignore[union-attr]
    session = Session(bind=connection, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        if sqlite:
            driver.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
            driver.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
        connection.close()


def insert_ignoring_duplicates(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows, silently skipping those that collide with a unique constraint (ON CONFLICT
    DO NOTHING on both backends), so that concurrent or repeated writers of the same fact
    need no read first and never fail on a race."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)


def insert_returning_ids(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], *, chunk: int = 5000
) -> list[int]:
    """Insert ORM rows in bulk and return their new ids in row order (one id per row; rows
    with different None columns are inserted in separate runs, so ids need not ascend with
    the rows), drawn from the table's own sequence (so later inserts never collide on
    PostgreSQL). Chunked: SQLAlchemy splices the RETURNING results of one statement's
    batches together in a way that grows with the square of the row count (a 1M-resident
    demo spent minutes there)."""
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
    # The ORM leaves a row's None values out of its INSERT (so column defaults apply) and
    # starts a new statement whenever that set changes from one row to the next: rows whose
    # optional columns alternate between None and a value went in a few at a time. Rows are
    # inserted in runs sharing the same None columns (in their order within each run) and
    # the ids put back in row order.
    runs: dict[tuple[str, ...], list[int]] = {}
    for index, row in enumerate(rows):
        runs.setdefault(tuple(k for k, v in row.items() if v is None), []).append(index)
    ids: list[int] = [0] * len(rows)
    for positions in runs.values():
        for start in range(0, len(positions), chunk):
            part = positions[start : start + chunk]
            new = session.scalars(stmt, [rows[i] for i in part]).all()
            for i, new_id in zip(part, new, strict=True):
                ids[i] = new_id
    return ids


def in_values(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[str] | Sequence[int],
) -> ColumnElement[bool]:
    """`column IN values` with the whole list as one parameter: ``= ANY(array)`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(...))`` on SQLite. An ordinary IN of
    thousands of values is compiled and bound value by value, which dominated a bulk import's
    look-ups (issue 3: one query per batch, not per value)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    rows: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(json.dumps(list(values)))
    )
    return column.in_(rows)


def sqlite_utc_text(value: datetime) -> str:
    """A datetime in the text form `UTCDateTime` has on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff",
    UTC), for rows written with `bulk_insert`. isoformat is faster than strftime."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


_OIDS: dict[tuple[str, str], dict[str, int]] = {}


def _column_oids(connection: Connection, table: str, columns: Sequence[str]) -> list[int]:
    """The PostgreSQL type of each column, read from the catalogue once per database and
    table (read again if a column is new, after a migration)."""
    key = (connection.engine.url.render_as_string(hide_password=True), table)
    known = _OIDS.get(key, {})
    if not all(c in known for c in columns):
        found = connection.exec_driver_sql(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %(t)s::regclass "
            "AND attnum > 0 AND NOT attisdropped",
            {"t": table},
        )
        known = _OIDS[key] = {name: int(oid) for name, oid in found}
    return [known[c] for c in columns]


@lru_cache(maxsize=1)
def _numeric_binary_dumper() -> type[Any]:
    """A binary dumper for numeric columns that takes floats and ints as well as Decimals
    (psycopg's own takes only Decimals). A float goes through its shortest repr, so 1.2345
    is stored as 1.2345, not as its binary expansion."""
    from decimal import Decimal

    from psycopg import adapters
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    numeric = adapters.types["numeric"].oid
    decimal_dumper = adapters.get_dumper_by_oid(numeric, Format.BINARY)

    class NumericBinary(Dumper):
        format = Format.BINARY
        oid = numeric

        def __init__(self, cls: type, context: Any = None) -> None:
            super().__init__(cls, context)
            self._decimal = decimal_dumper(Decimal, context)

        def dump(self, obj: Any) -> Any:
            if type(obj) is not Decimal:
                obj = Decimal(repr(obj)) if isinstance(obj, float) else Decimal(obj)
            return self._decimal.dump(obj)

    return NumericBinary


def bulk_insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    binary: bool = True,
) -> None:
    """Write rows with the driver itself, in the connection's transaction: COPY on PostgreSQL,
    executemany on the raw SQLite cursor. At bulk volumes SQLAlchemy's per-value processing
    costs more than the write, so rows must already be in stored form: every column given;
    on SQLite datetimes as `sqlite_utc_text`; on PostgreSQL each value of its column's Python
    type (int for integer columns, str for text, aware datetimes, a float, int or Decimal for
    numeric), or, with `binary=False`, anything whose str() PostgreSQL parses (the demo
    writes its times as text, cheaper to build than datetimes)."""
    if not rows:
        return
    cols = ", ".join(columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        # looked up before the COPY starts: no other statement can run on the connection then
        types = _column_oids(connection, table, columns) if binary else None
        with driver.cursor() as cur:
            sql = f"COPY {table} ({cols}) FROM STDIN"
            if binary:
                # The binary form takes a third less of the server's parsing and most of the
                # client's formatting (measured: 100,000 encounter rows in 2.2 s against
                # 3.0 s). Its dumpers are chosen by column type, not value, so numeric columns
                # get one that also takes floats; registered on this cursor only.
                cur.adapters.register_dumper(float, _numeric_binary_dumper())
                sql += " (FORMAT BINARY)"
            with cur.copy(sql) as copy:
                if types is not None:
                    copy.set_types(types)
                write = copy.write_row
                for row in rows:
                    write(row)
        return
    cursor = driver.cursor()
    try:
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    finally:
        cursor.close()
