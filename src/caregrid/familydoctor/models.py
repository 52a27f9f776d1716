"""Family-doctor tables: teams and members, packages and their services, contracts, service
deliveries and the team task inbox. Money is integer fen."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime
from caregrid.record.models import Fen

MEMBER_ROLES = ("gp", "nurse", "public_health", "specialist", "tcm")
POPULATION_GROUPS = (
    "general",
    "chronic",
    "women",
    "children",
    "elderly",
    "disabled",
    "special_family",
)
CONTRACT_STATUSES = ("active", "ended", "terminated", "changed")
TASK_STATUSES = ("open", "done", "cancelled")


class Team(Base):
    """A family-doctor team (家庭医生团队) based at a primary-care member (000 §三(五)1)."""

    __tablename__ = "fd_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    base_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class TeamMember(Base):
    __tablename__ = "fd_team_member"
    __table_args__ = (
        CheckConstraint(f"role IN {MEMBER_ROLES!r}", name="role"),
        UniqueConstraint("team_id", "practitioner_id", name="uq_fd_team_member"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("fd_team.id"), index=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    role: Mapped[str] = mapped_column(String(16))
    leader: Mapped[bool] = mapped_column(Boolean, default=False)


class ServicePackage(Base):
    """A menu package (菜单式签约服务包, 000 §三(五)2) for one population group, with its annual
    fee split into insurance fund, public-health fund and self-pay."""

    __tablename__ = "fd_package"
    __table_args__ = (CheckConstraint(f"population IN {POPULATION_GROUPS!r}", name="population"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    population: Mapped[str] = mapped_column(String(16))
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(6))
    required_program: Mapped[str | None] = mapped_column(String(12))
    fund_fen: Mapped[int] = mapped_column(Fen)
    public_health_fen: Mapped[int] = mapped_column(Fen)
    self_pay_fen: Mapped[int] = mapped_column(Fen)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PackageService(Base):
    __tablename__ = "fd_package_service"
    __table_args__ = (UniqueConstraint("package_id", "service_code", name="uq_fd_package_service"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("fd_package.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    times_per_year: Mapped[int] = mapped_column(Integer)


class Contract(Base):
    """A resident's contract with a team. A resident has at most one active contract, enforced
    by a partial unique index so that two concurrent signings cannot both win
    (国卫基层发〔2018〕35号: 同期只能选择1名签约家庭医生(团队))."""

    __tablename__ = "fd_contract"
    __table_args__ = (
        CheckConstraint(f"status IN {CONTRACT_STATUSES!r}", name="status"),
        CheckConstraint("end_date > start_date", name="period"),
        Index(
            "uq_fd_contract_active_resident",
            "resident_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_fd_contract_team_status", "team_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("fd_team.id"))
    package_id: Mapped[int] = mapped_column(ForeignKey("fd_package.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    doctor_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="active")
    fee_fen: Mapped[int] = mapped_column(Fen)
    previous_contract_id: Mapped[int | None] = mapped_column(ForeignKey("fd_contract.id"))
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(200))
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 0-100, latest survey
    signed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class ServiceDelivery(Base):
    """A contracted service delivered (an annual check, a medication review, ...). Chronic
    follow-ups are counted from the chronic domain, not copied here."""

    __tablename__ = "fd_service_delivery"
    __table_args__ = (Index("ix_fd_delivery_contract", "contract_id", "service_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("fd_contract.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    service_code: Mapped[str] = mapped_column(String(30))
    delivered_on: Mapped[date] = mapped_column(Date)
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class TeamTask(Base):
    """The team's inbox: a task about a resident (e.g. 下转随访 created by a down-referral)."""

    __tablename__ = "fd_team_task"
    __table_args__ = (
        CheckConstraint(f"status IN {TASK_STATUSES!r}", name="status"),
        Index("ix_fd_team_task_open", "team_id", "status", "due"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("fd_team.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    due: Mapped[date] = mapped_column(Date)
    detail: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
