"""The 评判标准 scorecard page: criteria in their four dimensions with evidencing indicators,
documents and the self-assessment with its history; thin over `indicators.scorecard`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from caregrid.core.clock import today
from caregrid.core.db import commit
from caregrid.core.http import DB, api_router
from caregrid.indicators import scorecard
from caregrid.indicators.rules import STATUS_LABELS
from caregrid.indicators.service import build_report, format_value
from caregrid.profiles.service import active_profile
from caregrid.registry.models import Group
from caregrid.web.auth import CSRF_FIELD, PageActor, check_csrf
from caregrid.web.pages import page

router = api_router(include_in_schema=False)
GroupQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


def _period(period: str | None) -> str:
    return period or str(today().year - 1)


def _back(period: str, group_id: int, number: int) -> RedirectResponse:
    return RedirectResponse(
        f"/scorecard?period={quote(period)}&group_id={group_id}#c{number}", status_code=303
    )


@router.get("/scorecard", response_class=HTMLResponse)
def scorecard_page(
    request: Request,
    db: DB,
    actor: PageActor,
    period: Annotated[str | None, Query(max_length=10)] = None,
    group_id: GroupQuery = None,
) -> HTMLResponse:
    chosen = _period(period)
    gid = scorecard.scorecard_group(db, actor, group_id, write=False)
    profile = active_profile(db)
    report = build_report(db, actor, period=chosen, group_id=gid, profile=profile)
    view = scorecard.build_scorecard(db, actor, profile, report, group_id=gid)
    groups = (
        [(g.id, g.name) for g in db.query(Group).order_by(Group.id)]
        if actor.role != "group_manager"
        else []
    )
    return page(
        request,
        db,
        actor,
        "scorecard",
        "scorecard.html",
        {
            "view": view,
            "period": chosen,
            "groups": groups,
            "can_write": actor.role in scorecard.WRITE_ROLES,
            "LEVEL_LABELS": scorecard.LEVEL_LABELS,
            "STATUS_LABELS": STATUS_LABELS,
            "format_value": format_value,
            "profile_name": profile.name,
        },
    )


@router.post("/scorecard/{number}/assess")
def assess(
    request: Request,
    db: DB,
    actor: PageActor,
    number: int,
    level: Annotated[str, Form(max_length=10)],
    note: Annotated[str, Form(max_length=4000)] = "",
    period: Annotated[str, Form(max_length=10)] = "",
    group_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    chosen = _period(period)
    row = scorecard.assess(
        db, actor, active_profile(db), group_id=group_id, period=chosen, number=number,
        level=level, note=note,
    )  # fmt: skip
    return _back(chosen, row.group_id, number)


@router.post("/scorecard/{number}/documents")
async def upload(
    request: Request,
    db: DB,
    actor: PageActor,
    number: int,
    file: Annotated[UploadFile, File()],
    period: Annotated[str, Form(max_length=10)] = "",
    group_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    content = await file.read(scorecard.MAX_DOCUMENT_BYTES + 1)

    def store() -> int:
        # database work off the event loop, committed in the thread that did it
        row = scorecard.upload_document(
            db, actor, active_profile(db), group_id=group_id, number=number,
            filename=file.filename or "", content_type=file.content_type or "", content=content,
        )  # fmt: skip
        commit(db)
        return row.group_id

    return _back(_period(period), await run_in_threadpool(store), number)


@router.get("/scorecard/documents/{document_id}")
def download(db: DB, actor: PageActor, document_id: int) -> Response:
    document = scorecard.get_document(db, actor, document_id)
    return Response(
        document.content,
        media_type=document.content_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(document.filename)}"},
    )
