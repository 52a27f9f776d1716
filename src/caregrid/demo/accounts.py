"""The demo city's accounts: one for every role, linked to a practitioner and institution."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from caregrid.core.pagination import PageParams
from caregrid.identity.passwords import hash_password
from caregrid.identity.service import ROLE_LABELS, create_user
from caregrid.registry import service as registry
from caregrid.registry.models import Institution, Practitioner


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    role_label: str
    display_name: str
    institution: str


def _staff(session: Session, institution_id: int) -> list[Practitioner]:
    rows, _ = registry.search_practitioners(
        session, PageParams(page=1, size=10), institution_id=institution_id
    )
    return list(rows)


def create_demo_accounts(session: Session, password: str) -> list[DemoAccount]:
    """`admin`, an insurance officer and a commission viewer for the city, and per group a
    manager, a coordinator, a lead-hospital specialist, a primary-care GP, a diagnostic-centre
    staff member and a pharmacist. All share the printed demo password (hashed once)."""
    accounts: list[DemoAccount] = []
    password_hash = hash_password(password)

    def add(
        username: str,
        role: str,
        name: str,
        inst: Institution | None,
        group_id: int | None,
        practitioner: Practitioner | None = None,
    ) -> None:
        display = practitioner.name if practitioner else name
        create_user(
            session,
            username=username,
            password=password,
            password_hash=password_hash,
            role=role,
            display_name=display,
            institution_id=inst.id if inst else None,
            group_id=group_id,
            practitioner_id=practitioner.id if practitioner else None,
        )
        accounts.append(
            DemoAccount(username, role, ROLE_LABELS[role], display, inst.name if inst else "—")
        )

    add("admin", "admin", "系统管理员", None, None)
    for k, listed in enumerate(registry.list_groups(session), start=1):
        group = listed.group
        members = registry.group_members(session, group.id)
        lead = next(m for m in members if m.id == group.lead_institution_id)
        primary = next((m for m in members if m.level == "primary"), lead)
        lead_staff = _staff(session, lead.id)
        primary_staff = _staff(session, primary.id)

        def pick(staff: list[Practitioner], i: int) -> Practitioner | None:
            return staff[i] if len(staff) > i else None

        add(f"manager{k}", "group_manager", "集团运营管理中心", lead, group.id)
        add(f"coordinator{k}", "coordinator", "转诊协调员", lead, group.id, pick(lead_staff, 2))
        add(f"specialist{k}", "doctor", "专科医生", lead, group.id, pick(lead_staff, 0))
        add(f"gp{k}", "doctor", "家庭医生", primary, group.id, pick(primary_staff, 0))
        add(f"centre{k}", "centre_staff", "影像中心", lead, group.id, pick(lead_staff, 3))
        add(f"pharmacist{k}", "pharmacist", "药师", lead, group.id, pick(lead_staff, 4))
    add("insurance", "insurance_officer", "医保经办", None, None)
    add("commission", "commission_viewer", "卫健委", None, None)
    session.flush()
    return accounts
