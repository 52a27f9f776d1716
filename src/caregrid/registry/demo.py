"""The registry's steps of the synthetic city: the profile's real group structure, generated
practitioners (some practising at several members), and residents with valid, unique ID
numbers and a realistic age/sex pyramid. Deterministic for a seed."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from caregrid.core.synthetic.names import NameGenerator
from caregrid.core.synthetic.population import sample_birth_dates
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import (
    Department,
    Grid,
    Group,
    Institution,
    Practitioner,
    PractitionerRole,
    Resident,
)

Progress = Callable[[int], None]

# Physicians generated per member by level: enough to make worklists and rosters realistic
# without dominating the build time (real tertiary hospitals have several hundred).
STAFF_BY_LEVEL = {"tertiary": 60, "secondary": 30, "primary": 10, "village": 1}
TITLES = ["主任医师", "副主任医师", "主治医师", "住院医师"]
TITLE_WEIGHTS = {
    "tertiary": [15, 25, 35, 25],
    "secondary": [8, 20, 40, 32],
    "primary": [2, 10, 40, 48],
    "village": [0, 0, 20, 80],
}
# Share of tertiary physicians who also practise at a primary member (多点执业 / 下沉坐诊).
MULTI_SITE_SHARE = 0.15


def load_structure(profile_id: str) -> dict[str, Any]:
    text = (
        resources.files("caregrid.demo")
        .joinpath(f"data/structures/{profile_id}.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


@dataclass
class Structure:
    city: str
    grid_ids: dict[str, int] = field(default_factory=dict)
    group_ids: dict[str, int] = field(default_factory=dict)
    institution_ids: dict[str, int] = field(default_factory=dict)
    institution_level: dict[int, str] = field(default_factory=dict)
    institution_group: dict[int, int | None] = field(default_factory=dict)
    grid_population: dict[int, int] = field(default_factory=dict)
    grid_districts: dict[int, list[str]] = field(default_factory=dict)
    region_codes: dict[str, str] = field(default_factory=dict)
    primary_by_grid: dict[int, list[int]] = field(default_factory=dict)


def build_structure(session: Session, data: dict[str, Any]) -> Structure:
    """Grids, groups, institutions (with parents and leads) and departments from the
    profile's structure file."""
    city = data["city"]
    out = Structure(city=city["name"], region_codes=dict(city["region_codes"]))
    for g in data["grids"]:
        grid = Grid(
            code=g["code"],
            name=g["name"],
            city=city["name"],
            districts="、".join(g.get("districts", [])),
            population=g.get("population"),
        )
        session.add(grid)
        session.flush()
        out.grid_ids[g["code"]] = grid.id
        out.grid_population[grid.id] = int(g.get("population") or 0)
        out.grid_districts[grid.id] = list(g.get("districts", []))
    for g in data["groups"]:
        group = Group(
            code=g["code"], name=g["name"], kind=g["kind"], grid_id=out.grid_ids[g["grid"]]
        )
        session.add(group)
        session.flush()
        out.group_ids[g["code"]] = group.id
    group_grid: dict[int, int] = {
        gid: grid_id
        for gid, grid_id in session.execute(
            select(Group.id, Group.grid_id).where(Group.id.in_(out.group_ids.values()))
        ).all()
    }
    pending_parents: list[tuple[Institution, str]] = []
    for i in data["institutions"]:
        group_id = out.group_ids.get(i["group"]) if i.get("group") else None
        grid_id = out.grid_ids.get(i["grid"]) if i.get("grid") else None
        if grid_id is None and group_id is not None:
            grid_id = group_grid[group_id]
        inst = Institution(
            code=i["code"],
            name=i["name"],
            level=i["level"],
            kind=i["kind"],
            role=i.get("role", "member"),
            group_id=group_id,
            grid_id=grid_id,
            district=i.get("district"),
            beds=i.get("beds"),
            source_clause=i.get("clause"),
        )
        session.add(inst)
        if i.get("parent"):
            pending_parents.append((inst, i["parent"]))
    session.flush()
    for inst in session.scalars(select(Institution)).all():
        out.institution_ids[inst.code] = inst.id
        out.institution_level[inst.id] = inst.level
        out.institution_group[inst.id] = inst.group_id
        if inst.level == "primary" and inst.grid_id is not None and inst.kind == "general":
            out.primary_by_grid.setdefault(inst.grid_id, []).append(inst.id)
    for inst, parent_code in pending_parents:
        inst.parent_id = out.institution_ids[parent_code]
    for g in data["groups"]:
        lead_of = session.get(Group, out.group_ids[g["code"]])
        assert lead_of is not None
        lead_of.lead_institution_id = out.institution_ids[g["lead"]]
    departments: dict[str, list[str]] = data.get("departments", {})
    for inst in session.scalars(select(Institution)).all():
        names = list(departments.get(inst.level, []))
        names += departments.get(f"{inst.level}_{inst.kind}", [])
        for name in dict.fromkeys(names):
            session.add(Department(institution_id=inst.id, name=name))
    session.flush()
    return out


