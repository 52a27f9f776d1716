"""The family-doctor and chronic-care step of the synthetic city, after the year of activity:
teams at every primary member, the package menu, chronic registries from the shared record,
contracts, follow-ups and services from the start of the activity year (the last complete
calendar year, as the shared record's activity) through the reference date, inserted in bulk.
Deterministic for the rng.

Calibration ("chosen" = not found in reference/statistics.md, which has no national contract
coverage figure, §9, and no achieved 规范管理率, §6):
- Teams: one per ~2,500 residents kept by a primary member (1-6 per member), led by one of its
  physicians, with a second physician as public-health doctor when there is one, a specialist
  of the group's lead hospital (全专融合, 000 §三(五)2) and a physician of the group's TCM
  member where the group has one. The demo has no nurses, so teams have none.
- Registries: every resident aged 35+ with a hypertension (I10-I15) or type-2 diabetes (E11)
  diagnosis in the shared record; 85 % were enrolled before the window, 15 % during it.
- Contracts (chosen): 75 % of chronic patients, 65 % of people 65+, 50 % of children 0-6, 12 %
  of women 15-49 and 20 % of everyone else. The first one-year contract starts in the year
  before the window, half of them in its last month (the annual signing drive), so every one
  is in force when the window opens; each is renewed (续约) at its end, 92 % of the time, up to
  the reference date (a child past 6 is not renewed). Each term is on the package of the
  group the resident belongs to on its first day (chronic once enrolled, then 65+, 0-6, women
  15-49, everyone else).
- Follow-ups from the window's start to the reference date (chosen adherence): 70 % of patients
  come every 60-85 days (and, 60 % of the time, within 10-18 days after an uncontrolled
  visit, as the rules ask), 15 % two or three times, 8 % are lost (last visit over 6 months
  ago) and 7 % never came. 90 % face to face. Each patient is a "good controller" (55 %, controlled
  at 85 % of visits) or not (30 %); 1 % of visits show a danger sign. The rules engine
  (`chronic.rules.assess`) decides each visit's action, as it would live. Rates land near a
  60 % 规范管理率 (003 §二(四)15) with ~50 % control.
- Other package services delivered at 70 % of their due dates; 30 % of contracts carry a
  satisfaction survey (70-100)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.chronic import rules as chronic_rules
from caregrid.chronic.models import ChronicEnrolment, FollowUp
from caregrid.chronic.service import PROGRAM_CODES, program_of_code
from caregrid.core.actor import Actor
from caregrid.core.db import bulk_insert, insert_returning_ids, sqlite_utc_text
from caregrid.familydoctor import rules
from caregrid.familydoctor.models import (
    Contract,
    PackageService,
    ServiceDelivery,
    ServicePackage,
    TeamMember,
)
from caregrid.familydoctor.service import MemberInput, create_team, install_packages
from caregrid.profiles.schemas import PolicyProfile
from caregrid.record import service as record
from caregrid.registry.models import Group, Institution, PractitionerRole, Resident

RESIDENTS_PER_TEAM = 2500
MEDICATION = {"hypertension": "氨氯地平片 5mg qd", "diabetes": "二甲双胍片 0.5g tid"}
CHUNK = 5000


@dataclass
class FamilyDoctorReport:
    teams: int = 0
    contracts: int = 0
    enrolments: int = 0
    followups: int = 0
    deliveries: int = 0

    def lines(self) -> list[str]:
        return [
            f"家庭医生团队 {self.teams} 个，签约 {self.contracts:,} 人，"
            f"慢病管理 {self.enrolments:,} 人次，随访 {self.followups:,} 次，"
            f"其他履约服务 {self.deliveries:,} 次"
        ]


def _bulk(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Write rows (every one with the same keys) with the driver (core.db.bulk_insert), in
    their stored form: at a million residents the ORM's per-value work cost more than the
    writes (follow-ups are the largest table of this step)."""
    if not rows:
        return
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    columns = list(rows[0])

    def stored(value: Any) -> Any:
        if postgres or value is None:
            return value
        if isinstance(value, datetime):
            return sqlite_utc_text(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    for start in range(0, len(rows), CHUNK * 10):
        part = rows[start : start + CHUNK * 10]
        bulk_insert(
            connection,
            model.__tablename__,
            columns,
            [tuple(stored(row[c]) for c in columns) for row in part],
        )


def _birthday(birth: date, age: int) -> date:
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:  # 29 February
        return birth.replace(year=birth.year + age, day=28)


def _age(birth: date, on: date) -> int:
    return rules.age_on(birth, on)


def _package_code(birth: date, sex: str, enrolled_on: date | None, on: date) -> str:
    """The package of the resident's population group on `on` (module docstring)."""
    age = _age(birth, on)
    if enrolled_on is not None and enrolled_on <= on:
        return "CHRONIC"
    if age >= 65:
        return "ELDERLY"
    if age <= 6:
        return "CHILD"
    if sex == "female" and 15 <= age <= 49:
        return "WOMEN"
    return "BASIC"


def _build_teams(session: Session, homed: dict[int, int]) -> dict[int, list[int]]:
    """Teams per primary member; returns institution id -> team ids."""
    system = Actor.system("demo")
    physicians: dict[int, list[int]] = defaultdict(list)
    for pid, iid in session.execute(
        select(PractitionerRole.practitioner_id, PractitionerRole.institution_id)
        .where(PractitionerRole.role == "physician")
        .order_by(PractitionerRole.institution_id, PractitionerRole.practitioner_id)
    ):
        if pid not in physicians[iid]:
            physicians[iid].append(pid)
    institutions = session.scalars(select(Institution).order_by(Institution.id)).all()
    leads = {g.id: g.lead_institution_id for g in session.scalars(select(Group))}
    tcm: dict[int, int] = {}
    for inst in institutions:
        if inst.kind == "tcm" and inst.group_id is not None and physicians.get(inst.id):
            tcm.setdefault(inst.group_id, inst.id)
    teams: dict[int, list[int]] = {}
    for inst in institutions:
        if inst.level != "primary" or inst.group_id is None or not physicians.get(inst.id):
            continue
        staff = physicians[inst.id]
        count = max(1, min(6, round(homed.get(inst.id, 0) / RESIDENTS_PER_TEAM)))
        lead_id = leads.get(inst.group_id)
        specialists = physicians.get(lead_id, []) if lead_id else []
        for k in range(count):
            members = [MemberInput(staff[k % len(staff)], "gp", inst.id, leader=True)]
            if len(staff) > count:
                health = staff[(k + count) % len(staff)]
                members.append(MemberInput(health, "public_health", inst.id))
            if specialists and lead_id is not None:
                spec = specialists[(inst.id * 7 + k) % len(specialists)]
                members.append(MemberInput(spec, "specialist", lead_id))
            tcm_inst = tcm.get(inst.group_id)
            if tcm_inst is not None:
                doctors = physicians[tcm_inst]
                doctor = doctors[(inst.id + k) % len(doctors)]
                members.append(MemberInput(doctor, "tcm", tcm_inst))
            unique = {m.practitioner_id: m for m in reversed(members)}  # the first role wins
            team = create_team(
                session,
                system,
                code=f"FDT-{inst.code}-{k + 1}",
                name=f"{inst.name}家庭医生{k + 1}队",
                base_institution_id=inst.id,
                members=[m for m in members if unique[m.practitioner_id] is m],
            )
            teams.setdefault(inst.id, []).append(team.id)
    return teams


def _reading(
    rng: random.Random, program: str, controlled: bool, danger: bool
) -> tuple[int, int, float | None]:
    if danger:
        if program == "diabetes" and rng.random() < 0.6:
            glucose = rng.choice([rng.uniform(16.8, 22.0), rng.uniform(2.8, 3.8)])
            return rng.randint(125, 150), rng.randint(75, 92), round(glucose, 1)
        glucose_or_none = round(rng.uniform(7.5, 11), 1) if program == "diabetes" else None
        return rng.randint(181, 200), rng.randint(95, 115), glucose_or_none
    if program == "hypertension":
        if controlled:
            return rng.randint(112, 138), rng.randint(64, 88), None
        return rng.randint(141, 176), rng.randint(82, 104), None
    sbp, dbp = rng.randint(112, 145), rng.randint(64, 92)
    glucose = rng.uniform(4.6, 6.9) if controlled else rng.uniform(7.1, 12.5)
    return sbp, dbp, round(glucose, 1)


def _visits(
    rng: random.Random, program: str, start: date, end: date, p_controlled: float
) -> list[tuple[date, chronic_rules.Reading, chronic_rules.Decision]]:
    """One patient's follow-ups in [start, end] by adherence class (module docstring), each
    decided by the rules engine. Regular patients come back when told: 60 % within 10-18
    days after an uncontrolled visit, otherwise after 60-85 days."""
    span = (end - start).days
    if span <= 0:
        return []
    u = rng.random()
    if u < 0.70:
        interval = rng.randint(60, 85)
        days = [rng.randint(0, min(interval, span))]
        regular = True
    elif u < 0.85:
        days = sorted(rng.randint(0, span) for _ in range(rng.randint(2, 3)))
        regular = False
    elif u < 0.93:
        days = sorted(rng.randint(0, max(0, span - 200)) for _ in range(rng.randint(0, 1)))
        regular = False
    else:
        return []
    out = []
    previous: bool | None = None
    k = 0
    while k < len(days):
        day = start + timedelta(days[k])
        controlled = rng.random() < p_controlled
        sbp, dbp, glucose = _reading(rng, program, controlled, rng.random() < 0.01)
        reading = chronic_rules.Reading(sbp, dbp, glucose)
        decision = chronic_rules.assess(program, reading, on=day, previous_controlled=previous)
        previous = decision.controlled
        out.append((day, reading, decision))
        if regular:
            gap = (
                rng.randint(10, 18)
                if decision.action != "routine" and rng.random() < 0.6
                else rng.randint(60, 85)
            )
            if days[k] + gap <= span:
                days.append(days[k] + gap)
        k += 1
    return out


def generate(
    session: Session, rng: random.Random, profile: PolicyProfile, *, reference_date: date
) -> FamilyDoctorReport:
    report = FamilyDoctorReport()
    ref = reference_date
    # the shared record's activity year (demo.builder): the last complete calendar year
    window_start = date(ref.year - 1, 1, 1)
    install_packages(session, profile)
    packages = {p.code: p for p in session.scalars(select(ServicePackage))}
    services: dict[int, list[PackageService]] = defaultdict(list)
    for s in session.scalars(select(PackageService).order_by(PackageService.id)):
        services[s.package_id].append(s)

    residents = session.execute(
        select(Resident.id, Resident.birth_date, Resident.sex, Resident.home_institution_id)
        .where(Resident.deceased_on.is_(None), Resident.home_institution_id.is_not(None))
        .order_by(Resident.id)
    ).all()
    homed: dict[int, int] = defaultdict(int)
    for _rid, _birth, _sex, home in residents:
        if home is not None:
            homed[home] += 1
    teams = _build_teams(session, homed)
    report.teams = sum(len(v) for v in teams.values())
    inst_group: dict[int | None, int | None] = {
        i: g for i, g in session.execute(select(Institution.id, Institution.group_id))
    }

    # --- chronic registries from the shared record ---
    prefixes = [p for codes in PROGRAM_CODES.values() for p in codes]
    first_dx: dict[tuple[int, str], str] = {}
    for rid, code, _started, _inst, _group in record.diagnoses_matching(session, prefixes):
        program = program_of_code(code)
        if program is not None:
            first_dx.setdefault((rid, program), code)
    info = {rid: (birth, sex, home) for rid, birth, sex, home in residents}
    enrol_rows: list[dict[str, Any]] = []
    keys: list[tuple[int, str, date]] = []
    for (rid, program), code in sorted(first_dx.items()):
        if rid not in info:
            continue
        birth, _sex, home = info[rid]
        if _age(birth, ref) < chronic_rules.MIN_AGE:
            continue
        if rng.random() < 0.85:
            on = window_start - timedelta(days=rng.randint(30, 8 * 365))
        else:
            on = window_start + timedelta(days=rng.randint(0, 300))
        on = max(on, _birthday(birth, chronic_rules.MIN_AGE))
        enrol_rows.append(
            {
                "resident_id": rid,
                "program": program,
                "institution_id": home,
                "group_id": inst_group.get(home),
                "enrolled_on": on,
                "source": "diagnosis",
                "diagnosis_code": code,
                "risk_grade": rng.choices(["low", "medium", "high"], [0.45, 0.35, 0.2])[0],
                "status": "active",
                "created_at": datetime.combine(on, datetime.min.time(), UTC),
            }
        )
        keys.append((rid, program, on))
    enrolled: dict[int, list[tuple[int, str, date]]] = defaultdict(list)
    for eid, (rid, program, on) in zip(
        insert_returning_ids(session, ChronicEnrolment, enrol_rows), keys, strict=True
    ):
        enrolled[rid].append((eid, program, on))
    report.enrolments = len(enrol_rows)

    # --- contracts: a first term in force when the window opens, renewed up to today ---
    contract_rows: list[dict[str, Any]] = []
    contract_of: dict[int, dict[str, Any]] = {}  # the resident's latest term
    # (term, the term it renews) by renewal generation: inserted in that order, so that a
    # renewal knows the id of the contract it continues
    terms: dict[int, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    for rid, birth, sex, home in residents:
        team_ids = teams.get(home) if home is not None else None
        if not team_ids:
            continue
        age = _age(birth, ref)
        if enrolled.get(rid):
            p = 0.75
        elif age >= 65:
            p = 0.65
        elif age <= 6:
            p = 0.5
        elif sex == "female" and 15 <= age <= 49:
            p = 0.12
        else:
            p = 0.2
        if rng.random() >= p:
            continue
        if rng.random() < 0.5:
            start = window_start - timedelta(days=rng.randint(0, 30))
        else:
            start = window_start - timedelta(days=rng.randint(31, 364))
        start = max(start, birth)
        team_id = team_ids[rid % len(team_ids)]
        enrolled_on = min((on for _eid, _program, on in enrolled.get(rid, [])), default=None)
        previous: dict[str, Any] | None = None
        previous_generation = 0
        while start <= ref:
            code = _package_code(birth, sex, enrolled_on, start)
            if code == "CHILD" and previous is not None and _age(birth, start) > 6:
                break
            package = packages[code]
            row: dict[str, Any] = {
                "resident_id": rid,
                "team_id": team_id,
                "package_id": package.id,
                "group_id": inst_group.get(home),
                "start_date": start,
                "end_date": rules.contract_end(start, 1),
                "status": "active",
                "fee_fen": package.fund_fen + package.public_health_fen + package.self_pay_fen,
                "satisfaction": rng.randint(70, 100) if rng.random() < 0.3 else None,
                "signed_at": datetime.combine(start, datetime.min.time(), UTC) + timedelta(hours=1),
                "ended_on": None,
                "end_reason": None,
                "previous_contract_id": None,
            }
            generation = 0 if previous is None else previous_generation + 1
            terms.setdefault(generation, []).append((row, previous))
            contract_rows.append(row)
            contract_of[rid] = row
            if previous is not None:
                previous.update(status="ended", ended_on=start, end_reason="续约")
            if row["end_date"] > ref or rng.random() >= 0.92:
                break
            previous, previous_generation, start = row, generation, row["end_date"]
        last = contract_of[rid]
        if last["end_date"] <= ref:  # lapsed: not renewed
            last.update(status="ended", ended_on=last["end_date"], end_reason="期满未续约")
    for generation in sorted(terms):
        batch = terms[generation]
        for row, renewed in batch:
            if renewed is not None:
                row["previous_contract_id"] = renewed["id"]
        rows = [row for row, _renewed in batch]
        for cid, row in zip(insert_returning_ids(session, Contract, rows), rows, strict=True):
            row["id"] = cid
    report.contracts = len(contract_of)

    # --- follow-ups (decided by the rules engine) ---
    gp_of_team: dict[int, int] = {}
    for team_id, pid, role in session.execute(
        select(TeamMember.team_id, TeamMember.practitioner_id, TeamMember.role)
    ):
        if role == "gp":
            gp_of_team.setdefault(team_id, pid)
    followups: list[dict[str, Any]] = []
    for rid, programs in sorted(enrolled.items()):
        contract = contract_of.get(rid)
        home = info[rid][2]
        practitioner = gp_of_team.get(contract["team_id"]) if contract else None
        good = rng.random() < 0.55
        p_controlled = 0.85 if good else 0.30
        for eid, program, enrolled_on in programs:
            visits = _visits(rng, program, max(window_start, enrolled_on), ref, p_controlled)
            for day, reading, decision in visits:
                sbp, dbp, glucose = reading.sbp, reading.dbp, reading.fasting_glucose
                followups.append(
                    {
                        "enrolment_id": eid,
                        "resident_id": rid,
                        "program": program,
                        "institution_id": home,
                        "group_id": inst_group.get(home),
                        "practitioner_id": practitioner,
                        "followed_on": day,
                        "mode": "clinic" if rng.random() < 0.9 else "phone",
                        "sbp": sbp,
                        "dbp": dbp,
                        "fasting_glucose": glucose,
                        "medication": MEDICATION[program],
                        "controlled": decision.controlled,
                        "action": decision.action,
                        "clause": decision.clause,
                        "next_due": decision.next_due,
                        "created_at": datetime.combine(day, datetime.min.time(), UTC),
                    }
                )
    _bulk(session, FollowUp, followups)
    report.followups = len(followups)

    # --- other contracted services ---
    deliveries: list[dict[str, Any]] = []
    for row in contract_rows:
        for s in services[row["package_id"]]:
            if s.service_code == rules.FOLLOWUP:
                continue
            for due in rules.due_dates(row["start_date"], row["end_date"], s.times_per_year):
                if due > ref or rng.random() >= 0.7:
                    continue
                day = max(row["start_date"], due - timedelta(days=rng.randint(0, 40)))
                deliveries.append(
                    {
                        "contract_id": row["id"],
                        "resident_id": row["resident_id"],
                        "service_code": s.service_code,
                        "delivered_on": min(day, ref),
                        "created_at": datetime.combine(min(day, ref), datetime.min.time(), UTC),
                    }
                )
    _bulk(session, ServiceDelivery, deliveries)
    report.deliveries = len(deliveries)
    session.flush()
    return report
