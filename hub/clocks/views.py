"""The clocks dashboard (时限看板): what is overdue, due soon and met late, per org, with a form
to open a clock. Editors see their subtree; supervisors the whole matrix."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, func, select

from hub.clocks import service
from hub.clocks.models import Clock, ClockPost, ClockPublic
from hub.clocks.rules import ClockStatus
from hub.config import Settings
from hub.errors import Conflict, HubError, Invalid, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts.models import Post
from hub.security import same_token
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, is_root_path, may, scope_path, sees
from hub.users.service import actor_of
from hub.users.who import Who
from hub.web import i18n
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.i18n import _
from hub.web.templating import get_templates
from hub.web.views import csrf_token, page_user

router = APIRouter(include_in_schema=False)


def speak_to(request: Request, user: User) -> None:
    """Words made in Python (labels, durations) in the page's language, as the template's."""
    request.scope["govhub_user_locale"] = user.locale
    i18n.use_locale(i18n.locale_of(request, user.locale))


DUE_SOON = timedelta(hours=24)
RECENT = timedelta(days=90)


def _manageable_orgs(session: Session, user: User) -> list[Org]:
    actor = actor_of(session=session, user=user)
    if not may(actor, Action.clock_manage):
        return []
    candidates = session.exec(
        select(Org).where(col(Org.path).startswith(actor.org_path)).order_by(col(Org.path))
    ).all()
    return [org for org in candidates if may(actor, Action.clock_manage, org.path)]


@dataclass(frozen=True)
class Entry:
    clock: ClockPublic
    remaining: str
    progress: int  # % of the allowed time used
    due_soon: bool


def _remaining(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s天%(h)s小时") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s小时%(m)s分") % {"h": hours, "m": mins}
    return _("%(m)s分钟") % {"m": mins}


def _context(session: Session, user: User, settings: Settings, request: Request) -> dict[str, Any]:
    actor = actor_of(session=session, user=user)
    policy = service.policy_in_force(settings)
    now = utcnow()
    tz = settings.tz
    scope = scope_path(actor, Action.clock_read)
    rows = service.list_clocks(
        session=session, now=now, scope_path=scope, started_from=now - RECENT
    )
    open_rows = service.list_clocks(
        session=session, now=now, scope_path=scope, status=ClockStatus.running
    ) + service.list_clocks(session=session, now=now, scope_path=scope, status=ClockStatus.overdue)
    seen = {clock.id for clock, _ in rows}
    rows += [row for row in open_rows if row[0].id not in seen]  # older but still open
    public = service.to_public(session=session, rows=rows, now=now, tz=tz, policy=policy)
    items: list[Entry] = []
    per_org: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[ClockStatus, int]] = defaultdict(lambda: defaultdict(int))
    for clock, item in zip((c for c, _row in rows), public, strict=True):
        allowed = clock.due_at - clock.started_at
        used = (now - clock.started_at) / allowed if allowed.total_seconds() > 0 else 1.0
        entry = Entry(
            clock=item,
            remaining=_remaining(clock.due_at - now),
            progress=max(0, min(100, int(used * 100))),
            due_soon=item.status is ClockStatus.running and clock.due_at - now <= DUE_SOON,
        )
        items.append(entry)
        per_org.setdefault(item.org_code, {"code": item.org_code, "name": item.org_name})
        counts[item.org_code][item.status] += 1
    overdue = [e for e in items if e.clock.status is ClockStatus.overdue]
    running = [e for e in items if e.clock.status is ClockStatus.running]
    met_late = sorted(
        (e for e in items if e.clock.status is ClockStatus.met_late),
        key=lambda e: e.clock.stopped_at or e.clock.due_at,
        reverse=True,
    )
    unconfirmed = [e for e in overdue + running if not e.clock.calendar_confirmed]
    org_rows = sorted(
        ({**info, "counts": counts[code]} for code, info in per_org.items()),
        key=lambda r: (
            -r["counts"][ClockStatus.overdue],
            -r["counts"][ClockStatus.running],
            r["code"],
        ),
    )
    org = session.get(Org, user.org_id)
    orgs_by_code = {
        o.code: o.path
        for o in session.exec(select(Org).where(col(Org.code).in_(list(per_org)))).all()
    }
    return {
        "user": user,
        "org": org,
        "csrf": csrf_token(request),
        "whole_matrix": is_root_path(scope),
        "overdue": overdue,
        "running": running,
        "met_late": met_late,
        "unconfirmed": unconfirmed,
        "org_rows": org_rows,
        "statuses": ClockStatus,
        "kinds": [(kind, service.kind_title(policy, kind)) for kind in policy.clocks],
        "form_orgs": _manageable_orgs(session, user),
        "manageable": {
            e.clock.id
            for e in items
            if may(actor, Action.clock_manage, orgs_by_code.get(e.clock.org_code, "\0"))
        },
        "now_local": now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "month": now.astimezone(tz).strftime("%Y-%m"),
        "policy_name": policy.name,
        "status_zh": service.STATUS_ZH,
    }


@router.get("/clocks", response_class=HTMLResponse)
def clocks_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    created: Id | None = None,
    done: str = "",
) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    context = _context(session, user, settings, request)
    context["created"] = created
    context["done"] = done[:200]
    return get_templates().TemplateResponse(request, "pages/clocks.html", context)


@router.post("/clocks")
def clocks_open(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    kind: Annotated[str, Form()] = "",
    org_code: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    started_at: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    try:
        if not same_token(csrf, request.session.get("csrf")):
            raise HubError("页面已过期，请刷新后重试（CSRF 校验失败）")
        org = orgs.resolve_code(session=session, code=org_code)
        actor = actor_of(session=session, user=user)
        if not may(actor, Action.clock_manage, org.path):
            raise Invalid("您无权为%(org)s开启时限", org=org.name)
        try:
            start = datetime.fromisoformat(started_at) if started_at else utcnow()
        except ValueError:
            raise Invalid("开始时间格式不正确") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=settings.tz)  # the form's local time
        clock = service.create_clock(
            session=session,
            kind=kind,
            org=org,
            subject=subject,
            started_at=start,
            who=Who(user, actor, client_ip(request)),
            policy=service.policy_in_force(settings),
            tz=settings.tz,
        )
        session.commit()
    except HubError as exc:
        session.rollback()
        context = _context(session, user, settings, request)
        context.update(
            {
                "error": i18n.error_text(exc, request),
                "form": {"kind": kind, "org_code": org_code, "subject": subject},
            }
        )
        status = 403 if "CSRF" in exc.message else 422
        return get_templates().TemplateResponse(
            request, "pages/clocks.html", context, status_code=status
        )
    return RedirectResponse(f"/clocks?created={clock.id}", status_code=303)


def _first_published(session: Session, post_id: int) -> datetime | None:
    """When the post's first copy went out (None: not published yet)."""
    from hub.delivery.models import Delivery

    return session.exec(
        select(func.min(Delivery.published_at)).where(Delivery.post_id == post_id)
    ).one()


