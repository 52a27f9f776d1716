"""The demo city's accounts: one for every role, linked to a practitioner and institution."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from caregrid.identity.service import ROLE_LABELS, create_user
from caregrid.registry.models import Group, Institution, Practitioner, PractitionerRole


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    role_label: str
    display_name: str
    institution: str


def _practitioner_at(session: Session, institution_id: int, skip: int = 0) -> Practitioner | None:
    return session.scalar(
        select(Practitioner)
        .join(PractitionerRole, PractitionerRole.practitioner_id == Practitioner.id)
        .where(PractitionerRole.institution_id == institution_id, PractitionerRole.primary_site)
        .order_by(Practitioner.id)
        .offset(skip)
        .limit(1)
    )


def create_demo_accounts(session: Session, password: str) -> list[DemoAccount]:
    """`admin`, an insurance officer and a commission viewer for the city, and per group a
    manager, a coordinator, a lead-hospital specialist, a primary-care GP, a diagnostic-centre
    staff member and a pharmacist."""
    accounts: list[DemoAccount] = []

    def add(username: str, role: str, name: str, inst: Institution | None, group_id: int | None,
            practitioner: Practitioner | None = None) -> None:
        create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=practitioner.name if practitioner else name,
            institution_id=inst.id if inst else None,
            group_id=group_id,
            practitioner_id=practitioner.id if practitioner else None,
        )
        accounts.append(
            DemoAccount(username, role, ROLE_LABELS[role],
                        practitioner.name if practitioner else name, inst.name if inst else "—")
        )

    add("admin", "admin", "系统管理员", None, None)
    groups = session.scalars(select(Group).order_by(Group.id)).all()
    for k, group in enumerate(groups, start=1):
        lead = session.get(Institution, group.lead_institution_id)
        assert lead is not None
        primary = session.scalar(
            select(Institution)
            .where(Institution.group_id == group.id, Institution.level == "primary")
            .order_by(Institution.id)
            .limit(1)
        ) or lead
        add(f"manager{k}", "group_manager", "集团运营管理中心", lead, group.id)
        add(f"coordinator{k}", "coordinator", "转诊协调员", lead, group.id,
            _practitioner_at(session, lead.id, 2))
        add(f"specialist{k}", "doctor", "专科医生", lead, group.id, _practitioner_at(session, lead.id, 0))
        add(f"gp{k}", "doctor", "家庭医生", primary, group.id, _practitioner_at(session, primary.id, 0))
        add(f"centre{k}", "centre_staff", "影像中心", lead, group.id, _practitioner_at(session, lead.id, 3))
        add(f"pharmacist{k}", "pharmacist", "药师", lead, group.id, _practitioner_at(session, lead.id, 4))
    add("insurance", "insurance_officer", "医保经办", None, None)
    add("commission", "commission_viewer", "卫健委", None, None)
    session.flush()
    return accounts
