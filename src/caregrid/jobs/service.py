"""One pass of the periodic work, and the loop that repeats it in the web server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from caregrid.capacity import service as capacity
from caregrid.core.actor import Actor
from caregrid.core.clock import now
from caregrid.core.db import unit_of_work
from caregrid.referral import service as referrals

log = logging.getLogger(__name__)

# Every change a pass makes is audited under this actor (role "system").
JOBS_ACTOR = Actor.system("scheduled-jobs")


@dataclass(frozen=True)
class JobRun:
    at: datetime
    holds_dropped: int
    released_slots: int
    expired_referrals: int


def run_once(session: Session, *, at: datetime | None = None) -> JobRun:
    """Drop lapsed holds and expire overdue referrals (which gives their booked slots back)
    first, so that the slots they free are released with the rest of the unused reserved
    slots within the lead time. Each step audits what it changes."""
    at = at or now()
    holds = capacity.drop_lapsed_holds(session, JOBS_ACTOR, at=at)
    expired = referrals.expire_overdue(session, JOBS_ACTOR, at=at)
    released = capacity.release_reserved(session, JOBS_ACTOR, at=at)
    return JobRun(at, holds, released, expired)


def run_in_transaction() -> JobRun:
    with unit_of_work() as session:
        return run_once(session)


async def run_periodically(interval_seconds: float) -> None:
    """Run a pass every `interval_seconds` until cancelled. A failing pass is logged and
    the loop goes on: the next pass retries the same work."""
    while True:
        try:
            result = await asyncio.to_thread(run_in_transaction)
            log.info("scheduled jobs: %s", result)
        except Exception:
            log.exception("scheduled jobs pass failed")
        await asyncio.sleep(interval_seconds)