def _act(session: Session, who: Who, clock: Clock, action: str, reason: str, post_id: str) -> str:
    """Do one of the clock's actions; answers the notice shown on the page (raises HubError)."""
    now = utcnow()
    if service.status_of(clock, now) not in (ClockStatus.running, ClockStatus.overdue):
        raise Conflict(
            "时限 %(id)s 已结束（%(status)s）",
            id=clock.id,
            status=_(service.STATUS_ZH[service.status_of(clock, now)]),
        )
    if action == "stop":
        if now < clock.started_at:
            raise Invalid("时限 %(id)s 尚未开始，不能停止", id=clock.id)
        service.stop_clock(session=session, clock=clock, stopped_at=now, now=now, who=who)
        return _("时限 %(id)s 已停止：%(status)s") % {
            "id": clock.id,
            "status": _(service.STATUS_ZH[service.status_of(clock, now)]),
        }
    if action == "cancel":
        if not reason.strip():
            raise Invalid("请填写撤销原因", field="reason")
        service.cancel_clock(session=session, clock=clock, reason=reason, now=now, who=who)
        return _("时限 %(id)s 已撤销") % {"id": clock.id}
    if action == "link":
        try:
            pid = int(post_id.strip().lstrip("#"))
        except ValueError:
            raise Invalid("请填写稿件编号（数字）", field="post_id") from None
        post = session.get(Post, pid) if 0 < pid < 2**31 else None
        post_org = session.get(Org, post.org_id) if post is not None else None
        if post is None or post_org is None or not sees(who.actor, post_org.path):
            raise NotFound("稿件 %(id)s 不存在或不在您的范围内", id=pid)
        linked = select(ClockPost).where(ClockPost.clock_id == clock.id, ClockPost.post_id == pid)
        if session.exec(linked).first() is not None:
            raise Conflict("稿件 %(id)s 已关联到时限 %(clock)s", id=pid, clock=clock.id)
        service.link_post(session=session, clock=clock, post_id=pid)
        published = _first_published(session, pid)
        if published is None:
            return _("已关联稿件 %(id)s：稿件发布后时限自动停止") % {"id": pid}
        stopped = max(published, clock.started_at)
        service.stop_clock(session=session, clock=clock, stopped_at=stopped, now=now, who=who)
        return _("已关联稿件 %(id)s，按其发布时间停止时限：%(status)s") % {
            "id": pid,
            "status": _(service.STATUS_ZH[service.status_of(clock, now)]),
        }
    raise Invalid("未知操作")


@router.post("/clocks/{clock_id}")
def clocks_action(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock_id: Id,
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    post_id: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Stop, cancel or link a post to one clock (the page's forms; the API does the same)."""
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    actor = actor_of(session=session, user=user)
    clock = session.get(Clock, clock_id)
    clock_org = session.get(Org, clock.org_id) if clock is not None else None
    if clock is None or clock_org is None or not sees(actor, clock_org.path):
        return HTMLResponse(_("时限不存在或不在您的范围内"), status_code=404)
    if not may(actor, Action.clock_manage, clock_org.path):
        return HTMLResponse(_("您无权办理%(org)s的时限") % {"org": clock_org.name}, status_code=403)
    try:
        if not same_token(csrf, request.session.get("csrf")):
            raise HubError("页面已过期，请刷新后重试（CSRF 校验失败）")
        notice = _act(session, Who(user, actor, client_ip(request)), clock, action, reason, post_id)
        session.commit()
    except HubError as exc:
        session.rollback()
        context = _context(session, user, settings, request)
        context["action_error"] = i18n.error_text(exc, request)
        status = 403 if "CSRF" in exc.message else (404 if isinstance(exc, NotFound) else 422)
        if isinstance(exc, Conflict):
            status = 409
        return get_templates().TemplateResponse(
            request, "pages/clocks.html", context, status_code=status
        )
    return RedirectResponse(f"/clocks?done={quote(notice)}", status_code=303)
