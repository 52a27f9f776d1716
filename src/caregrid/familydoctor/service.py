"""Family-doctor use cases: packages from the profile, teams, contracts (sign, renew, change
team, terminate), fulfilment, the team task inbox and worklist, and the "contract" care
relationship. Measures and fee settlement live in `familydoctor.measures`.

Services only flush; the request owns the transaction. Resident data is read and written
through the access check, which audits it. For issue 5 (referral): `active_contract` and
`add_team_task` are the stable entry points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caregrid.audit import service as audit
from caregrid.chronic import service as chronic
from caregrid.chronic.models import PROGRAMS
from caregrid.core import hooks
from caregrid.core.actor import Actor
from caregrid.core.clock import now, today
from caregrid.core.errors import Forbidden, Invalid
from caregrid.familydoctor import rules
from caregrid.familydoctor.errors import (
    ActiveContractExists,
    ContractNotActive,
    ContractNotFound,
    InvalidTeam,
    PackageNotFound,
    TaskNotFound,
    TeamNotFound,
)
from caregrid.familydoctor.models import (
    MEMBER_ROLES,
    Contract,
    PackageService,
    ServiceDelivery,
    ServicePackage,
    Team,
    TeamMember,
    TeamTask,
)
from caregrid.identity.access import (
    CLINICAL_ROLES,
    load_for_resident,
    relationship_provider,
    require_resident_access,
)
from caregrid.profiles.schemas import PolicyProfile
from caregrid.registry import service as registry

MANAGE_ROLES = frozenset({"admin", "group_manager", "system"})
SIGN_ROLES = CLINICAL_ROLES | {"system"}
HIGHER_LEVELS = ("tertiary", "secondary")
PRIMARY_LEVELS = ("primary", "village")
MIN_REASON = 2


def _yuan_to_fen(profile: PolicyProfile, key: str) -> int:
    value = profile.number(key)
    if value is None:
        raise Invalid(f"政策方案未设置 {key}", field=key)
    return round(value * 100)


# --- packages --------------------------------------------------------------------------------


def install_packages(session: Session, profile: PolicyProfile) -> int:
    """Create or update the menu (`rules.PACKAGES`, 000 §三(五)2) with the annual fee split of
    the active profile (family_doctor.fee_*_yuan, local data). Idempotent; returns the count."""
    fund = _yuan_to_fen(profile, "family_doctor.fee_fund_yuan")
    public_health = _yuan_to_fen(profile, "family_doctor.fee_public_health_yuan")
    self_pay = _yuan_to_fen(profile, "family_doctor.fee_self_pay_yuan")
    for spec in rules.PACKAGES:
        package = session.scalar(select(ServicePackage).where(ServicePackage.code == spec.code))
        if package is None:
            package = ServicePackage(code=spec.code)
            session.add(package)
        package.name = spec.name
        package.population = spec.population
        package.min_age, package.max_age = spec.min_age, spec.max_age
        package.sex, package.required_program = spec.sex, spec.required_program
        package.fund_fen, package.public_health_fen, package.self_pay_fen = (
            fund,
            public_health,
            self_pay,
        )
        session.flush()
        existing = {
            s.service_code: s
            for s in session.scalars(
                select(PackageService).where(PackageService.package_id == package.id)
            )
        }
        for service in spec.services:
            row = existing.get(service.code)
            if row is None:
                session.add(
                    PackageService(
                        package_id=package.id,
                        service_code=service.code,
                        name=service.name,
                        times_per_year=service.times_per_year,
                    )
                )
            else:
                row.name, row.times_per_year = service.name, service.times_per_year
    session.flush()
    return len(rules.PACKAGES)


def list_packages(session: Session) -> list[tuple[ServicePackage, list[PackageService]]]:
    packages = session.scalars(
        select(ServicePackage).where(ServicePackage.active).order_by(ServicePackage.id)
    ).all()
    services = session.scalars(select(PackageService).order_by(PackageService.id)).all()
    by_package: dict[int, list[PackageService]] = {}
    for s in services:
        by_package.setdefault(s.package_id, []).append(s)
    return [(p, by_package.get(p.id, [])) for p in packages]


def get_package(session: Session, code: str) -> ServicePackage:
    package = session.scalar(select(ServicePackage).where(ServicePackage.code == code))
    if package is None or not package.active:
        raise PackageNotFound(f"未找到签约服务包：{code}", field="package_code")
    return package


def package_services(session: Session, package_id: int) -> Sequence[PackageService]:
    return session.scalars(
        select(PackageService)
        .where(PackageService.package_id == package_id)
        .order_by(PackageService.id)
    ).all()


# --- teams -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberInput:
    practitioner_id: int
    role: str
    institution_id: int
    leader: bool = False


def create_team(
    session: Session,
    actor: Actor,
    *,
    code: str,
    name: str,
    base_institution_id: int,
    members: Sequence[MemberInput],
) -> Team:
    """A 全专融合 team (000 §三(五)2; 001 §三(三)3): based at a primary-care member, led by a GP,
    with specialists only from a higher-level member of the same group."""
    if actor.role not in MANAGE_ROLES:
        raise Forbidden("仅管理员或集团管理者可组建家庭医生团队", role=actor.role)
    if not code.strip() or not name.strip():
        raise Invalid("请填写团队编码和名称", field="name" if code.strip() else "code")
    if session.scalar(select(Team.id).where(Team.code == code.strip())) is not None:
        raise InvalidTeam(f"团队编码已存在：{code}", field="code")
    base = registry.get_institution(session, base_institution_id)
    if base.level not in PRIMARY_LEVELS:
        raise InvalidTeam(
            "家庭医生团队应以基层医疗卫生机构为平台", field="base_institution_id", rule="team_base"
        )
    if not any(m.role == "gp" for m in members):
        raise InvalidTeam("团队至少包括一名全科医生", field="members", rule="team_needs_gp")
    seen: set[int] = set()
    for m in members:
        if m.role not in MEMBER_ROLES:
            raise InvalidTeam(f"未知团队角色：{m.role}", field="members")
        if m.practitioner_id in seen:
            raise InvalidTeam("同一医务人员重复加入团队", field="members")
        seen.add(m.practitioner_id)
        registry.get_practitioner(session, m.practitioner_id)
        inst = registry.get_institution(session, m.institution_id)
        if m.role == "specialist" and (
            inst.level not in HIGHER_LEVELS or inst.group_id != base.group_id
        ):
            raise InvalidTeam(
                "专科医生应来自本集团的二级或三级医院",
                field="members",
                rule="specialist_from_higher_level",
            )
    team = Team(
        code=code.strip(),
        name=name.strip(),
        base_institution_id=base.id,
        group_id=base.group_id,
    )
    session.add(team)
    session.flush()
    for m in members:
        session.add(
            TeamMember(
                team_id=team.id,
                practitioner_id=m.practitioner_id,
                institution_id=m.institution_id,
                role=m.role,
                leader=m.leader,
            )
        )
    session.flush()
    audit.append(session, actor, action="create", resource="CareTeam", detail={"team_id": team.id})
    return team


def get_team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise TeamNotFound("未找到该家庭医生团队", team_id=team_id)
    return team


def team_members(session: Session, team_id: int) -> Sequence[TeamMember]:
    return session.scalars(
        select(TeamMember).where(TeamMember.team_id == team_id).order_by(TeamMember.id)
    ).all()


def list_teams(session: Session, *, group_id: int | None = None) -> Sequence[Team]:
    stmt = select(Team).where(Team.active).order_by(Team.id)
    if group_id is not None:
        stmt = stmt.where(Team.group_id == group_id)
    return session.scalars(stmt).all()


def teams_for_actor(session: Session, actor: Actor) -> Sequence[Team]:
    """The teams a user works in: as a member, or at the team's base institution."""
    conditions: list[ColumnElement[bool]] = []
    if actor.practitioner_id is not None:
        conditions.append(
            Team.id.in_(
                select(TeamMember.team_id).where(
                    TeamMember.practitioner_id == actor.practitioner_id
                )
            )
        )
    if actor.institution_id is not None:
        conditions.append(Team.base_institution_id == actor.institution_id)
    if actor.role in ("group_manager",) and actor.group_id is not None:
        conditions.append(Team.group_id == actor.group_id)
    if actor.role in ("admin", "system"):
        return list_teams(session)
    if not conditions:
        return []
    return session.scalars(
        select(Team).where(Team.active, or_(*conditions)).order_by(Team.id)
    ).all()


