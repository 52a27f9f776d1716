"""The shared record on the resident page: the timeline, the trend charts' data, the htmx
filter fragment and the 检查检验互认查询 form, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy.orm import Session

from caregrid.core.clock import frozen_clock
from caregrid.registry.idnumber import mask_id_number
from tests.web.conftest import Web, csrf_of, make_resident, web  # noqa: F401  (fixture)

from .test_timeline import NOW, Record, build_record


@pytest.fixture
def record(db: Session, city: object) -> Record:
    built = build_record(db, city)
    db.commit()
    return built


def test_resident_page_shows_the_timeline_and_chart_data(web: Web, record: Record) -> None:  # noqa: F811
    html = web.sign_in("gp_wang").get(f"/residents/{record.resident_id}").text
    assert "健康档案时间线" in html
    assert "门诊：原发性高血压" in html and "冠状动脉支架置入术（4 级手术）" in html
    assert "山东第一医科大学附属省立医院" in html and "123.45 元" in html
    assert "氨氯地平片 5mg qd × 28 天" in html
    # Newest first: the prescription (5 days ago) is listed before the inpatient stay.
    assert html.index("处方：氨氯地平片") < html.index("冠心病")
    data = json.loads(re.search(r'id="vitals-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert [v for _, v in data["sbp"]] == [162, 150, 138]
    assert data["targets"] == {"sbp": 140.0, "dbp": 90.0, "fpg": 7.0, "hba1c": 7.0}
    assert 'data-record-chart="bp"' in html and "/static/js/record-charts.js" in html
    assert "检查检验互认查询" in html
    # The full ID number never appears, only the masked one.
    assert record.id_number not in html
    assert mask_id_number(record.id_number) in html


def test_empty_record_says_so(web: Web, city, db: Session) -> None:  # noqa: F811
    resident, number = make_resident(
        db, name="张建华", home_institution_id=city.township_id, grid_id=city.grid_id
    )
    html = web.sign_in("gp_wang").get(f"/residents/{resident.id}").text
    assert "尚无就诊、检查检验或处方记录" in html
    assert "尚无血压、血糖或糖化血红蛋白记录" in html
    assert number not in html


def test_timeline_filter_fragment(web: Web, city, record: Record) -> None:  # noqa: F811
    client = web.sign_in("gp_wang")
    fragment = client.get(
        f"/residents/{record.resident_id}/timeline",
        params={"type": "prescription"},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert 'id="timeline-list"' in fragment.text and "<html" not in fragment.text
    assert "处方：氨氯地平片" in fragment.text and "冠心病" not in fragment.text
    by_lead = client.get(
        f"/residents/{record.resident_id}/timeline",
        params={"institution_id": str(city.lead_id)},
        headers={"HX-Request": "true"},
    ).text
    assert "冠心病" in by_lead and "处方：氨氯地平片" not in by_lead
    plain = client.get(
        f"/residents/{record.resident_id}/timeline", params={"type": "result"},
        follow_redirects=False,
    )  # fmt: skip
    assert plain.status_code == 303 and "type=result" in plain.headers["location"]


def test_outsider_sees_no_record(web: Web, record: Record) -> None:  # noqa: F811
    client = web.sign_in("outsider_zhao")
    page = client.get(f"/residents/{record.resident_id}")
    assert page.status_code == 404 and "健康档案时间线" not in page.text
    fragment = client.get(
        f"/residents/{record.resident_id}/timeline", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 404 and "冠心病" not in fragment.text


def test_order_check_offers_the_recent_result_and_records_the_decision(
    web: Web,  # noqa: F811
    record: Record,
) -> None:
    with frozen_clock(NOW):
        client = web.sign_in("gp_wang")
        url = f"/residents/{record.resident_id}"
        token = csrf_of(client.get(url).text)
        answer = client.post(
            f"{url}/order-check",
            data={"item_codes": "CBC, CT", "csrf_token": token},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200
        html = answer.text
        assert "可互认结果：血常规，测试市人民医院，5 天前" in html
        assert "采用已有结果" in html and "仍需开单" in html
        assert "重大医疗措施前（如手术、输血）" in html and "其他（须说明）" in html
        assert "建议随访" not in html  # the CT report's conclusion is never offered
        refused = client.post(
            f"{url}/order-decisions",
            data={"item_code": "CBC", "result_id": record.cbc_recent, "decision": "ordered_anyway",
                  "reason_code": "other", "item_codes": "CBC", "csrf_token": token},
            headers={"HX-Request": "true"},
        )  # fmt: skip
        assert refused.status_code == 422 and "须说明具体情形" in refused.text
        used = client.post(
            f"{url}/order-decisions",
            data={"item_code": "CBC", "result_id": record.cbc_recent, "decision": "used_existing",
                  "item_codes": "CBC", "csrf_token": token},
            headers={"HX-Request": "true"},
        )  # fmt: skip
        assert used.status_code == 200 and "节省约 20.00 元" in used.text


def test_order_check_needs_the_form_token(web: Web, record: Record) -> None:  # noqa: F811
    client = web.sign_in("gp_wang")
    response = client.post(
        f"/residents/{record.resident_id}/order-check", data={"item_codes": "CBC"}
    )
    assert response.status_code == 403
