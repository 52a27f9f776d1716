"""Registry tables: grids, groups, institutions, departments, practitioners and their roles,
residents (the master patient index) and per-level disease catalogues."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

LEVELS = ("tertiary", "secondary", "primary", "village")
KINDS = (
    "general",
    "tcm",
    "maternal_child",
    "cdc",
    "specialty",
    "rehab_nursing",
    "elderly_care",
)
ROLES_IN_GROUP = ("lead", "member", "sub_centre", "collaborator")
GROUP_KINDS = ("city_group", "county_community", "city_alliance")

# Chinese text compared by prefix must sort by code point on PostgreSQL too.
NameText = String(100).with_variant(String(100, collation="C"), "postgresql")


class Grid(Base):
    __tablename__ = "grid"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(50))
    districts: Mapped[str] = mapped_column(String(400), default="")  # "、"-joined names
    population: Mapped[int | None] = mapped_column(Integer)


class Group(Base):
    __tablename__ = "med_group"
    __table_args__ = (CheckConstraint(f"kind IN {GROUP_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"))
    lead_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", use_alter=True, name="fk_med_group_lead")
    )

    grid: Mapped[Grid] = relationship(lazy="raise")


class Institution(Base):
    __tablename__ = "institution"
    __table_args__ = (
        CheckConstraint(f"level IN {LEVELS!r}", name="level"),
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint(f"role IN {ROLES_IN_GROUP!r}", name="role"),
        Index("ix_institution_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(NameText)
    level: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(12), default="member")
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    district: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(200))
    beds: Mapped[int | None] = mapped_column(Integer)
    source_clause: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True)


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("institution_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))


class Practitioner(Base):
    __tablename__ = "practitioner"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # 执业证书编码 or local staff no.
    name: Mapped[str] = mapped_column(NameText, index=True)
    sex: Mapped[str] = mapped_column(String(6))
    title: Mapped[str | None] = mapped_column(String(20))  # 职称: 主任医师, 主治医师, ...
    qualification: Mapped[str] = mapped_column(String(20), default="physician")


class PractitionerRole(Base):
    """Where a practitioner works; several rows = 多点执业 (000 §三(三)2)."""

    __tablename__ = "practitioner_role"
    __table_args__ = (UniqueConstraint("practitioner_id", "institution_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    role: Mapped[str] = mapped_column(String(20))  # physician, nurse, pharmacist, technician, ...
    primary_site: Mapped[bool] = mapped_column(default=True)


class Resident(Base):
    """A person in the master patient index. The 身份证号 is stored in full (needed for matching)
    but leaves the service layer only masked."""

    __tablename__ = "resident"
    __table_args__ = (
        CheckConstraint("sex IN ('male', 'female')", name="sex"),
        Index("ix_resident_name", "name", "id"),
        Index("ix_resident_match", "birth_date", "sex"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(NameText)
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(200))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    # The primary-care member that keeps the resident's health record (建档/管理机构); its
    # staff have a care relationship with the resident.
    home_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
    deceased_on: Mapped[date | None] = mapped_column(Date)


class DiseaseCatalogEntry(Base):
    """One line of a per-level 诊疗病种目录: an ICD-10 code or range the level is expected to
    treat (000 §三(一)2; 003 §二(五)17). `group_id` NULL is the default catalogue."""

    __tablename__ = "disease_catalog_entry"
    __table_args__ = (
        CheckConstraint(f"level IN {LEVELS!r}", name="level"),
        UniqueConstraint("group_id", "level", "code_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    level: Mapped[str] = mapped_column(String(12), index=True)
    code_range: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(20))
