"""The clocks dashboard (时限看板): what is overdue, due soon and met late, per org, with a form
to open a clock. Editors see their subtree; supervisors the whole matrix."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from hub.clocks import service
from hub.clocks.models import ClockPublic
from hub.clocks.rules import ClockStatus
from hub.config import Settings
from hub.errors import HubError, Invalid
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.security import same_token
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, is_root_path, may, scope_path
from hub.users.service import actor_of
from hub.users.who import Who
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.templating import get_templates
from hub.web.views import csrf_token, page_user

router = APIRouter(include_in_schema=False)

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
        return f"{days}天{hours}小时"
    return f"{hours}小时{mins}分" if hours else f"{mins}分钟"


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
    for clock, item in zip((c for c, _ in rows), public, strict=True):
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
        "now_local": now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "month": now.astimezone(tz).strftime("%Y-%m"),
        "policy_name": policy.name,
        "status_zh": service.STATUS_ZH,
    }


@router.get("/clocks", response_class=HTMLResponse)
def clocks_page(
    request: Request, session: SessionDep, settings: SettingsDep, created: Id | None = None
) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    context = _context(session, user, settings, request)
    context["created"] = created
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
    try:
        if not same_token(csrf, request.session.get("csrf")):
            raise HubError("页面已过期，请刷新后重试（CSRF 校验失败）")
        org = orgs.resolve_code(session=session, code=org_code)
        actor = actor_of(session=session, user=user)
        if not may(actor, Action.clock_manage, org.path):
            raise Invalid(f"您无权为{org.name}开启时限")
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
            {"error": exc.message, "form": {"kind": kind, "org_code": org_code, "subject": subject}}
        )
        status = 403 if "CSRF" in exc.message else 422
        return get_templates().TemplateResponse(
            request, "pages/clocks.html", context, status_code=status
        )
    return RedirectResponse(f"/clocks?created={clock.id}", status_code=303)
