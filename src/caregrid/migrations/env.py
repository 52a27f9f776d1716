"""Alembic environment: runs against the connection handed over by `caregrid.core.migrate`
or, from the alembic command line, the database in CAREGRID_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from caregrid.core.db import Base, make_engine
from caregrid.domains import load_models
from caregrid.settings import get_settings

load_models()
config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
