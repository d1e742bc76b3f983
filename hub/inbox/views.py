"""Inbox pages: the editors' inbox (filters, bulk triage, j/k/a/r shortcuts), the case page
with its thread, history and reply box, statistics per org, overdue cases for supervisors, and
the public hall page of answered questions (authors masked)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from hub import platforms
from hub.errors import HubError
from hub.inbox import replies, rules, service
from hub.inbox.models import Case, CaseStatus, Category, Channel, ReplyStatus
from hub.inbox.service import INBOX, SYSTEM
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, may, scope_path
from hub.users.service import actor_of
from hub.users.who import Who
from hub.web import i18n
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.i18n import N_, _
from hub.web.templating import get_templates
from hub.web.views import check_csrf, csrf_token, page_user

router = APIRouter(include_in_schema=False)


def speak_to(request: Request, user: User) -> None:
    """Words made in Python (labels, durations) in the page's language, as the template's."""
    request.scope["govhub_user_locale"] = user.locale
    i18n.use_locale(i18n.locale_of(request, user.locale))


# What a case's history entry and a reply's state read as (message ids: the Chinese words).
EVENT_LABELS = {
    "created": N_("收到留言"),
    "triage": N_("分类"),
    "assign": N_("分派"),
    "transfer": N_("转办"),
    "status": N_("状态变更"),
    "note": N_("内部备注"),
    "reply": N_("答复"),
    "close": N_("办结"),
}
REPLY_LABELS = {
    ReplyStatus.queued: N_("待发送"),
    ReplyStatus.pending_review: N_("待审核"),
    ReplyStatus.sent: N_("已发出"),
    ReplyStatus.refused: N_("平台拒收"),
    ReplyStatus.failed: N_("发送失败"),
    ReplyStatus.rejected: N_("已驳回"),
}
CHANNEL_KINDS = {"comment": N_("评论"), "message": N_("私信")}
SYSTEM_ACTORS = {SYSTEM, INBOX.name, "system"}


def channel_label(channel: Channel | str) -> str:
    """``<platform>_comment`` → the platform's label (from its connector) and 评论/私信."""
    value = str(channel)
    if value == Channel.manual.value:
        return _("人工录入")
    platform, _sep, kind = value.rpartition("_")
    if kind not in CHANNEL_KINDS or platform not in platforms.platforms():
        return value
    return f"{i18n.platform_label(platform)}{_(CHANNEL_KINDS[kind])}"


def event_label(kind: str) -> str:
    return _(EVENT_LABELS[kind]) if kind in EVENT_LABELS else kind


def reply_label(status: ReplyStatus | str) -> str:
    key = ReplyStatus(status) if str(status) in ReplyStatus._value2member_map_ else None
    return _(REPLY_LABELS[key]) if key is not None else str(status)


def actor_label(name: str) -> str:
    return _("系统") if name in SYSTEM_ACTORS else name


def _base(request: Request, session: Session, user: User) -> dict[str, Any]:
    return {
        "user": user,
        "org": session.get(Org, user.org_id),
        "csrf": csrf_token(request),
        "status_zh": {k: _(v) for k, v in rules.STATUS_ZH.items()},
        "category_zh": {k: _(v) for k, v in rules.CATEGORY_ZH.items()},
        "other_channel": _(rules.OTHER_CHANNEL_ZH),
        "channel_label": channel_label,
        "event_label": event_label,
        "reply_label": reply_label,
        "actor_label": actor_label,
    }


def _enum(kind: type[Any], value: str) -> Any:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(
    request: Request,
    session: SessionDep,
    status: str = "",
    category: str = "",
    channel: str = "",
    q: str = "",
    notice: str = "",
) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    actor = actor_of(session=session, user=user)
    context = _base(request, session, user)
    if not may(actor, Action.case_read):
        return get_templates().TemplateResponse(
            request, "pages/inbox.html", {**context, "denied": True}, status_code=403
        )
    now = utcnow()
    cases = service.list_cases(
        session=session,
        scope_path=scope_path(actor, Action.case_read),
        status=_enum(CaseStatus, status),
        category=_enum(Category, category),
        channel=_enum(Channel, channel),
        q=q or None,
    )
    context.update(
        {
            "cases": service.to_public(session=session, cases=cases, now=now),
            "filters": {"status": status, "category": category, "channel": channel, "q": q},
            "statuses": list(CaseStatus),
            "categories": list(Category),
            "channels": list(Channel),
            "can_handle": may(actor, Action.case_handle),
            "notice": notice,
        }
    )
    return get_templates().TemplateResponse(request, "pages/inbox.html", context)


