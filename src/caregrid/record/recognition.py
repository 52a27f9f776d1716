"""Mutual recognition of results (检查检验结果互认) within the group.

Sources:
- 国卫医发〔2022〕6号《医疗机构检查检验结果互认管理办法》第二条: 检查结果 = 图像或数据信息;
  检验结果 = 数据信息; "检查检验结果不包括医师出具的诊断结论" — so only result data is
  ever offered, never the physician's conclusion. The same text and the NHC's explanation
  list six situations in which a re-examination is justified (`REEXAM_REASONS`); every
  override records one.
- 001 §三(三)2 "2024年底实现紧密型城市医疗集团内部检查检验结果在线调阅、互认共享"; 003 §二(四)11
  "推进医共体内检验检查结果互认"; the 2024 guidance: all items recognised within tight-knit
  groups by the end of 2025.
- Provincial practice (reference/standards.md §2.1): results from a lab that failed external
  quality assessment (室间质评) are excluded; time limits are item-level and set locally.

Rules are per item (`RecognitionRule`): the defaults (group_id NULL) come from
`data/recognition_rules.toml`, all provisional since the national text fixes no validity; a
group overrides any item with its own row. An item with no rule at all falls back to the active
profile's `mutual_recognition.validity_days`, with an EQA pass required."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.core.actor import Actor
from caregrid.core.clock import SHANGHAI
from caregrid.core.clock import now as clock_now
from caregrid.core.db import insert_ignoring_duplicates
from caregrid.core.errors import DomainError, Forbidden, Invalid, NotFound
from caregrid.identity.access import require_resident_access
from caregrid.record.models import (
    REEXAM_REASONS,
    OrderDecision,
    RecognitionOffer,
    RecognitionRule,
    Result,
)
from caregrid.record.schemas import (
    REEXAM_REASON_LABELS,
    OrderCheck,
    RecognitionStats,
    RuleRead,
    RuleUpdate,
)
from caregrid.record.timeline import as_aware
from caregrid.registry import service as registry

RULE_EDIT_ROLES = frozenset({"admin", "group_manager"})
ALL_GROUPS_ROLES = frozenset({"admin", "commission_viewer", "system"})
DECISIONS = ("used_existing", "ordered_anyway")
RULE_FIELDS = (
    "item_name",
    "category",
    "recognizable",
    "validity_days",
    "requires_eqa",
    "typical_cost_fen",
    "note",
)


class UnknownReason(Invalid):
    """A re-examination reason outside the national list (422, lists the allowed ones)."""


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    item_code: str
    item_name: str
    category: str
    recognizable: bool
    validity_days: int
    requires_eqa: bool
    typical_cost_fen: int
    note: str | None
    source: str | None
    aliases: tuple[str, ...] = field(default=())
    scope: str = "default"
    group_id: int | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """The item's own code and the other codes members' systems send for it."""
        return (self.item_code, *self.aliases)

    def read(self) -> RuleRead:
        return RuleRead(
            item_code=self.item_code,
            item_name=self.item_name,
            category=self.category,
            recognizable=self.recognizable,
            validity_days=self.validity_days,
            requires_eqa=self.requires_eqa,
            typical_cost_fen=self.typical_cost_fen,
            note=self.note,
            source=self.source,
            aliases=list(self.aliases),
            scope="group" if self.scope == "group" else "default",
            group_id=self.group_id,
        )


@cache
def default_rule_file() -> tuple[Rule, ...]:
    """The shipped defaults (`data/recognition_rules.toml`)."""
    text = (
        resources.files("caregrid.record")
        .joinpath("data/recognition_rules.toml")
        .read_text(encoding="utf-8")
    )
    rows: list[dict[str, Any]] = tomllib.loads(text)["rule"]
    return tuple(
        Rule(
            item_code=r["item_code"],
            item_name=r["item_name"],
            category=r["category"],
            recognizable=bool(r["recognizable"]),
            validity_days=int(r["validity_days"]),
            requires_eqa=bool(r["requires_eqa"]),
            typical_cost_fen=int(r["typical_cost_fen"]),
            note=r.get("note"),
            source=r.get("source"),
            aliases=tuple(r.get("aliases", ())),
        )
        for r in rows
    )


def _aliases() -> dict[str, str]:
    """Any known code (own or alias) -> the rule's item code."""
    table: dict[str, str] = {}
    for rule in default_rule_file():
        for code in rule.codes:
            table[code.upper()] = rule.item_code
    return table


def canonical_code(code: str) -> str:
    return _aliases().get(code.strip().upper(), code.strip())