def generate_practitioners(session: Session, rng: random.Random, structure: Structure) -> int:
    """Physicians for every member; a share of the lead hospitals' physicians also practise
    at primary members of their group (多点执业, 000 §三(三)2)."""
    names = NameGenerator(rng)
    dept_rows = session.execute(select(Department.id, Department.institution_id)).all()
    depts: dict[int, list[int]] = {}
    for dept_id, inst_id in dept_rows:
        depts.setdefault(inst_id, []).append(dept_id)
    practitioners: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    next_id = (session.scalar(select(Practitioner.id).order_by(Practitioner.id.desc())) or 0) + 1
    primary_by_group: dict[int, list[int]] = {}
    for inst_id, level in structure.institution_level.items():
        group_id = structure.institution_group[inst_id]
        if level == "primary" and group_id is not None:
            primary_by_group.setdefault(group_id, []).append(inst_id)
    for inst_id in sorted(structure.institution_level):
        level = structure.institution_level[inst_id]
        count = STAFF_BY_LEVEL[level]
        sexes = rng.choices(["male", "female"], k=count)
        for sex, name in zip(sexes, names.names(count, sexes), strict=True):
            pid = next_id
            next_id += 1
            practitioners.append(
                {
                    "id": pid,
                    "code": f"P{pid:07d}",
                    "name": name,
                    "sex": sex,
                    "title": rng.choices(TITLES, weights=TITLE_WEIGHTS[level])[0],
                    "qualification": "physician",
                }
            )
            inst_depts: list[int | None] = [*depts.get(inst_id, [])] or [None]
            roles.append(
                {
                    "practitioner_id": pid,
                    "institution_id": inst_id,
                    "department_id": rng.choice(inst_depts),
                    "role": "physician",
                    "primary_site": True,
                }
            )
            group_id = structure.institution_group[inst_id]
            if (
                level == "tertiary"
                and group_id in primary_by_group
                and rng.random() < MULTI_SITE_SHARE
            ):
                site = rng.choice(primary_by_group[group_id])
                roles.append(
                    {
                        "practitioner_id": pid,
                        "institution_id": site,
                        "department_id": (depts.get(site) or [None])[0],  # type: ignore[list-item]
                        "role": "physician",
                        "primary_site": False,
                    }
                )
    if practitioners:
        session.execute(insert(Practitioner), practitioners)
        session.execute(insert(PractitionerRole), roles)
    session.flush()
    return len(practitioners)


@dataclass(frozen=True)
class ResidentBatch:
    rows: list[tuple[Any, ...]]


RESIDENT_COLUMNS = (
    "id_number",
    "name",
    "sex",
    "birth_date",
    "phone",
    "address",
    "grid_id",
    "home_institution_id",
)


