"""No slot or bed is ever booked twice under load, on SQLite and PostgreSQL: 200 clients race
for the same 50 slots (a fifth reserved for primary care), once through the service on their
own connections and once through the HTTP API of a served app, and 40 race for 10 beds.
Exactly as many succeed as there are places; the others get a clear conflict; reserved slots
go only to primary care.

The world is committed (the racing connections must see it) and deleted afterwards."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import Engine, delete, select, update

from caregrid.capacity import service as capacity
from caregrid.capacity.models import (
    AdmissionRequest,
    Appointment,
    Bed,
    BedPool,
    BedStay,
    Registration,
    Schedule,
    Slot,
)
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.db import unit_of_work
from caregrid.core.errors import DomainError
from caregrid.identity.models import AuthSession, User
from caregrid.registry.idnumber import make_id_number
from caregrid.registry.models import Department, Grid, Group, Institution, Resident

CLIENTS = 200
SLOTS = 50


@dataclass
class World:
    group_id: int
    lead_id: int
    town_id: int
    grid_id: int
    dept_id: int
    resident_ids: list[int]
    slot_ids: list[int]
    pool_id: int


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    tag = uuid.uuid4().hex[:8]
    with unit_of_work(engine) as s:
        grid = Grid(code=f"C-{tag}", name="并发网格", city="并发市")
        s.add(grid)
        s.flush()
        group = Group(code=f"C-{tag}", name="并发集团", kind="city_group", grid_id=grid.id)
        s.add(group)
        s.flush()
        lead = Institution(
            code=f"CL-{tag}", name="并发人民医院", level="tertiary", kind="general",
            role="lead", group_id=group.id, grid_id=grid.id,
        )  # fmt: skip
        town = Institution(
            code=f"CT-{tag}", name="并发社区卫生服务中心", level="primary", kind="general",
            role="member", group_id=group.id, grid_id=grid.id,
        )  # fmt: skip
        s.add_all([lead, town])
        s.flush()
        dept = Department(institution_id=lead.id, name="心血管内科")
        s.add(dept)
        s.flush()
        born = date(1930, 1, 1) + timedelta(days=int(tag, 16) % 25000)
        # the first homed at the township, the second at the lead hospital
        residents = [
            Resident(
                id_number=make_id_number("371302", born, (int(tag[:3], 16) + k) % 1000),
                name="并发患者",
                sex="male",
                birth_date=born,
                home_institution_id=home.id,
            )
            for k, home in enumerate((town, lead))
        ]
        s.add_all(residents)
        s.flush()
        system = Actor.system()
        schedule = capacity.create_schedule(
            s, system, institution_id=lead.id, department_id=dept.id, name=f"门诊{tag}"
        )
        start = now() + timedelta(days=3)
        slots = capacity.publish_slots(
            s, system, schedule.id, starts=[start + timedelta(minutes=5 * i) for i in range(SLOTS)],
            minutes=5,
        )  # fmt: skip
        pool = capacity.create_bed_pool(
            s, system, institution_id=lead.id, ward=f"病区{tag}", beds=10
        )
        built = World(
            group.id, lead.id, town.id, grid.id, dept.id, [r.id for r in residents],
            [x.id for x in slots], pool.id,
        )  # fmt: skip
    try:
        yield built
    finally:
        with unit_of_work(engine) as s:
            slot_ids = select(Slot.id).where(Slot.institution_id == built.lead_id)
            s.execute(delete(Appointment).where(Appointment.slot_id.in_(slot_ids)))
            s.execute(delete(Registration).where(Registration.institution_id == built.lead_id))
            s.execute(delete(Slot).where(Slot.institution_id == built.lead_id))
            s.execute(delete(Schedule).where(Schedule.institution_id == built.lead_id))
            s.execute(delete(BedStay).where(BedStay.group_id == built.group_id))
            s.execute(delete(AdmissionRequest).where(AdmissionRequest.group_id == built.group_id))
            s.execute(delete(Bed).where(Bed.bed_pool_id == built.pool_id))
            s.execute(delete(BedPool).where(BedPool.id == built.pool_id))
            s.execute(delete(Resident).where(Resident.id.in_(built.resident_ids)))
            # accounts made for the race stay (the audit log refers to them), detached
            users = select(User.id).where(User.group_id == built.group_id)
            s.execute(delete(AuthSession).where(AuthSession.user_id.in_(users)))
            s.execute(
                update(User).where(User.group_id == built.group_id)
                .values(institution_id=None, group_id=None, active=False)
            )  # fmt: skip
            s.execute(delete(Department).where(Department.id == built.dept_id))
            s.execute(
                update(Group).where(Group.id == built.group_id).values(lead_institution_id=None)
            )
            s.execute(delete(Institution).where(Institution.group_id == built.group_id))
            s.execute(delete(Group).where(Group.id == built.group_id))
            s.execute(delete(Grid).where(Grid.id == built.grid_id))


def race(n: int, work: object) -> Counter[str]:
    """Run `work(i)` in `n` threads released together; count outcomes by name."""
    barrier = threading.Barrier(n)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)  # type: ignore[operator]
            result = "ok"
        except DomainError as exc:
            result = exc.name
        except Exception as exc:  # e.g. an IntegrityError: must show up as a failure
            result = type(exc).__name__
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_two_hundred_clients_racing_for_fifty_slots_book_each_once(
    engine: Engine, world: World
) -> None:
    gp = Actor(None, "gp", "doctor", institution_id=world.town_id, group_id=world.group_id)
    specialist = Actor(None, "sp", "doctor", institution_id=world.lead_id, group_id=world.group_id)

    def book(i: int) -> None:
        actor = gp if (i // SLOTS) % 2 else specialist  # each slot: two of each
        with unit_of_work(engine) as s:
            capacity.book_slot(
                s,
                actor,
                slot_id=world.slot_ids[i % SLOTS],
                resident_id=world.resident_ids[0],
                access_checked=True,
            )

    outcomes = race(CLIENTS, book)
    assert outcomes["ok"] == SLOTS, outcomes
    assert set(outcomes) <= {"ok", "SlotTaken", "ReservedForPrimaryCare"}, outcomes
    _assert_fifty_booked_once(engine, world)


def _assert_fifty_booked_once(engine: Engine, world: World) -> None:
    with unit_of_work(engine) as s:
        rows = s.execute(
            select(Appointment.slot_id, Appointment.pool, Appointment.booked_by_institution_id)
            .where(Appointment.slot_id.in_(world.slot_ids))
        ).all()  # fmt: skip
        statuses = set(s.scalars(select(Slot.status).where(Slot.id.in_(world.slot_ids))))
    assert len(rows) == SLOTS
    assert len({r.slot_id for r in rows}) == SLOTS  # never twice
    assert statuses == {"booked"}
    reserved = [r for r in rows if r.pool == "reserved"]
    assert len(reserved) == SLOTS // 5
    assert all(r.booked_by_institution_id == world.town_id for r in reserved)


def test_two_hundred_http_clients_racing_for_fifty_slots_book_each_once(
    engine: Engine, world: World
) -> None:
    """The same race through `POST /api/v1/slots/{id}/book` of the app served over HTTP (each
    client its own connection), as a township GP and a lead-hospital specialist booking for
    residents they care for: the full path of auth, access check, audit and booking."""
    from caregrid.app import create_app
    from caregrid.identity.passwords import hash_password
    from caregrid.identity.service import create_user
    from tests.support import serve, use_database

    tag = uuid.uuid4().hex[:8]
    password = "Race-pass-2026"
    digest = hash_password(password)
    with unit_of_work(engine) as s:
        for name, institution in (("gp", world.town_id), ("sp", world.lead_id)):
            create_user(
                s, username=f"race_{name}_{tag}", password=password, password_hash=digest,
                role="doctor", display_name="并发医生", institution_id=institution,
                group_id=world.group_id,
            )  # fmt: skip
    url = engine.url.render_as_string(hide_password=False)
    with use_database(url), serve(create_app()) as served:
        tokens = {}
        for name in ("gp", "sp"):
            r = httpx.post(
                served.url("/api/v1/auth/token"),
                data={"username": f"race_{name}_{tag}", "password": password},
            )
            assert r.status_code == 200, r.text
            tokens[name] = r.json()["access_token"]
        answers: Counter[tuple[int, str]] = Counter()
        lock = threading.Lock()

        def book(i: int) -> None:
            who = "gp" if (i // SLOTS) % 2 else "sp"  # each slot: two of each
            # each books for a resident homed at their own institution (a care relationship)
            resident = world.resident_ids[0 if who == "gp" else 1]
            with httpx.Client(base_url=served.base_url, timeout=120) as c:
                r = c.post(
                    f"/api/v1/slots/{world.slot_ids[i % SLOTS]}/book",
                    json={"resident_id": resident},
                    headers={"Authorization": f"Bearer {tokens[who]}"},
                )
            code = r.json().get("error", "ok") if r.status_code != 201 else "ok"
            with lock:
                answers[(r.status_code, code)] += 1
            if r.status_code >= 500:
                raise RuntimeError(r.text)

        outcomes = race(CLIENTS, book)
    assert outcomes == Counter({"ok": CLIENTS}), outcomes  # every client got an answer
    assert answers[(201, "ok")] == SLOTS, answers
    # The losers: a clear 409 naming why (taken, or reserved for primary care).
    assert set(answers) <= {(201, "ok"), (409, "SlotTaken"), (403, "ReservedForPrimaryCare")}
    _assert_fifty_booked_once(engine, world)


def test_forty_admissions_racing_for_ten_beds_fill_each_bed_once(
    engine: Engine, world: World
) -> None:
    system = Actor.system()

    def admit(i: int) -> None:
        with unit_of_work(engine) as s:
            request = capacity.request_admission(
                s,
                system,
                bed_pool_id=world.pool_id,
                resident_id=world.resident_ids[0],
                via_referral=bool(i % 2),
                access_checked=True,
            )
            capacity.admit(s, system, request.id)

    outcomes = race(40, admit)
    assert outcomes["ok"] == 10, outcomes
    assert set(outcomes) <= {"ok", "NoBedFree"}, outcomes
    with unit_of_work(engine) as s:
        stays = s.scalars(select(BedStay.bed_id).where(BedStay.group_id == world.group_id)).all()
    assert sorted(stays) == sorted(set(stays)) and len(stays) == 10
