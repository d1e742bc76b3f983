"""The 媒体库 page: every image uploaded in the reader's org subtree, searchable by name/alt and
date, with its alt text editable in place and, for admins, "use as the org's default cover"."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from annotated_types import Le
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from hub.auditlog.service import record
from hub.config import get_settings
from hub.media import rules, service
from hub.media.models import MediaItem
from hub.orgs.models import Org
from hub.users.rules import Access, Action, access, scope_path
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import page_of, query_day, refuse, render, to_login
from hub.web.views import check_csrf

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 24


@router.get("/media", response_class=HTMLResponse)
def media_page(
    request: Request,
    session: SessionDep,
    q: str = "",
    since: str = "",
    until: str = "",
    page_no: Annotated[int, Le(1_000_000)] = 1,
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.post_read):
        return refuse(request, page, 403)
    q = q.strip()[:100]
    since_day, until_day = query_day(since), query_day(until)
    page_no = max(page_no, 1)
    found = service.search(
        session=session,
        under_path=scope_path(page.actor, Action.post_read),
        name=q,
        since=since_day,
        until=until_day,
        tz=get_settings().timezone,
        page=page_no,
        per_page=PAGE_SIZE,
    )
    org_ids = {item.org_id for item, _code, _who in found.items}
    orgs = {o.id: o for o in session.exec(select(Org).where(col(Org.id).in_(org_ids))).all()}
    cards = []
    for item, _code, who in found.items:
        owner = orgs[item.org_id]
        cards.append(
            {
                "item": item,
                "org": owner,
                "uploader": who,
                "may_edit": page.may(Action.post_write, owner),
                "may_cover": page.may(Action.org_manage, owner),
                "is_cover": owner.default_cover == item.path,
            }
        )
    filters = {"q": q, "since": since, "until": until}
    return render(
        request,
        "pages/media.html",
        page,
        cards=cards,
        total=found.total,
        page_no=page_no,
        pages=max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        bad_dates=bool((since and since_day is None) or (until and until_day is None)),
        alt_max=rules.ALT_MAX,
        notice=request.session.pop("notice", ""),
    )


def _item_in_reach(
    request: Request, session: SessionDep, media_id: int, action: Action, csrf: str
) -> tuple[MediaItem, Org] | Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    item = session.get(MediaItem, media_id)
    owner = session.get(Org, item.org_id) if item is not None else None
    if item is None or owner is None:
        return refuse(request, page, 404)
    verdict = access(page.actor, action, owner.path)
    if verdict is not Access.allowed:
        return refuse(request, page, 404 if verdict is Access.hidden else 403)
    check_csrf(request, csrf)
    return item, owner


def _back(request: Request) -> RedirectResponse:
    referer = request.headers.get("referer", "")
    target = "/media"
    if "/media?" in referer:
        target = "/media?" + referer.split("/media?", 1)[1]
    return RedirectResponse(target, status_code=303)


@router.post("/media/{media_id}/alt")
def set_alt(
    media_id: int,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    alt: Annotated[str, Form()] = "",
) -> Response:
    found = _item_in_reach(request, session, media_id, Action.post_write, csrf)
    if isinstance(found, Response):
        return found
    item, owner = found
    page = page_of(request, session)
    assert page is not None
    item.alt = rules.clean_alt(alt)[: rules.ALT_MAX]
    session.add(item)
    record(
        session=session,
        actor_id=page.user.id,
        actor_name=page.user.username,
        action="media.alt",
        object_type="media",
        object_id=item.path,
        org_id=owner.id,
        summary=f"替代文本：{item.alt or '（无）'}",
        client_ip=client_ip(request),
    )
    session.commit()
    request.session["notice"] = _("已保存图片 %(name)s 的替代文本。") % {
        "name": item.original_name or item.path
    }
    return _back(request)


@router.post("/media/{media_id}/cover")
def set_cover(
    media_id: int,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    found = _item_in_reach(request, session, media_id, Action.org_manage, csrf)
    if isinstance(found, Response):
        return found
    item, owner = found
    page = page_of(request, session)
    assert page is not None
    owner.default_cover = item.path
    session.add(owner)
    record(
        session=session,
        actor_id=page.user.id,
        actor_name=page.user.username,
        action="org.default_cover",
        object_type="org",
        object_id=owner.code,
        org_id=owner.id,
        summary=f"默认封面：{item.path}",
        client_ip=client_ip(request),
    )
    session.commit()
    request.session["notice"] = _("已将此图设为 %(org)s 的默认封面。") % {"org": owner.name}
    return _back(request)