def resident_rows(
    rng: random.Random,
    structure: Structure,
    n: int,
    *,
    reference_date: date,
    batch_size: int = 100_000,
) -> Any:
    """Yield batches of resident tuples (RESIDENT_COLUMNS order). Residents are spread over
    grids by population and over the grid's primary members (who keep their records); ID
    numbers use the real district codes and are unique by construction."""
    grid_ids = sorted(structure.grid_population)
    weights = [max(1, structure.grid_population[g]) for g in grid_ids]
    names = NameGenerator(rng)
    used: dict[tuple[str, date], list[int]] = {}
    produced = 0
    while produced < n:
        k = min(batch_size, n - produced)
        people = sample_birth_dates(rng, k, reference_date=reference_date)
        sexes = [sex for _, sex in people]
        grids = rng.choices(grid_ids, weights=weights, k=k)
        person_names = names.names(k, sexes)
        phones = names.phones(k)
        batch: list[tuple[Any, ...]] = []
        for idx in range(k):
            birth, sex = people[idx]
            grid_id = grids[idx]
            districts = structure.grid_districts[grid_id] or list(structure.region_codes)
            district = districts[idx % len(districts)]
            region = structure.region_codes.get(district) or next(
                iter(structure.region_codes.values())
            )
            counters = used.setdefault((region, birth), [1, 0])  # next odd, next even
            parity = 0 if sex == "male" else 1
            seq = counters[parity]
            if seq > 999:
                continue  # a day of one district is full; skip this person
            counters[parity] = seq + 2
            homes = structure.primary_by_grid.get(grid_id)
            batch.append(
                (
                    make_id_number(region, birth, seq),
                    person_names[idx],
                    sex,
                    birth,
                    phones[idx],
                    None,
                    grid_id,
                    homes[idx % len(homes)] if homes else None,
                )
            )
        addresses = names.addresses(len(batch), list(structure.region_codes), structure.city)
        batch = [(*row[:5], addr, *row[6:]) for row, addr in zip(batch, addresses, strict=True)]
        produced += k
        yield ResidentBatch(batch)


def insert_residents(session: Session, batches: Any, progress: Progress | None = None) -> int:
    """Bulk-insert resident batches: PostgreSQL COPY, SQLite executemany on the raw cursor
    (the ORM's unit of work would be ~20x slower at a million rows)."""
    connection = session.connection()
    dialect = connection.dialect.name
    total = 0
    created = "created_at, updated_at"
    from caregrid.core.clock import now

    stamp = now()
    if dialect == "sqlite":
        # Index pages of a million random ID numbers must stay in memory during the load;
        # SQLite's default 2 MB cache would spill them to the WAL over and over.
        connection.exec_driver_sql("PRAGMA cache_size=-1000000")
    for batch in batches:
        rows = batch.rows
        if dialect == "postgresql":
            raw = connection.connection.driver_connection
            assert raw is not None
            cols = ", ".join(RESIDENT_COLUMNS)
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY resident ({cols}, {created}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row((*row, stamp, stamp))
        else:
            cols = ", ".join(RESIDENT_COLUMNS)
            marks = ", ".join("?" for _ in range(len(RESIDENT_COLUMNS) + 2))
            stamp_text = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
            driver = connection.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor()
            cursor.executemany(
                f"INSERT INTO resident ({cols}, {created}) VALUES ({marks})",
                [(*r[:3], r[3].isoformat(), *r[4:], stamp_text, stamp_text) for r in rows],
            )
            cursor.close()
        total += len(rows)
        if progress:
            progress(len(rows))
    if dialect == "sqlite":
        connection.exec_driver_sql("PRAGMA cache_size=-2000")
    return total


__all__ = [
    "Resident",
    "Structure",
    "build_structure",
    "generate_practitioners",
    "insert_residents",
    "load_structure",
    "resident_rows",
]