def require_team_access(session: Session, actor: Actor, team_id: int) -> Team:
    """A team's worklist and contracts are for its members, the base institution's staff and the
    group's managers; anyone else gets 404 (existence not revealed)."""
    team = get_team(session, team_id)
    if team.id not in {t.id for t in teams_for_actor(session, actor)}:
        raise TeamNotFound("未找到该家庭医生团队", team_id=team_id)
    return team


# --- contracts -------------------------------------------------------------------------------


def _programs_of(session: Session, resident_id: int) -> frozenset[str]:
    return frozenset(
        p for p in PROGRAMS if chronic.active_enrolment(session, resident_id, p) is not None
    )


def _insert_contract(session: Session, contract: Contract) -> Contract:
    """Insert under a savepoint: the partial unique index decides between concurrent signings."""
    try:
        with session.begin_nested():
            session.add(contract)
            session.flush()
    except IntegrityError as exc:
        raise ActiveContractExists(
            "该居民已有生效的签约（同期只能签约一个家庭医生团队）",
            field="resident_id",
            rule="one_active_contract",
            resident_id=contract.resident_id,
        ) from exc
    return contract


def _current(session: Session, resident_id: int) -> Contract | None:
    return session.scalar(
        select(Contract).where(Contract.resident_id == resident_id, Contract.status == "active")
    )


