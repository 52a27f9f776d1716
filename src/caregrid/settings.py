"""One settings class for the whole application, read from ``CAREGRID_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREGRID_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///caregrid.db",
        description="SQLAlchemy URL: SQLite (WAL) by default, or postgresql+psycopg://...",
    )
    profile: str = Field(default="linyi", description="policy profile used when none is stored")
    session_ttl_minutes: int = Field(default=480, ge=1, description="web session idle expiry")
    token_ttl_minutes: int = Field(default=60, ge=1, description="API bearer token lifetime")
    max_failed_logins: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    break_glass_hours: int = Field(default=24, ge=1, description="validity of an emergency grant")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="largest accepted request")
    max_bundle_bytes: int = Field(
        default=20_000_000, ge=1024, description="largest FHIR Bundle posted to /fhir/R4"
    )
    jobs_in_process: bool = Field(
        default=False,
        description="run the periodic jobs inside the web server (`caregrid serve` and "
        "`caregrid demo` turn this on unless --no-jobs)",
    )
    jobs_interval_seconds: int = Field(
        default=300, ge=1, description="seconds between two passes of the periodic jobs"
    )
    threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description="worker threads per server process for the synchronous endpoints (each "
        "holds at most one database connection; more threads than cores only add contention "
        "for the interpreter lock and the database's row locks)",
    )
    cookie_secure: bool = Field(default=False, description="set Secure on cookies (behind TLS)")
    echo_sql: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
