"""Referral and capacity pages through the test client: the form with advice, recent results
and the slot picker; booking in the same step; the specialist's worklist and actions; errors
beside the field; the coordinator board; the capacity calendar."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from caregrid.core.clock import now
from caregrid.record.models import Result
from caregrid.referral.models import Referral
from caregrid.registry.service import install_default_catalogs
from tests.referral.factories import cardiology, make_clinic, make_resident
from tests.web.conftest import Web, csrf_of


def switch(web: Web, username: str):  # type: ignore[no-untyped-def]
    """Sign in as another persona in the same browser (a fresh cookie jar)."""
    web.client.cookies.clear()
    return web.sign_in(username)


def _setup(web: Web, city) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    install_default_catalogs(web.db)
    resident = make_resident(web.db, city)
    web.db.add(
        Result(
            resident_id=resident,
            institution_id=city.township_id,
            group_id=city.group_id,
            category="lab",
            item_code="TNI",
            item_name="肌钙蛋白I",
            value_num=2.4,
            unit="ng/mL",
            abnormal_flag="H",
            observed_at=now() - timedelta(hours=2),
        )
    )
    clinic = make_clinic(web.db, city, start=now() + timedelta(days=2))
    web.db.commit()
    return resident, clinic


def test_gp_refers_up_and_books_a_reserved_slot_in_one_step(web: Web, city) -> None:
    resident, clinic = _setup(web, city)
    gp = web.sign_in("gp_wang")
    form = gp.get(f"/referrals/new?resident_id={resident}")
    assert form.status_code == 200, form.text
    html = form.text
    assert "肌钙蛋白I" in html  # recent results from the shared record
    assert "基层预留" in html and "001 §三(三)1" in html
    reserved = clinic.reserved_ids[0]  # type: ignore[attr-defined]
    response = gp.post(
        "/referrals/new",
        data={
            "csrf_token": csrf_of(html),
            "resident_id": resident,
            "to_institution_id": city.lead_id,
            "to_department_id": cardiology(web.db, city),
            "diagnosis_code": "I21.0",
            "diagnosis_name": "急性心肌梗死",
            "summary": "胸痛 3 小时",
            "slot_id": reserved,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    referral_id = int(response.headers["location"].rsplit("/", 1)[1])
    detail = gp.get(f"/referrals/{referral_id}").text
    assert "待接收" in detail and "基层预留号" in detail and "无需重复挂号" in detail

    specialist = switch(web, "specialist_li")
    worklist = specialist.get("/referrals").text
    assert f"#{referral_id}" in worklist
    page = specialist.get(f"/referrals/{referral_id}").text
    accepted = specialist.post(
        f"/referrals/{referral_id}/accept",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert web.db.get(Referral, referral_id).status == "scheduled"  # type: ignore[union-attr]


def test_within_catalogue_without_reason_shows_the_error_beside_the_field(web: Web, city) -> None:
    resident, _ = _setup(web, city)
    gp = web.sign_in("gp_wang")
    html = gp.get(f"/referrals/new?resident_id={resident}").text
    response = gp.post(
        "/referrals/new",
        data={
            "csrf_token": csrf_of(html),
            "resident_id": resident,
            "to_institution_id": city.lead_id,
            "diagnosis_code": "I10",
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="reason_text-error"[^>]*>[^<]*请填写转诊理由', response.text)
    assert web.db.scalar(select(Referral.id)) is None


def test_rejecting_without_a_reason_is_refused_on_the_page(web: Web, city) -> None:
    resident, _ = _setup(web, city)
    gp = web.sign_in("gp_wang")
    html = gp.get(f"/referrals/new?resident_id={resident}").text
    created = gp.post(
        "/referrals/new",
        data={
            "csrf_token": csrf_of(html),
            "resident_id": resident,
            "to_institution_id": city.lead_id,
            "diagnosis_code": "I21.0",
        },
        follow_redirects=False,
    )
    referral_id = int(created.headers["location"].rsplit("/", 1)[1])
    specialist = switch(web, "specialist_li")
    page = specialist.get(f"/referrals/{referral_id}").text
    refused = specialist.post(
        f"/referrals/{referral_id}/reject", data={"csrf_token": csrf_of(page), "reason": ""}
    )
    assert refused.status_code == 422 and "退回转诊须填写理由" in refused.text
    assert web.db.get(Referral, referral_id).status == "submitted"  # type: ignore[union-attr]


def test_outsider_gets_404_for_a_referral_page(web: Web, city) -> None:
    resident, _ = _setup(web, city)
    gp = web.sign_in("gp_wang")
    html = gp.get(f"/referrals/new?resident_id={resident}").text
    created = gp.post(
        "/referrals/new",
        data={
            "csrf_token": csrf_of(html),
            "resident_id": resident,
            "to_institution_id": city.lead_id,
            "diagnosis_code": "I21.0",
        },
        follow_redirects=False,
    )
    location = created.headers["location"]
    outsider = switch(web, "outsider_zhao")
    assert outsider.get(location).status_code == 404


def test_coordinator_board_and_capacity_calendar(web: Web, city) -> None:
    _setup(web, city)
    coordinator = web.sign_in("coordinator_chen")
    board = coordinator.get("/referrals/board")
    assert board.status_code == 200, board.text
    assert 'data-chart="referral-trend"' in board.text and "下沉预留号源" in board.text
    calendar = coordinator.get("/capacity")
    assert calendar.status_code == 200
    assert "心血管内科" in calendar.text and "20%" in calendar.text


def _ward_with_queue(web: Web, city) -> tuple[int, list[int]]:  # type: ignore[no-untyped-def]
    """A two-bed ward at the lead hospital with three patients waiting: a routine one first,
    then a referred one, then a referred contracted resident."""
    from caregrid.capacity import service as capacity
    from caregrid.core.actor import Actor

    system = Actor.system()
    pool = capacity.create_bed_pool(
        web.db, system, institution_id=city.lead_id, ward="心内一病区", beds=2
    )
    people = [
        make_resident(web.db, city, seq=i, name=name)
        for i, name in enumerate(("普通甲", "转诊乙", "签约丙"), start=1)
    ]
    for resident, (via, contracted) in zip(
        people, ((False, False), (True, False), (True, True)), strict=True
    ):
        capacity.request_admission(
            web.db,
            system,
            bed_pool_id=pool.id,
            resident_id=resident,
            via_referral=via,
            contracted=contracted,
        )
    web.db.commit()
    return pool.id, people


def test_capacity_calendar_shows_wards_and_admits_in_priority_order(web: Web, city) -> None:
    pool_id, _ = _ward_with_queue(web, city)
    specialist = web.sign_in("specialist_li")
    calendar = specialist.get("/capacity")
    assert calendar.status_code == 200, calendar.text
    html = calendar.text
    assert "心内一病区" in html
    queue = html[html.index("admission-queue") :]
    assert queue.index("签约丙") < queue.index("转诊乙") < queue.index("普通甲")
    admitted = specialist.post(
        f"/capacity/wards/{pool_id}/admit-next",
        data={"csrf_token": csrf_of(html)},
        headers={"HX-Request": "true"},
    )
    assert admitted.status_code == 200, admitted.text
    assert "已为 签约丙 办理入院（基层预留床位）" in admitted.text
    assert "<html" not in admitted.text  # the wards fragment only
    for _ in range(2):
        specialist.post(
            f"/capacity/wards/{pool_id}/admit-next",
            data={"csrf_token": csrf_of(html)},
            headers={"HX-Request": "true"},
        )
    full = specialist.post(
        f"/capacity/wards/{pool_id}/admit-next",
        data={"csrf_token": csrf_of(html)},
        follow_redirects=False,
    )
    assert full.status_code == 409 and "暂无可用床位" in full.text
    stay = re.search(r"/capacity/stays/(\d+)/discharge", full.text)
    assert stay is not None
    discharged = specialist.post(
        f"/capacity/stays/{stay.group(1)}/discharge",
        data={"csrf_token": csrf_of(html)},
        follow_redirects=False,
    )
    assert discharged.status_code == 303
    after = specialist.get("/capacity").text
    assert full.text.count('action="/capacity/stays/') == 2
    assert after.count('action="/capacity/stays/') == 1


def test_a_township_doctor_sees_bed_counts_but_not_the_queue_or_the_buttons(web: Web, city) -> None:
    pool_id, _ = _ward_with_queue(web, city)
    gp = web.sign_in("gp_wang")
    html = gp.get("/capacity").text
    assert "心内一病区" in html
    assert "签约丙" not in html and "admit-next" not in html
    refused = gp.post(
        f"/capacity/wards/{pool_id}/admit-next",
        data={"csrf_token": csrf_of(html)},
        headers={"HX-Request": "true"},
    )
    assert "仅本院医务人员或转诊协调员可以办理入院和出院" in refused.text
    outsider = switch(web, "outsider_zhao")
    assert "心内一病区" not in outsider.get("/capacity").text