@router.post("/inbox/triage")
def inbox_bulk_triage(
    request: Request,
    session: SessionDep,
    category: Annotated[str, Form()] = "",
    case_ids: Annotated[list[Id] | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    check_csrf(request, csrf)
    actor = actor_of(session=session, user=user)
    target = _enum(Category, category)
    done = 0
    if target is not None:
        for case_id in case_ids or []:
            case = session.get(Case, case_id)
            if case is None:
                continue
            if not may(
                actor, Action.case_handle, orgs.get(session=session, org_id=case.org_id).path
            ):
                continue
            service.triage(
                session=session,
                case=case,
                category=target,
                who=Who(user, actor, client_ip(request)),
            )
            done += 1
        session.commit()
    notice = _("已分类 %(n)s 条") % {"n": done}
    return RedirectResponse(f"/inbox?notice={quote(notice)}", status_code=303)


def _case_context(
    request: Request, session: Session, user: User, case_id: int
) -> dict[str, Any] | None:
    actor = actor_of(session=session, user=user)
    case = session.get(Case, case_id)
    if case is None:
        return None
    org = orgs.get(session=session, org_id=case.org_id)
    if not may(actor, Action.case_read, org.path):
        return None
    from hub.inbox.api import detail

    context = _base(request, session, user)
    context.update(
        {
            "case": detail(session, case),
            "can_handle": may(actor, Action.case_handle, org.path),
            "categories": list(Category),
            "transfer_orgs": session.exec(
                select(Org)
                .where(col(Org.level).in_(["province", "prefecture", "county", "department"]))
                .order_by(col(Org.path))
            ).all(),
        }
    )
    return context


@router.get("/inbox/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, session: SessionDep, case_id: Id, notice: str = "") -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    context = _case_context(request, session, user, case_id)
    if context is None:
        return HTMLResponse(_("留言不存在或不在您的范围内"), status_code=404)
    context["notice"] = notice
    return get_templates().TemplateResponse(request, "pages/inbox_case.html", context)


@router.post("/inbox/cases/{case_id}")
def case_action(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    case_id: Id,
    action: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    org_code: Annotated[str, Form()] = "",
    publish_on_hall: Annotated[bool, Form()] = False,
    final: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """One form per action (reply, triage, transfer, note, close), CSRF-checked."""
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    check_csrf(request, csrf)
    case = session.get(Case, case_id)
    actor = actor_of(session=session, user=user)
    if case is None or not may(
        actor, Action.case_handle, orgs.get(session=session, org_id=case.org_id).path
    ):
        return HTMLResponse(_("您无权办理这条留言"), status_code=403)
    who = Who(user, actor, client_ip(request))
    try:
        notice = _("已保存")
        if action == "reply":
            made = replies.create_reply(
                session=session,
                case=case,
                text=text,
                who=who,
                publish_on_hall=publish_on_hall,
                final=final,
                settings=settings,
            )
            session.commit()
            if made.status is ReplyStatus.queued:
                replies.send_reply(
                    session=session, case=case, reply=made, who=who, settings=settings
                )
            notice = {"sent": _("答复已发出"), "pending_review": _("答复已提交审核")}.get(
                made.status.value, _("答复未发出：%(error)s") % {"error": made.error}
            )
        elif action == "triage" and (target := _enum(Category, category)) is not None:
            service.triage(session=session, case=case, category=target, who=who)
        elif action == "transfer":
            org = orgs.get_by_code(session=session, code=org_code)
            service.transfer(session=session, case=case, org=org, reason=text, who=who)
        elif action == "note":
            service.add_note(session=session, case=case, text=text, who=who)
        elif action == "progress":
            service.set_in_progress(session=session, case=case, who=who)
        elif action == "close":
            service.close(session=session, case=case, reason=text, who=who)
        session.commit()
    except HubError as exc:
        session.rollback()
        notice = i18n.error_text(exc, request)
    return RedirectResponse(f"/inbox/cases/{case_id}?notice={quote(notice)}", status_code=303)


@router.get("/inbox/stats", response_class=HTMLResponse)
def stats_page(request: Request, session: SessionDep) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    actor = actor_of(session=session, user=user)
    context = _base(request, session, user)
    context["rows"] = service.stats_per_org(
        session=session, scope_path=scope_path(actor, Action.case_read), now=utcnow()
    )
    return get_templates().TemplateResponse(request, "pages/inbox_stats.html", context)


@router.get("/inbox/overdue", response_class=HTMLResponse)
def overdue_page(request: Request, session: SessionDep) -> Response:
    """Cases past their answer deadline (the supervisors' dashboard; also on /clocks)."""
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    speak_to(request, user)
    actor = actor_of(session=session, user=user)
    now = utcnow()
    cases = service.list_cases(
        session=session, scope_path=scope_path(actor, Action.case_read), overdue_at=now
    )
    context = _base(request, session, user)
    context["cases"] = service.to_public(session=session, cases=cases, now=now)
    return get_templates().TemplateResponse(request, "pages/inbox_overdue.html", context)


@router.get("/hall/answers", response_class=HTMLResponse)
def hall_answers(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Public: questions the matrix answered, the author's handle masked (张** / ab***); a page
    of the release hall (its header, search and way back)."""
    from hub.hall.views import HALL_NAME

    return get_templates().TemplateResponse(
        request,
        "pages/hall_answers.html",
        {
            "answers": service.public_answers(session=session),
            "user": None,
            "hall_name": HALL_NAME,
            "base_url": settings.public_base_url.rstrip("/"),
        },
    )
