"""HTTP plumbing shared by every domain's routes: the request-owned transaction (committed
when the endpoint returns), the error handlers and the request-size limit."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caregrid.core.db import commit, unit_of_work
from caregrid.core.errors import DomainError

FHIR_PREFIX = "/fhir/"


def _transaction() -> Iterator[Session]:
    """The request owns the transaction: commit when the endpoint returns, roll back when it
    raises, before the response is sent."""
    with unit_of_work() as session:
        yield session


DB = Annotated[Session, Depends(_transaction, scope="function")]


def _commit_on_return(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session):
                commit(value)
        return result

    return run


class CommitOnReturnRoute(APIRoute):
    """A route whose sync endpoint commits its transaction (`DB`) in its own worker thread,
    as it returns, before FastAPI validates the response and tears the dependency down.

    FastAPI validates a sync endpoint's return value, and exits a sync dependency, in further
    threadpool threads. Were the transaction still open then, holding row locks (the audit
    chain head that every audited request takes, a slot), and every pool thread blocked on
    those locks, no thread would be left to commit them: a deadlock that 200 concurrent clients
    booking slots on PostgreSQL reproduce (tests/capacity/test_concurrency.py). Committing
    here releases the locks before the endpoint's thread is given back. A failure to commit
    is the endpoint's failure, answered by the error handlers like any other."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isgeneratorfunction(endpoint):
            endpoint = _commit_on_return(endpoint)
        super().__init__(path, endpoint, **kwargs)


def api_router(**kwargs: Any) -> APIRouter:
    """Every domain's router: its routes commit on return (`CommitOnReturnRoute`)."""
    return APIRouter(route_class=CommitOnReturnRoute, **kwargs)


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
        if exc.status_code == 400:
            # A body FastAPI could not parse at all: the same 422 as any other bad input.
            detail = "请求体无法解析：须为合法的 JSON 或表单"
            if request.url.path.startswith(FHIR_PREFIX):
                return operation_outcome(
                    422, [{"severity": "error", "code": "structure", "diagnostics": detail}]
                )
            return JSONResponse(
                {"error": "MalformedBody", "detail": detail, "field": "body"}, status_code=422
            )
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


URL_NUL_MARKERS = (b"\x00", b"%00")


class InputGuard:
    """Refuse, before any handler runs, what no field may hold: request bodies over
    `max_bytes` (413, also for chunked uploads without Content-Length) and NUL characters in
    the path, query or body (422; PostgreSQL text cannot store them). ASGI middleware."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # exact paths allowed a bigger body (the FHIR Bundle endpoint)
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = self.larger.get(scope.get("path", "").rstrip("/"), self.max_bytes)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, 413, limit)
            return
        query = (scope.get("query_string") or b"").lower()
        raw_path = (scope.get("raw_path") or b"").lower()
        if any(m in query or m in raw_path for m in URL_NUL_MARKERS) or "\x00" in scope["path"]:
            await self._reject(scope, send, 422)
            return
        content_type = headers.get(b"content-type", b"").lower()
        if b"json" in content_type:
            body_markers: tuple[bytes, ...] = (b"\x00", b"\\u0000")
        elif b"x-www-form-urlencoded" in content_type:
            body_markers = (b"\x00", b"%00")
        else:
            body_markers = (b"\x00",)
        # Bodies are small (max_bytes): read the whole body first, check it, then hand it on.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._reject(scope, send, 413, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and any(m in body.lower() for m in body_markers):
            await self._reject(scope, send, 422)
            return
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )

    async def _reject(self, scope: Scope, send: Send, status: int, limit: int = 0) -> None:
        path: str = scope.get("path", "")
        if status == 413:
            error, detail = "PayloadTooLarge", f"请求体过大（上限 {limit // 1000:,} KB）"
        else:
            error, detail = "InvalidCharacter", "输入含有不允许的空字符（NUL）"
        if path.startswith(FHIR_PREFIX):
            code = "too-costly" if status == 413 else "invalid"
            response: JSONResponse = operation_outcome(
                status, [{"severity": "error", "code": code, "diagnostics": detail}]
            )
        else:
            response = JSONResponse({"error": error, "detail": detail}, status_code=status)
        await response(scope, _noop_receive, send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """A receive callable that yields the buffered messages, then the real channel (so a
    streaming response still learns when the client goes away)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return await then()

    return receive


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "错误响应：error 为错误类型，detail 为中文说明，field 指明出错字段",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
    "required": ["error", "detail"],
    "additionalProperties": True,
}


def install_problem_schema(app: FastAPI) -> None:
    """Document the error body the handlers above really send: FastAPI's generated schema
    describes its own default 422 body, which caregrid replaces."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["HTTPValidationError"] = PROBLEM_SCHEMA
        schemas.pop("ValidationError", None)
        for path_item in spec.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    if status.startswith(("4",)) and "content" not in response:
                        response["content"] = {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                            }
                        }
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
