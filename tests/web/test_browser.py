"""The pages in a real browser: Debian's Chromium driven by Playwright (sync API), against the
app served by uvicorn on a free local port over a demo city (Linyi profile, 300 residents,
seed 7) built into a temporary SQLite database.

Playwright never downloads a browser here (`playwright install` is not used): the executable is
`CAREGRID_CHROMIUM` or `/usr/bin/chromium`. Without it the tests skip, or fail under CI=true.
Each flow saves screenshots to `screenshots/` (gitignored) for a person to look at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from caregrid.chronic.models import ChronicEnrolment
from caregrid.core.clock import today
from caregrid.familydoctor.models import Contract
from caregrid.registry.models import Resident

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CAREGRID_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEMO_PASSWORD = "demo-pass-123"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _require_chromium() -> str:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"Chromium not found at {CHROMIUM} (install Debian's `chromium` package or set "
        "CAREGRID_CHROMIUM); browser tests need it"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class LiveServer:
    base_url: str
    engine: Engine

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on 127.0.0.1:<free port> over a freshly built demo city. The database URL is
    set for the app through the environment (as in production) and restored afterwards."""
    _require_chromium()
    from caregrid.app import create_app
    from caregrid.demo.builder import build_demo
    from tests.support import serve, use_database

    url = f"sqlite:///{tmp_path_factory.mktemp('browser')}/demo.db"
    with use_database(url) as engine:
        build_demo(engine, profile_id="linyi", residents=300, seed=7, password=DEMO_PASSWORD)
        with serve(create_app()) as served:
            yield LiveServer(served.base_url, engine)