def install_default_rules(session: Session) -> int:
    """Store the shipped default rules (group_id NULL): missing items are added, existing
    default rows are brought back to the file's values; group rows are never touched.
    Idempotent; returns the number of rows added or changed."""
    existing = {
        r.item_code: r
        for r in session.scalars(
            select(RecognitionRule).where(RecognitionRule.group_id.is_(None))
        ).all()
    }
    changed = 0
    for rule in default_rule_file():
        values = {
            "item_name": rule.item_name,
            "category": rule.category,
            "recognizable": rule.recognizable,
            "validity_days": rule.validity_days,
            "requires_eqa": rule.requires_eqa,
            "typical_cost_fen": rule.typical_cost_fen,
            "note": rule.note,
            "source": rule.source,
        }
        row = existing.get(rule.item_code)
        if row is None:
            session.add(RecognitionRule(group_id=None, item_code=rule.item_code, **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed += 1
    session.flush()
    return changed


def _from_row(row: RecognitionRule, aliases: tuple[str, ...]) -> Rule:
    return Rule(
        item_code=row.item_code,
        item_name=row.item_name,
        category=row.category,
        recognizable=row.recognizable,
        validity_days=row.validity_days,
        requires_eqa=row.requires_eqa,
        typical_cost_fen=row.typical_cost_fen,
        note=row.note,
        source=row.source,
        aliases=aliases,
        scope="group" if row.group_id is not None else "default",
        group_id=row.group_id,
    )


def effective_rules(session: Session, group_id: int | None) -> dict[str, Rule]:
    """The rules in force for a group: the shipped file, overridden by stored defaults,
    overridden by the group's own rows. Keyed by item code."""
    rules = {r.item_code: r for r in default_rule_file()}
    stmt = select(RecognitionRule).where(
        or_(RecognitionRule.group_id.is_(None), RecognitionRule.group_id == group_id)
        if group_id is not None
        else RecognitionRule.group_id.is_(None)
    )
    # Defaults first, so the group's rows win.
    for row in sorted(session.scalars(stmt).all(), key=lambda r: r.group_id is not None):
        base = rules.get(row.item_code)
        rules[row.item_code] = _from_row(row, base.aliases if base else ())
    return rules


def list_rules(session: Session, actor: Actor, group_id: int | None = None) -> list[RuleRead]:
    """The rules in force for `group_id` (default: the caller's group)."""
    gid = group_id if group_id is not None else actor.group_id
    if gid is not None:
        registry.get_group(session, gid)
    return [r.read() for r in sorted(effective_rules(session, gid).values(), key=_rule_order)]


def _rule_order(rule: Rule) -> tuple[int, str]:
    order = ("lab", "imaging", "ecg", "ultrasound", "pathology")
    return (order.index(rule.category) if rule.category in order else 9, rule.item_code)


def set_rule(
    session: Session,
    actor: Actor,
    group_id: int | None,
    item_code: str,
    data: RuleUpdate | None = None,
    **changes: Any,
) -> RuleRead:
    """A group's own rule for one item (administrators and group managers only; a manager edits
    only their own group). Fields not given keep the value of the rule currently in force.
    The national text leaves validity to local practice (国卫医发〔2022〕6号; standards §2.1)."""
    if actor.role not in RULE_EDIT_ROLES and actor.role != "system":
        raise Forbidden("仅系统管理员或集团管理者可以调整互认规则")
    gid = group_id if group_id is not None else actor.group_id
    if gid is None:
        raise Invalid("须指定医疗集团", field="group_id")
    if actor.role == "group_manager" and gid != actor.group_id:
        raise Forbidden("集团管理者只能调整本集团的互认规则")
    registry.get_group(session, gid)
    code = canonical_code(item_code)
    if not code or len(code) > 40:
        raise Invalid("项目代码不能为空，且不超过 40 个字符", field="item_code")
    values = {**(data.model_dump(exclude_unset=True) if data else {}), **changes}
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise Invalid(f"未知字段：{'、'.join(sorted(unknown))}", field=sorted(unknown)[0])
    current = effective_rules(session, gid).get(code)
    if current is None:
        missing = [k for k in ("item_name", "category", "validity_days") if values.get(k) is None]
        if missing:
            raise Invalid(f"新增项目须填写 {missing[0]}", field=missing[0])
    days = values.get("validity_days")
    if days is not None and not 0 <= int(days) <= 3650:
        raise Invalid("有效期须在 0 到 3650 天之间", field="validity_days")
    if values.get("typical_cost_fen") is not None and int(values["typical_cost_fen"]) < 0:
        raise Invalid("费用不能为负数", field="typical_cost_fen")
    row = session.scalar(
        select(RecognitionRule).where(
            RecognitionRule.group_id == gid, RecognitionRule.item_code == code
        )
    )
    if row is None:
        base: dict[str, Any] = {}
        if current is not None:
            base = {k: getattr(current, k) for k in RULE_FIELDS}
        row = RecognitionRule(group_id=gid, item_code=code, source="集团自定", **base)
        session.add(row)
    for key, value in values.items():
        if value is not None or key == "note":
            setattr(row, key, value)
    session.flush()
    audit.append(
        session,
        actor,
        action="update",
        resource="RecognitionRule",
        detail={"group_id": gid, "item_code": code, "changes": values},
    )
    aliases = current.aliases if current else ()
    return _from_row(row, aliases).read()


def _fallback_rule(session: Session, code: str) -> Rule | None:
    """For an item with no rule: the profile's default validity, EQA pass required."""
    from caregrid.profiles import service as profile_service

    try:
        days = profile_service.active_profile(session).value("mutual_recognition.validity_days")
    except DomainError:
        return None
    if not isinstance(days, int) or days <= 0:
        return None
    return Rule(
        item_code=code,
        item_name=code,
        category="lab",
        recognizable=True,
        validity_days=days,
        requires_eqa=True,
        typical_cost_fen=0,
        note="该项目无单独规则，按政策方案默认互认时效，且须室间质评合格",
        source="政策方案 mutual_recognition.validity_days",
        scope="profile",
    )


# --- checking orders -------------------------------------------------------------------------


def _days_ago(at: datetime, when: datetime) -> int:
    return max(0, (when - at).days)


def _eligible(result: Result, rule: Rule, when: datetime) -> str | None:
    """Why a result cannot be recognised now, or None when it can."""
    if not rule.recognizable:
        return "not_recognizable"
    if result.observed_at < when - timedelta(days=rule.validity_days):
        return "expired"
    if result.observed_at > when:
        return "expired"  # a result from the future (bad clock) is not trusted
    if rule.requires_eqa and result.eqa_passed is not True:
        return "eqa_not_passed"
    return None


def _group_filter(actor: Actor) -> Any:
    """Results performed within the caller's group (互认 within the 医联体); the platform
    itself sees all."""
    if actor.role == "system" or actor.group_id is None:
        return True
    return Result.group_id == actor.group_id


def check_orders(
    session: Session,
    actor: Actor,
    resident_id: int,
    item_codes: list[str],
    *,
    now: datetime | None = None,
) -> list[OrderCheck]:
    """For each item about to be ordered, whether a recognisable result exists: the newest
    result of that item performed within the caller's group, inside the item's validity, from a
    lab that passed EQA when the rule requires it. Only the result data is offered — never the
    physician's conclusion (国卫医发〔2022〕6号 第二条). Audited as a read of "OrderCheck"."""
    registry.get_resident(session, actor, resident_id, resource="OrderCheck")
    if not item_codes:
        raise Invalid("请至少填写一个项目代码", field="item_codes")
    if len(item_codes) > 50:
        raise Invalid("一次最多查询 50 个项目", field="item_codes")
    when = as_aware(now) or clock_now()
    rules = effective_rules(session, actor.group_id)
    answers: list[tuple[str, Rule | None, Result | None, str]] = []
    for raw in dict.fromkeys(c.strip() for c in item_codes if c.strip()):
        code = canonical_code(raw)
        rule = rules.get(code) or _fallback_rule(session, code)
        codes = rule.codes if rule else (code,)
        base = (
            select(Result)
            .where(Result.resident_id == resident_id, Result.item_code.in_(codes))
            .where(_group_filter(actor))
            .order_by(Result.observed_at.desc(), Result.id.desc())
        )
        if rule is None:
            answers.append((code, None, session.scalars(base.limit(1)).first(), "no_rule"))
            continue
        if not rule.recognizable:
            answers.append((code, rule, None, "not_recognizable"))
            continue
        window = base.where(
            Result.observed_at >= when - timedelta(days=rule.validity_days),
            Result.observed_at <= when,
        )
        if rule.requires_eqa:
            window = window.where(Result.eqa_passed.is_(True))
        found = session.scalars(window.limit(1)).first()
        if found is not None:
            answers.append((code, rule, found, "recognizable"))
            continue
        latest = session.scalars(base.where(Result.observed_at <= when).limit(1)).first()
        status = _eligible(latest, rule, when) if latest is not None else "no_result"
        answers.append((code, rule, latest, status or "no_result"))
    names = registry.institution_names(session, {r.institution_id for _, _, r, _ in answers if r})
    _record_offers(session, actor, resident_id, answers, when)
    return [
        _answer(code, rule, result, status, names, when) for code, rule, result, status in answers
    ]


def _record_offers(
    session: Session,
    actor: Actor,
    resident_id: int,
    answers: list[tuple[str, Rule | None, Result | None, str]],
    when: datetime,
) -> None:
    """Keep each recognisable result shown to the doctor, once per doctor, result and day, so
    offers nobody acted on count too (the decisions alone would hide them)."""
    day = when.astimezone(SHANGHAI).date()
    insert_ignoring_duplicates(
        session,
        RecognitionOffer,
        [
            {
                "resident_id": resident_id,
                "result_id": result.id,
                "item_code": code,
                "institution_id": actor.institution_id,
                "group_id": actor.group_id,
                "user_id": actor.user_id,
                "offered_at": when,
                "offered_on": day,
            }
            for code, _rule, result, status in answers
            if status == "recognizable" and result is not None
        ],
    )


STATUS_MESSAGES = {
    "no_result": "集团内无该项目结果，需开单",
    "expired": "最近一次结果已超过互认时效",
    "eqa_not_passed": "最近结果的检验机构未通过室间质评，不予互认",
    "not_recognizable": "该项目按规则不纳入互认",
    "no_rule": "该项目暂无互认规则",
}


def _answer(
    code: str,
    rule: Rule | None,
    result: Result | None,
    status: str,
    names: dict[int, str],
    when: datetime,
) -> OrderCheck:
    name = rule.item_name if rule else (result.item_name if result else code)
    place = names.get(result.institution_id) if result and result.institution_id else None
    ago = _days_ago(result.observed_at, when) if result else None
    if status == "recognizable" and result is not None:
        message = f"可互认结果：{name}，{place or '集团内机构'}，{_ago_text(ago or 0)}"
    else:
        message = STATUS_MESSAGES.get(status, status)
        if result is not None and status in ("expired", "eqa_not_passed"):
            message += f"（{place or '集团内机构'}，{_ago_text(ago or 0)}）"
    offered = status == "recognizable" and result is not None
    check = OrderCheck(
        item_code=code,
        item_name=name,
        category=rule.category if rule else None,
        status=status,
        recognizable=offered,
        message=message,
        validity_days=rule.validity_days if rule else None,
        requires_eqa=rule.requires_eqa if rule else False,
        typical_cost_fen=rule.typical_cost_fen if rule else 0,
    )
    if result is not None:
        check.result_id = result.id
        check.institution_id = result.institution_id
        check.institution_name = place
        check.observed_at = result.observed_at
        check.days_ago = ago
    if offered and result is not None:
        # The result data only: value, unit, range, flag, image findings. Never `conclusion`.
        check.value_num = result.value_num
        check.value_text = result.value_text
        check.unit = result.unit
        check.ref_low = result.ref_low
        check.ref_high = result.ref_high
        check.abnormal_flag = result.abnormal_flag
        check.findings = result.findings
    return check


def _ago_text(days: int) -> str:
    return "今天" if days == 0 else f"{days} 天前"


# --- decisions -------------------------------------------------------------------------------


def record_decision(
    session: Session,
    actor: Actor,
    resident_id: int,
    item_code: str,
    result_id: int,
    decision: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
    *,
    now: datetime | None = None,
) -> OrderDecision:
    """What the doctor did with an offered result. "used_existing" counts one avoided repeat at
    the rule's typical cost (the result must still be recognisable); "ordered_anyway" needs one
    of the six national reasons (国卫医发〔2022〕6号; `REEXAM_REASONS`), and a description when
    the reason is "other". Audited as a create of "OrderDecision"."""
    registry.require_resident_exists(session, resident_id)
    require_resident_access(
        session,
        actor,
        resident_id,
        action="create",
        resource="OrderDecision",
        detail={"item_code": item_code[:40], "result_id": result_id, "decision": decision[:20]},
    )
    if decision not in DECISIONS:
        raise Invalid(
            "决定须为 used_existing（采用已有结果）或 ordered_anyway（仍需开单）",
            field="decision",
            allowed=list(DECISIONS),
        )
    reason_code = (reason_code or "").strip() or None
    reason_text = (reason_text or "").strip() or None
    if decision == "ordered_anyway":
        if reason_code is None:
            raise UnknownReason(
                "仍需开单须选择复查理由", field="reason_code", allowed=_allowed_reasons()
            )
        if reason_code not in REEXAM_REASONS:
            raise UnknownReason(
                f"未知的复查理由：{reason_code}", field="reason_code", allowed=_allowed_reasons()
            )
        if reason_code == "other" and reason_text is None:
            raise Invalid("复查理由为“其他”时须说明具体情形", field="reason_text")
    else:
        reason_code = None
        reason_text = None
    result = session.get(Result, result_id)
    code = canonical_code(item_code)
    rules = effective_rules(session, actor.group_id)
    rule = rules.get(code) or _fallback_rule(session, code)
    if result is None or result.resident_id != resident_id or rule is None:
        raise NotFound("未找到该居民的这项结果", field="result_id", result_id=result_id)
    if result.item_code not in rule.codes:
        raise Invalid("结果与项目代码不一致", field="result_id")
    if actor.role != "system" and actor.group_id is not None and result.group_id != actor.group_id:
        raise NotFound("未找到该居民的这项结果", field="result_id", result_id=result_id)
    when = as_aware(now) or clock_now()
    if decision == "used_existing":
        why = _eligible(result, rule, when)
        if why is not None:
            raise Invalid(f"该结果当前不可互认：{STATUS_MESSAGES[why]}", field="result_id")
    row = OrderDecision(
        resident_id=resident_id,
        result_id=result_id,
        item_code=code,
        institution_id=actor.institution_id,
        group_id=actor.group_id,
        user_id=actor.user_id,
        decision=decision,
        reason_code=reason_code,
        reason_text=reason_text,
        avoided_cost_fen=(rule.typical_cost_fen or result.cost_fen)
        if decision == "used_existing"
        else 0,
        decided_at=when,
    )
    session.add(row)
    session.flush()
    return row


def _allowed_reasons() -> list[dict[str, str]]:
    return [{"code": c, "label": REEXAM_REASON_LABELS[c]} for c in REEXAM_REASONS]


def recognition_counts(
    session: Session,
    *,
    group_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RecognitionStats:
    """Offered (recognisable results shown by the order check, once per doctor, result and
    day), used (repeats avoided), overridden (ordered anyway) and the avoided cost in fen, with
    overrides by reason — the inputs of the group's 互认 indicators (003 §二(四)11
    "推进医共体内检验检查结果互认"). `undecided` offers had no decision by the same doctor."""
    since, until = as_aware(since), as_aware(until)

    def scoped(stmt: Any, model: Any, at: Any) -> Any:
        if group_id is not None:
            stmt = stmt.where(model.group_id == group_id)
        if since is not None:
            stmt = stmt.where(at >= since)
        if until is not None:
            stmt = stmt.where(at < until)
        return stmt

    stmt = scoped(
        select(
            OrderDecision.decision,
            OrderDecision.reason_code,
            func.count(),
            func.coalesce(func.sum(OrderDecision.avoided_cost_fen), 0),
        ).group_by(OrderDecision.decision, OrderDecision.reason_code),
        OrderDecision,
        OrderDecision.decided_at,
    )
    used = overridden = avoided = 0
    by_reason: Counter[str] = Counter({code: 0 for code in REEXAM_REASONS})
    for decision, reason, count, cost in session.execute(stmt).all():
        if decision == "used_existing":
            used += count
            avoided += int(cost)
        else:
            overridden += count
            by_reason[reason or "other"] += count
    offer = RecognitionOffer
    offered = session.scalar(
        scoped(select(func.count()).select_from(offer), offer, offer.offered_at)
    )
    decided = (
        select(OrderDecision.id)
        .where(
            OrderDecision.result_id == offer.result_id,
            OrderDecision.user_id == offer.user_id,
            OrderDecision.decided_at >= offer.offered_at,
        )
        .exists()
    )
    undecided = session.scalar(
        scoped(select(func.count()).select_from(offer).where(~decided), offer, offer.offered_at)
    )
    return RecognitionStats(
        group_id=group_id,
        since=since,
        until=until,
        offered=offered or 0,
        undecided=undecided or 0,
        used=used,
        overridden=overridden,
        avoided_cost_fen=avoided,
        by_reason=dict(by_reason),
    )


def recognition_stats(
    session: Session,
    actor: Actor,
    *,
    group_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RecognitionStats:
    """The counts for the caller: their own group, or any group for administrators and the
    health commission."""
    if actor.role not in ALL_GROUPS_ROLES:
        if actor.group_id is None:
            raise Forbidden("当前账户不属于任何医疗集团")
        if group_id is not None and group_id != actor.group_id:
            raise Forbidden("只能查看本集团的互认统计")
        group_id = actor.group_id
    elif group_id is not None:
        registry.get_group(session, group_id)
    return recognition_counts(session, group_id=group_id, since=since, until=until)
