"""Family-doctor flows in a real browser (Playwright + Debian's Chromium) over the demo city
of tests/web/test_browser.py: a GP signs a resident, enrols them in hypertension management and
records two uncontrolled follow-ups, and the page tells them to refer up; the manager sees the
charts. Screenshots go to screenshots/ for a person to look at."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from caregrid.chronic.models import ChronicEnrolment
from caregrid.core.clock import today
from caregrid.familydoctor.models import Contract
from caregrid.registry.models import Resident
from tests.web.test_browser import LiveServer, _session, _user, log_in, shot

pytestmark = pytest.mark.browser


def _unsigned_adult(live_server: LiveServer, institution_id: int) -> Resident:
    """A resident of the GP's institution old enough for hypertension management (35+), not
    yet contracted or enrolled."""
    cutoff = today() - timedelta(days=36 * 365)
    with _session(live_server) as s:
        signed = select(Contract.resident_id).where(Contract.status == "active")
        enrolled = select(ChronicEnrolment.resident_id)
        resident = s.scalar(
            select(Resident)
            .where(
                Resident.home_institution_id == institution_id,
                Resident.birth_date < cutoff,
                Resident.deceased_on.is_(None),
                Resident.id.not_in(signed),
                Resident.id.not_in(enrolled),
            )
            .order_by(Resident.id)
            .limit(1)
        )
        assert resident is not None, "the demo has an unsigned adult resident"
        s.expunge(resident)
        return resident


def test_gp_signs_a_contract_and_two_uncontrolled_follow_ups_call_for_referral(
    page: Any, live_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    gp = _user(live_server, "gp1")
    resident = _unsigned_adult(live_server, gp.institution_id)
    package = (
        "ELDERLY" if resident.birth_date < today() - timedelta(days=round(65.1 * 365)) else "BASIC"
    )
    log_in(page, "gp1")
    page.get_by_role("navigation", name="功能导航").get_by_role("link", name="家庭医生签约").click()
    expect(page.locator("h1")).to_have_text("家庭医生团队工作台")
    shot(page, "fd-01-worklist")

    page.goto(f"/familydoctor/sign?resident_id={resident.id}")
    expect(page.get_by_text(resident.name)).to_be_visible()
    page.get_by_label("签约服务包").select_option(package)
    shot(page, "fd-02-sign-form")
    page.get_by_role("button", name="确认签约").click()
    expect(page.locator("h1")).to_contain_text(f"{resident.name} 的家庭医生签约")
    expect(page.locator("h1 .badge")).to_have_text("生效")

    page.get_by_label("纳入管理").select_option("hypertension")
    page.get_by_label("纳入日期").fill((today() - timedelta(days=60)).isoformat())
    page.get_by_role("button", name="纳入").click()
    expect(page.locator("h1")).to_contain_text("高血压随访")

    def follow_up(on: date, sbp: str, dbp: str) -> None:
        page.get_by_label("随访日期").fill(on.isoformat())
        page.get_by_label("收缩压（mmHg）").fill(sbp)
        page.get_by_label("舒张压（mmHg）").fill(dbp)
        page.get_by_label("用药情况").fill("氨氯地平片 5mg 每日一次")
        page.get_by_role("button", name="保存随访").click()

    follow_up(today() - timedelta(days=20), "156", "96")
    expect(page.locator("#rule-feedback")).to_contain_text("第一次控制不满意")
    follow_up(today() - timedelta(days=6), "152", "94")
    feedback = page.locator("#rule-feedback")
    expect(feedback).to_contain_text("连续两次控制不满意")
    expect(feedback).to_contain_text("转诊上级医院")
    expect(feedback).to_contain_text("国家基本公共卫生服务规范")
    expect(page.locator("table tbody tr")).to_have_count(2)
    shot(page, "fd-03-followup-refer-up")

    # A reading no living patient has is refused beside the field, nothing saved.
    follow_up(today(), "400", "90")
    expect(page.locator("#sbp-error")).to_contain_text("超出生理范围")
    expect(page.locator("table tbody tr")).to_have_count(2)

    page.goto("/familydoctor")
    expect(page.locator("#uncontrolled")).to_contain_text(resident.name)
    shot(page, "fd-04-worklist-uncontrolled")


def test_manager_sees_coverage_rates_and_settlement_charts(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "manager1")
    page.goto("/familydoctor/manager")
    expect(page.locator("h1")).to_have_text("签约与慢病管理统计")
    for chart in ("#chart-coverage", "#chart-teams", "#chart-monthly"):
        expect(page.locator(f"{chart}[data-chart-ready=true] svg")).to_be_visible()
    expect(page.get_by_text("签约服务经费结算")).to_be_visible()
    shot(page, "fd-05-manager")
