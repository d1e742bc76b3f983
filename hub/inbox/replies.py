"""Replies to cases: written (plain text), held for review when the org says so, sent back on
the case's channel; a sent final reply stops the case's clocks. Joins the caller's transaction
(flush, never commit), except that sending is called after the caller committed.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from connectors.base import Comments, DirectMessages
from connectors.errors import CapabilityUnavailable, ConnectorError, Rejected, Unconfirmed
from hub.accounts import service as accounts_service
from hub.accounts.health import COMMENTS
from hub.accounts.models import Account
from hub.auditlog.service import audit
from hub.clocks import service as clocks
from hub.clocks.models import Clock, ClockState
from hub.config import Settings, get_settings
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.inbox import rules
from hub.inbox.models import Case, CaseStatus, Channel, InboxSetting, Reply, ReplyStatus, Thread
from hub.inbox.service import (
    add_event,
    audit_case,
    comment_channel,
    message_channel,
    move_case,
)
from hub.orgs.models import Org
from hub.proofread import service as proofread
from hub.sqltypes import utcnow
from hub.users.who import Who


def review_required(*, session: Session, org_id: int) -> bool:
    setting = session.get(InboxSetting, org_id)
    return bool(setting and setting.review_replies)


def set_review(*, session: Session, org: Org, review_replies: bool, who: Who) -> InboxSetting:
    setting = session.get(InboxSetting, org.id) or InboxSetting(org_id=org.id)  # type: ignore[arg-type]
    setting.review_replies = review_replies
    session.add(setting)
    audit(
        session,
        who,
        "inbox.settings",
        "org",
        org.code,
        org_id=org.id,
        summary=f"{org.name}：答复{'须' if review_replies else '无须'}审核",
    )
    session.flush()
    return setting


def create_reply(
    *,
    session: Session,
    case: Case,
    text: str,
    who: Who,
    publish_on_hall: bool = False,
    final: bool = True,
    settings: Settings | None = None,
) -> Reply:
    """Write a reply (always plain text): ``queued`` (the caller commits, then calls
    :func:`send_reply`), or ``pending_review`` when the org's policy says so."""
    plain = rules.plain_reply(text)
    if not plain:
        raise Invalid("答复内容为空（HTML标签会被去掉，只发送纯文本）", field="text")
    if case.status is CaseStatus.closed:
        raise Conflict("留言已办结，不能再答复")
    proofread.refuse_blocking(session, session.get(Org, case.org_id), {"text": plain}, "答复")  # type: ignore[arg-type]
    if case.channel is Channel.weibo_comment:
        from connectors.weibo_rules import TEXT_MAX, weibo_length

        if weibo_length(plain) > TEXT_MAX:
            raise Invalid(
                "微博评论回复不能超过%(max)s字（当前%(now)s字）",
                field="text",
                max=TEXT_MAX,
                now=weibo_length(plain),
            )
    review = review_required(session=session, org_id=case.org_id)
    reply = Reply(
        case_id=case.id,  # type: ignore[arg-type]
        text=plain,
        status=ReplyStatus.pending_review if review else ReplyStatus.queued,
        publish_on_hall=publish_on_hall,
        final=final,
        author_id=who.user_id,
    )
    session.add(reply)
    session.flush()
    if review:
        add_event(session, case, who, "reply", f"答复待审核：{plain[:200]}")
    session.flush()
    return reply


def approve_reply(*, session: Session, reply: Reply, who: Who) -> Reply:
    """A reviewer (not the author) approves a held reply: it is ``queued`` for sending."""
    if reply.status is not ReplyStatus.pending_review:
        raise Conflict("答复 %(reply_id)s 不在待审核状态", reply_id=reply.id)
    if reply.author_id is not None and reply.author_id == who.user_id:
        raise Forbidden("不能审核自己写的答复（先审后发，四眼原则）")
    reply.reviewer_id = who.user_id
    reply.status = ReplyStatus.queued
    session.add(reply)
    session.flush()
    return reply


