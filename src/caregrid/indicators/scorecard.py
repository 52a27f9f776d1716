"""The 评判标准 scorecard: the active profile's criteria (Linyi 001 附件3: 16, Zhongwei 002
附件2: 15, stored verbatim in the profile) in their four dimensions, each with the evidence
caregrid holds: the indicators that measure it (data-backed) and the documents the group
uploaded, plus the group's self-assessment.

Scoring (the seeds give criteria but no points, so this is caregrid's documented choice):
each criterion is assessed 达到 (met, 1 point), 基本达到 (partly, 0.5) or 未达到 (not met, 0);
a criterion never assessed counts 0. The score is the points over the number of criteria, as
a percentage. Assessments are append-only: each save is a new row, the latest one counts, the
others are the history. Where a criterion has evidencing indicators with targets, a data
suggestion is shown: 达到 when all of them are met, 未达到 when any is missed, else 基本达到.

Who: group managers assess and upload for their own group; administrators for any group;
commission viewers read any group; nobody else sees the scorecard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.errors import Forbidden, Invalid, NotFound
from caregrid.indicators.models import LEVELS, ScorecardAssessment, ScorecardDocument
from caregrid.indicators.registry import BY_SLUG
from caregrid.indicators.service import Report, Summary
from caregrid.profiles.schemas import PolicyProfile, ScorecardCriterion
from caregrid.registry.models import Group

LEVEL_LABELS = {"met": "达到", "partly": "基本达到", "not_met": "未达到"}
LEVEL_POINTS = {"met": Decimal(1), "partly": Decimal("0.5"), "not_met": Decimal(0)}
WRITE_ROLES = frozenset({"admin", "group_manager"})
READ_ROLES = WRITE_ROLES | {"commission_viewer"}
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "text/plain": ".txt",
}

# Which indicators evidence a criterion, by the criterion's lead phrase (the same phrases in
# 001 附件3 and 002 附件2). Criteria not listed are evidenced by documents only.
EVIDENCE: dict[str, tuple[str, ...]] = {
    "紧密型城市医疗集团落实责任共同体": (
        "county_visit_share",
        "city_visit_share",
        "maternal_mortality",
        "infant_mortality",
        "under5_mortality",
    ),
    "运营管理一体化": ("out_of_catalogue_share",),
    "财务一体化管理": ("out_of_catalogue_share",),
    "信息互联互通": ("recognition_used", "recognition_rate"),
    "优质医疗资源下沉": (
        "reserved_slot_share",
        "reserved_slot_use",
        "reserved_bed_share",
        "reserved_bed_use",
        "primary_visit_share",
    ),
    "医疗资源共享": ("recognition_used", "recognition_rate", "recognition_avoided_cost"),
    "医疗服务一体化管理": (
        "lead_cmi",
        "average_length_of_stay",
        "grade4_surgery_share",
        "surgery_share",
        "outpatient_discharge_ratio",
    ),
    # 001 附件3 11 / 002 附件2: family-doctor teams serving contracted residents
    "全科专科有效联动": (
        "primary_visit_share",
        "primary_tcm_share",
        "key_population_contract_coverage",
        "contract_fulfilment",
    ),
    "有序双向转诊": ("up_referrals", "down_referrals", "down_referral_rate", "closed_loop_rate"),
    "医防有机协同": (
        "hypertension_standard_management",
        "diabetes_standard_management",
        "hypertension_control",
        "diabetes_control",
        "premature_chronic_mortality",
    ),
}


def evidence_slugs(criterion: ScorecardCriterion) -> tuple[str, ...]:
    slugs = EVIDENCE.get(criterion.title, ())
    return tuple(s for s in slugs if s in BY_SLUG)


def suggest(summaries: list[Summary]) -> str | None:
    """The level the data suggests (see the module docstring), None without targets."""
    statuses = [s.status for s in summaries if s.target is not None and s.status is not None]
    if not statuses:
        return None
    if all(status == "met" for status in statuses):
        return "met"
    if any(status == "missed" for status in statuses):
        return "not_met"
    return "partly"


def scorecard_group(session: Session, actor: Actor, group_id: int | None, *, write: bool) -> int:
    roles = WRITE_ROLES if write else READ_ROLES
    if actor.role not in roles:
        raise Forbidden(
            "仅集团管理者和管理员可以自评"
            if write
            else "仅集团管理者、卫健委/管委会和管理员可查看评判标准"
        )
    if actor.role == "group_manager":
        if actor.group_id is None:
            raise Forbidden("账户未关联医疗集团")
        if group_id is not None and group_id != actor.group_id:
            raise NotFound("没有这个医疗集团", group_id=group_id)
        return actor.group_id
    if group_id is None:
        first = session.scalar(select(Group.id).order_by(Group.id))
        if first is None:
            raise NotFound("还没有医疗集团")
        return first
    if session.get(Group, group_id) is None:
        raise NotFound("没有这个医疗集团", group_id=group_id)
    return group_id


@dataclass
class CriterionView:
    criterion: ScorecardCriterion
    evidence: list[Summary]
    suggestion: str | None
    current: ScorecardAssessment | None
    history: list[ScorecardAssessment]
    documents: list[ScorecardDocument]

    @property
    def points(self) -> Decimal:
        return LEVEL_POINTS[self.current.level] if self.current else Decimal(0)


@dataclass
class ScorecardView:
    profile_id: str
    source: str
    group_id: int
    group_name: str
    period: str
    dimensions: dict[str, list[CriterionView]] = field(default_factory=dict)

    @property
    def criteria(self) -> list[CriterionView]:
        return [c for views in self.dimensions.values() for c in views]

    @property
    def score(self) -> Decimal:
        """Points over the number of criteria, in percent, two decimals (ROUND_HALF_EVEN)."""
        items = self.criteria
        if not items:
            return Decimal(0)
        total = sum((c.points for c in items), Decimal(0))
        return (total / len(items) * 100).quantize(Decimal("0.01"))

    @property
    def assessed(self) -> int:
        return sum(1 for c in self.criteria if c.current is not None)


def build_scorecard(
    session: Session,
    actor: Actor,
    profile: PolicyProfile,
    report: Report,
    *,
    group_id: int | None = None,
) -> ScorecardView:
    """The scorecard of a group for the report's period, with evidence from `report` (built
    by the caller for the same group and period)."""
    gid = scorecard_group(session, actor, group_id, write=False)
    group = session.get(Group, gid)
    assert group is not None
    rows = session.scalars(
        select(ScorecardAssessment)
        .where(
            ScorecardAssessment.group_id == gid,
            ScorecardAssessment.profile_id == profile.id,
            ScorecardAssessment.period == report.period.label,
        )
        .order_by(ScorecardAssessment.assessed_at.desc(), ScorecardAssessment.id.desc())
    ).all()
    docs = session.scalars(
        select(ScorecardDocument)
        .where(ScorecardDocument.group_id == gid, ScorecardDocument.profile_id == profile.id)
        .order_by(ScorecardDocument.uploaded_at.desc(), ScorecardDocument.id.desc())
    ).all()
    by_slug = {s.indicator.slug: s for s in report.summaries}
    view = ScorecardView(
        profile_id=profile.id,
        source=profile.scorecard.source,
        group_id=gid,
        group_name=group.name,
        period=report.period.label,
    )
    for dimension, criteria in profile.scorecard.dimensions().items():
        items = []
        for criterion in criteria:
            evidence = [by_slug[s] for s in evidence_slugs(criterion) if s in by_slug]
            history = [r for r in rows if r.criterion_number == criterion.number]
            items.append(
                CriterionView(
                    criterion=criterion,
                    evidence=evidence,
                    suggestion=suggest(evidence),
                    current=history[0] if history else None,
                    history=history,
                    documents=[d for d in docs if d.criterion_number == criterion.number],
                )
            )
        view.dimensions[dimension] = items
    return view


def _criterion(profile: PolicyProfile, number: int) -> ScorecardCriterion:
    for criterion in profile.scorecard.criteria:
        if criterion.number == number:
            return criterion
    raise NotFound("没有这条评判标准", criterion=number)


def assess(
    session: Session,
    actor: Actor,
    profile: PolicyProfile,
    *,
    group_id: int | None,
    period: str,
    number: int,
    level: str,
    note: str,
) -> ScorecardAssessment:
    """Record the group's self-assessment of one criterion (a new row: history is kept)."""
    gid = scorecard_group(session, actor, group_id, write=True)
    _criterion(profile, number)
    if level not in LEVELS:
        raise Invalid("自评结果只能是 达到、基本达到 或 未达到", field="level", value=level)
    text = (note or "").strip()
    if len(text) < 4:
        raise Invalid("请填写自评说明（至少 4 个字）", field="note")
    row = ScorecardAssessment(
        group_id=gid,
        profile_id=profile.id,
        period=period,
        criterion_number=number,
        level=level,
        note=text[:4000],
        user_id=actor.user_id,
        username=actor.username,
        assessed_at=now(),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor,
        action="scorecard.assess",
        resource=f"scorecard/{profile.id}/{number}",
        detail={"group_id": gid, "period": period, "level": level},
    )
    return row


