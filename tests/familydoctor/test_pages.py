"""The family-doctor and chronic-care pages through the app (forms, errors beside the field,
the rule feedback), as gp_wang and manager_zhou."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from caregrid.core.clock import frozen_clock
from caregrid.familydoctor import service as fd
from tests.conftest import City
from tests.familydoctor.builders import SYSTEM, make_resident, make_team
from tests.web.conftest import Web

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> object:
    with frozen_clock(NOW):
        yield


@pytest.fixture
def web(client: TestClient, db: Session, city: City) -> Web:
    db.info["city"] = city
    db.commit()
    return Web(client, db)


def test_gp_signs_enrols_and_records_two_uncontrolled_follow_ups(web: Web) -> None:
    team_id, rid = _prepare(web)
    client = web.sign_in("gp_wang")
    page = client.get("/familydoctor")
    assert page.status_code == 200
    assert "团队工作台" in page.text
    csrf = web.csrf("/familydoctor/sign")
    bad = client.post(
        "/familydoctor/sign",
        data={"resident_id": rid, "team_id": team_id, "package_code": "CHILD", "years": "1",
              "csrf_token": csrf},
    )  # fmt: skip
    assert bad.status_code == 422
    assert 'id="package_code-error"' in bad.text
    signed = client.post(
        "/familydoctor/sign",
        data={"resident_id": rid, "team_id": team_id, "package_code": "ELDERLY", "years": "1",
              "csrf_token": csrf},
    )  # fmt: skip
    assert signed.status_code == 200, signed.text
    assert "履约情况" in signed.text
    contract = fd.active_contract(web.db, rid)
    assert contract is not None
    enrolled = client.post(
        "/chronic/enrol",
        data={"resident_id": rid, "program": "hypertension", "risk_grade": "medium",
              "enrolled_on": "2026-01-15", "contract_id": contract.contract_id, "csrf_token": csrf},
    )  # fmt: skip
    assert enrolled.status_code == 200
    path = str(enrolled.url).split("testserver")[1]
    assert path.startswith("/chronic/enrolments/")
    future = client.post(
        f"{path}/followups",
        data={"followed_on": "2026-06-05", "sbp": "150", "dbp": "95", "csrf_token": csrf},
    )
    assert future.status_code == 422
    assert 'id="followed_on-error"' in future.text
    first = client.post(
        f"{path}/followups",
        data={"followed_on": "2026-05-10", "sbp": "152", "dbp": "96", "csrf_token": csrf},
    )
    assert first.status_code == 201
    assert "第一次控制不满意" in first.text
    second = client.post(
        f"{path}/followups",
        data={"followed_on": "2026-05-24", "sbp": "150", "dbp": "94", "csrf_token": csrf},
    )
    assert "连续两次控制不满意" in second.text
    assert "转诊上级医院" in second.text
    worklist = client.get("/familydoctor")
    assert "控制不满意或失访" in worklist.text
    assert "孙秀兰" in worklist.text
    assert "孙秀兰" in client.get("/chronic").text


def test_manager_view_shows_charts_and_the_settlement(web: Web) -> None:
    _prepare(web)
    client = web.sign_in("manager_zhou")
    page = client.get("/familydoctor/manager")
    assert page.status_code == 200, page.text
    for text in ("签约覆盖率", "规范管理率", 'data-chart="bar-percent"', "签约服务经费结算"):
        assert text in page.text


def test_outsider_sees_no_contract_page(web: Web) -> None:
    team_id, rid = _prepare(web)
    contract = fd.sign_contract(
        web.db, SYSTEM, resident_id=rid, team_id=team_id, package_code="BASIC"
    )
    web.db.commit()
    client = web.sign_in("outsider_zhao")
    assert client.get(f"/familydoctor/contracts/{contract.id}").status_code == 404


def _prepare(web: Web) -> tuple[int, int]:
    city: City = web.db.info["city"]
    team = make_team(web.db, city)
    rid = make_resident(web.db, city, name="孙秀兰")
    web.db.commit()
    return team.id, rid


def test_contract_page_renews_and_changes_team(web: Web) -> None:
    city: City = web.db.info["city"]
    team_id, rid = _prepare(web)
    other = make_team(web.db, city, code="T-TEAM2")
    contract = fd.sign_contract(
        web.db, SYSTEM, resident_id=rid, team_id=team_id, package_code="BASIC"
    )
    web.db.commit()
    client = web.sign_in("gp_wang")
    csrf = web.csrf(f"/familydoctor/contracts/{contract.id}")
    renewed = client.post(f"/familydoctor/contracts/{contract.id}/renew", data={"csrf_token": csrf})
    assert renewed.status_code == 200
    new_id = fd.active_contract(web.db, rid).contract_id  # type: ignore[union-attr]
    assert new_id != contract.id
    refused = client.post(
        f"/familydoctor/contracts/{new_id}/change-team",
        data={"csrf_token": csrf, "team_id": other.id, "change_reason": ""},
    )
    assert refused.status_code == 422
    assert 'id="change_reason-error"' in refused.text
    moved = client.post(
        f"/familydoctor/contracts/{new_id}/change-team",
        data={"csrf_token": csrf, "team_id": other.id, "change_reason": "居住地变更"},
    )
    assert moved.status_code == 200
    assert fd.active_contract(web.db, rid).team_id == other.id  # type: ignore[union-attr]
