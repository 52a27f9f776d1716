"""Capacity tables. Modelled on FHIR Schedule / Slot / Appointment; beds as rows of a ward's
pool so that a bed, like a slot, is one row a booking updates conditionally.

Double booking is impossible at the database level twice over: the booking UPDATE only
matches a row still free (or held by the same token), and `Appointment.active_slot_id` /
`BedStay.active_bed_id` are UNIQUE (NULL once the appointment or stay ends, so a freed slot can
be booked again)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from caregrid.core.clock import now
from caregrid.core.db import Base, UTCDateTime

POOLS = ("general", "reserved")
SLOT_STATUSES = ("free", "held", "booked", "blocked")
APPOINTMENT_STATUSES = ("booked", "arrived", "cancelled", "noshow")
BED_STATUSES = ("free", "occupied", "blocked")
ADMISSION_STATUSES = ("waiting", "admitted", "cancelled")

Fen = BigInteger().with_variant(Integer, "sqlite")


class Schedule(Base):
    """A bookable service of one department (FHIR Schedule): e.g. 心血管内科专家门诊."""

    __tablename__ = "schedule"
    __table_args__ = (UniqueConstraint("institution_id", "department_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    name: Mapped[str] = mapped_column(String(60))
    registration_fee_fen: Mapped[int] = mapped_column(Fen, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Slot(Base):
    """One bookable appointment time (FHIR Slot). `pool` is where it sits now: a reserved
    slot still free when the release lead time arrives moves to the general pool and keeps
    `released_at`."""

    __tablename__ = "slot"
    __table_args__ = (
        CheckConstraint(f"pool IN {POOLS!r}", name="pool"),
        CheckConstraint(f"status IN {SLOT_STATUSES!r}", name="status"),
        CheckConstraint("end_at > start_at", name="period"),
        Index("ix_slot_schedule_start", "schedule_id", "start_at"),
        Index("ix_slot_institution_start", "institution_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str] = mapped_column(String(10), default="general")
    # Offered as reserved when created (kept after release, for "reserved offered vs used").
    reserved_offered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="free")
    hold_token: Mapped[str | None] = mapped_column(String(40))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class Registration(Base):
    """A registration (挂号) at a member. A referral's registration is carried to the target:
    the patient is registered once in the group for one visit (001 §三(二)5), so a registration
    made through a referral records no second fee (`fee_fen` 0, `carried` true)."""

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    fee_fen: Mapped[int] = mapped_column(Fen, default=0)
    carried: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Appointment(Base):
    """A booked slot (FHIR Appointment)."""

    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint(f"status IN {APPOINTMENT_STATUSES!r}", name="status"),
        CheckConstraint(f"pool IN {POOLS!r}", name="pool"),
        Index("ix_appointment_resident", "resident_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    # The slot while the appointment holds it; NULL once cancelled. UNIQUE: the database
    # refuses a second live appointment on one slot whatever the application does.
    active_slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    pool: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="booked")
    booked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    booked_by_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"))
    via_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BedPool(Base):
    """The beds of one ward (病区), with how many of them are reserved for primary care. A
    bed's pool (reserved or general) is set when the ward's pool is created and never moved,
    so the beds of the pools created by a day give the reserved share on that day."""

    __tablename__ = "bed_pool"
    __table_args__ = (UniqueConstraint("institution_id", "ward"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    ward: Mapped[str] = mapped_column(String(60))
    # when the ward's beds entered the pool (NULL: before this was recorded)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=now)


class Bed(Base):
    __tablename__ = "bed"
    __table_args__ = (
        CheckConstraint(f"status IN {BED_STATUSES!r}", name="status"),
        CheckConstraint(f"pool IN {POOLS!r}", name="pool"),
        UniqueConstraint("bed_pool_id", "label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_pool_id: Mapped[int] = mapped_column(ForeignKey("bed_pool.id"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    pool: Mapped[str] = mapped_column(String(10), default="general")
    status: Mapped[str] = mapped_column(String(10), default="free")


class AdmissionRequest(Base):
    """A patient waiting for a bed in a pool. Higher `priority` is admitted first: referred
    contracted residents before referred residents before the rest (001 §三(三)1 优先住院)."""

    __tablename__ = "admission_request"
    __table_args__ = (
        CheckConstraint(f"status IN {ADMISSION_STATUSES!r}", name="status"),
        Index("ix_admission_queue", "bed_pool_id", "status", "priority", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_pool_id: Mapped[int] = mapped_column(ForeignKey("bed_pool.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    via_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    from_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BedStay(Base):
    """A bed given to a patient. `active_bed_id` is UNIQUE: one live stay per bed."""

    __tablename__ = "bed_stay"

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("bed.id"), index=True)
    active_bed_id: Mapped[int | None] = mapped_column(ForeignKey("bed.id"), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("med_group.id"))
    admission_request_id: Mapped[int | None] = mapped_column(ForeignKey("admission_request.id"))
    pool: Mapped[str] = mapped_column(String(10))
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