def upload_document(
    session: Session,
    actor: Actor,
    profile: PolicyProfile,
    *,
    group_id: int | None,
    number: int,
    filename: str,
    content_type: str,
    content: bytes,
) -> ScorecardDocument:
    """Keep a document as evidence for one criterion (PDF, Word, Excel, image or text; at most
    10 MB)."""
    gid = scorecard_group(session, actor, group_id, write=True)
    _criterion(profile, number)
    name = (filename or "").strip().replace("\\", "/").rsplit("/", 1)[-1][:200]
    if not name:
        raise Invalid("请选择要上传的文件", field="file")
    if content_type not in DOCUMENT_TYPES:
        raise Invalid("只接受 PDF、Word、Excel、PNG、JPEG 或文本文件", field="file")
    if not content:
        raise Invalid("文件为空", field="file")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise Invalid("文件不能超过 10 MB", field="file")
    row = ScorecardDocument(
        group_id=gid,
        profile_id=profile.id,
        criterion_number=number,
        filename=name,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        user_id=actor.user_id,
        username=actor.username,
        uploaded_at=now(),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor,
        action="scorecard.upload",
        resource=f"scorecard/{profile.id}/{number}",
        detail={"group_id": gid, "filename": name, "sha256": row.sha256},
    )
    return row


def get_document(session: Session, actor: Actor, document_id: int) -> ScorecardDocument:
    document = session.get(ScorecardDocument, document_id)
    if document is None:
        raise NotFound("没有这个文件", document_id=document_id)
    try:
        scorecard_group(session, actor, document.group_id, write=False)
    except NotFound:
        raise NotFound("没有这个文件", document_id=document_id) from None
    return document