@pytest.fixture(scope="session")
def browser(live_server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_require_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) with a Chinese locale. Console errors, failed
    requests and CSP violations fail the test: a page that works only half is broken."""
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1440, "height": 900},
        base_url=live_server.base_url,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "the server responded with a status of 4" not in msg.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A sub-resource that fails (a missing script, a stylesheet, an htmx fragment answering
    # 500) is a problem; documents answering 4xx are expected (404 page, form errors), and a
    # request the browser aborts because the page navigated away is not a failure.
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 500 or (r.status >= 400 and r.request.resource_type != "document")
            else None
        ),
    )
    page.on(
        "requestfailed",
        lambda req: (
            problems.append(f"request failed: {req.url} {req.failure}")
            if "ERR_ABORTED" not in (req.failure or "")
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def log_in(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r".*/$"))


def _session(live_server: LiveServer) -> Session:
    return Session(live_server.engine)


def _user(live_server: LiveServer, username: str) -> Any:
    from caregrid.identity.models import User

    with _session(live_server) as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None, username
        s.expunge(user)
        return user


# --- flows ----------------------------------------------------------------------------------


def test_login_page_and_a_wrong_password(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/residents")
    expect(page).to_have_url(re.compile(r"/login\?next=/residents$"))
    expect(page.get_by_text("请先登录")).to_be_visible()
    shot(page, "01-login")
    page.get_by_label("用户名").fill("gp1")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#password-error")).to_have_text("用户名或密码错误")
    shot(page, "02-login-error")


def test_gp_browses_groups_to_the_lead_hospital(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "gp1")
    expect(page.locator(".topbar")).to_contain_text("caregrid 医疗集团协同平台")
    expect(page.locator(".topbar")).to_contain_text("医生")
    expect(page.locator("#chart-groups[data-chart-ready=true] svg")).to_be_visible()
    shot(page, "03-home")

    page.get_by_role("navigation", name="功能导航").get_by_role("link", name="医疗集团").click()
    expect(page.locator("h1")).to_have_text("医疗集团")
    shot(page, "04-groups")
    page.locator("table tbody tr").first.locator("td").first.get_by_role("link").click()
    expect(page.locator("#role-lead")).to_be_visible()
    shot(page, "05-group-detail")

    page.locator("#role-lead .member-tree a").first.click()
    expect(page.locator(".badges")).to_contain_text("三级医院")
    expect(page.locator(".badges")).to_contain_text("综合")
    expect(page.locator(".badges")).to_contain_text("牵头医院")
    expect(page.locator("#practitioners table")).to_be_visible()
    shot(page, "06-institution")


def test_multi_site_practitioners_are_badged(page: Any, live_server: LiveServer) -> None:
    from playwright.sync_api import expect
    from sqlalchemy import func

    from caregrid.registry.models import PractitionerRole

    with _session(live_server) as s:
        multi = (
            select(PractitionerRole.practitioner_id)
            .group_by(PractitionerRole.practitioner_id)
            .having(func.count() > 1)
        )
        # A primary member where lead-hospital doctors also practise (下沉坐诊).
        institution_id = s.scalar(
            select(PractitionerRole.institution_id)
            .where(PractitionerRole.practitioner_id.in_(multi), ~PractitionerRole.primary_site)
            .order_by(PractitionerRole.institution_id)
            .limit(1)
        )
    assert institution_id is not None, "the demo has multi-site practitioners"

    log_in(page, "gp1")
    page.goto(f"/institutions/{institution_id}")
    row = (
        page.locator("#practitioners tbody tr")
        .filter(has=page.locator(".badge", has_text="多点执业"))
        .first
    )
    expect(row).to_be_visible()
    expect(row.locator(".sites li")).to_have_count(2)
    shot(page, "06b-institution-multi-site")


def test_institution_directory_updates_as_you_type(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "gp1")
    page.goto("/institutions")
    page.evaluate("window.__sameDocument = true")
    search = page.get_by_label("名称或编码")
    search.fill("卫生院")
    search.press("End")  # a real keyup: htmx listens for keyup, not input
    expect(page).to_have_url(re.compile(r"/institutions\?q=%E5%8D%AB%E7%94%9F%E9%99%A2$"))
    rows = page.locator("#institution-table tbody tr")
    expect(rows.first).to_contain_text("卫生院")
    for name in rows.locator("td:first-child").all_inner_texts():
        assert "卫生院" in name
    page.get_by_label("级别").select_option("primary")
    expect(page).to_have_url(re.compile(r"\?q=%E5%8D%AB%E7%94%9F%E9%99%A2&level=primary$"))
    assert page.evaluate("window.__sameDocument") is True  # no full page load
    shot(page, "07-institutions-search")
    # Back restores the earlier list (htmx asks for the whole page again).
    page.go_back()
    expect(page).to_have_url(re.compile(r"q=%E5%8D%AB%E7%94%9F%E9%99%A2$"))
    expect(page.get_by_label("级别")).to_have_value("")
    expect(page.locator(".result-summary")).to_contain_text("共")


def test_gp_finds_a_resident_masked_and_opens_one_in_care(
    page: Any, live_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    from caregrid.registry.models import Resident

    gp = _user(live_server, "gp1")
    with _session(live_server) as s:
        resident = s.scalar(
            select(Resident)
            .where(Resident.home_institution_id == gp.institution_id)
            .order_by(Resident.id)
            .limit(1)
        )
        assert resident is not None, "the demo gives gp1's centre some residents"
        full_number, name, rid = resident.id_number, resident.name, resident.id
    prefix = name[:2]

    log_in(page, "gp1")
    page.goto("/residents")
    shot(page, "08-residents-empty")
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("姓名或身份证号").fill(prefix)
    page.get_by_role("button", name="检索").click()
    table = page.locator("#resident-table")
    expect(table).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the results in
    expect(page).to_have_url(re.compile(r"/residents$"))  # the name is not in the URL
    for text in table.locator("tbody td:nth-child(2)").all_inner_texts():
        assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", text), text
    assert full_number not in page.content()
    row = table.locator(f'tbody tr:has(a[href="/residents/{rid}"])')
    expect(row).to_contain_text("建档机构")
    shot(page, "09-residents-results")

    row.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator(".access-basis")).to_contain_text("访问依据：建档机构")
    expect(page.locator("#audit-table")).to_contain_text("gp1")
    assert full_number not in page.content()
    shot(page, "10-resident-record")


def test_specialist_breaks_the_glass_and_the_audit_shows_it(
    page: Any, live_server: LiveServer
) -> None:
    from playwright.sync_api import expect

    from caregrid.identity.access import care_basis
    from caregrid.identity.service import actor_of
    from caregrid.registry.models import Resident

    specialist = actor_of(_user(live_server, "specialist1"))
    with _session(live_server) as s:
        candidates = s.scalars(select(Resident.id).order_by(Resident.id.desc()).limit(50)).all()
        rid = next(r for r in candidates if care_basis(s, specialist, r) is None)

    log_in(page, "specialist1")
    page.goto(f"/residents/{rid}")
    expect(page.locator("h1")).to_have_text("未找到或无诊疗关系")
    page.get_by_role("button", name="紧急调阅").click()
    expect(page.locator("#reason-error")).to_contain_text("紧急调阅必须填写理由")
    shot(page, "11-no-relationship")

    reason = "急诊抢救，患者意识不清，需查看既往病史"
    page.get_by_label("调阅理由（必填）").fill(reason)
    page.get_by_role("button", name="紧急调阅").click()
    expect(page).to_have_url(re.compile(rf"/residents/{rid}$"))
    banner = page.locator(".banner-glass")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("紧急调阅（已记录审计）")
    expect(page.locator(".access-basis")).to_contain_text("紧急调阅")
    glass_row = page.locator("#audit-table tbody tr.row-glass")
    expect(glass_row).to_contain_text("specialist1")
    expect(glass_row).to_contain_text(reason)
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", glass_row.inner_text())
    shot(page, "12-break-glass-record")


def test_profile_page_shows_the_linyi_reserve_with_its_clause(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "manager1")
    page.get_by_role("link", name="政策方案").first.click()
    row = page.locator("#param-capacity-reserved_outpatient_share")
    expect(row).to_contain_text("20%")
    expect(row).to_contain_text("001 §三(三)1")
    expect(page.locator("#scorecard ol.criteria li")).to_have_count(16)  # 001 附件3
    shot(page, "13-profile-linyi", full_page=False)
    page.get_by_role("navigation", name="目录").get_by_role("link", name="评判标准").click()
    expect(page).to_have_url(re.compile(r"#scorecard$"))
    shot(page, "13b-profile-linyi-scorecard", full_page=False)
    page.locator(".segmented").get_by_role("link", name=re.compile("中卫")).click()
    expect(page).to_have_url(re.compile(r"/profile/zhongwei$"))
    expect(page.locator("#scorecard")).to_be_visible()
    expect(page.locator(".topbar-profile")).to_contain_text("临沂")  # still the running one
    shot(page, "14-profile-zhongwei", full_page=False)


def test_coming_capabilities_and_missing_pages(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "coordinator1")
    page.get_by_role("link", name=re.compile("资源共享中心")).click()
    expect(page.locator("h1")).to_contain_text("资源共享中心")
    expect(page.locator("h1")).to_contain_text("建设中")
    shot(page, "15-coming-centres")
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("页面不存在")
    shot(page, "16-not-found")


def test_gp_sees_the_record_and_reuses_a_recent_result_from_the_lead_hospital(
    page: Any, live_server: LiveServer
) -> None:
    """The shared record on the resident page: the year's timeline and charts, then the
    mutual-recognition check finds yesterday's 血常规 from the lead hospital and the doctor
    uses it instead of ordering it again (001 §三(三)2; 国卫医发〔2022〕6号)."""
    from datetime import timedelta

    from playwright.sync_api import expect

    from caregrid.core.clock import now
    from caregrid.record.models import OrderDecision, Result
    from caregrid.registry.models import Group, Resident

    gp = _user(live_server, "gp1")
    with _session(live_server) as s:
        rid = s.scalar(
            select(Resident.id)
            .join(Result, Result.resident_id == Resident.id)
            .where(Resident.home_institution_id == gp.institution_id, Result.item_code == "8480-6")
            .order_by(Resident.id)
            .limit(1)
        )
        assert rid is not None, "the demo gives gp1's hypertensive residents BP readings"
        lead = s.scalar(select(Group.lead_institution_id).where(Group.id == gp.group_id))
        s.add(Result(resident_id=rid, institution_id=lead, group_id=gp.group_id, category="lab",
                     item_code="CBC", item_name="血常规", value_text="WBC 6.1, Hb 132, PLT 210",
                     observed_at=now() - timedelta(days=1), eqa_passed=True, cost_fen=2500,
                     source_system="BROWSER-TEST", source_id=f"CBC-{rid}"))  # fmt: skip
        s.commit()

    log_in(page, "gp1")
    page.goto(f"/residents/{rid}")
    expect(page.locator("#timeline")).to_contain_text("健康档案时间线")
    expect(page.locator("#timeline")).to_contain_text("门诊")
    expect(page.locator("#chart-bp svg").first).to_be_visible()  # ECharts drew the chart
    page.get_by_label("项目代码").fill("CBC")
    page.locator("#recognition").get_by_role("button", name="查询").click()
    results = page.locator("#order-check-results")
    expect(results).to_contain_text("血常规")
    expect(results).to_contain_text("不含医师出具的诊断结论")
    shot(page, "17-recognition-offer")
    results.get_by_role("button", name="采用已有结果").click()
    expect(page.locator("#order-check-results")).to_contain_text("避免重复检查")
    shot(page, "18-recognition-used")
    with _session(live_server) as s:
        decision = s.scalar(select(OrderDecision).where(OrderDecision.resident_id == rid))
        assert decision is not None
        assert (decision.decision, decision.item_code) == ("used_existing", "CBC")
        assert decision.avoided_cost_fen > 0


def test_the_referral_loop_up_with_a_reserved_slot_and_back_down_to_the_team(
    page: Any, live_server: LiveServer
) -> None:
    """The whole loop (issue 5): the GP refers a contracted resident up and books a slot of
    the share reserved for primary care in the same step; the specialist accepts, registers
    the arrival (no second registration), sends the findings back and refers the patient down
    with a care plan; the resident's family-doctor team gets the follow-up task."""
    from playwright.sync_api import expect

    from caregrid.core.actor import Actor
    from caregrid.familydoctor import service as fd
    from caregrid.familydoctor.models import TeamTask
    from caregrid.profiles.service import active_profile
    from caregrid.registry.models import Group, Resident

    gp = _user(live_server, "gp1")
    specialist = _user(live_server, "specialist1")
    with _session(live_server) as s:
        rid = s.scalar(
            select(Resident.id)
            .where(
                Resident.home_institution_id == gp.institution_id, Resident.deceased_on.is_(None)
            )
            .order_by(Resident.id.desc())
            .limit(1)
        )
        assert rid is not None
        lead = s.scalar(select(Group.lead_institution_id).where(Group.id == gp.group_id))
        assert lead == specialist.institution_id
        existing = fd.active_contract(s, rid)  # a demo with contracts may have signed one
        if existing is not None:
            team_id = existing.team_id
        else:
            fd.install_packages(s, active_profile(s))
            team = fd.create_team(
                s,
                Actor.system(),
                code="BROWSER-TEAM",
                name="浏览器测试家庭医生团队",
                base_institution_id=gp.institution_id,
                members=[fd.MemberInput(gp.practitioner_id, "gp", gp.institution_id, leader=True)],
            )
            fd.sign_contract(
                s, Actor.system(), resident_id=rid, team_id=team.id, package_code="BASIC"
            )
            s.commit()
            team_id = team.id

    log_in(page, "gp1")
    page.get_by_role("link", name="双向转诊").click()
    page.get_by_role("link", name="发起上转").click()
    page.get_by_label("居民编号").fill(str(rid))
    page.locator("#pick-to").select_option(str(lead))
    page.get_by_role("button", name="载入档案与号源").click()
    expect(page.locator("#patient")).to_be_visible()
    expect(page.locator("#advice")).to_be_visible()
    page.get_by_label("诊断编码（ICD-10）").fill("I21.0")
    page.get_by_label("诊断名称").fill("急性前壁心肌梗死")
    page.get_by_label("病情摘要").fill("胸痛 3 小时，心电图 V1-V4 ST 段抬高")
    reserved = page.locator(".slot-option.reserved input").first
    reserved.check()
    shot(page, "20-referral-form")
    page.get_by_role("button", name="提交转诊并预约").click()
    expect(page.locator("#status")).to_have_text("待接收")
    expect(page.locator("#appointment")).to_contain_text("基层预留号")
    expect(page.locator("h1")).to_contain_text("优先")  # contracted resident (001 §三(三)1)
    referral_url = page.url
    shot(page, "21-referral-submitted")

    page.context.clear_cookies()
    log_in(page, "specialist1")
    page.goto("/referrals")
    referral_id = referral_url.rsplit("/", 1)[1]
    page.locator("#incoming").get_by_role("link", name=f"#{referral_id}").click()
    page.get_by_role("button", name="接收").click()
    expect(page.locator("#status")).to_have_text("已预约")
    page.get_by_role("button", name="登记到诊").click()
    expect(page.locator("#status")).to_have_text("已到诊")
    page.get_by_label("诊疗结果反馈（回传转出医生）").fill("急诊 PCI 术后，前降支植入支架 1 枚")
    page.get_by_role("button", name="提交反馈并完成").click()
    expect(page.locator("#status")).to_have_text("已完成")
    shot(page, "22-referral-completed")
    page.get_by_role("link", name="下转回基层").click()
    page.get_by_label("下转类别").select_option("postoperative_recovery")
    page.get_by_label("康复/治疗方案").fill("双抗 12 个月，2 周内随访血压心率")
    page.get_by_role("button", name="提交下转").click()
    expect(page.locator("#status")).to_have_text("待接收")
    expect(page.locator("h1")).to_contain_text("转诊单")
    shot(page, "23-down-referral")

    with _session(live_server) as s:
        task = s.scalar(
            select(TeamTask).where(TeamTask.team_id == team_id, TeamTask.resident_id == rid)
        )
        assert task is not None and task.kind == "下转随访" and "双抗" in task.detail

    page.context.clear_cookies()
    log_in(page, "gp1")
    page.goto(referral_url)
    expect(page.locator("#feedback")).to_contain_text("支架")