def sign_contract(
    session: Session,
    actor: Actor,
    *,
    resident_id: int,
    team_id: int,
    package_code: str,
    start_date: date | None = None,
    years: int = 1,
    doctor_practitioner_id: int | None = None,
) -> Contract:
    """Sign a resident to a team and package. One active contract per resident
    (国卫基层发〔2018〕35号: 同期只能选择1名签约家庭医生(团队)), at least one year, eligibility by
    age, sex and registered condition (000 §三(五)2 menu packages). Enforced in the database too."""
    if actor.role not in SIGN_ROLES:
        raise Forbidden("当前角色无权办理签约", role=actor.role)
    resident = registry.require_resident_exists(session, resident_id)
    require_resident_access(
        session,
        actor,
        resident_id,
        action="create",
        resource="Contract",
        detail={"team_id": team_id, "package": package_code},
    )
    team = get_team(session, team_id)
    if actor.role != "system":
        require_team_access(session, actor, team_id)
    if not team.active:
        raise InvalidTeam("该团队已停用", field="team_id")
    start = start_date or today()
    if start < today() and actor.role != "system":
        raise Invalid("签约起始日期不能早于今天", field="start_date", rule="start_not_in_past")
    end = rules.contract_end(start, years)
    package = get_package(session, package_code)
    rules.check_eligibility(
        population=package.population,
        min_age=package.min_age,
        max_age=package.max_age,
        sex=package.sex,
        required_program=package.required_program,
        age=rules.age_on(resident.birth_date, start),
        resident_sex=resident.sex,
        programs=_programs_of(session, resident_id),
    )
    if _current(session, resident_id) is not None:
        raise ActiveContractExists(
            "该居民已有生效的签约（同期只能签约一个家庭医生团队）",
            field="resident_id",
            rule="one_active_contract",
            resident_id=resident_id,
        )
    if doctor_practitioner_id is not None and doctor_practitioner_id not in {
        m.practitioner_id for m in team_members(session, team_id)
    }:
        raise Invalid("签约医生不是该团队成员", field="doctor_practitioner_id")
    contract = Contract(
        resident_id=resident_id,
        team_id=team.id,
        package_id=package.id,
        group_id=team.group_id,
        doctor_practitioner_id=doctor_practitioner_id,
        start_date=start,
        end_date=end,
        status="active",
        fee_fen=package.fund_fen + package.public_health_fen + package.self_pay_fen,
        signed_by_user_id=actor.user_id,
    )
    return _insert_contract(session, contract)


