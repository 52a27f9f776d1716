"""Family-doctor REST API under /api/v1/familydoctor: packages, teams, contracts (sign, renew,
change team, terminate), the team worklist and tasks, measures and fee settlement. Thin
endpoints over `familydoctor.service` and `familydoctor.measures`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from caregrid.core.clock import today
from caregrid.core.http import DB, api_router
from caregrid.core.ids import IdInPath
from caregrid.familydoctor import measures
from caregrid.familydoctor import service as fd
from caregrid.familydoctor.models import Contract, Team
from caregrid.familydoctor.schemas import (
    ChangeTeamBody,
    ContractCreate,
    ContractRead,
    DeliveryCreate,
    DeliveryRead,
    MeasuresRead,
    MemberRead,
    MemberShareRead,
    PackageRead,
    ProgramRates,
    RenewBody,
    SatisfactionBody,
    ServiceRead,
    ServiceStatusRead,
    SettlementRead,
    TaskCreate,
    TeamCreate,
    TeamMeasuresRead,
    TeamRead,
    TeamSettlementRead,
    TerminateBody,
    WorkItemRead,
    WorklistRead,
)
from caregrid.identity.deps import CurrentActor
from caregrid.profiles.service import active_profile

Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    403: {"description": "当前角色无权执行此操作"},
    404: {"description": "不存在（或无诊疗关系）"},
    409: {"description": "与现有状态冲突（如已有生效签约）"},
    422: {"description": "输入违反规则，响应中 field 与 rule 指明字段和规则"},
}

router = api_router(
    prefix="/api/v1/familydoctor",
    tags=["familydoctor"],
    responses={401: {"description": "未登录或登录已过期"}},
)


def _team(db: Session, team: Team) -> TeamRead:
    return TeamRead(
        id=team.id,
        code=team.code,
        name=team.name,
        base_institution_id=team.base_institution_id,
        group_id=team.group_id,
        members=[MemberRead.model_validate(m) for m in fd.team_members(db, team.id)],
    )


@router.get("/packages", response_model=list[PackageRead])
def packages(db: DB, actor: CurrentActor) -> list[PackageRead]:
    """The menu of packages per population group with services and the annual fee split."""
    return [
        PackageRead(
            code=p.code,
            name=p.name,
            population=p.population,
            min_age=p.min_age,
            max_age=p.max_age,
            fund_fen=p.fund_fen,
            public_health_fen=p.public_health_fen,
            self_pay_fen=p.self_pay_fen,
            services=[ServiceRead.model_validate(s) for s in services],
        )
        for p, services in fd.list_packages(db)
    ]


@router.get("/teams", response_model=list[TeamRead])
def my_teams(db: DB, actor: CurrentActor) -> list[TeamRead]:
    """The teams the caller works in (or manages)."""
    return [_team(db, t) for t in fd.teams_for_actor(db, actor)]


@router.post("/teams", response_model=TeamRead, status_code=201, responses=ERRORS)
def create_team(data: TeamCreate, db: DB, actor: CurrentActor) -> TeamRead:
    team = fd.create_team(
        db,
        actor,
        code=data.code,
        name=data.name,
        base_institution_id=data.base_institution_id,
        members=[fd.MemberInput(**m.model_dump()) for m in data.members],
    )
    return _team(db, team)


@router.get("/teams/{team_id}", response_model=TeamRead, responses=ERRORS)
def get_team(team_id: IdInPath, db: DB, actor: CurrentActor) -> TeamRead:
    return _team(db, fd.require_team_access(db, actor, team_id))


@router.get("/teams/{team_id}/worklist", response_model=WorklistRead, responses=ERRORS)
def worklist(
    team_id: IdInPath,
    db: DB,
    actor: CurrentActor,
    on: Annotated[date | None, Query(description="日期，默认今天")] = None,
) -> WorklistRead:
    """Due today, overdue, uncontrolled patients and open tasks of a team."""
    work = fd.worklist(db, actor, team_id, on=on)

    def items(rows: list[fd.WorkItem]) -> list[WorkItemRead]:
        return [WorkItemRead.model_validate(r) for r in rows]

    return WorklistRead(
        team_id=team_id,
        on=work.on,
        contracts=work.contracts,
        due_today=items(work.due_today),
        overdue=items(work.overdue),
        uncontrolled=items(work.uncontrolled),
        tasks=items(work.tasks),
    )


@router.post("/teams/{team_id}/tasks", status_code=201, responses=ERRORS)
def add_task(team_id: IdInPath, data: TaskCreate, db: DB, actor: CurrentActor) -> dict[str, int]:
    fd.require_team_access(db, actor, team_id)
    fd.get_contract_of_resident_in_team(db, actor, team_id, data.resident_id)
    task_id = fd.add_team_task(db, team_id=team_id, **data.model_dump())
    return {"id": task_id}


@router.post("/tasks/{task_id}/done", status_code=204, responses=ERRORS)
def complete_task(task_id: IdInPath, db: DB, actor: CurrentActor) -> None:
    fd.complete_task(db, actor, task_id)


def _contract(contract: Contract) -> ContractRead:
    return ContractRead.model_validate(contract)


@router.post("/contracts", response_model=ContractRead, status_code=201, responses=ERRORS)
def sign(data: ContractCreate, db: DB, actor: CurrentActor) -> ContractRead:
    """Sign a resident: one active contract per resident, at least a year, eligibility checked."""
    return _contract(fd.sign_contract(db, actor, **data.model_dump()))


@router.get("/contracts/{contract_id}", response_model=ContractRead, responses=ERRORS)
def get_contract(contract_id: IdInPath, db: DB, actor: CurrentActor) -> ContractRead:
    return _contract(fd.get_contract(db, actor, contract_id))


@router.post("/contracts/{contract_id}/renew", response_model=ContractRead, responses=ERRORS)
def renew(contract_id: IdInPath, data: RenewBody, db: DB, actor: CurrentActor) -> ContractRead:
    return _contract(fd.renew_contract(db, actor, contract_id, **data.model_dump()))


@router.post("/contracts/{contract_id}/change-team", response_model=ContractRead, responses=ERRORS)
def change_team(
    contract_id: IdInPath, data: ChangeTeamBody, db: DB, actor: CurrentActor
) -> ContractRead:
    return _contract(fd.change_team(db, actor, contract_id, **data.model_dump()))


@router.post("/contracts/{contract_id}/terminate", response_model=ContractRead, responses=ERRORS)
def terminate(
    contract_id: IdInPath, data: TerminateBody, db: DB, actor: CurrentActor
) -> ContractRead:
    return _contract(fd.terminate_contract(db, actor, contract_id, reason=data.reason))


@router.get(
    "/contracts/{contract_id}/fulfilment", response_model=list[ServiceStatusRead], responses=ERRORS
)
def contract_fulfilment(
    contract_id: IdInPath, db: DB, actor: CurrentActor
) -> list[ServiceStatusRead]:
    """Services due vs delivered today (履约情况)."""
    contract = fd.get_contract(db, actor, contract_id)
    return [
        ServiceStatusRead(
            code=s.code, name=s.name, due=s.due, delivered=s.delivered, next_due=s.next_due
        )
        for s in fd.fulfilment(db, [contract], on=today())[contract.id]
    ]


@router.post(
    "/contracts/{contract_id}/deliveries",
    response_model=DeliveryRead,
    status_code=201,
    responses=ERRORS,
)
def record_delivery(
    contract_id: IdInPath, data: DeliveryCreate, db: DB, actor: CurrentActor
) -> DeliveryRead:
    """A contracted service delivered (chronic follow-ups are recorded as follow-ups)."""
    delivery = fd.record_service_delivery(db, actor, contract_id, **data.model_dump())
    return DeliveryRead.model_validate(delivery)


@router.post("/contracts/{contract_id}/satisfaction", response_model=ContractRead, responses=ERRORS)
def record_satisfaction(
    contract_id: IdInPath, data: SatisfactionBody, db: DB, actor: CurrentActor
) -> ContractRead:
    return _contract(fd.record_satisfaction(db, actor, contract_id, data.score))


@router.get(
    "/residents/{resident_id}/contracts", response_model=list[ContractRead], responses=ERRORS
)
def resident_contracts(resident_id: IdInPath, db: DB, actor: CurrentActor) -> list[ContractRead]:
    return [_contract(c) for c in fd.resident_contracts(db, actor, resident_id)]


def _rates(c: measures.ProgramCounts) -> ProgramRates:
    return ProgramRates(
        managed=c.managed,
        standard=c.standard,
        controlled=c.controlled,
        lost=c.lost,
        standard_rate=c.standard_rate,
        control_rate=c.control_rate,
        lost_rate=c.lost_rate,
    )


@router.get("/groups/{group_id}/measures", response_model=MeasuresRead, responses=ERRORS)
def group_measures(
    group_id: IdInPath,
    db: DB,
    actor: CurrentActor,
    on: Annotated[date | None, Query(description="统计截止日期，默认今天")] = None,
) -> MeasuresRead:
    """Coverage (overall and key populations), fulfilment, 规范管理率, 控制率 and lost to follow-up,
    by team and month."""
    measures.require_measure_access(actor, group_id)
    m = measures.group_measures(db, group_id=group_id, on=on or today())
    return MeasuresRead(
        group_id=group_id,
        on=m.on,
        residents=m.coverage.residents,
        contracted=m.coverage.contracted,
        coverage=m.coverage.rate,
        key_population_coverage=m.coverage.key_rate,
        elderly_coverage=m.coverage.elderly_rate,
        chronic_coverage=m.coverage.chronic_rate,
        fulfilment=m.fulfilment,
        hypertension=_rates(m.hypertension),
        diabetes=_rates(m.diabetes),
        teams=[
            TeamMeasuresRead(
                team_id=t.team_id,
                team_name=t.team_name,
                contracts=t.contracts,
                fulfilment=t.fulfilment,
                hypertension=_rates(t.hypertension),
                diabetes=_rates(t.diabetes),
            )
            for t in m.teams
        ],
        monthly=m.monthly,
        by_member=m.by_member,
    )


@router.get("/groups/{group_id}/settlement", response_model=SettlementRead, responses=ERRORS)
def settlement(
    group_id: IdInPath,
    db: DB,
    actor: CurrentActor,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> SettlementRead:
    """The year's fee pool per team: prepaid share and the remainder by performance score."""
    measures.require_measure_access(actor, group_id)
    s = measures.settle_fees(db, active_profile(db), group_id=group_id, year=year, on=today())
    return SettlementRead(
        group_id=s.group_id,
        year=s.year,
        prepaid_share=s.prepaid_share,
        pool_fen=s.pool_fen,
        teams=[
            TeamSettlementRead(
                team_id=t.team_id,
                team_name=t.team_name,
                pool_fen=t.pool_fen,
                prepaid_fen=t.prepaid_fen,
                performance_fen=t.performance_fen,
                total_fen=t.total_fen,
                score=t.score,
                members=[MemberShareRead(**vars(m)) for m in t.members],
            )
            for t in s.teams
        ],
    )
