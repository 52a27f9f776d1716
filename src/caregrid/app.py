"""Builds the FastAPI application: every domain's API routes, FHIR endpoints and web pages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from caregrid import __version__
from caregrid.core.http import InputGuard, install_error_handlers, install_problem_schema
from caregrid.domains import load_all
from caregrid.settings import get_settings

API_DESCRIPTION = """
caregrid 紧密型医疗集团协同平台 API。

- 认证：`POST /api/v1/auth/token`（OAuth2 密码模式）获取 Bearer 令牌。
- 居民数据的每次读写都会记入防篡改审计日志；与居民无诊疗关系时返回 404。
- 身份证号在所有响应中均为脱敏形式。
- FHIR R4 接口位于 `/fhir/R4`。
"""


def _lifespan(
    threads: int, jobs_interval_seconds: float | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the server lives: the synchronous endpoints share `threads` worker threads, and
    the periodic jobs (`caregrid.jobs`) run beside it unless `jobs_interval_seconds` is None.

    Measured with 50 clients booking through the API on PostgreSQL (benchmarks/
    bench_booking.py, two worker processes): 4 threads 89 bookings/s (p50 18 ms), 8 threads
    81/s (p50 72 ms), 16 threads 50/s, AnyIO's default of 40 threads 62/s (p50 370 ms). Each
    request's work is Python under one interpreter lock; more threads only queue for it and,
    beyond the connection pool's size, open and close connections."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        if jobs_interval_seconds is None:
            yield
            return
        from caregrid.jobs.service import run_periodically

        task = asyncio.create_task(run_periodically(jobs_interval_seconds), name="caregrid-jobs")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def create_app(*, jobs: bool | None = None) -> FastAPI:
    """The application. `jobs` runs the periodic jobs in-process (default: the
    `CAREGRID_JOBS_IN_PROCESS` setting, off unless set)."""
    load_all()
    from caregrid.capacity.fhir import router as capacity_fhir_router
    from caregrid.capacity.routes import router as capacity_router
    from caregrid.chronic.fhir import router as chronic_fhir_router
    from caregrid.chronic.routes import router as chronic_router
    from caregrid.familydoctor.fhir import router as familydoctor_fhir_router
    from caregrid.familydoctor.routes import router as familydoctor_router
    from caregrid.identity.deps import current_actor
    from caregrid.identity.routes import router as auth_router
    from caregrid.indicators.fhir import router as indicators_fhir_router
    from caregrid.indicators.routes import router as indicators_router
    from caregrid.profiles.routes import active_router
    from caregrid.profiles.routes import router as profiles_router
    from caregrid.record.fhir import router as record_fhir_router
    from caregrid.record.routes import router as record_router
    from caregrid.referral.fhir import router as referral_fhir_router
    from caregrid.referral.routes import router as referral_router
    from caregrid.registry.fhir import router as registry_fhir_router
    from caregrid.registry.routes import router as registry_router
    from caregrid.web.pages import install as install_pages

    settings = get_settings()
    run_jobs = settings.jobs_in_process if jobs is None else jobs
    app = FastAPI(
        title="caregrid",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=_lifespan(settings.threads, settings.jobs_interval_seconds if run_jobs else None),
    )
    install_error_handlers(app)
    install_problem_schema(app)
    app.include_router(auth_router)
    app.include_router(registry_router)
    app.include_router(record_router)
    app.include_router(familydoctor_router)
    app.include_router(chronic_router)
    app.include_router(capacity_router)
    app.include_router(referral_router)
    app.include_router(indicators_router)
    app.include_router(profiles_router, dependencies=[Depends(current_actor)])
    app.include_router(active_router, dependencies=[Depends(current_actor)])
    app.include_router(indicators_fhir_router)
    app.include_router(registry_fhir_router)
    # before the record's Observation/{id}: follow-up vitals have ids "fu-<id>-bp|glu"
    app.include_router(chronic_fhir_router)
    app.include_router(record_fhir_router)
    app.include_router(familydoctor_fhir_router)
    app.include_router(capacity_fhir_router)
    app.include_router(referral_fhir_router)
    install_pages(app)
    app.add_middleware(
        InputGuard,
        max_bytes=settings.max_body_bytes,
        larger={"/fhir/R4": settings.max_bundle_bytes},
    )
    return app
