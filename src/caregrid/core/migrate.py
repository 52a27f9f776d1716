"""Apply and check Alembic migrations programmatically (`caregrid init`, start-up, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from caregrid.core.db import get_engine


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "caregrid:migrations")
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine | None = None) -> None:
    engine = engine or get_engine()
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def check(engine: Engine | None = None) -> None:
    """Raise if the models and the migrations disagree."""
    engine = engine or get_engine()
    cfg = alembic_config(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.check(cfg)
