"""Family-doctor and chronic-care measures (they feed the indicators capability) and the
annual fee settlement.

Measures (reference/standards.md §1.6, §2.2):
- 签约覆盖率 = residents with an active contract ÷ residents (home institution in the group);
  重点人群签约覆盖率 over 65+, children 0-6 and the hypertension/diabetes registries (deduplicated).
- 履约率 = contracted services delivered (capped at what was due) ÷ services due.
- 规范管理率 = patients with the required face-to-face follow-ups in the year ÷ managed patients.
- 血压/血糖控制率 = patients whose latest follow-up of the year was controlled ÷ managed patients
  (a lost patient counts as not controlled).
- 失访率 = lost patients ÷ managed patients.

The coverage denominators are aggregate counts over the master index (registry tables, read
only); everything per resident goes through the service functions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.chronic import rules as chronic_rules
from caregrid.chronic import service as chronic
from caregrid.chronic.models import FollowUp
from caregrid.core.actor import Actor
from caregrid.core.errors import Forbidden, NotFound
from caregrid.familydoctor import rules
from caregrid.familydoctor.models import Contract, Team
from caregrid.familydoctor.service import fulfilment_where, team_members
from caregrid.profiles.schemas import PolicyProfile
from caregrid.registry.models import Institution, Resident


def _years_ago(on: date, years: int) -> date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:
        return on.replace(year=on.year - years, day=28)


@dataclass
class ProgramCounts:
    managed: int = 0
    standard: int = 0
    controlled: int = 0
    lost: int = 0

    def rate(self, part: int) -> Decimal | None:
        return rules.share(part, self.managed)

    @property
    def standard_rate(self) -> Decimal | None:
        return self.rate(self.standard)

    @property
    def control_rate(self) -> Decimal | None:
        return self.rate(self.controlled)

    @property
    def lost_rate(self) -> Decimal | None:
        return self.rate(self.lost)


@dataclass
class TeamMeasures:
    team_id: int
    team_name: str
    contracts: int = 0
    services_due: int = 0
    services_done: int = 0
    hypertension: ProgramCounts = field(default_factory=ProgramCounts)
    diabetes: ProgramCounts = field(default_factory=ProgramCounts)
    satisfaction_sum: int = 0
    satisfaction_n: int = 0

    @property
    def fulfilment(self) -> Decimal | None:
        return rules.share(self.services_done, self.services_due)

    @property
    def control(self) -> Decimal | None:
        managed = self.hypertension.managed + self.diabetes.managed
        return rules.share(self.hypertension.controlled + self.diabetes.controlled, managed)

    @property
    def satisfaction(self) -> Decimal | None:
        if not self.satisfaction_n:
            return None
        return Decimal(self.satisfaction_sum) / Decimal(100 * self.satisfaction_n)


@dataclass
class Coverage:
    residents: int = 0
    contracted: int = 0
    key_residents: int = 0
    key_contracted: int = 0
    elderly: int = 0
    elderly_contracted: int = 0
    chronic: int = 0
    chronic_contracted: int = 0

    @property
    def rate(self) -> Decimal | None:
        return rules.share(self.contracted, self.residents)

    @property
    def key_rate(self) -> Decimal | None:
        return rules.share(self.key_contracted, self.key_residents)

    @property
    def elderly_rate(self) -> Decimal | None:
        return rules.share(self.elderly_contracted, self.elderly)

    @property
    def chronic_rate(self) -> Decimal | None:
        return rules.share(self.chronic_contracted, self.chronic)


@dataclass
class GroupMeasures:
    group_id: int
    on: date
    year_start: date
    coverage: Coverage
    hypertension: ProgramCounts
    diabetes: ProgramCounts
    teams: list[TeamMeasures]
    by_institution: dict[int, dict[str, ProgramCounts]]
    # month "YYYY-MM" -> (follow-ups, controlled follow-ups, contracts signed)
    monthly: dict[str, tuple[int, int, int]]
    # practitioner id -> (follow-ups recorded in the year, of which controlled)
    by_member: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def fulfilment(self) -> Decimal | None:
        return rules.share(
            sum(t.services_done for t in self.teams), sum(t.services_due for t in self.teams)
        )


MEASURE_ROLES = frozenset({"admin", "group_manager", "commission_viewer", "insurance_officer"})


def require_measure_access(actor: Actor, group_id: int) -> None:
    """Aggregates are for managers, the commission and the insurance bureau; a group manager
    sees only their own group."""
    if actor.role not in MEASURE_ROLES and actor.role != "system":
        raise Forbidden("当前角色无权查看签约与慢病管理统计", role=actor.role)
    if actor.role == "group_manager" and actor.group_id != group_id:
        raise NotFound("未找到该医疗集团", group_id=group_id)


def group_measures(session: Session, *, group_id: int, on: date) -> GroupMeasures:
    """Every measure for one group on a day, over the calendar year up to that day."""
    year_start = date(on.year, 1, 1)
    # --- chronic programmes, by team (through the resident's contract) and institution ---
    contracts = session.scalars(
        select(Contract).where(Contract.group_id == group_id, Contract.status == "active")
    ).all()
    team_of = {c.resident_id: c.team_id for c in contracts}
    teams = session.scalars(select(Team).where(Team.group_id == group_id).order_by(Team.id)).all()
    per_team = {t.id: TeamMeasures(t.id, t.name) for t in teams}
    totals = {"hypertension": ProgramCounts(), "diabetes": ProgramCounts()}
    by_inst: dict[int, dict[str, ProgramCounts]] = defaultdict(
        lambda: {"hypertension": ProgramCounts(), "diabetes": ProgramCounts()}
    )
    chronic_residents: set[int] = set()
    for st in chronic.program_statuses(session, on=on, group_id=group_id, year_start=year_start):
        chronic_residents.add(st.resident_id)
        required = chronic_rules.required_face_to_face(st.enrolled_on, year_start, on)
        standard = chronic_rules.is_standard_managed(st.face_to_face_in_year, required)
        buckets = [totals[st.program], by_inst[st.institution_id][st.program]]
        team_id = team_of.get(st.resident_id)
        if team_id in per_team:
            buckets.append(getattr(per_team[team_id], st.program))
        for b in buckets:
            b.managed += 1
            b.standard += standard
            b.controlled += st.controlled
            b.lost += st.lost
    # --- fulfilment and satisfaction per team ---
    statuses = fulfilment_where(
        session, [Contract.group_id == group_id, Contract.status == "active"], on=on
    )
    for c in contracts:
        tm = per_team.get(c.team_id)
        if tm is None:
            continue
        tm.contracts += 1
        for s in statuses.get(c.id, []):
            tm.services_due += s.due
            tm.services_done += min(s.delivered, s.due)
        if c.satisfaction is not None:
            tm.satisfaction_sum += c.satisfaction
            tm.satisfaction_n += 1
    # --- coverage ---
    home = select(Institution.id).where(Institution.group_id == group_id)
    elderly_born = _years_ago(on, 65)
    child_born = _years_ago(on, 7)
    rows = session.execute(
        select(Resident.id, Resident.birth_date).where(
            Resident.home_institution_id.in_(home), Resident.deceased_on.is_(None)
        )
    )
    contracted = set(team_of)
    cov = Coverage()
    for rid, birth in rows:
        elderly = birth <= elderly_born
        key = elderly or birth > child_born or rid in chronic_residents
        signed = rid in contracted
        cov.residents += 1
        cov.contracted += signed
        if key:
            cov.key_residents += 1
            cov.key_contracted += signed
        if elderly:
            cov.elderly += 1
            cov.elderly_contracted += signed
        if rid in chronic_residents:
            cov.chronic += 1
            cov.chronic_contracted += signed
    # --- monthly series ---
    monthly: dict[str, list[int]] = {}
    by_member: dict[int, list[int]] = {}
    for followed_on, controlled, practitioner_id in session.execute(
        select(FollowUp.followed_on, FollowUp.controlled, FollowUp.practitioner_id).where(
            FollowUp.group_id == group_id,
            FollowUp.followed_on >= year_start,
            FollowUp.followed_on <= on,
        )
    ):
        bucket = monthly.setdefault(followed_on.isoformat()[:7], [0, 0, 0])
        bucket[0] += 1
        bucket[1] += bool(controlled)
        if practitioner_id is not None:
            member = by_member.setdefault(practitioner_id, [0, 0])
            member[0] += 1
            member[1] += bool(controlled)
    for c in contracts:
        if year_start <= c.start_date <= on:
            monthly.setdefault(c.start_date.isoformat()[:7], [0, 0, 0])[2] += 1
    return GroupMeasures(
        group_id=group_id,
        on=on,
        year_start=year_start,
        coverage=cov,
        hypertension=totals["hypertension"],
        diabetes=totals["diabetes"],
        teams=list(per_team.values()),
        by_institution=dict(by_inst),
        monthly={k: (v[0], v[1], v[2]) for k, v in sorted(monthly.items())},
        by_member={k: (v[0], v[1]) for k, v in by_member.items()},
    )


# --- fee settlement --------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberShare:
    practitioner_id: int
    role: str
    fen: int


@dataclass(frozen=True)
class TeamSettlement:
    team_id: int
    team_name: str
    pool_fen: int
    prepaid_fen: int
    performance_fen: int
    score: Decimal
    quantity: Decimal | None
    fulfilment: Decimal | None
    control: Decimal | None
    satisfaction: Decimal | None
    members: tuple[MemberShare, ...]

    @property
    def total_fen(self) -> int:
        return self.prepaid_fen + self.performance_fen


@dataclass(frozen=True)
class Settlement:
    group_id: int
    year: int
    prepaid_share: Decimal
    pool_fen: int
    teams: tuple[TeamSettlement, ...]


def _weights(profile: PolicyProfile) -> rules.Weights:
    def w(name: str) -> Decimal:
        value = profile.number(f"family_doctor.performance_weight_{name}")
        return Decimal(str(value)) if value is not None else Decimal(0)

    return rules.Weights(w("quantity"), w("fulfilment"), w("control"), w("satisfaction"))


def settle_fees(
    session: Session, profile: PolicyProfile, *, group_id: int, year: int, on: date
) -> Settlement:
    """The year's fee pool per team (the annual fees of contracts starting that year), the
    prepaid share (family_doctor.fee_prepaid_share; 003 §二(六)21: 80 % 预拨) and the remainder
    distributed across teams by pool × performance score (quantity, fulfilment, control rates,
    satisfaction, weights from the profile: 量效挂钩, 向履约质量高、管理效果好的团队倾斜), then
    to members by role weight. Every part is integer fen and the parts add up to the pool."""
    share_value = profile.number("family_doctor.fee_prepaid_share")
    prepaid_share = Decimal(str(share_value if share_value is not None else 1))
    start, end = date(year, 1, 1), date(year, 12, 31)
    pools: dict[int, int] = defaultdict(int)
    for team_id, fee in session.execute(
        select(Contract.team_id, Contract.fee_fen).where(
            Contract.group_id == group_id,
            Contract.start_date >= start,
            Contract.start_date <= end,
        )
    ):
        pools[team_id] += fee
    measures = group_measures(session, group_id=group_id, on=min(on, end))
    by_team = {t.team_id: t for t in measures.teams}
    teams = [t for t in measures.teams if pools.get(t.team_id)]
    per_contract = {
        t.team_id: Decimal(t.services_done) / Decimal(t.contracts) if t.contracts else Decimal(0)
        for t in teams
    }
    best = max(per_contract.values(), default=Decimal(0))
    weights = _weights(profile)
    scores: dict[int, Decimal] = {}
    quantity: dict[int, Decimal | None] = {}
    for t in teams:
        quantity[t.team_id] = per_contract[t.team_id] / best if best else None
        scores[t.team_id] = rules.performance_score(
            weights,
            quantity=quantity[t.team_id],
            fulfilment=t.fulfilment,
            control=t.control,
            satisfaction=t.satisfaction,
        )
    prepaid = {t.team_id: rules.prepaid_part(pools[t.team_id], prepaid_share) for t in teams}
    remainder = sum(pools[t.team_id] - prepaid[t.team_id] for t in teams)
    perf_weights = {t.team_id: Decimal(pools[t.team_id]) * scores[t.team_id] for t in teams}
    if not any(perf_weights.values()):
        perf_weights = {t.team_id: Decimal(pools[t.team_id]) for t in teams}
    performance = rules.allocate(remainder, perf_weights)
    out = []
    for t in teams:
        total = prepaid[t.team_id] + performance[t.team_id]
        members = team_members(session, t.team_id)
        member_fen = (
            rules.allocate(
                total, {m.practitioner_id: rules.ROLE_WEIGHTS.get(m.role, 1) for m in members}
            )
            if members
            else {}
        )
        roles = {m.practitioner_id: m.role for m in members}
        tm = by_team[t.team_id]
        out.append(
            TeamSettlement(
                team_id=t.team_id,
                team_name=tm.team_name,
                pool_fen=pools[t.team_id],
                prepaid_fen=prepaid[t.team_id],
                performance_fen=performance[t.team_id],
                score=scores[t.team_id],
                quantity=quantity[t.team_id],
                fulfilment=tm.fulfilment,
                control=tm.control,
                satisfaction=tm.satisfaction,
                members=tuple(MemberShare(pid, roles[pid], fen) for pid, fen in member_fen.items()),
            )
        )
    return Settlement(group_id, year, prepaid_share, sum(pools.values()), tuple(out))


# --- what is due, for everyone ---------------------------------------------------------------


@dataclass
class DueOverview:
    """Every enrolment's control status and every contract's next due service on a day."""

    on: date
    managed: int = 0
    controlled: int = 0
    uncontrolled: int = 0
    lost: int = 0
    never_followed: int = 0
    followup_overdue: int = 0
    contracts: int = 0
    contracts_overdue: int = 0
    contracts_due_within_14_days: int = 0
    next_due: dict[int, date] = field(default_factory=dict)  # contract id -> next due service


def due_overview(session: Session, *, on: date) -> DueOverview:
    """The work ahead of every team at once: chronic control status and next follow-up from
    the rules (`chronic.service.program_statuses`) and each contract's next due package
    service (`familydoctor.service.fulfilment_where`), each in a few set-based queries."""
    out = DueOverview(on=on)
    for st in chronic.program_statuses(session, on=on):
        out.managed += 1
        out.lost += st.lost
        out.never_followed += st.last_followup is None
        out.controlled += st.controlled
        out.uncontrolled += not st.controlled and not st.lost and st.last_followup is not None
        out.followup_overdue += st.next_due < on
    soon = on + timedelta(days=14)
    for contract_id, statuses in fulfilment_where(
        session, [Contract.status == "active"], on=on
    ).items():
        out.contracts += 1
        dues = [s.next_due for s in statuses if s.next_due is not None]
        if not dues:
            continue
        first = min(dues)
        out.next_due[contract_id] = first
        if first < on:
            out.contracts_overdue += 1
        elif first <= soon:
            out.contracts_due_within_14_days += 1
    return out