def get_contract(session: Session, actor: Actor, contract_id: int) -> Contract:
    contract = load_for_resident(
        session,
        actor,
        Contract,
        contract_id,
        ContractNotFound("未找到该签约", contract_id=contract_id),
        action="read",
        resource="Contract",
        detail={"contract_id": contract_id},
    )
    return contract


def _active_for_change(session: Session, actor: Actor, contract_id: int, what: str) -> Contract:
    if actor.role not in SIGN_ROLES:
        raise Forbidden(f"当前角色无权{what}", role=actor.role)
    contract = load_for_resident(
        session,
        actor,
        Contract,
        contract_id,
        ContractNotFound("未找到该签约", contract_id=contract_id),
        action="update",
        resource="Contract",
        detail={"contract_id": contract_id, "change": what},
    )
    if contract.status != "active":
        raise ContractNotActive("该签约已不在生效状态", field="contract_id", rule="contract_active")
    return contract


def renew_contract(
    session: Session,
    actor: Actor,
    contract_id: int,
    *,
    years: int = 1,
    package_code: str | None = None,
) -> Contract:
    """续约: a new contract continuing the old one from its end date (or today when it has
    lapsed), with the same team; the old one is marked ended."""
    old = _active_for_change(session, actor, contract_id, "续约")
    start = max(old.end_date, today())
    package = (
        get_package(session, package_code)
        if package_code
        else session.get_one(ServicePackage, old.package_id)
    )
    old.status, old.ended_on, old.end_reason = "ended", min(old.end_date, today()), "续约"
    session.flush()
    new = Contract(
        resident_id=old.resident_id,
        team_id=old.team_id,
        package_id=package.id,
        group_id=old.group_id,
        doctor_practitioner_id=old.doctor_practitioner_id,
        start_date=start,
        end_date=rules.contract_end(start, years),
        fee_fen=package.fund_fen + package.public_health_fen + package.self_pay_fen,
        previous_contract_id=old.id,
        signed_by_user_id=actor.user_id,
    )
    return _insert_contract(session, new)


def change_team(
    session: Session, actor: Actor, contract_id: int, *, team_id: int, reason: str
) -> Contract:
    """改签: the resident moves to another team; the old contract ends today and a new one of
    at least a year starts with the same package."""
    if len(reason.strip()) < MIN_REASON:
        raise Invalid("请填写改签原因", field="reason")
    old = _active_for_change(session, actor, contract_id, "改签")
    team = get_team(session, team_id)
    if team.id == old.team_id:
        raise Invalid("新团队与原团队相同", field="team_id")
    if not team.active:
        raise InvalidTeam("该团队已停用", field="team_id")
    old.status, old.ended_on, old.end_reason = "changed", today(), reason.strip()
    session.flush()
    start = today()
    new = Contract(
        resident_id=old.resident_id,
        team_id=team.id,
        package_id=old.package_id,
        group_id=team.group_id,
        start_date=start,
        end_date=rules.contract_end(start, 1),
        fee_fen=old.fee_fen,
        previous_contract_id=old.id,
        signed_by_user_id=actor.user_id,
    )
    return _insert_contract(session, new)