def send_reply(
    *, session: Session, case: Case, reply: Reply, who: Who, settings: Settings | None = None
) -> Reply:
    """Send a ``queued`` reply on the case's channel (call it after committing: the platform call
    is outside the transaction); record what happened. A sent final reply stops both clocks."""
    if reply.status is not ReplyStatus.queued:
        raise Conflict("答复 %(reply_id)s 不在待发送状态", reply_id=reply.id)
    settings = settings or get_settings()
    now = utcnow()
    try:
        reply.remote_id = _deliver(session, case, reply.text, settings, who)
    except Rejected as exc:
        reply.status, reply.error, reply.error_code = (
            ReplyStatus.refused,
            exc.message,
            exc.code or "",
        )
        if case.channel is Channel.wechat_message and exc.code == "45015":
            case.needs_other_channel = True
            reply.error = f"{exc.message}（{rules.OTHER_CHANNEL_ZH}）"
    except Unconfirmed as exc:
        reply.status, reply.error = ReplyStatus.failed, f"{exc.message}：请先在平台核对，勿重复发送"
    except ConnectorError as exc:
        reply.status, reply.error = ReplyStatus.failed, exc.message
    else:
        reply.status, reply.sent_at, reply.error = ReplyStatus.sent, now, ""
    session.add(reply)
    if reply.status is not ReplyStatus.sent:
        add_event(session, case, who, "reply", f"答复未发出：{reply.error}")
        session.add(case)
        session.flush()
        return reply
    case.first_response_at = case.first_response_at or now
    _stop(session, case.first_response_clock_id, now, who)
    if reply.final:
        case.replied_at = now
        _stop(session, case.answer_clock_id, now, who)
        if case.status is not CaseStatus.replied:
            move_case(case, CaseStatus.replied)
    elif case.status in (CaseStatus.new, CaseStatus.assigned):
        move_case(case, CaseStatus.in_progress)
    if reply.publish_on_hall and reply.final and not case.hidden:
        case.public_answer = True
    case.needs_other_channel = False
    case.updated_at = now
    session.add(case)
    add_event(session, case, who, "reply", reply.text)
    audit_case(session, case, who, "case.reply", f"答复留言 #{case.id}：{reply.text[:200]}")
    session.flush()
    return reply


def _stop(session: Session, clock_id: int | None, now: datetime, who: Who) -> None:
    clock = session.get(Clock, clock_id) if clock_id is not None else None
    if clock is None or clock.state is not ClockState.running:
        return
    clocks.stop_clock(
        session=session,
        clock=clock,
        stopped_at=now,
        now=now,
        who=who,
    )


def _deliver(session: Session, case: Case, text: str, settings: Settings, who: Who) -> str:
    from hub.delivery.channels import connector_account, connector_for
    from hub.delivery.rules import rip_for

    if case.channel is Channel.manual or case.account_id is None:
        return ""  # answered outside the platforms (recorded only)
    account = session.get(Account, case.account_id)
    if account is None:
        raise NotFound("账号 %(account_id)s 不存在", account_id=case.account_id)
    # Weibo's rip: the replier's IP (or the unit's egress IP when theirs is not public)
    rip = rip_for(who.client_ip, settings.weibo_fallback_rip)
    target = connector_account(account, settings, rip=rip)
    connector = connector_for(account.platform.value, settings)
    platform = account.platform.value
    if case.channel is comment_channel(platform) and isinstance(connector, Comments):
        refused = (account.capabilities_off or {}).get(COMMENTS)
        if refused:  # known to be refused: no call until an admin re-tests the account
            raise Rejected(refused, platform=platform, code="10014")
        try:
            return connector.reply_comment(target, case.remote_id, case.post_remote_id, text)
        except CapabilityUnavailable as exc:
            accounts_service.set_capability(
                session=session, account=account, capability=COMMENTS, reason=str(exc), now=utcnow()
            )
            raise
    if case.channel is message_channel(platform) and isinstance(connector, DirectMessages):
        thread = session.get(Thread, case.thread_id)
        if not rules.window_open(thread.last_inbound_at if thread else None, utcnow()):
            raise Rejected(
                "该用户最近一条消息已超过48小时，微信不允许再通过客服消息回复："
                "请通过其他方式答复（电话、短信或公开答复）",
                platform=platform,
                code="45015",
            )
        connector.send_custom_message(target, case.author_id, text)
        return ""
    raise Invalid(
        "%(channel)s渠道的留言不能通过%(platform)s答复",
        channel=case.channel.value,
        platform=account.platform,
    )
