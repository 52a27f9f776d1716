"""Errors of page routes as Chinese HTML: the 404 page, the generic error page, the login
redirect. API and FHIR paths keep the JSON / OperationOutcome handlers of `core.http`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from caregrid.core.errors import DomainError
from caregrid.identity.errors import SessionExpired
from caregrid.web.auth import CsrfFailed, LoginRequired, login_url
from caregrid.web.render import render

API_PREFIXES = ("/api/", "/fhir/")
ERROR_TITLES = {
    400: "请求有误",
    401: "需要登录",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持的操作",
    409: "操作冲突",
    413: "请求过大",
    422: "输入有误",
    423: "账户已锁定",
    500: "系统出错了",
}


def is_page_path(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES)


def error_page(request: Request, status_code: int, detail: str | None = None) -> HTMLResponse:
    title = ERROR_TITLES.get(status_code, "出错了")
    if status_code == 404 and not detail:
        detail = "您访问的页面不存在，或已被移动。请检查地址，或返回首页重新进入。"
    return render(
        request,
        "error.html",
        {"status_code": status_code, "title": title, "detail": detail or title},
        status_code=status_code,
    )


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


async def _delegate(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    if inspect.isawaitable(result):
        return await result
    return result


def _login_redirect(request: Request, next_path: str) -> Response:
    target = login_url(next_path)
    if request.headers.get("HX-Request") == "true":
        # htmx would otherwise swap the login page into the fragment being refreshed.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def install_error_pages(app: FastAPI) -> None:
    """Pages get Chinese HTML errors; the API and FHIR keep their JSON handlers."""
    api_http = app.exception_handlers.get(StarletteHTTPException)
    api_domain = app.exception_handlers.get(DomainError)
    api_validation = app.exception_handlers.get(RequestValidationError)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return _login_redirect(request, exc.next_path)

    async def csrf_failed(request: Request, exc: Exception) -> Response:
        return error_page(
            request, 403, "表单已失效（可能已在其他窗口退出登录），请刷新页面后重试。"
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_page_path(request) or api_http is None:
            return error_page(request, exc.status_code)
        return await _delegate(api_http, request, exc)

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        if is_page_path(request) or api_domain is None:
            if isinstance(exc, SessionExpired):
                return _login_redirect(request, request.url.path)
            return error_page(request, exc.status_code, exc.detail)
        return await _delegate(api_domain, request, exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if is_page_path(request) or api_validation is None:
            return error_page(request, 422, "请求参数有误，请检查地址或重新填写。")
        return await _delegate(api_validation, request, exc)

    async def server_error(request: Request, exc: Exception) -> Response:
        if is_page_path(request):
            return error_page(
                request, 500, "系统处理请求时出错，已记录。请稍后重试，或联系系统管理员。"
            )
        return PlainTextResponse("Internal Server Error", status_code=500)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(CsrfFailed, csrf_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
