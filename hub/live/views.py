"""The editor's micro-live pages: the sessions list (``/live``) and the 新建直播 form.

The console and the public page live in :mod:`hub.live.web`; these routes are mounted before
them so ``/live/new`` is not taken for a slug. The form writes through
:func:`hub.live.service.create_session`, the same rule and checks as ``POST /api/v1/live-sessions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from hub.accounts.models import Account, AccountStatus
from hub.config import get_settings
from hub.errors import HubError, Invalid
from hub.live import service
from hub.live.models import LiveSession, LiveSessionCreate, LiveStatus, MeetingKind
from hub.orgs.models import Org
from hub.security import same_token
from hub.sqltypes import utcnow
from hub.users.models import User
from hub.users.rules import Action, may, scope_path
from hub.users.service import actor_of
from hub.users.who import Who
from hub.web import i18n
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import Page, page_of, refuse, render, to_login

router = APIRouter(include_in_schema=False)

LIST_LIMIT = 200
CHOICES_LIMIT = 400


def status_labels() -> dict[str, str]:
    """What the editor reads for each status (the catalog gives the English)."""
    return {
        LiveStatus.scheduled.value: _("未开始"),
        LiveStatus.live.value: _("直播中"),
        LiveStatus.ended.value: _("已结束"),
        LiveStatus.archived.value: _("已结束"),
    }


def kind_labels() -> dict[str, str]:
    return {
        MeetingKind.executive.value: _("常务会议"),
        MeetingKind.press.value: _("新闻发布会"),
        MeetingKind.conference.value: _("工作会议"),
        MeetingKind.other.value: _("其他"),
    }


def may_use(page: Page) -> bool:
    """Who gets 微直播: those who run sessions and those who review them (the menu item too)."""
    return page.may(Action.live_run) or page.may(Action.post_review)


@router.get("/live", response_class=HTMLResponse)
def sessions_list(request: Request, session: SessionDep, status: str = "") -> Response:
    """Every session of the caller's reach, newest first, optionally of one status."""
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not may_use(page):
        return refuse(request, page, 403, _("您的角色不能使用微直播。"))
    query = (
        select(LiveSession, Org)
        .join(Org, col(LiveSession.org_id) == col(Org.id))
        .where(col(Org.path).startswith(page.actor.read_path))
    )
    chosen = status if status in {s.value for s in LiveStatus} else ""
    if chosen == LiveStatus.ended.value:  # 已结束: ended and archived read the same
        query = query.where(col(LiveSession.status).in_([LiveStatus.ended, LiveStatus.archived]))
    elif chosen:
        query = query.where(col(LiveSession.status) == LiveStatus(chosen))
    rows = session.exec(
        query.order_by(col(LiveSession.created_at).desc(), col(LiveSession.id).desc()).limit(
            LIST_LIMIT
        )
    ).all()
    creators = {
        u.id: u.display_name or u.username
        for u in session.exec(
            select(User).where(col(User.id).in_({live.created_by for live, _org in rows}))
        ).all()
    }
    items = [
        {
            "live": live,
            "org": org,
            "creator": creators.get(live.created_by, ""),
            "console": may(page.actor, Action.live_run, org.path)
            or may(page.actor, Action.post_review, org.path)
            or page.user.id in live.approver_ids,
            "summary_url": summary_url(page, org, live),
        }
        for live, org in rows
    ]
    return render(
        request,
        "pages/live_list.html",
        page,
        items=items,
        status=chosen,
        labels=status_labels(),
        kinds=kind_labels(),
        may_create=page.may(Action.live_run),
        limit=LIST_LIMIT,
    )


def summary_url(page: Page, org: Org, live: LiveSession) -> str:
    """Where the summary post opens for this person: the review page for a reviewer, else the
    edit page (read-only once submitted)."""
    if live.summary_post_id is None:
        return ""
    if may(page.actor, Action.post_review, org.path):
        return f"/review/{live.summary_post_id}"
    return f"/posts/{live.summary_post_id}/edit"


# -- 新建直播 ------------------------------------------------------------------------------------