def test_coordinator_board_draws_the_referral_charts(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "coordinator1")
    page.goto("/referrals/board")
    expect(page.locator("#chart-trend svg").first).to_be_visible()
    expect(page.locator("#chart-reserved svg").first).to_be_visible()
    shot(page, "24-referral-board")
    page.get_by_role("link", name="号源与床位").click()
    expect(page.locator("#calendar")).to_be_visible()
    shot(page, "25-capacity-calendar")


def test_ward_staff_admit_the_first_in_the_queue_and_discharge(
    page: Any, live_server: LiveServer
) -> None:
    """The capacity calendar's wards (issue 5): a lead-hospital doctor sees beds (total,
    reserved, occupied), the admission queue with referred contracted residents first (001
    §三(三)1 优先住院), admits the first one (her referral arrives) and discharges the patient;
    htmx swaps the section."""
    from playwright.sync_api import expect

    from caregrid.capacity.models import AdmissionRequest, BedPool, BedStay
    from caregrid.referral.models import Referral

    specialist = _user(live_server, "specialist1")
    with _session(live_server) as s:
        queue = (
            select(AdmissionRequest.id, AdmissionRequest.bed_pool_id, AdmissionRequest.priority)
            .join(BedPool, BedPool.id == AdmissionRequest.bed_pool_id)
            .where(
                BedPool.institution_id == specialist.institution_id,
                AdmissionRequest.status == "waiting",
            )
            .order_by(
                AdmissionRequest.priority.desc(),
                AdmissionRequest.requested_at,
                AdmissionRequest.id,
            )
        )
        # the first of the queue of a ward where a referred patient waits
        request_id, pool_id, priority = s.execute(queue.limit(1)).one()
    assert priority > 0  # the demo queues referred patients ahead of routine admissions

    log_in(page, "specialist1")
    page.get_by_role("link", name="号源与床位").click()
    ward = page.locator(f"#ward-{pool_id}")
    expect(ward.locator(".ward-counts")).to_be_visible()
    rows = ward.locator(".admission-queue tbody tr")
    expect(rows.first).to_contain_text("优先")
    waiting = rows.count()
    shot(page, "26-capacity-wards")
    ward.get_by_role("button", name="办理下一位入院").click()
    expect(page.locator("#wards [role=status]")).to_contain_text("办理入院")
    ward = page.locator(f"#ward-{pool_id}")
    expect(ward.locator(".admission-queue tbody tr")).to_have_count(waiting - 1)
    stays = ward.locator(".ward-stays")
    expect(stays).to_have_attribute("open", "")
    expect(stays.locator("tbody tr")).to_have_count(1)
    shot(page, "27-capacity-admitted")
    with _session(live_server) as s:
        stay = s.scalar(select(BedStay).where(BedStay.admission_request_id == request_id))
        assert stay is not None and stay.active_bed_id is not None
        # the referral behind the request is answered and the patient has arrived
        status = s.scalar(
            select(Referral.status).where(Referral.admission_request_id == request_id)
        )
        assert status == "arrived"
    stays.get_by_role("button", name=re.compile("办理出院")).click()
    expect(page.locator("#wards [role=status]")).to_contain_text("已出院")
    expect(page.locator(f"#ward-{pool_id} .ward-stays summary")).to_contain_text("（0）")
    with _session(live_server) as s:
        stay = s.scalar(select(BedStay).where(BedStay.admission_request_id == request_id))
        assert stay is not None and stay.active_bed_id is None and stay.discharged_at


