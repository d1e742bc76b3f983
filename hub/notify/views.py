"""Pages of notifications: 通知 (one's list, mark read, mark all read) and the choices on 我的账户.
Forms post with a CSRF token and come back with a 303."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.errors import HubError
from hub.notify import rules, service
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.web import i18n
from hub.web.deps import SessionDep
from hub.web.i18n import _
from hub.web.pages import page_of, refuse, render, to_login
from hub.web.views import check_csrf

router = APIRouter(include_in_schema=False)


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    rows = service.listing(session, page.user, limit=200)
    return render(
        request,
        "pages/notifications.html",
        page,
        rows=rows,
        labels={k.value: _(v) for k, v in rules.KIND_LABELS.items()},
        notice=request.session.pop("notice", ""),
    )


@router.post("/notifications/{notification_id}/read")
def read_one(
    notification_id: Id, request: Request, session: SessionDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    check_csrf(request, csrf)
    row = service.own(session, page.user, notification_id)
    if row is None:  # another user's notification reads like a missing one
        return refuse(request, page, 404)
    service.mark_read(session, page.user, notification_id, utcnow())
    session.commit()
    if row.link.startswith("/") and not row.link.startswith("//"):
        return RedirectResponse(row.link, status_code=303)
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/read-all")
def read_all(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    check_csrf(request, csrf)
    marked = service.mark_read(session, page.user, None, utcnow())
    session.commit()
    request.session["notice"] = _("已将 %(n)s 条通知标为已读。") % {"n": marked}
    return RedirectResponse("/notifications", status_code=303)


@router.post("/account/notifications")
async def save_choices(request: Request, session: SessionDep) -> Response:
    """我的账户 → 通知设置: one checkbox per kind and channel, and one's own group robot."""
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    for kind in rules.Kind:
        for channel in rules.Channel:
            on = form.get(f"{kind.value}.{channel.value}") == "1"
            service.set_choice(session, page.user, kind.value, channel.value, on)
    try:
        service.save_robot(
            session,
            flavor=str(form.get("robot_flavor", "wecom")),
            url=str(form.get("robot_url", ""))[:1000],
            secret=str(form.get("robot_secret", ""))[:200],
            user_id=page.user.id,
        )
    except HubError as exc:
        session.rollback()
        request.session["error"] = i18n.error_text(exc, request)
        return RedirectResponse("/account#notify", status_code=303)
    session.commit()
    request.session["notice"] = _("通知设置已保存。")
    return RedirectResponse("/account#notify", status_code=303)


def notify_choices(session: SessionDep, user: User) -> dict[str, Any]:
    """What the 通知设置 card of 我的账户 shows."""
    robot = service.robot_of(session, user_id=user.id)
    return {
        "notify_prefs": service.preferences(session, user),
        "notify_channels": [(c.value, _(label)) for c, label in rules.CHANNEL_LABELS.items()],
        "notify_flavors": [(f.value, _(label)) for f, label in rules.FLAVOR_LABELS.items()],
        "notify_robot": robot,
    }
