"""The scorecard service: the profile's criteria in their dimensions, evidence, assessment
history, documents, score, and who may do what (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from caregrid.core.errors import Forbidden, Invalid, NotFound
from caregrid.indicators import scorecard
from caregrid.indicators.service import build_report
from caregrid.indicators.store import AnalyticsStore
from caregrid.profiles.loader import load_profile
from tests.conftest import City


def _view(db: Session, city: City, user: str = "manager_zhou") -> scorecard.ScorecardView:
    profile = load_profile("zhongwei")
    store = AnalyticsStore()
    store.sync(db.connection())
    actor = city.users[user]
    report = build_report(db, actor, period="2025", profile=profile, store=store,
                          group_id=city.group_id)  # fmt: skip
    return scorecard.build_scorecard(db, actor, profile, report, group_id=city.group_id)


def test_zhongwei_scorecard_has_fifteen_criteria_in_four_dimensions(
    db: Session, city: City
) -> None:
    view = _view(db, city)
    assert list(view.dimensions) == ["责权协同", "资源协同", "业务协同", "机制协同"]
    assert len(view.criteria) == 15
    referral = next(c for c in view.criteria if c.criterion.title == "有序双向转诊")
    assert [s.indicator.slug for s in referral.evidence] == [
        "up_referrals", "down_referrals", "down_referral_rate", "closed_loop_rate"]  # fmt: skip
    assert view.score == Decimal("0.00")


def test_assessments_keep_history_and_score_counts_the_latest(db: Session, city: City) -> None:
    profile = load_profile("zhongwei")
    manager = city.users["manager_zhou"]
    scorecard.assess(db, manager, profile, group_id=None, period="2025", number=12,
                     level="partly", note="制度已建立，闭环率待提升")  # fmt: skip
    scorecard.assess(db, manager, profile, group_id=None, period="2025", number=12,
                     level="met", note="闭环率已达 95%")  # fmt: skip
    scorecard.assess(db, manager, profile, group_id=None, period="2025", number=1,
                     level="partly", note="网格已划定，尚待公布")  # fmt: skip
    scorecard.upload_document(db, manager, profile, group_id=None, number=12,
                              filename="C:\\文件\\转诊制度.pdf", content_type="application/pdf",
                              content=b"%PDF-1.4 x")  # fmt: skip
    view = _view(db, city)
    c12 = next(c for c in view.criteria if c.criterion.number == 12)
    assert [h.level for h in c12.history] == ["met", "partly"]
    assert c12.current is not None and c12.current.level == "met"
    assert [d.filename for d in c12.documents] == ["转诊制度.pdf"]
    # (1 + 0.5) / 15 x 100 = 10.00
    assert view.score == Decimal("10.00")
    assert view.assessed == 2


def test_who_may_assess_and_bad_input(db: Session, city: City) -> None:
    profile = load_profile("zhongwei")
    with pytest.raises(Forbidden):
        scorecard.assess(db, city.users["viewer_wu"], profile, group_id=city.group_id,
                         period="2025", number=1, level="met", note="卫健委不能自评")  # fmt: skip
    with pytest.raises(Forbidden):
        _view(db, city, "gp_wang")
    with pytest.raises(NotFound):
        scorecard.assess(db, city.users["manager_zhou"], profile, group_id=city.other_group_id,
                         period="2025", number=1, level="met", note="别的集团")  # fmt: skip
    with pytest.raises(NotFound):
        scorecard.assess(db, city.users["manager_zhou"], profile, group_id=None,
                         period="2025", number=16, level="met", note="中卫只有 15 条")  # fmt: skip
    with pytest.raises(Invalid):
        scorecard.upload_document(db, city.users["manager_zhou"], profile, group_id=None,
                                  number=1, filename="x.exe", content_type="application/x-dosexec",
                                  content=b"MZ")  # fmt: skip
    viewer_view = _view(db, city, "viewer_wu")
    assert viewer_view.group_id == city.group_id
