"""GET /api/v1/profiles on a bare app with a minimal DomainError handler."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from caregrid.core.errors import DomainError
from caregrid.profiles.routes import router


@pytest.fixture(scope="module")
def api() -> TestClient:
    app = FastAPI()
    app.include_router(router)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    return TestClient(app)


def test_list_profiles(api: TestClient) -> None:
    response = api.get("/api/v1/profiles")
    assert response.status_code == 200
    body = response.json()
    assert [meta["id"] for meta in body] == [
        "lincang",
        "linyi",
        "zhongwei",
        "yunnan_county",
        "national_city",
    ]
    assert "parameters" not in body[0]


def test_get_one_profile(api: TestClient) -> None:
    response = api.get("/api/v1/profiles/yunnan_county")
    assert response.status_code == 200
    body = response.json()
    prepaid = body["parameters"]["payment.prepaid_share"]
    assert prepaid["value"] == 0.8
    assert prepaid["clause"] == "003 §二(六)20"
    assert body["scorecard"]["monitoring"]


def test_unknown_profile_is_404(api: TestClient) -> None:
    response = api.get("/api/v1/profiles/atlantis")
    assert response.status_code == 404
    assert response.json()["error"] == "UnknownProfile"


def test_odd_profile_id_is_404(api: TestClient) -> None:
    assert api.get("/api/v1/profiles/Zhong-Wei").status_code == 404