# --- family doctor and chronic care (issue 4) -----------------------------------------------


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


# --- indicators and scorecard (issue 6) ------------------------------------------------------


def test_manager_opens_cockpit_drills_down_and_exports(page: Any) -> None:
    """The cockpit (issue 6): tiles, trends and member bars, drill-down, Excel download."""
    import io

    from openpyxl import load_workbook
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
    expect(page.locator("#member-comparison [data-chart-ready=true] svg").first).to_be_visible()
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
    assert book.sheetnames == ["指标汇总", "按集团", "按网格", "按成员单位", "按月份", "指标定义"]
    titles = [r[1] for r in book["指标汇总"].iter_rows(min_row=2, values_only=True) if r[1]]
    assert "基层诊疗人次占比" in titles
    grid_rows = [r for r in book["按网格"].iter_rows(min_row=2, values_only=True)]
    # the manager's export covers their own group, whose residents live in its grid
    assert {r[1] for r in grid_rows if r[0] == "基层诊疗人次占比"} == {"临沂市人民医院医疗集团网格"}
    # a group manager sees their own group only: no comparison across groups
    nav = page.get_by_role("navigation", name="功能导航")
    expect(nav.get_by_role("link", name="集团与网格对比")).to_have_count(0)
    assert page.goto("/indicators/compare").status == 403

    # the health commission compares every group and every grid against the target
    page.context.clear_cookies()
    log_in(page, "commission")
    nav.get_by_role("link", name="集团与网格对比").click()
    expect(page.locator("h1")).to_have_text("集团与网格对比")
    groups = page.locator("#compare-groups")
    expect(groups.locator("[data-chart-ready=true] svg")).to_be_visible()
    expect(groups.locator("tbody tr td:first-child")).to_have_text(
        ["临沂市中医医院医疗集团", "临沂市人民医院医疗集团"]
    )
    # one bar per group in the chart, each with its value as a label
    bar_labels = groups.locator("svg text", has_text=re.compile(r"^\d+\.\d\d%$"))
    expect(bar_labels).to_have_count(2)
    expect(page.locator("#compare-grids tbody tr")).to_have_count(2)
    page.get_by_label("指标").select_option("contract_fulfilment")
    page.get_by_role("button", name="对比").click()
    expect(page.locator("#compare-summary h2")).to_have_text("家庭医生签约履约率")
    expect(page.locator("#compare-groups tbody tr")).to_have_count(2)
    expect(page.locator("#compare-grids [data-chart-ready=true] svg")).to_be_visible()
    shot(page, "42-indicator-compare")
    # a numeric target is drawn as a line; a lead-hospital indicator has no grid chart
    page.get_by_label("指标").select_option("reserved_bed_share")
    page.get_by_role("button", name="对比").click()
    groups = page.locator("#compare-groups")
    expect(groups.locator("svg text", has_text="目标 20%")).to_have_count(1)
    expect(groups.locator("tbody tr td:last-child")).to_have_text(["20.00%", "20.00%"])
    expect(page.locator("#compare-grids")).to_have_count(0)
    expect(page.locator("#compare-summary")).to_contain_text("不按网格拆分")


def test_a_doctor_cannot_open_the_cockpit(page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, "gp1")
    response = page.goto("/indicators")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("仅集团管理者")


def test_manager_assesses_a_criterion_with_a_document(page: Any, tmp_path: Path) -> None:
    """The 评判标准 scorecard (issue 6): assess a criterion, upload its evidence, score."""
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
