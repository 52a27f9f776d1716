"""HTTP plumbing shared by every domain's routes: the request-owned transaction, the error
handlers and the request-size limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caregrid.core import hooks
from caregrid.core.db import new_session
from caregrid.core.errors import DomainError

FHIR_PREFIX = "/fhir/"


def _transaction() -> Iterator[Session]:
    """The request owns the transaction: commit when the endpoint returns, roll back when it
    raises, before the response is sent."""
    session = new_session()
    try:
        yield session
        session.commit()
        hooks.clear(session)
    except BaseException:
        session.rollback()
        session.close()
        hooks.run_after_rollback(session)
        raise
    finally:
        session.close()


DB = Annotated[Session, Depends(_transaction, scope="function")]


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def operation_outcome(status: int, issues: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status,
        media_type="application/fhir+json",
    )


def _fhir_code(status: int) -> str:
    return {
        400: "invalid",
        401: "login",
        403: "forbidden",
        404: "not-found",
        409: "conflict",
        413: "too-costly",
        422: "invalid",
        423: "lock-error",
    }.get(status, "processing")


def install_error_handlers(app: FastAPI) -> None:
    """One rendering per surface: JSON problem for the API, OperationOutcome for FHIR.
    (Pages catch DomainError themselves to show the message beside the field.)"""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if request.url.path.startswith(FHIR_PREFIX):
            issue: dict[str, Any] = {
                "severity": "error",
                "code": _fhir_code(exc.status_code),
                "diagnostics": exc.detail,
            }
            if "field" in exc.fields:
                issue["expression"] = [str(exc.fields["field"])]
            response = operation_outcome(exc.status_code, [issue])
            if headers:
                response.headers.update(headers)
            return response
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(tuple(e.get("loc", ()))), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        if request.url.path.startswith(FHIR_PREFIX):
            return operation_outcome(
                422,
                [
                    {
                        "severity": "error",
                        "code": "invalid",
                        "diagnostics": f"{e['field']}: {e['problem']}",
                        "expression": [e["field"]],
                    }
                    for e in errors
                ],
            )
        first = errors[0] if errors else {"field": "body", "problem": "invalid"}
        return JSONResponse(
            {
                "error": "ValidationError",
                "detail": f"请求参数有误：{first['field']}：{first['problem']}",
                "field": first["field"],
                "errors": errors,
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "请求错误"
        if request.url.path.startswith(FHIR_PREFIX):
            return operation_outcome(
                exc.status_code,
                [{"severity": "error", "code": _fhir_code(exc.status_code), "diagnostics": detail}],
            )
        return JSONResponse(
            {"error": "HTTPError", "detail": detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413 before reading them whole (ASGI
    middleware so it also covers chunked uploads without Content-Length)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        too_big = False

        async def limited_receive() -> Message:
            nonlocal received, too_big
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_big = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        path: str = scope.get("path", "")
        detail = f"请求体过大（上限 {self.max_bytes // 1000} KB）"
        if path.startswith(FHIR_PREFIX):
            response: JSONResponse = operation_outcome(
                413, [{"severity": "error", "code": "too-costly", "diagnostics": detail}]
            )
        else:
            response = JSONResponse(
                {"error": "PayloadTooLarge", "detail": detail}, status_code=413
            )
        await response(scope, _noop_receive, send)


class _TooLarge(Exception):
    pass


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}
