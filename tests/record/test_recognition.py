"""Mutual recognition of results (国卫医发〔2022〕6号; 003 §二(四)11
"推进医共体内检验检查结果互认"): the per-item rules, the order check, the doctor's decision and
the counts, through the service on SQLite and PostgreSQL and through the API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caregrid.audit.models import AuditEntry
from caregrid.core.clock import frozen_clock
from caregrid.core.errors import Forbidden, Invalid, NotFound
from caregrid.record import recognition
from caregrid.record.models import REEXAM_REASONS, RecognitionRule
from caregrid.record.recognition import (
    check_orders,
    install_default_rules,
    recognition_counts,
    record_decision,
    set_rule,
)
from tests.conftest import login

from .test_timeline import NOW, Record, build_record


@pytest.fixture
def record(db: Session, city: object) -> Record:
    built = build_record(db, city)
    db.commit()
    return built


def _by_code(checks: list) -> dict:  # type: ignore[type-arg]
    return {c.item_code: c for c in checks}


def test_default_rules_install_once(db: Session) -> None:
    first = install_default_rules(db)
    assert first >= 12
    assert install_default_rules(db) == 0
    rows = db.scalars(select(RecognitionRule).where(RecognitionRule.group_id.is_(None))).all()
    cbc = next(r for r in rows if r.item_code == "CBC")
    assert (cbc.validity_days, cbc.requires_eqa) == (7, True)
    assert cbc.note and "8–12" in cbc.note and "暂定" in cbc.note
    assert all(r.source and "国卫医发〔2022〕6号" in r.source for r in rows)


@pytest.mark.parametrize(
    ("code", "days"),
    [("CBC", 7), ("UA", 3), ("LFT", 30), ("RFT", 30), ("LIPID", 30), ("FPG", 7),
     ("HBA1C", 90), ("CXR", 90), ("CT", 180), ("MRI", 180), ("ECG", 30), ("US", 90)],
)  # fmt: skip
def test_provisional_validity_by_item(code: str, days: int) -> None:
    rules = {r.item_code: r for r in recognition.default_rule_file()}
    assert rules[code].validity_days == days


def test_recent_cbc_from_the_other_member_is_offered(db: Session, city, record: Record) -> None:
    checks = _by_code(check_orders(db, city.users["gp_wang"], record.resident_id, ["CBC"], now=NOW))
    cbc = checks["CBC"]
    # The newest CBC (1 day ago) is from another group and the 20-day-old one has expired:
    # the 5-day-old result of the lead hospital is the one offered.
    assert cbc.recognizable and cbc.status == "recognizable"
    assert cbc.result_id == record.cbc_recent
    assert cbc.institution_name == "测试市人民医院" and cbc.days_ago == 5
    assert cbc.message == "可互认结果：血常规，测试市人民医院，5 天前"
    assert cbc.typical_cost_fen == 2000


def test_expired_cbc_is_not_offered(db: Session, city, record: Record) -> None:
    later = NOW.replace(day=25)  # the lead hospital's CBC is now 15 days old
    cbc = check_orders(db, city.users["gp_wang"], record.resident_id, ["CBC"], now=later)[0]
    assert not cbc.recognizable and cbc.status == "expired"
    assert cbc.value_text is None


def test_result_without_eqa_pass_is_not_offered_when_required(
    db: Session, city, record: Record
) -> None:
    # The newest fasting glucose (LOINC 1558-6) comes from a lab with no EQA pass on record.
    fpg = check_orders(db, city.users["gp_wang"], record.resident_id, ["FPG"], now=NOW)[0]
    assert fpg.status == "eqa_not_passed" and not fpg.recognizable
    assert fpg.result_id == record.fpg_no_eqa


def test_the_physicians_conclusion_is_never_offered(db: Session, city, record: Record) -> None:
    checks = check_orders(db, city.users["gp_wang"], record.resident_id, ["CT", "HBA1C"], now=NOW)
    ct, hba1c = _by_code(checks)["CT"], _by_code(checks)["HBA1C"]
    assert ct.recognizable and ct.findings
    assert "conclusion" not in ct.model_dump()
    assert "建议随访" not in ct.model_dump_json()
    assert hba1c.recognizable and (hba1c.value_num, hba1c.unit) == (7.4, "%")


def test_items_with_no_result_or_no_rule(db: Session, city, record: Record) -> None:
    checks = _by_code(
        check_orders(db, city.users["gp_wang"], record.resident_id, ["MRI", "ZZZ"], now=NOW)
    )
    assert checks["MRI"].status == "no_result" and not checks["MRI"].recognizable
    assert not checks["ZZZ"].recognizable


def test_order_check_is_audited_and_refused_to_outsiders(db: Session, city, record: Record) -> None:
    check_orders(db, city.users["specialist_li"], record.resident_id, ["CBC"], now=NOW)
    with pytest.raises(NotFound):
        check_orders(db, city.users["outsider_zhao"], record.resident_id, ["CBC"], now=NOW)
    outcomes = db.scalars(
        select(AuditEntry.outcome).where(
            AuditEntry.resident_id == record.resident_id, AuditEntry.resource == "OrderCheck"
        )
    ).all()
    assert sorted(outcomes) == ["allowed", "denied"]


def test_a_group_rule_overrides_the_default(db: Session, city, record: Record) -> None:
    manager = city.users["manager_zhou"]
    rule = set_rule(db, manager, None, "CBC", validity_days=30)
    assert rule.scope == "group" and rule.validity_days == 30 and rule.requires_eqa
    later = NOW.replace(day=25)
    cbc = check_orders(db, city.users["gp_wang"], record.resident_id, ["CBC"], now=later)[0]
    assert cbc.recognizable and cbc.result_id == record.cbc_recent
    # Another group still uses the default.
    with pytest.raises(Forbidden):
        set_rule(db, manager, city.other_group_id, "CBC", validity_days=30)
    with pytest.raises(Forbidden):
        set_rule(db, city.users["gp_wang"], None, "CBC", validity_days=30)
    with pytest.raises(Invalid) as exc:
        set_rule(db, manager, None, "CBC", validity_days=-1)
    assert exc.value.fields["field"] == "validity_days"


def test_using_an_existing_result_counts_the_avoided_cost(
    db: Session, city, record: Record
) -> None:
    gp = city.users["gp_wang"]
    row = record_decision(
        db, gp, record.resident_id, "CBC", record.cbc_recent, "used_existing", now=NOW
    )
    assert row.avoided_cost_fen == 2000 and row.reason_code is None
    assert row.group_id == city.group_id and row.institution_id == city.township_id
    record_decision(
        db, gp, record.resident_id, "CT", record.ct, "ordered_anyway", "before_major_procedure",
        now=NOW,
    )  # fmt: skip
    stats = recognition_counts(db, group_id=city.group_id)
    # decided without the order check having shown anything: no offers
    assert (stats.offered, stats.used, stats.overridden) == (0, 1, 1)
    assert stats.avoided_cost_fen == 2000
    assert stats.by_reason["before_major_procedure"] == 1
    assert recognition_counts(db, group_id=city.other_group_id).offered == 0


def test_every_offer_counts_once_a_day_and_offers_nobody_acted_on_show(
    db: Session, city, record: Record
) -> None:
    gp, li = city.users["gp_wang"], city.users["specialist_li"]
    shown = check_orders(db, gp, record.resident_id, ["CBC", "CT"], now=NOW)
    recognizable = [c for c in shown if c.recognizable]
    assert {c.item_code for c in recognizable} == {"CBC", "CT"}
    # the same doctor checking again the same day is the same offer; another doctor's is not
    check_orders(db, gp, record.resident_id, ["CBC", "CT"], now=NOW.replace(hour=NOW.hour + 1))
    check_orders(db, li, record.resident_id, ["CBC"], now=NOW)
    stats = recognition_counts(db, group_id=city.group_id)
    assert (stats.offered, stats.undecided) == (3, 3)

    record_decision(db, gp, record.resident_id, "CBC", record.cbc_recent, "used_existing", now=NOW)
    stats = recognition_counts(db, group_id=city.group_id)
    assert (stats.offered, stats.undecided, stats.used) == (3, 2, 1)
    # a new day, a new offer
    check_orders(db, gp, record.resident_id, ["CBC"], now=NOW.replace(day=NOW.day + 1))
    assert recognition_counts(db, group_id=city.group_id).offered == 4
    assert recognition_counts(db, group_id=city.other_group_id).offered == 0


def test_ordering_anyway_needs_a_national_reason(db: Session, city, record: Record) -> None:
    gp = city.users["gp_wang"]
    with pytest.raises(Invalid) as exc:
        record_decision(db, gp, record.resident_id, "CBC", record.cbc_recent, "ordered_anyway")
    assert exc.value.fields["field"] == "reason_code"
    with pytest.raises(Invalid) as exc:
        record_decision(
            db, gp, record.resident_id, "CBC", record.cbc_recent, "ordered_anyway", "whim"
        )
    assert [a["code"] for a in exc.value.fields["allowed"]] == list(REEXAM_REASONS)
    with pytest.raises(Invalid) as exc:
        record_decision(
            db, gp, record.resident_id, "CBC", record.cbc_recent, "ordered_anyway", "other"
        )
    assert exc.value.fields["field"] == "reason_text"
    row = record_decision(
        db, gp, record.resident_id, "CBC", record.cbc_recent, "ordered_anyway", "other",
        "患者要求复查",
    )  # fmt: skip
    assert row.reason_text == "患者要求复查" and row.avoided_cost_fen == 0


def test_an_expired_or_foreign_result_cannot_be_used(db: Session, city, record: Record) -> None:
    gp = city.users["gp_wang"]
    with pytest.raises(Invalid) as exc:
        record_decision(
            db, gp, record.resident_id, "CBC", record.cbc_expired, "used_existing", now=NOW
        )
    assert exc.value.fields["field"] == "result_id"
    with pytest.raises(NotFound):
        record_decision(
            db, gp, record.resident_id, "CBC", record.cbc_other_group, "used_existing", now=NOW
        )
    with pytest.raises(NotFound):
        record_decision(
            db, city.users["outsider_zhao"], record.resident_id, "CBC", record.cbc_recent,
            "used_existing", now=NOW,
        )  # fmt: skip
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.resource == "OrderDecision", AuditEntry.outcome == "denied")) == 1  # fmt: skip


# --- API ----------------------------------------------------------------------------------


@pytest.fixture
def api(client):  # type: ignore[no-untyped-def]
    """The API client (the record routes are part of the app)."""
    return client


def test_api_timeline_and_vitals(api, city, record: Record) -> None:
    headers = login(api, "gp_wang")
    url = f"/api/v1/residents/{record.resident_id}"
    body = api.get(f"{url}/timeline", headers=headers, params={"size": 5}).json()
    assert body["total"] == 17 and len(body["items"]) == 5 and body["page"] == 1
    only = api.get(
        f"{url}/timeline", headers=headers, params=[("type", "encounter"), ("type", "prescription")]
    ).json()
    assert {i["type"] for i in only["items"]} == {"encounter", "prescription"}
    bad = api.get(f"{url}/timeline", headers=headers, params={"type": "visit"})
    assert bad.status_code == 422 and bad.json()["field"].startswith("type")
    vitals = api.get(f"{url}/vitals", headers=headers).json()
    assert [p["value"] for p in vitals["sbp"]] == [162, 150, 138]
    outsider = login(api, "outsider_zhao")
    assert api.get(f"{url}/timeline", headers=outsider).status_code == 404
    assert api.get(f"{url}/vitals", headers=outsider).status_code == 404


def test_api_order_check_and_decisions(api, city, record: Record) -> None:
    with frozen_clock(NOW):
        _order_check_and_decisions(api, record)


def _order_check_and_decisions(api, record: Record) -> None:  # type: ignore[no-untyped-def]
    headers = login(api, "gp_wang")
    url = f"/api/v1/residents/{record.resident_id}"
    checks = api.post(f"{url}/order-check", headers=headers, json={"item_codes": ["CT"]})
    assert checks.status_code == 200
    assert checks.json()[0]["recognizable"] and "conclusion" not in checks.json()[0]
    empty = api.post(f"{url}/order-check", headers=headers, json={"item_codes": []})
    assert empty.status_code == 422 and empty.json()["field"] == "item_codes"
    wrong = api.post(
        f"{url}/order-decisions",
        headers=headers,
        json={"item_code": "CT", "result_id": record.ct, "decision": "ordered_anyway",
              "reason_code": "whim"},
    )  # fmt: skip
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "reason_code"
    assert "condition_changed" in [a["code"] for a in wrong.json()["allowed"]]
    made = api.post(
        f"{url}/order-decisions",
        headers=headers,
        json={"item_code": "CT", "result_id": record.ct, "decision": "used_existing"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["avoided_cost_fen"] == 25000
    stats = api.get("/api/v1/recognition/stats", headers=headers).json()
    assert stats["used"] == 1 and stats["avoided_cost_fen"] == 25000
    outsider = login(api, "outsider_zhao")
    assert (
        api.post(f"{url}/order-check", headers=outsider, json={"item_codes": ["CT"]}).status_code
        == 404
    )


def test_api_rules(api, city) -> None:
    headers = login(api, "gp_wang")
    rules = api.get("/api/v1/recognition/rules", headers=headers).json()
    assert {r["item_code"] for r in rules} >= {"CBC", "UA", "CT", "MRI", "ECG", "US"}
    refused = api.put("/api/v1/recognition/rules/CBC", headers=headers, json={"validity_days": 14})
    assert refused.status_code == 403
    manager = login(api, "manager_zhou")
    done = api.put("/api/v1/recognition/rules/CBC", headers=manager, json={"validity_days": 14})
    assert done.status_code == 200 and done.json()["scope"] == "group"
    bad = api.put("/api/v1/recognition/rules/CBC", headers=manager, json={"validity_days": -3})
    assert bad.status_code == 422 and bad.json()["field"] == "validity_days"
    after = {
        r["item_code"]: r for r in api.get("/api/v1/recognition/rules", headers=headers).json()
    }
    assert after["CBC"]["validity_days"] == 14
