"""The cockpit in a real browser (Chromium via Playwright, same set-up as test_browser.py):
a group manager opens the cockpit, drills down to an indicator's definition and members, and
exports the report to Excel. Screenshots go to screenshots/ for a person to look at."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.web.test_browser import browser, live_server, log_in, page, shot

pytestmark = pytest.mark.browser
__all__ = ["browser", "live_server", "page"]  # fixtures shared with test_browser.py


def test_manager_opens_cockpit_drills_down_and_exports(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "manager1")
    page.get_by_role("navigation", name="功能导航").get_by_role("link", name="指标驾驶舱").click()
    expect(page.locator("h1")).to_have_text("指标驾驶舱")
    tile = page.locator('a.tile[data-slug="primary_visit_share"]')
    expect(tile).to_contain_text("基层诊疗人次占比")
    expect(tile).to_contain_text(re.compile(r"\d+\.\d\d%"))
    # Linyi's target for it is a trend (逐年提升): the tile names it
    expect(tile).to_contain_text("逐年提升")
    expect(
        page.locator('[data-chart="indicator-trend"][data-chart-ready=true] svg').first
    ).to_be_visible()
    shot(page, "40-indicator-cockpit")

    page.locator('a.tile[data-slug="primary_tcm_share"]').click()
    expect(page.locator("h1")).to_contain_text("基层中医诊疗量占比")
    expect(page.locator("#definition")).to_contain_text("003 §二(四)14")
    expect(page.locator("#definition")).to_contain_text("基层门急诊人次")
    expect(page.locator("#member-bars[data-chart-ready=true] svg")).to_be_visible()
    rows = page.locator("#members tbody tr")
    assert rows.count() > 3
    shot(page, "41-indicator-detail")

    page.locator(".breadcrumb a").click()
    expect(page.locator("h1")).to_have_text("指标驾驶舱")
    with page.expect_download() as download_info:
        page.locator("#export").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    assert book.sheetnames == ["指标汇总", "按集团", "按成员单位", "按月份", "指标定义"]
    titles = [r[1] for r in book["指标汇总"].iter_rows(min_row=2, values_only=True) if r[1]]
    assert "基层诊疗人次占比" in titles


def test_a_doctor_cannot_open_the_cockpit(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "gp1")
    response = page.goto("/indicators")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("仅集团管理者")


def test_manager_assesses_a_criterion_with_a_document(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    log_in(page, "manager1")
    page.get_by_role("navigation", name="功能导航").get_by_role("link", name="评判标准").click()
    expect(page.locator("h1")).to_have_text("评判标准")
    # Linyi 001 附件3: sixteen criteria in four dimensions
    expect(page.locator("article.criterion")).to_have_count(16)
    expect(page.locator("section.card h2")).to_have_text(
        ["权责协同", "资源协同", "业务协同", "机制协同"]
    )
    referral = page.locator("#c13")
    expect(referral).to_contain_text("有序双向转诊")
    expect(referral).to_contain_text("转诊闭环率")
    before = page.locator("#score").inner_text()
    referral.get_by_label("第13条自评结果").select_option("met")
    referral.get_by_label("第13条自评说明").fill("双向转诊制度和绿色通道已运行，闭环率见佐证指标")
    referral.get_by_role("button", name="保存自评").click()
    expect(page.locator("#c13 .badge").first).to_have_text("达到")
    assert page.locator("#score").inner_text() != before
    evidence = tmp_path / "转诊制度.pdf"
    evidence.write_bytes(b"%PDF-1.4\n% caregrid test\n")
    page.locator("#c13").get_by_label("第13条佐证文件").set_input_files(str(evidence))
    page.locator("#c13").get_by_role("button", name="上传文件").click()
    expect(page.locator("#c13")).to_contain_text("转诊制度.pdf")
    shot(page, "42-scorecard")