def terminate_contract(
    session: Session, actor: Actor, contract_id: int, *, reason: str
) -> Contract:
    """解约 with a reason (moved away, deceased, resident's request, ...)."""
    if len(reason.strip()) < MIN_REASON:
        raise Invalid("请填写解约原因", field="reason")
    contract = _active_for_change(session, actor, contract_id, "解约")
    contract.status, contract.ended_on, contract.end_reason = "terminated", today(), reason.strip()
    session.flush()
    return contract


def record_satisfaction(session: Session, actor: Actor, contract_id: int, score: int) -> Contract:
    """The resident's satisfaction survey (0-100), a quality component of the fee settlement."""
    if not 0 <= score <= 100:
        raise Invalid("满意度评分应在 0–100 之间", field="score")
    contract = _active_for_change(session, actor, contract_id, "记录满意度")
    contract.satisfaction = score
    session.flush()
    return contract


@dataclass(frozen=True)
class ActiveContract:
    """What other domains (referral priority, down-referral tasks) need of a contract."""

    contract_id: int
    resident_id: int
    team_id: int
    team_name: str
    base_institution_id: int
    group_id: int | None
    package_code: str
    start_date: date
    end_date: date
    doctor_practitioner_id: int | None
    member_practitioner_ids: tuple[int, ...]


def active_contract(session: Session, resident_id: int) -> ActiveContract | None:
    """The resident's active contract, or None. No access check and no audit: for other
    domains' services, which check access on their own request (001 §三(一)1: 经基层转诊的签约居民
    可优先就诊、优先检查、优先住院)."""
    row = session.execute(
        select(Contract, Team, ServicePackage.code)
        .join(Team, Team.id == Contract.team_id)
        .join(ServicePackage, ServicePackage.id == Contract.package_id)
        .where(
            Contract.resident_id == resident_id,
            Contract.status == "active",
            Contract.end_date > today(),
        )
    ).first()
    if row is None:
        return None
    contract, team, package_code = row
    members = tuple(m.practitioner_id for m in team_members(session, team.id))
    return ActiveContract(
        contract_id=contract.id,
        resident_id=resident_id,
        team_id=team.id,
        team_name=team.name,
        base_institution_id=team.base_institution_id,
        group_id=team.group_id,
        package_code=package_code,
        start_date=contract.start_date,
        end_date=contract.end_date,
        doctor_practitioner_id=contract.doctor_practitioner_id,
        member_practitioner_ids=members,
    )


def resident_contracts(session: Session, actor: Actor, resident_id: int) -> Sequence[Contract]:
    """All of a resident's contracts, newest first (access checked and audited)."""
    registry.require_resident_exists(session, resident_id)
    require_resident_access(session, actor, resident_id, action="read", resource="Contract")
    return session.scalars(
        select(Contract)
        .where(Contract.resident_id == resident_id)
        .order_by(Contract.signed_at.desc(), Contract.id.desc())
    ).all()


