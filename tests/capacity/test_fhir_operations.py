"""The IHE ITI Scheduling operations over FHIR R4: Appointment/$find proposes free slots the
caller may book, $hold keeps one (pending, with a token and expiry), $book books it for a
patient; a taken slot answers 409 and a reserved slot is refused to a lead-hospital doctor.
Inputs are built with the independent fhir.resources (R4B) models and outputs validated
with them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.appointment import Appointment, AppointmentParticipant
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.parameters import Parameters, ParametersParameter
from fhir.resources.R4B.reference import Reference
from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.capacity.fhir import HOLD_EXPIRES_URL, HOLD_TOKEN_SYSTEM, POOL_SYSTEM
from caregrid.capacity.models import Appointment as AppointmentRow
from caregrid.capacity.rules import HOLD_MINUTES
from caregrid.core.clock import frozen_clock
from tests.conftest import City, login
from tests.referral.factories import T0, cardiology, make_clinic, make_resident, slot_status

FIND, HOLD, BOOK = (
    "/fhir/R4/Appointment/$find",
    "/fhir/R4/Appointment/$hold",
    "/fhir/R4/Appointment/$book",
)


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        validate(entry["resource"])


def params(*entries: ParametersParameter) -> dict[str, Any]:
    return Parameters(parameter=list(entries)).model_dump(mode="json", exclude_none=True)


def find_params(city: City, **extra: str) -> dict[str, Any]:
    entries = [
        ParametersParameter(name="start", valueDateTime=T0.isoformat()),
        ParametersParameter(name="end", valueDateTime=(T0 + timedelta(days=7)).isoformat()),
        ParametersParameter(
            name="organization", valueReference=Reference(reference=f"Organization/{city.lead_id}")
        ),
    ]
    entries += [
        ParametersParameter(name=k.replace("_", "-"), valueString=v) for k, v in extra.items()
    ]
    return params(*entries)


def appointment_param(slot_id: int, patient: int | None = None, token: str | None = None) -> Any:
    participants = (
        [AppointmentParticipant(actor=Reference(reference=f"Patient/{patient}"), status="accepted")]
        if patient
        else [AppointmentParticipant(actor=Reference(reference="Location/1"), status="accepted")]
    )
    appointment = Appointment(
        status="pending",
        slot=[Reference(reference=f"Slot/{slot_id}")],
        participant=participants,
        identifier=[Identifier(system=HOLD_TOKEN_SYSTEM, value=token)] if token else None,
    )
    return ParametersParameter(name="appointment-resource", resource=appointment)


def entries(response: Any) -> list[dict[str, Any]]:
    body = response.json()
    validate(body)
    assert body["resourceType"] == "Bundle"
    return [e["resource"] for e in body.get("entry", [])]


def test_find_hold_book_books_a_reserved_slot_for_a_township_doctors_patient(
    client: TestClient, db: Session, city: City
) -> None:
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    with frozen_clock(T0):
        gp = login(client, "gp_wang")
        found = client.post(
            FIND,
            json=find_params(
                city,
                specialty="心血管内科",
                service_category=f"{POOL_SYSTEM}|reserved",
            ),
            headers=gp,
        )
        assert found.status_code == 200, found.text
        proposed = entries(found)
        assert [p["slot"][0]["reference"] for p in proposed] == [
            f"Slot/{i}" for i in clinic.reserved_ids
        ]
        assert {p["status"] for p in proposed} == {"proposed"}
        assert proposed[0]["specialty"][0]["coding"][0]["code"] == str(cardiology(db, city))

        held = client.post(
            HOLD,
            json=params(
                ParametersParameter(
                    name="appointment-reference",
                    valueReference=Reference(reference=f"Appointment/{proposed[0]['id']}"),
                )
            ),
            headers=gp,
        )
        assert held.status_code == 200, held.text
        (pending,) = entries(held)
        assert pending["status"] == "pending"
        token = pending["identifier"][0]["value"]
        (expires,) = [e for e in pending["extension"] if e["url"] == HOLD_EXPIRES_URL]
        assert expires["valueDateTime"].startswith(
            (T0 + timedelta(minutes=HOLD_MINUTES)).isoformat()[:16]
        )
        slot_id = clinic.reserved_ids[0]
        assert slot_status(db, slot_id) == "held"

        booked = client.post(
            BOOK, json=params(appointment_param(slot_id, resident, token)), headers=gp
        )
        assert booked.status_code == 200, booked.text
        (appointment,) = entries(booked)
    assert appointment["status"] == "booked"
    assert appointment["slot"] == [{"reference": f"Slot/{slot_id}"}]
    assert appointment["serviceCategory"][0]["coding"][0]["code"] == "reserved"
    row = db.get(AppointmentRow, int(appointment["id"]))
    assert row is not None and row.resident_id == resident and row.pool == "reserved"
    assert slot_status(db, slot_id) == "booked"


def test_booking_a_taken_slot_answers_409_and_books_nothing(
    client: TestClient, db: Session, city: City
) -> None:
    first, second = make_resident(db, city, seq=1), make_resident(db, city, seq=2, name="李四")
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    slot_id = clinic.general_ids[0]
    with frozen_clock(T0):
        gp = login(client, "gp_wang")
        ok = client.post(BOOK, json=params(appointment_param(slot_id, first)), headers=gp)
        assert ok.status_code == 200, ok.text
        again = client.post(BOOK, json=params(appointment_param(slot_id, second)), headers=gp)
        hold_again = client.post(
            HOLD,
            json=params(
                ParametersParameter(
                    name="appointment-reference",
                    valueReference=Reference(reference=f"Appointment/slot-{slot_id}"),
                )
            ),
            headers=gp,
        )
    for response in (again, hold_again):
        assert response.status_code == 409, response.text
        outcome = response.json()
        validate(outcome)
        assert outcome["issue"][0]["code"] == "conflict"
    booked = db.scalars(select(AppointmentRow.resident_id).where(AppointmentRow.slot_id == slot_id))
    assert list(booked) == [first]


def test_a_lapsed_hold_lets_another_book_and_the_late_holder_gets_409(
    client: TestClient, db: Session, city: City
) -> None:
    first, second = make_resident(db, city, seq=1), make_resident(db, city, seq=2, name="李四")
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    slot_id = clinic.general_ids[1]
    with frozen_clock(T0):
        gp = login(client, "gp_wang")
        held = client.post(HOLD, json=params(appointment_param(slot_id)), headers=gp)
        token = entries(held)[0]["identifier"][0]["value"]
    with frozen_clock(T0 + timedelta(minutes=HOLD_MINUTES + 1)):
        other = client.post(BOOK, json=params(appointment_param(slot_id, second)), headers=gp)
        assert other.status_code == 200, other.text
        late = client.post(BOOK, json=params(appointment_param(slot_id, first, token)), headers=gp)
    assert late.status_code == 409
    assert late.json()["resourceType"] == "OperationOutcome"


def test_a_reserved_slot_is_neither_proposed_nor_held_for_a_lead_hospital_doctor(
    client: TestClient, db: Session, city: City
) -> None:
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    with frozen_clock(T0):
        specialist = login(client, "specialist_li")
        proposed = entries(client.post(FIND, json=find_params(city), headers=specialist))
        reserved_only = entries(
            client.post(
                FIND, json=find_params(city, service_category="reserved"), headers=specialist
            )
        )
        refused = client.post(
            HOLD, json=params(appointment_param(clinic.reserved_ids[0])), headers=specialist
        )
    assert {p["slot"][0]["reference"] for p in proposed} == {
        f"Slot/{i}" for i in clinic.general_ids
    }
    assert reserved_only == []
    assert refused.status_code == 403
    outcome = refused.json()
    validate(outcome)
    assert "基层" in outcome["issue"][0]["diagnostics"]
    assert slot_status(db, clinic.reserved_ids[0]) == "free"


def test_outsiders_find_nothing_and_bad_parameters_are_an_operation_outcome(
    client: TestClient, db: Session, city: City
) -> None:
    with frozen_clock(T0):
        make_clinic(db, city)
    db.commit()
    with frozen_clock(T0):
        outsider = login(client, "outsider_zhao")
        gp = login(client, "gp_wang")
        assert entries(client.post(FIND, json=find_params(city), headers=outsider)) == []
        not_parameters = client.post(FIND, json={"resourceType": "Patient"}, headers=gp)
        both_missing = client.post(BOOK, json=params(), headers=gp)
        no_patient = client.post(
            BOOK,
            json=params(
                ParametersParameter(
                    name="appointment-reference",
                    valueReference=Reference(reference="Appointment/slot-1"),
                )
            ),
            headers=gp,
        )
    for response in (not_parameters, both_missing, no_patient):
        assert response.status_code == 422, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_capability_statement_names_the_ihe_operations(client: TestClient) -> None:
    statement = client.get("/fhir/R4/metadata").json()
    validate(statement)
    (appointment,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Appointment"]
    assert {o["name"] for o in appointment["operation"]} == {"find", "hold", "book"}


def test_find_by_department_code_and_book_by_reference_with_patient_reference(
    client: TestClient, db: Session, city: City
) -> None:
    resident = make_resident(db, city)
    with frozen_clock(T0):
        clinic = make_clinic(db, city)
    db.commit()
    dept = cardiology(db, city)
    with frozen_clock(T0):
        gp = login(client, "gp_wang")
        by_code = entries(
            client.post(
                FIND,
                json=find_params(
                    city, specialty=f"https://caregrid.org/fhir/CodeSystem/department|{dept}"
                ),
                headers=gp,
            )
        )
        unknown = entries(client.post(FIND, json=find_params(city, specialty="眼科"), headers=gp))
        booked = client.post(
            BOOK,
            json=params(
                ParametersParameter(
                    name="appointment-reference",
                    valueReference=Reference(reference=f"Appointment/{by_code[0]['id']}"),
                ),
                ParametersParameter(
                    name="patient-reference",
                    valueReference=Reference(reference=f"Patient/{resident}"),
                ),
            ),
            headers=gp,
        )
    assert len(by_code) == len(clinic.slot_ids)  # the GP may book reserved slots too
    assert unknown == []
    assert booked.status_code == 200, booked.text
    (appointment,) = entries(booked)
    assert appointment["participant"][0]["actor"]["reference"] == f"Patient/{resident}"
    assert slot_status(db, clinic.slot_ids[0]) == "booked"