def _form_choices(session: Session, page: Page) -> dict[str, Any]:
    """Orgs the creator may run sessions for, accounts in reach, and possible approvers: active
    users who run sessions or review posts for the creator's org or one below it (the creator
    excluded; :func:`hub.live.service.create_session` checks them against the chosen org)."""
    scope = scope_path(page.actor, Action.live_run)
    orgs = session.exec(
        select(Org)
        .where(col(Org.path).startswith(scope))
        .order_by(func.length(Org.path), col(Org.code))
        .limit(CHOICES_LIMIT)
    ).all()
    accounts = session.exec(
        select(Account, Org)
        .join(Org, col(Account.org_id) == col(Org.id))
        .where(col(Org.path).startswith(scope), Account.status != AccountStatus.closed)
        .order_by(func.length(Org.path), col(Org.code), col(Account.id))
        .limit(CHOICES_LIMIT)
    ).all()
    ancestors = _prefixes(scope)
    people = session.exec(
        select(User, Org)
        .join(Org, col(User.org_id) == col(Org.id))
        .where(
            col(User.is_active).is_(True),
            col(User.id) != page.user.id,
            col(Org.path).startswith(scope) | col(Org.path).in_(ancestors),
        )
        .order_by(func.length(Org.path), col(Org.code), col(User.username))
        .limit(CHOICES_LIMIT)
    ).all()
    approvers = [(user, org) for user, org in people if _may_approve(session, user, org)]
    return {"form_orgs": orgs, "accounts": accounts, "approvers": approvers, "kinds": kind_labels()}


def _may_approve(session: Session, user: User, org: Org) -> bool:
    actor = actor_of(session=session, user=user)
    return may(actor, Action.live_run, org.path) or may(actor, Action.post_review, org.path)


def _prefixes(path: str) -> list[str]:
    """'/1/5/9/' → ['/', '/1/', '/1/5/', '/1/5/9/'] (the org and its ancestors)."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def _new_form(
    request: Request,
    session: Session,
    page: Page,
    form: dict[str, Any],
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "pages/live_new.html",
        page,
        status_code=status_code,
        form=form,
        error=error,
        **_form_choices(session, page),
    )


@router.get("/live/new", response_class=HTMLResponse)
def new_session_form(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.live_run):
        return refuse(request, page, 403, _("您的角色不能开设直播。"))
    form = {
        "org_code": page.org.code if page.org else "",
        "approval_required": True,
        "target_ids": [],
        "approver_ids": [],
        "meeting_kind": MeetingKind.other.value,
    }
    return _new_form(request, session, page, form)


def _ids(values: list[str]) -> list[int]:
    out: list[int] = []
    for value in values:
        if not value.isdigit() or len(value) > 9:
            raise Invalid("所选账号或审核人无效，请刷新页面后重试")
        out.append(int(value))
    return out


@router.post("/live/new")
def create_from_form(
    request: Request,
    session: SessionDep,
    title: Annotated[str, Form()] = "",
    org_code: Annotated[str, Form()] = "",
    meeting_kind: Annotated[str, Form()] = MeetingKind.other.value,
    starts_at: Annotated[str, Form()] = "",
    target_ids: Annotated[list[str] | None, Form()] = None,
    approver_ids: Annotated[list[str] | None, Form()] = None,
    approval_required: Annotated[str, Form()] = "",
    plan: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.live_run):
        return refuse(request, page, 403, _("您的角色不能开设直播。"))
    form: dict[str, Any] = {
        "title": title,
        "org_code": org_code,
        "meeting_kind": meeting_kind,
        "starts_at": starts_at,
        "target_ids": target_ids or [],
        "approver_ids": approver_ids or [],
        "approval_required": bool(approval_required),
        "plan": plan,
    }
    try:
        if not same_token(csrf, request.session.get("csrf")):
            return _new_form(
                request,
                session,
                page,
                form,
                _("页面已过期，请刷新后重试（CSRF 校验失败）"),
                403,
            )
        if not title.strip():
            raise Invalid("请填写直播标题", field="title")
        when: datetime | None = None
        if starts_at:
            try:
                when = datetime.fromisoformat(starts_at)
            except ValueError:
                raise Invalid("开始时间格式不正确", field="starts_at") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=get_settings().tz)  # the form's local time
        try:
            data = LiveSessionCreate(
                title=title.strip(),
                org_code=org_code or None,
                meeting_kind=MeetingKind(meeting_kind)
                if meeting_kind in {k.value for k in MeetingKind}
                else MeetingKind.other,
                starts_at=when,
                target_account_ids=_ids(form["target_ids"]),
                approver_ids=_ids(form["approver_ids"]),
                approval_required=bool(approval_required),
                plan=plan,
            )
        except ValidationError:
            raise Invalid(
                "标题最多200字，方案最多5000字，目标账号最多50个，审核人最多20人"
            ) from None
        live = service.create_session(
            session=session,
            who=Who(user=page.user, actor=page.actor, client_ip=client_ip(request)),
            data=data,
            now=utcnow(),
        )
        session.commit()
    except HubError as exc:
        session.rollback()
        return _new_form(
            request,
            session,
            page,
            form,
            i18n.error_text(exc, request),
            403 if exc.status_code == 403 else 422,
        )
    return RedirectResponse(f"/live/{live.slug}/console", status_code=303)