@hooks.predicate("reserved_capacity_user", "family_doctor_team")
def _serves_on_a_team(session: Session, actor: Actor) -> bool:
    """A member of an active family-doctor team of the actor's group: such teams may book the
    capacity the lead hospitals reserve for primary care (001 §三(三)1)."""
    if actor.practitioner_id is None or actor.group_id is None:
        return False
    return (
        session.scalar(
            select(TeamMember.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(
                TeamMember.practitioner_id == actor.practitioner_id,
                Team.active.is_(True),
                Team.group_id == actor.group_id,
            )
            .limit(1)
        )
        is not None
    )


@relationship_provider("contract")
def _contracted_team(actor: Actor, resident: ColumnElement[int]) -> Select[Any] | None:
    """Members of the resident's contracted team and the staff of its base institution."""
    if actor.practitioner_id is None and actor.institution_id is None:
        return None
    stmt = (
        select(Contract.id)
        .join(Team, Team.id == Contract.team_id)
        .where(Contract.resident_id == resident, Contract.status == "active")
    )
    conditions: list[ColumnElement[bool]] = []
    if actor.institution_id is not None:
        conditions.append(Team.base_institution_id == actor.institution_id)
    if actor.practitioner_id is not None:
        conditions.append(
            Team.id.in_(
                select(TeamMember.team_id).where(
                    TeamMember.practitioner_id == actor.practitioner_id
                )
            )
        )
    return stmt.where(or_(*conditions))


def team_contract_residents(session: Session, team_id: int) -> list[int]:
    """Residents with an active contract with the team (for the team's own lists)."""
    return list(
        session.scalars(
            select(Contract.resident_id).where(
                Contract.team_id == team_id, Contract.status == "active"
            )
        )
    )


# --- services delivered, fulfilment ----------------------------------------------------------


def record_service_delivery(
    session: Session,
    actor: Actor,
    contract_id: int,
    *,
    service_code: str,
    delivered_on: date,
) -> ServiceDelivery:
    """A contracted service delivered. Chronic follow-ups are recorded in `chronic` and counted
    from there, so they cannot be entered twice."""
    contract = _active_for_change(session, actor, contract_id, "登记履约服务")
    if service_code == rules.FOLLOWUP:
        raise Invalid("慢病随访请在随访表单中记录", field="service_code")
    codes = {s.service_code for s in package_services(session, contract.package_id)}
    if service_code not in codes:
        raise Invalid("该服务不在签约服务包内", field="service_code", rule="service_in_package")
    if delivered_on > today() or delivered_on < contract.start_date:
        raise Invalid("服务日期应在签约期内且不晚于今天", field="delivered_on")
    delivery = ServiceDelivery(
        contract_id=contract.id,
        resident_id=contract.resident_id,
        service_code=service_code,
        delivered_on=delivered_on,
        practitioner_id=actor.practitioner_id,
    )
    session.add(delivery)
    session.flush()
    return delivery


class ContractLike(Protocol):
    """What fulfilment needs of a contract: a `Contract` or a Core row of these columns."""

    @property
    def id(self) -> int: ...
    @property
    def resident_id(self) -> int: ...
    @property
    def package_id(self) -> int: ...
    @property
    def start_date(self) -> date: ...
    @property
    def end_date(self) -> date: ...


def fulfilment(
    session: Session, contracts: Sequence[ContractLike], *, on: date
) -> dict[int, list[rules.ServiceStatus]]:
    """Services due vs delivered on `on` for each contract, in a few queries."""
    if not contracts:
        return {}
    package_ids = {c.package_id for c in contracts}
    specs: dict[int, list[rules.ServiceSpec]] = {}
    for s in session.scalars(
        select(PackageService).where(PackageService.package_id.in_(package_ids))
    ):
        specs.setdefault(s.package_id, []).append(
            rules.ServiceSpec(s.service_code, s.name, s.times_per_year)
        )
    ids = [c.id for c in contracts]
    delivered: dict[tuple[int, str], int] = {}
    for cid, code, count in session.connection().execute(
        select(ServiceDelivery.contract_id, ServiceDelivery.service_code, func.count())
        .where(ServiceDelivery.contract_id.in_(ids), ServiceDelivery.delivered_on <= on)
        .group_by(ServiceDelivery.contract_id, ServiceDelivery.service_code)
    ):
        delivered[(cid, code)] = count
    needs_followups = [
        c for c in contracts if any(s.code == rules.FOLLOWUP for s in specs.get(c.package_id, []))
    ]
    followups: dict[int, int] = {}
    if needs_followups:
        since = min(c.start_date for c in needs_followups)
        per_resident = chronic.followups_by_resident_date(
            session, [c.resident_id for c in needs_followups], since=since, until=on
        )
        for c in needs_followups:
            dates = per_resident.get(c.resident_id, [])
            followups[c.id] = sum(1 for d in dates if c.start_date <= d < c.end_date)
    return _statuses(contracts, specs, delivered, followups, on)


def _package_specs(session: Session) -> dict[int, list[rules.ServiceSpec]]:
    specs: dict[int, list[rules.ServiceSpec]] = {}
    for package_id, code, name, times in session.connection().execute(
        select(
            PackageService.package_id,
            PackageService.service_code,
            PackageService.name,
            PackageService.times_per_year,
        ).order_by(PackageService.id)
    ):
        specs.setdefault(package_id, []).append(rules.ServiceSpec(code, name, times))
    return specs


def _statuses(
    contracts: Sequence[ContractLike],
    specs: dict[int, list[rules.ServiceSpec]],
    delivered: dict[tuple[int, str], int],
    followups: dict[int, int],
    on: date,
) -> dict[int, list[rules.ServiceStatus]]:
    out: dict[int, list[rules.ServiceStatus]] = {}
    for c in contracts:
        out[c.id] = [
            rules.service_status(
                spec,
                start=c.start_date,
                end=c.end_date,
                delivered=followups.get(c.id, 0)
                if spec.code == rules.FOLLOWUP
                else delivered.get((c.id, spec.code), 0),
                on=on,
            )
            for spec in specs.get(c.package_id, [])
        ]
    return out


def fulfilment_where(
    session: Session, conditions: Sequence[ColumnElement[bool]], *, on: date
) -> dict[int, list[rules.ServiceStatus]]:
    """Fulfilment of every contract matching `conditions` (e.g. all active ones of a group) in
    four queries, with no id lists: deliveries and face-to-face follow-ups within each
    contract's period are counted in the database."""
    conn = session.connection()
    contracts = conn.execute(
        select(
            Contract.id,
            Contract.resident_id,
            Contract.package_id,
            Contract.start_date,
            Contract.end_date,
        ).where(*conditions)
    ).all()
    if not contracts:
        return {}
    scope = select(Contract.id).where(*conditions)
    delivered: dict[tuple[int, str], int] = {}
    for cid, code, count in conn.execute(
        select(ServiceDelivery.contract_id, ServiceDelivery.service_code, func.count())
        .where(ServiceDelivery.contract_id.in_(scope), ServiceDelivery.delivered_on <= on)
        .group_by(ServiceDelivery.contract_id, ServiceDelivery.service_code)
    ):
        delivered[(cid, code)] = count
    seen = chronic.face_to_face_followups(on)
    followups: dict[int, int] = {
        cid: count
        for cid, count in conn.execute(
            select(Contract.id, func.count())
            .join(
                seen,
                and_(
                    seen.c.resident_id == Contract.resident_id,
                    seen.c.followed_on >= Contract.start_date,
                    seen.c.followed_on < Contract.end_date,
                ),
            )
            .where(*conditions)
            .group_by(Contract.id)
        )
    }
    return _statuses(contracts, _package_specs(session), delivered, followups, on)


# --- team tasks and worklist -----------------------------------------------------------------


def add_team_task(
    session: Session,
    *,
    team_id: int,
    resident_id: int,
    kind: str,
    due: date,
    detail: str,
    source: str,
) -> int:
    """Put a task in a team's inbox (e.g. kind="下转随访" from a down-referral, source
    "referral:42"); it shows in the team worklist. Returns the task id. No access check: the
    calling domain's service has checked its own request."""
    get_team(session, team_id)
    registry.require_resident_exists(session, resident_id)
    if not kind.strip() or not source.strip():
        raise Invalid("任务类型和来源不能为空", field="kind" if not kind.strip() else "source")
    task = TeamTask(
        team_id=team_id,
        resident_id=resident_id,
        kind=kind.strip()[:40],
        due=due,
        detail=detail[:500],
        source=source.strip()[:80],
    )
    session.add(task)
    session.flush()
    return task.id


def get_contract_of_resident_in_team(
    session: Session, actor: Actor, team_id: int, resident_id: int
) -> Contract:
    """The resident's active contract with this team (for tasks a team adds by hand); access
    checked and audited."""
    require_resident_access(
        session, actor, resident_id, action="read", resource="Contract", detail={"team_id": team_id}
    )
    contract = session.scalar(
        select(Contract).where(
            Contract.resident_id == resident_id,
            Contract.team_id == team_id,
            Contract.status == "active",
        )
    )
    if contract is None:
        raise ContractNotFound("该居民未与本团队签约", field="resident_id")
    return contract


def complete_task(session: Session, actor: Actor, task_id: int) -> TeamTask:
    task = session.get(TeamTask, task_id)
    if task is None:
        raise TaskNotFound("未找到该任务", task_id=task_id)
    require_team_access(session, actor, task.team_id)
    if task.status != "open":
        raise Invalid("该任务已处理", field="task_id")
    task.status, task.done_at = "done", now()
    session.flush()
    return task


@dataclass(frozen=True)
class WorkItem:
    resident_id: int
    resident_name: str
    what: str
    due: date
    detail: str = ""
    contract_id: int | None = None
    enrolment_id: int | None = None
    task_id: int | None = None


@dataclass
class Worklist:
    team: Team
    on: date
    due_today: list[WorkItem] = field(default_factory=list)
    overdue: list[WorkItem] = field(default_factory=list)
    uncontrolled: list[WorkItem] = field(default_factory=list)
    tasks: list[WorkItem] = field(default_factory=list)
    contracts: int = 0


def worklist(
    session: Session, actor: Actor, team_id: int, *, on: date | None = None, limit: int = 200
) -> Worklist:
    """The team's day: contracted services and chronic follow-ups due today or overdue,
    patients whose latest follow-up was not controlled (or who are lost), and open tasks."""
    team = require_team_access(session, actor, team_id)
    on = on or today()
    contracts = session.scalars(
        select(Contract).where(Contract.team_id == team.id, Contract.status == "active")
    ).all()
    rids = [c.resident_id for c in contracts]
    names = registry.resident_names(session, rids)
    out = Worklist(team=team, on=on, contracts=len(contracts))
    status_by_contract = fulfilment(session, contracts, on=on)
    for c in contracts:
        for s in status_by_contract.get(c.id, []):
            if s.code == rules.FOLLOWUP or s.next_due is None:
                continue  # chronic follow-ups are scheduled by the rules engine below
            item = WorkItem(
                c.resident_id, names.get(c.resident_id, ""), s.name, s.next_due, contract_id=c.id
            )
            if s.next_due == on:
                out.due_today.append(item)
            elif s.next_due < on:
                out.overdue.append(item)
    for st in chronic.program_statuses(session, on=on, resident_ids=rids):
        label = "高血压随访" if st.program == "hypertension" else "糖尿病随访"
        item = WorkItem(
            st.resident_id,
            names.get(st.resident_id, ""),
            label,
            st.next_due,
            detail="失访" if st.lost else (st.last_action or "首次随访"),
            enrolment_id=st.enrolment_id,
        )
        if st.next_due == on:
            out.due_today.append(item)
        elif st.next_due < on:
            out.overdue.append(item)
        if st.lost or (st.last_followup is not None and not st.controlled):
            out.uncontrolled.append(item)
    for task in session.scalars(
        select(TeamTask)
        .where(TeamTask.team_id == team.id, TeamTask.status == "open")
        .order_by(TeamTask.due, TeamTask.id)
    ):
        out.tasks.append(
            WorkItem(
                task.resident_id,
                names.get(task.resident_id)
                or registry.resident_names(session, [task.resident_id]).get(task.resident_id, ""),
                task.kind,
                task.due,
                detail=task.detail,
                task_id=task.id,
            )
        )
    for items in (out.due_today, out.overdue, out.uncontrolled):
        items.sort(key=lambda i: (i.due, i.resident_id))
        del items[limit:]
    return out
