"""Benchmark: what the FHIR scheduling operations cost over the REST API they share a service
with. One client books `--bookings` reserved slots of the lead hospital for a GP's residents,
one after another, through

1. `rest`  `GET /api/v1/slots` (one free slot) + `POST /api/v1/slots/{id}/hold` + `/book`;
2. `fhir`  `POST /fhir/R4/Appointment/$find` (`_count` 1) + `$hold` + `$book` (Parameters in,
           Bundles out),

alternating the two, on the demo city served by uvicorn over HTTP. Prints p50/p99 of a whole
find-hold-book round and the ratio of medians (fhir / rest), then the time of one pass of the
periodic jobs (`caregrid.jobs.service.run_once`) on the same database.

    .venv/bin/python benchmarks/bench_fhir_scheduling.py [--residents 2000] [--bookings 50]

The REST round lists up to 500 slots to pick a reserved one (`/api/v1/slots` has no pool
filter); `$find` asks for `service-category` reserved and one proposal.

Figures on 2026-11-23 (SQLite, 2 cores shared with other builds at load ~10;
`--residents 2000 --bookings 50`, two runs): rest p50 96-101 ms / p99 476-517 ms, fhir p50
66-69 ms / p99 702-753 ms, ratio 0.68-0.69; warm, single requests measured in-process: $find
16-21 ms, $hold 24 ms, $book 14-24 ms. One jobs pass on that city (80 reserved slots released,
3 referrals expired): 31-119 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.stats import percentile

PASSWORD = "bench-pass-123"
POOL = "https://caregrid.org/fhir/CodeSystem/capacity-pool|reserved"


def _rest_round(client: httpx.Client, lead: int, resident: int) -> None:
    # past the release lead time, where reserved slots are still reserved
    since = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    params = {"institution_id": lead, "limit": 500, "since": since}
    slots = client.get("/api/v1/slots", params=params).json()
    slot = next(s for s in slots if s["pool"] == "reserved" and s["status"] == "free")
    hold = client.post(f"/api/v1/slots/{slot['id']}/hold").json()
    booked = client.post(
        f"/api/v1/slots/{slot['id']}/book",
        json={"resident_id": resident, "hold_token": hold["hold_token"]},
    )
    assert booked.status_code == 201, booked.text


def _fhir_round(client: httpx.Client, lead: int, resident: int) -> None:
    found = client.post(
        "/fhir/R4/Appointment/$find",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "organization", "valueReference": {"reference": f"Organization/{lead}"}},
                {"name": "service-category", "valueString": POOL},
                {"name": "_count", "valueInteger": 1},
            ],
        },
    ).json()
    proposed: dict[str, Any] = found["entry"][0]["resource"]
    held = client.post(
        "/fhir/R4/Appointment/$hold",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "appointment-reference",
                    "valueReference": {"reference": f"Appointment/{proposed['id']}"},
                }
            ],
        },
    ).json()["entry"][0]["resource"]
    appointment = {
        "resourceType": "Appointment",
        "status": "pending",
        "slot": proposed["slot"],
        "identifier": held["identifier"],
        "participant": [{"actor": {"reference": f"Patient/{resident}"}, "status": "accepted"}],
    }
    booked = client.post(
        "/fhir/R4/Appointment/$book",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "appointment-resource", "resource": appointment}],
        },
    )
    assert booked.status_code == 200, booked.text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--bookings", type=int, default=50, help="per way (reserved slots last)")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "fhir-scheduling.db"
    os.environ["CAREGRID_DATABASE_URL"] = f"sqlite:///{path}"

    from sqlalchemy import select
    from tests.support import serve

    from caregrid.app import create_app
    from caregrid.core.db import get_engine, unit_of_work
    from caregrid.demo.builder import build_demo
    from caregrid.identity.models import User
    from caregrid.jobs.service import run_once
    from caregrid.registry.models import Group, Resident

    engine = get_engine()
    build_demo(engine, profile_id="linyi", residents=args.residents, seed=7, password=PASSWORD)
    with unit_of_work(engine) as s:
        gp = s.scalars(select(User).where(User.username == "gp1")).one()
        lead = s.scalar(select(Group.lead_institution_id).where(Group.id == gp.group_id))
        residents = list(
            s.scalars(
                select(Resident.id)
                .where(Resident.home_institution_id == gp.institution_id)
                .order_by(Resident.id)
            )
        )
    assert lead is not None and residents
    timings: dict[str, list[float]] = {"rest": [], "fhir": []}
    rounds = {"rest": _rest_round, "fhir": _fhir_round}
    with serve(create_app()) as served, httpx.Client(base_url=served.base_url) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "gp1", "password": PASSWORD}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        for i in range(args.bookings):
            for kind in ("rest", "fhir") if i % 2 else ("fhir", "rest"):
                started = time.perf_counter()
                rounds[kind](client, lead, residents[(2 * i + (kind == "fhir")) % len(residents)])
                timings[kind].append(time.perf_counter() - started)
    for kind, values in timings.items():
        print(
            f"{kind:5} {len(values)} bookings: p50 {statistics.median(values) * 1000:.1f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.1f} ms"
        )
    ratio = statistics.median(timings["fhir"]) / statistics.median(timings["rest"])
    print(f"ratio fhir / rest (medians): {ratio:.2f}")
    with unit_of_work(engine) as s:
        started = time.perf_counter()
        result = run_once(s)
        elapsed = time.perf_counter() - started
    print(
        f"jobs pass: {elapsed * 1000:.1f} ms (holds {result.holds_dropped}, released "
        f"{result.released_slots}, expired {result.expired_referrals})"
    )


if __name__ == "__main__":
    main()
