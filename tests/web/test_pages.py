"""Route-level tests of the web pages: what each persona sees, through the same services as
the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session

from caregrid.core.actor import Actor
from caregrid.profiles.loader import profile_ids
from caregrid.registry import service as registry
from caregrid.registry.idnumber import mask_id_number
from caregrid.registry.schemas import PractitionerCreate, PractitionerRoleCreate
from caregrid.web.auth import safe_next
from caregrid.web.nav import COMING_NAV

from .conftest import Web, csrf_of, make_resident

# --- login, logout, session -----------------------------------------------------------------


def test_login_page_is_chinese_and_carries_a_csrf_token(web: Web) -> None:
    response = web.client.get("/login")
    assert response.status_code == 200
    assert 'lang="zh-CN"' in response.text
    assert "caregrid 医疗集团协同平台" in response.text
    assert re.search(r'name="csrf_token" value="[\w-]{20,}"', response.text)
    assert "caregrid_login_csrf" in response.cookies


def test_wrong_password_shows_the_message_beside_the_password(web: Web, city) -> None:
    response = web.login("gp_wang", "wrong-password")
    assert response.status_code == 401
    html = response.text
    assert '<p class="field-error" id="password-error" role="alert">用户名或密码错误</p>' in html
    assert 'value="gp_wang"' in html  # the username is kept
    assert "caregrid_session" not in response.cookies


def test_unknown_user_gets_the_same_message_as_a_wrong_password(web: Web, city) -> None:
    response = web.login("nobody", "whatever-pass")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text


def test_repeated_failures_lock_the_account_and_say_for_how_long(web: Web, city) -> None:
    for _ in range(4):
        assert web.login("gp_wang", "wrong-password").status_code == 401
    fifth = web.login("gp_wang", "wrong-password")
    assert fifth.status_code == 423
    assert "账户已锁定" in fifth.text and "15 分钟" in fifth.text
    # Even the right password is refused while locked, with the minutes left.
    locked = web.login("gp_wang", city.password)
    assert locked.status_code == 423
    assert re.search(r'id="username-error"[^>]*>[^<]*账户已锁定，请 \d+ 分钟后再试', locked.text)


def test_empty_fields_are_named(web: Web, city) -> None:
    response = web.login("", "")
    assert response.status_code == 422
    assert 'id="username-error"' in response.text and "请输入用户名" in response.text
    assert 'id="password-error"' in response.text and "请输入密码" in response.text


def test_login_without_the_form_token_is_refused(web: Web, city) -> None:
    response = web.client.post(
        "/login", data={"username": "gp_wang", "password": city.password, "next": "/"}
    )
    assert response.status_code == 403
    assert "登录页面已过期" in response.text
    assert "caregrid_session" not in response.cookies


def test_login_sets_a_httponly_lax_cookie_and_redirects_home(web: Web, city) -> None:
    response = web.login("gp_wang", follow=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "caregrid_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # cookie_secure is off by default (no TLS in tests)


def test_home_shows_who_is_signed_in(web: Web, city) -> None:
    html = web.login("gp_wang").text
    assert "王建国" in html
    assert "医生" in html
    assert "金雀山街道社区卫生服务中心" in html
    assert "临沂" in html  # the active profile's name (settings default: linyi)
    assert "退出登录" in html


def test_a_page_without_a_session_redirects_to_login_with_next(web: Web, city) -> None:
    response = web.client.get("/institutions?level=tertiary", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/institutions?level=tertiary"]
    # After logging in, the user lands where they wanted to go.
    landed = web.login("gp_wang", next_path="/institutions?level=tertiary")
    assert landed.status_code == 200
    assert str(landed.url).endswith("/institutions?level=tertiary")


def test_an_htmx_request_without_a_session_is_told_to_redirect(web: Web, city) -> None:
    response = web.client.get(
        "/institutions?q=医院", headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_an_expired_or_forged_cookie_counts_as_signed_out(web: Web, city) -> None:
    web.client.cookies.set("caregrid_session", "forged-token")
    response = web.client.get("/groups", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/residents", "/residents"),
        ("/institutions?q=a&level=primary", "/institutions?q=a&level=primary"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("residents", "/"),
        ("/login?next=/x", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_is_only_ever_a_local_path(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_login_ignores_a_foreign_next(web: Web, city) -> None:
    response = web.login("gp_wang", next_path="https://evil.example/phish", follow=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_logout_needs_the_form_token_and_ends_the_session(web: Web, city) -> None:
    web.sign_in("gp_wang")
    forged = web.client.post("/logout", data={"csrf_token": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403
    assert web.client.get("/groups", follow_redirects=False).status_code == 200
    response = web.client.post(
        "/logout", data={"csrf_token": web.csrf("/groups")}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    # The session row is revoked, so even a copy of the old cookie no longer works.
    assert web.client.get("/groups", follow_redirects=False).status_code == 303


def test_pages_send_strict_security_headers(web: Web, city) -> None:
    web.sign_in("gp_wang")
    response = web.client.get("/groups")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


# --- layout and navigation ------------------------------------------------------------------


def test_navigation_lists_live_and_coming_capabilities(web: Web, city) -> None:
    html = web.sign_in("gp_wang").get("/").text
    for title, href in [
        ("首页", "/"),
        ("医疗集团", "/groups"),
        ("机构目录", "/institutions"),
        ("居民与健康档案", "/residents"),
        ("政策方案", "/profile"),
        ("双向转诊", "/referrals"),
        ("号源与床位", "/capacity"),
    ]:
        assert f'href="{href}"' in html and title in html
    for item in COMING_NAV:
        assert f'href="/coming/{item.slug}"' in html
    assert html.count("建设中") >= len(COMING_NAV)
    # the shared record is live (on each resident's page), not announced as coming
    assert 'href="/coming/record"' not in html and "共享健康档案" not in html


@pytest.mark.parametrize("item", COMING_NAV, ids=lambda i: i.slug)
def test_every_coming_capability_explains_itself(web: Web, city, item) -> None:
    response = web.sign_in("gp_wang").get(f"/coming/{item.slug}")
    assert response.status_code == 200
    assert item.title in response.text and "建设中" in response.text
    assert item.summary[:20] in response.text


def test_the_capacity_page_quotes_the_profile_reserve(web: Web, city) -> None:
    html = web.sign_in("gp_wang").get("/capacity").text
    assert "20%" in html and "001 §三(三)1" in html


def test_unknown_pages_get_the_chinese_404(web: Web, city) -> None:
    web.sign_in("gp_wang")
    for path in ("/no-such-page", "/coming/teleportation", "/groups/999999", "/institutions/0"):
        response = web.client.get(path)
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
        assert 'lang="zh-CN"' in response.text
        assert "返回首页" in response.text


def test_api_errors_stay_json(web: Web, city) -> None:
    response = web.client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.json()["error"] == "HTTPError"
    assert web.client.get("/api/v1/groups").json()["error"] == "SessionExpired"


def test_a_bad_query_parameter_gets_the_error_page(web: Web, city) -> None:
    response = web.sign_in("gp_wang").get("/institutions?page=0")
    assert response.status_code == 422
    assert "请求参数有误" in response.text


def test_static_files_and_vendored_libraries_are_served(web: Web) -> None:
    for path in (
        "/static/css/caregrid.css",
        "/static/js/charts.js",
        "/static/vendor/htmx.min.js",
        "/static/vendor/echarts.min.js",
    ):
        assert web.client.get(path).status_code == 200, path


# --- home, groups, institutions -------------------------------------------------------------


def test_home_counts_and_embeds_the_chart_data(web: Web, city) -> None:
    html = web.sign_in("gp_wang").get("/").text
    match = re.search(
        r'<script type="application/json" id="chart-groups-data">(.*?)</script>', html, re.S
    )
    assert match
    chart = json.loads(match.group(1))
    assert chart["categories"] == ["测试市人民医院医疗集团", "测试市中医医院医疗集团"]
    by_name = {s["name"]: s["data"] for s in chart["series"]}
    assert by_name["三级医院"] == [1, 1]
    assert by_name["基层医疗卫生机构"] == [1, 0]
    assert 'data-chart="stacked-bar"' in html
    assert "/static/vendor/echarts.min.js" in html


def test_home_counts_the_master_index(web: Web, city, db) -> None:
    from datetime import date

    from caregrid.core.actor import Actor
    from caregrid.registry.idnumber import make_id_number
    from caregrid.registry.schemas import ResidentCreate

    for seq in (1, 2, 3):
        registry.register_resident(
            db,
            Actor.system(),
            ResidentCreate(
                id_number=make_id_number("371302", date(1960, 1, seq), seq), name="刘洋"
            ),
        )
    db.commit()
    html = web.sign_in("gp_wang").get("/").text
    assert re.search(r"主索引居民</span><span class=\"stat-value\">3<", html)


def test_groups_list_shows_kind_grid_lead_and_members(web: Web, city) -> None:
    html = web.sign_in("gp_wang").get("/groups").text
    assert "测试市人民医院医疗集团" in html
    assert "紧密型城市医疗集团" in html
    assert "测试网格" in html
    assert f'href="/institutions/{city.lead_id}"' in html
    assert f'href="/groups/{city.group_id}"' in html


def test_group_page_groups_members_by_role_and_nests_sub_institutions(
    web: Web, city, db: Session
) -> None:
    from caregrid.registry.models import Institution

    village = Institution(
        code="T-CWS1",
        name="金雀山村卫生室",
        level="village",
        kind="general",
        role="member",
        group_id=city.group_id,
        grid_id=city.grid_id,
        parent_id=city.township_id,
    )
    db.add(village)
    db.flush()
    html = web.sign_in("gp_wang").get(f"/groups/{city.group_id}").text
    assert "牵头医院" in html and "成员单位" in html
    assert "三级医院" in html and "基层医疗卫生机构" in html
    # The village clinic is listed inside its township centre's entry.
    township = html.index("金雀山街道社区卫生服务中心</a>")
    nested = html.index('<ul class="member-children">', township)
    assert nested < html.index("金雀山村卫生室", township)


def test_institution_directory_filters_and_answers_htmx_with_a_fragment(web: Web, city) -> None:
    web.sign_in("gp_wang")
    full = web.client.get("/institutions?q=人民")
    assert full.status_code == 200
    assert "<html" in full.text and "测试市人民医院" in full.text
    assert 'hx-trigger="keyup changed delay:300ms' in full.text
    fragment = web.client.get("/institutions?q=中医", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "测试市中医医院" in fragment.text and "测试市人民医院" not in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]
    assert fragment.headers["HX-Push-Url"] == "/institutions?q=%E4%B8%AD%E5%8C%BB"
    by_level = web.client.get("/institutions?level=primary", headers={"HX-Request": "true"})
    assert f'href="/institutions/{city.township_id}"' in by_level.text
    assert f'href="/institutions/{city.lead_id}"' not in by_level.text
    by_group = web.client.get(f"/institutions?group_id={city.other_group_id}")
    assert f'href="/institutions/{city.other_lead_id}"' in by_group.text
    assert f'href="/institutions/{city.township_id}"' not in by_group.text


def test_institution_directory_names_a_bad_filter(web: Web, city) -> None:
    response = web.sign_in("gp_wang").get(
        "/institutions?level=galactic", headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "未知的机构级别" in response.text


def test_institution_directory_paginates(web: Web, city, db: Session) -> None:
    from caregrid.registry.models import Institution

    for k in range(25):
        db.add(
            Institution(
                code=f"T-CLINIC{k:02d}",
                name=f"测试诊所{k:02d}",
                level="village",
                kind="general",
                role="member",
                group_id=city.group_id,
                grid_id=city.grid_id,
            )
        )
    db.flush()
    web.sign_in("gp_wang")
    first = web.client.get("/institutions?q=测试诊所")
    assert "共 <strong>25</strong> 家机构" in first.text
    assert "第 1 / 2 页" in first.text
    second = web.client.get("/institutions?q=测试诊所&page=2", headers={"HX-Request": "true"})
    assert "测试诊所24" in second.text and "测试诊所00" not in second.text


def test_institution_page_shows_labels_departments_staff_and_multi_site(
    web: Web, city, db: Session
) -> None:
    system = Actor.system()
    doctor = registry.create_practitioner(
        db, system, PractitionerCreate(code="T-P1", name="刘志强", sex="male", title="主任医师")
    )
    registry.add_practitioner_role(
        db,
        system,
        doctor.id,
        PractitionerRoleCreate(institution_id=city.lead_id, primary_site=True),
    )
    registry.add_practitioner_role(
        db,
        system,
        doctor.id,
        PractitionerRoleCreate(institution_id=city.township_id, primary_site=False),
    )
    single = registry.create_practitioner(
        db, system, PractitionerCreate(code="T-P2", name="陈丽", sex="female", title="主治医师")
    )
    registry.add_practitioner_role(
        db, system, single.id, PractitionerRoleCreate(institution_id=city.lead_id)
    )
    html = web.sign_in("gp_wang").get(f"/institutions/{city.lead_id}").text
    assert "测试市人民医院" in html and "T-RMYY" in html
    assert "三级医院" in html and "综合" in html and "牵头医院" in html
    assert f'href="/groups/{city.group_id}"' in html
    assert "心血管内科" in html
    assert "2 人" in html  # staff count
    assert "2,000" in html  # beds
    row_liu = html[html.index("刘志强") : html.index("</tr>", html.index("刘志强"))]
    assert "多点执业" in row_liu and "金雀山街道社区卫生服务中心" in row_liu
    row_chen = html[html.index("陈丽") : html.index("</tr>", html.index("陈丽"))]
    assert "多点执业" not in row_chen


# --- residents ------------------------------------------------------------------------------


def test_resident_search_masks_the_id_number(web: Web, city, db: Session) -> None:
    resident, number = make_resident(
        db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id
    )
    web.sign_in("gp_wang")
    for q in ("张建", number):
        response = web.search(q)
        assert response.status_code == 200, response.text
        html = response.text
        assert "张建华" in html
        assert mask_id_number(number) in html
        assert number not in html  # never the full number, not even echoed back
        assert number[6:14] not in html  # nor the birth-date digits in the middle
        assert "建档机构" in html  # gp_wang's care relationship is shown
        assert f'href="/residents/{resident.id}"' in html


def test_resident_search_fragment_for_htmx(web: Web, city, db: Session) -> None:
    make_resident(db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id)
    web.sign_in("gp_wang")
    response = web.search("张", **{"HX-Request": "true"})
    assert "<html" not in response.text
    assert 'id="resident-table"' in response.text


def test_resident_search_needs_the_form_token(web: Web, city) -> None:
    web.sign_in("gp_wang")
    response = web.client.post("/residents", data={"q": "张"})
    assert response.status_code == 403


def test_resident_search_says_when_nothing_matches(web: Web, city) -> None:
    web.sign_in("gp_wang")
    html = web.search("欧阳不存在").text
    assert "未找到符合“欧阳不存在”的居民" in html


def test_resident_search_shows_validation_errors_inline(web: Web, city) -> None:
    web.sign_in("gp_wang")
    partial = web.search("3713021958")
    assert partial.status_code == 422
    assert 'id="q-error"' in partial.text and "身份证号须完整输入" in partial.text
    assert "3713021958" not in partial.text
    empty = web.search("   ")
    assert empty.status_code == 422
    assert "请输入姓名或完整身份证号" in empty.text


def test_resident_search_says_when_the_count_is_capped(
    web: Web, city, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "SEARCH_COUNT_CAP", 2)
    for k in range(4):
        make_resident(
            db, name=f"李{k}", home_institution_id=None, grid_id=city.grid_id, sequence=30 + k
        )
    web.sign_in("gp_wang")
    html = web.search("李").text
    assert "结果超过 1000 条，请输入更完整的姓名" in html


def test_a_role_that_may_not_search_is_told_so(web: Web, city) -> None:
    web.sign_in("viewer_wu")
    assert "不能检索居民主索引" in web.client.get("/residents").text
    response = web.search("张")
    assert response.status_code == 403
    assert "无权检索居民主索引" in response.text


def test_gp_sees_the_masked_record_with_the_access_basis(web: Web, city, db: Session) -> None:
    resident, number = make_resident(
        db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id
    )
    response = web.sign_in("gp_wang").get(f"/residents/{resident.id}")
    assert response.status_code == 200
    html = response.text
    assert "张建华" in html
    assert "访问依据" in html and "建档机构" in html
    assert mask_id_number(number) in html and number not in html
    assert "138****1234" in html and "13805391234" not in html
    assert "紧急调阅（已记录审计）" not in html
    # The access log lists this very read, by gp_wang, in Beijing time.
    log = html[html.index('id="access-log"') :]
    assert "gp_wang" in log and "查看" in log and "居民档案" in log
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", log)


def test_outsider_gets_the_no_relationship_page(web: Web, city, db: Session) -> None:
    resident, number = make_resident(
        db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id
    )
    response = web.sign_in("outsider_zhao").get(f"/residents/{resident.id}")
    assert response.status_code == 404
    html = response.text
    assert "未找到或无诊疗关系" in html
    assert "张建华" not in html and mask_id_number(number) not in html
    assert f'action="/residents/{resident.id}/break-glass"' in html
    # A record that does not exist looks exactly the same (existence is not revealed).
    missing = web.client.get("/residents/987654")
    assert missing.status_code == 404 and "未找到或无诊疗关系" in missing.text


def test_break_glass_needs_a_reason_shown_beside_the_field(web: Web, city, db: Session) -> None:
    resident, _ = make_resident(db, name="张建华", home_institution_id=None, grid_id=None)
    web.sign_in("outsider_zhao")
    token = web.csrf(f"/residents/{resident.id}")
    response = web.client.post(
        f"/residents/{resident.id}/break-glass", data={"reason": " ", "csrf_token": token}
    )
    assert response.status_code == 422
    assert 'id="reason-error"' in response.text and "紧急调阅必须填写理由" in response.text
    assert web.client.get(f"/residents/{resident.id}").status_code == 404


def test_break_glass_needs_the_form_token(web: Web, city, db: Session) -> None:
    resident, _ = make_resident(db, name="张建华", home_institution_id=None, grid_id=None)
    web.sign_in("outsider_zhao")
    response = web.client.post(
        f"/residents/{resident.id}/break-glass", data={"reason": "急诊抢救需要查看病史"}
    )
    assert response.status_code == 403
    assert web.client.get(f"/residents/{resident.id}").status_code == 404


def test_break_glass_opens_the_record_with_a_red_banner_and_an_audit_entry(
    web: Web, city, db: Session
) -> None:
    resident, _ = make_resident(db, name="张建华", home_institution_id=None, grid_id=None)
    web.sign_in("outsider_zhao")
    token = web.csrf(f"/residents/{resident.id}")
    response = web.client.post(
        f"/residents/{resident.id}/break-glass",
        data={"reason": "急诊抢救，患者昏迷需查看既往史", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/residents/{resident.id}"
    record = web.client.get(f"/residents/{resident.id}")
    assert record.status_code == 200
    html = record.text
    assert 'class="banner-glass"' in html and "紧急调阅（已记录审计）" in html
    assert "张建华" in html
    log = html[html.index('id="access-log"') :]
    assert "紧急调阅（破窗）" in log
    assert "急诊抢救，患者昏迷需查看既往史" in log
    assert "拒绝" in log  # the first, refused look is on record too


def test_non_clinical_roles_get_no_break_glass_form(web: Web, city, db: Session) -> None:
    resident, _ = make_resident(db, name="张建华", home_institution_id=None, grid_id=None)
    html = web.sign_in("manager_zhou").get(f"/residents/{resident.id}").text
    assert "未找到或无诊疗关系" in html
    assert "break-glass" not in html


def test_admin_sees_who_accessed_a_record_but_not_the_record(web: Web, city, db: Session) -> None:
    resident, number = make_resident(
        db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id
    )
    web.sign_in("gp_wang").get(f"/residents/{resident.id}")
    web.client.cookies.clear()
    html = web.sign_in("admin_sun").get(f"/residents/{resident.id}").text
    assert "未找到或无诊疗关系" in html
    assert "张建华" not in html and number not in html
    log = html[html.index('id="access-log"') :]
    assert "gp_wang" in log


# --- policy profiles ------------------------------------------------------------------------


def test_profile_page_lists_the_linyi_reserve_with_its_clause(web: Web, city) -> None:
    response = web.sign_in("gp_wang").get("/profile")
    assert response.status_code == 200
    html = response.text
    row_start = html.index('id="param-capacity-reserved_outpatient_share"')
    row = html[row_start : html.index("</tr>", row_start)]
    assert "20%" in row
    assert "001 §三(三)1" in row
    assert "将20%的门诊号源和住院床位" in row
    assert "当前运行" in html
    assert "评判标准" in html


def _row(html: str, key: str) -> str:
    start = html.index(f'id="param-{key.replace(".", "-")}"')
    return html[start : html.index("</tr>", start)]


def test_profile_formats_trends_lists_and_marks_provisional_values(web: Web, city) -> None:
    from caregrid.profiles.loader import load_profile

    params = list(load_profile("linyi").parameters.values())
    trend = next(p for p in params if p.unit == "trend" and p.value == "rising")
    listed = next(p for p in params if p.unit == "list")
    provisional = next(p for p in params if p.provisional)
    html = web.sign_in("gp_wang").get("/profile/linyi").text
    assert "逐年提升" in _row(html, trend.key)
    assert "、".join(listed.value) in _row(html, listed.key)  # type: ignore[arg-type]
    assert "暂定" in _row(html, provisional.key)


@pytest.mark.parametrize("profile_id", profile_ids())
def test_every_profile_renders_with_its_header_and_scorecard(
    web: Web, city, profile_id: str
) -> None:
    from caregrid.profiles.loader import load_profile

    profile = load_profile(profile_id)
    response = web.sign_in("gp_wang").get(f"/profile/{profile_id}")
    assert response.status_code == 200
    html = response.text
    assert profile.meta.plan_title in html
    assert profile.meta.issuer in html
    for criterion in profile.scorecard.criteria:
        assert criterion.title in html
    for parameter in profile.parameters.values():
        assert f'id="param-{parameter.key.replace(".", "-")}"' in html
    for other in profile_ids():
        assert f'href="/profile/{other}"' in html


def test_unknown_profile_is_a_404_page(web: Web, city) -> None:
    response = web.sign_in("gp_wang").get("/profile/atlantis")
    assert response.status_code == 404
    assert "未知的政策方案" in response.text


def test_the_session_cookie_is_secure_when_configured(
    web: Web, city, monkeypatch: pytest.MonkeyPatch
) -> None:
    from caregrid.settings import get_settings

    monkeypatch.setenv("CAREGRID_COOKIE_SECURE", "true")
    get_settings.cache_clear()
    try:
        # Secure cookies only travel over TLS, so this browser speaks https.
        form = web.client.get("https://testserver/login")
        assert "Secure" in form.headers["set-cookie"]
        response = web.client.post(
            "https://testserver/login",
            data={
                "username": "gp_wang",
                "password": "Passw0rd!",
                "csrf_token": csrf_of(form.text),
            },
            follow_redirects=False,
        )
    finally:
        monkeypatch.delenv("CAREGRID_COOKIE_SECURE")
        get_settings.cache_clear()
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]
