"""The inbox with a database: messages become cases (once each), routing, triage, transfer,
notes, replies sent back on the channel, clocks, statistics and the audit's overdue count.

Every function joins the caller's transaction (flush, never commit) except the ingestion pass
and the WeChat callback hook, which commit per account / per message.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.base import Comments, DirectMessages, InboundMessage
from connectors.errors import CapabilityUnavailable, ConnectorError, Rejected, Unconfirmed
from hub.accounts import service as accounts_service
from hub.accounts.health import COMMENTS
from hub.accounts.models import Account, AccountStatus, Platform
from hub.auditlog.service import record
from hub.clocks import service as clocks
from hub.clocks.models import Clock, ClockState
from hub.config import Settings, get_settings
from hub.db import engine_for
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.inbox import rules
from hub.inbox.models import (
    Case,
    CaseEvent,
    CasePublic,
    CaseStatus,
    Category,
    Channel,
    EventPublic,
    InboxCursor,
    InboxSetting,
    Reply,
    ReplyPublic,
    ReplyStatus,
    RoutingRule,
    Thread,
)
from hub.orgs.models import Org
from hub.sqltypes import utcnow
from hub.users.models import User

log = logging.getLogger(__name__)

FIRST_RESPONSE = "case_first_response"
ANSWER = "case_answer"
SYSTEM = "inbox"


@dataclass(frozen=True)
class Who:
    """Who acts: a user, or the system (ingestion)."""

    user_id: int | None = None
    name: str = SYSTEM
    client_ip: str = ""

    @classmethod
    def of(cls, user: User, client_ip: str = "") -> Who:
        return cls(user.id, user.username, client_ip)


@dataclass(frozen=True)
class Incoming:
    """A message from the public, channel-neutral."""

    channel: Channel
    remote_id: str
    author_id: str
    author_handle: str
    text: str
    received_at: datetime
    msg_type: str = "text"
    media_url: str = ""
    post_remote_id: str = ""
    post_url: str = ""
    post_excerpt: str = ""


def _event(
    session: Session,
    case: Case,
    who: Who,
    kind: str,
    detail: str = "",
    *,
    from_org: int | None = None,
    to_org: int | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case.id,  # type: ignore[arg-type]
            at=at or utcnow(),
            actor_id=who.user_id,
            actor_name=who.name,
            kind=kind,
            from_org_id=from_org,
            to_org_id=to_org,
            detail=detail[:4000],
        )
    )


def _audit(session: Session, case: Case, who: Who, action: str, summary: str) -> None:
    record(
        session=session,
        actor_id=who.user_id,
        actor_name=who.name,
        action=action,
        object_type="case",
        object_id=case.id,
        org_id=case.org_id,
        summary=summary,
        client_ip=who.client_ip,
    )


# -- receiving ----------------------------------------------------------------------------------


def _thread(
    session: Session, channel: Channel, account_id: int | None, author_id: str, handle: str
) -> Thread:
    thread = session.exec(
        select(Thread).where(
            Thread.channel == channel,
            Thread.account_id == account_id,
            Thread.author_id == author_id,
        )
    ).first()
    if thread is None:
        thread = Thread(
            channel=channel, account_id=account_id, author_id=author_id, author_handle=handle
        )
        session.add(thread)
        session.flush()
    elif handle and thread.author_handle != handle:
        thread.author_handle = handle
    return thread


def _routes(session: Session) -> list[rules.Route]:
    return [
        rules.Route(
            rule_id=r.id,  # type: ignore[arg-type]
            account_id=r.account_id,
            keywords=rules.split_keywords(r.keywords),
            org_id=r.org_id,
            priority=r.priority,
        )
        for r in session.exec(select(RoutingRule).where(col(RoutingRule.active).is_(True))).all()
    ]


def _start_clocks(session: Session, case: Case, org: Org, settings: Settings) -> None:
    policy = clocks.policy_in_force(settings)
    subject = f"群众留言 #{case.id}：{case.text[:60]}"
    for kind, attr in ((FIRST_RESPONSE, "first_response_clock_id"), (ANSWER, "answer_clock_id")):
        if kind not in policy.clocks:
            log.warning(
                "policy %s has no %s clock; case %s starts none", policy.name, kind, case.id
            )
            continue
        clock = clocks.create_clock(
            session=session,
            kind=kind,
            org=org,
            subject=subject,
            started_at=case.received_at,
            actor_name=SYSTEM,
            policy=policy,
            tz=settings.tz,
        )
        setattr(case, attr, clock.id)


def receive(
    *,
    session: Session,
    incoming: Incoming,
    account: Account | None,
    org: Org | None = None,
    who: Who = Who(),
    settings: Settings | None = None,
) -> Case | None:
    """Record one message as a case (routed, clocks started); ``None`` if it is already one."""
    settings = settings or get_settings()
    account_id = account.id if account is not None else None
    exists = session.exec(
        select(Case.id).where(
            Case.channel == incoming.channel,
            Case.account_id == account_id,
            Case.remote_id == incoming.remote_id,
        )
    ).first()
    if exists is not None:
        return None
    thread = _thread(
        session, incoming.channel, account_id, incoming.author_id, incoming.author_handle
    )
    if thread.last_inbound_at is None or incoming.received_at > thread.last_inbound_at:
        thread.last_inbound_at = incoming.received_at
    session.add(thread)
    matched = rules.route(_routes(session), account_id, incoming.text)
    if matched is not None:
        target = session.get(Org, matched.org_id)
    elif org is not None:
        target = org
    else:
        assert account is not None
        target = session.get(Org, account.org_id)
    assert target is not None and target.id is not None
    case = Case(
        channel=incoming.channel,
        account_id=account_id,
        thread_id=thread.id,  # type: ignore[arg-type]
        remote_id=incoming.remote_id[:200],
        author_id=incoming.author_id[:200],
        author_handle=incoming.author_handle[:200],
        msg_type=incoming.msg_type,
        text=incoming.text,
        media_url=incoming.media_url[:1000],
        received_at=incoming.received_at,
        post_remote_id=incoming.post_remote_id[:200],
        post_url=incoming.post_url[:1000],
        post_excerpt=incoming.post_excerpt[:300],
        category=rules.suggest_category(incoming.text),
        org_id=target.id,
        status=CaseStatus.assigned if matched is not None else CaseStatus.new,
    )
    session.add(case)
    session.flush()
    detail = f"{incoming.author_handle}：{incoming.text[:200]}"
    _event(session, case, who, "created", detail, to_org=target.id, at=incoming.received_at)
    if matched is not None:
        _event(session, case, who, "assign", f"按分派规则 #{matched.rule_id}", to_org=target.id)
    _start_clocks(session, case, target, settings)
    session.add(case)
    session.flush()
    return case


def receive_once(
    *, session: Session, incoming: Incoming, account: Account, settings: Settings
) -> Case | None:
    """:func:`receive` in a savepoint: a concurrent duplicate (unique key) is not an error."""
    try:
        with session.begin_nested():
            return receive(session=session, incoming=incoming, account=account, settings=settings)
    except IntegrityError:
        return None


def receive_message(*, session: Session, account: Account, message: InboundMessage) -> None:
    """The callback hook: a follower's message or event to the account (a ``Callbacks``
    connector parsed it). Messages become cases; every message and event opens the reply
    window. Commits."""
    channel = message_channel(account.platform.value)
    if channel is None:
        log.warning("account %s: its platform has no inbox message channel", account.id)
        return
    if message.opens_case:
        receive_once(
            session=session,
            incoming=Incoming(
                channel=channel,
                remote_id=message.remote_id,
                author_id=message.author_id,
                author_handle=message.author_id,
                text=message.text,
                received_at=message.received_at,
                msg_type=message.msg_type,
                media_url=message.media_url,
            ),
            account=account,
            settings=get_settings(),
        )
    else:  # subscribe, menu clicks...: no case, but the user reached out
        thread = _thread(session, channel, account.id, message.author_id, "")
        if thread.last_inbound_at is None or message.received_at > thread.last_inbound_at:
            thread.last_inbound_at = message.received_at
            session.add(thread)
    session.commit()


def comment_channel(platform: str) -> Channel | None:
    """The inbox channel of comments under ``platform``'s posts (None: the inbox has none)."""
    return Channel._value2member_map_.get(f"{platform}_comment")  # type: ignore[return-value]


def message_channel(platform: str) -> Channel | None:
    """The inbox channel of followers' messages to a ``platform`` account (None: none)."""
    return Channel._value2member_map_.get(f"{platform}_message")  # type: ignore[return-value]


def _from_comment(comment: Any, channel: Channel) -> Incoming:
    """A comment as a ``Comments`` connector lists it (``comments_to_me``)."""
    return Incoming(
        channel=channel,
        remote_id=comment.remote_id,
        author_id=comment.author_id,
        author_handle=comment.author_name or comment.author_id,
        text=comment.text,
        received_at=comment.created_at,
        post_remote_id=comment.post_id,
        post_url=comment.post_url,
        post_excerpt=comment.post_text[:300],
    )


# -- ingestion (Weibo comments; WeChat messages arrive by callback) ---------------------------


@dataclass
class IngestReport:
    accounts_ok: int = 0
    accounts_failed: int = 0
    new_cases: int = 0
    errors: list[str] = field(default_factory=list)
    accounts_skipped: int = 0  # the comment capability is off for the account (Weibo 10014)

    def line(self) -> str:
        skipped = (
            f", {self.accounts_skipped} without comment access" if self.accounts_skipped else ""
        )
        return (
            f"{self.accounts_ok} accounts ok, {self.accounts_failed} failed, "
            f"{self.new_cases} new cases{skipped}"
        )


def _id_key(remote_id: str) -> tuple[int, str]:
    return (int(remote_id), "") if remote_id.isdigit() else (0, remote_id)


def ingest_all(*, settings: Settings, max_accounts: int = 500) -> IngestReport:
    """One pass: each active account's new comments (``since_id``) on every platform whose
    connector reads comments (``Comments``), each account in its own transaction, at most
    ``max_accounts`` and five pages each (the rest comes next pass). Followers' messages
    (``DirectMessages``) arrive by callback instead."""
    from hub.delivery.channels import connector_account, connector_for

    engine = engine_for(settings.database_url)
    report = IngestReport()
    readers: dict[str, tuple[Comments, Channel]] = {}
    for platform in Platform.all():
        candidate = connector_for(platform.value, settings)
        channel = comment_channel(platform.value)
        if isinstance(candidate, Comments) and channel is not None:
            readers[platform.value] = (candidate, channel)
    if not readers:
        return report
    with Session(engine) as session:
        ids = list(
            session.exec(
                select(Account.id)
                .where(
                    col(Account.platform).in_(list(readers)),
                    Account.status == AccountStatus.active,
                )
                .order_by(col(Account.id))
                .limit(max_accounts)
            ).all()
        )
    for account_id in ids:
        assert account_id is not None
        with Session(engine, expire_on_commit=False) as session:
            account = session.get(Account, account_id)
            if account is None or account.platform.value not in readers:
                continue
            reader, channel = readers[account.platform.value]
            if COMMENTS in (account.capabilities_off or {}):
                report.accounts_skipped += 1  # until an admin re-tests the account
                continue
            cursor = session.get(InboxCursor, account_id) or InboxCursor(account_id=account_id)
            try:
                comments = reader.comments_to_me(
                    connector_account(account, settings), since_id=cursor.since_id or None
                )
            except CapabilityUnavailable as exc:
                # the app may not read comments (Weibo: 10014): shown on the account, not retried
                accounts_service.set_capability(
                    session=session,
                    account=account,
                    capability=COMMENTS,
                    reason=str(exc),
                    now=utcnow(),
                )
                session.commit()
                report.accounts_skipped += 1
                report.errors.append(f"{account.name}: {exc}")
                continue
            except ConnectorError as exc:
                report.accounts_failed += 1
                report.errors.append(f"{account.name}: {exc}")
                continue
            for comment in sorted(comments, key=lambda c: _id_key(c.remote_id)):
                if receive_once(
                    session=session,
                    incoming=_from_comment(comment, channel),
                    account=account,
                    settings=settings,
                ):
                    report.new_cases += 1
                if _id_key(comment.remote_id) > _id_key(cursor.since_id or "0"):
                    cursor.since_id = comment.remote_id
            cursor.updated_at = utcnow()
            session.add(cursor)
            session.commit()
            report.accounts_ok += 1
    return report


# -- reading ------------------------------------------------------------------------------------


def get_case(*, session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} does not exist")
    return case


def list_cases(
    *,
    session: Session,
    scope_path: str,
    status: CaseStatus | None = None,
    category: Category | None = None,
    channel: Channel | None = None,
    org_path: str | None = None,
    include_hidden: bool = False,
    overdue_at: datetime | None = None,
    q: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Case]:
    query = select(Case).join(Org, col(Case.org_id) == col(Org.id))
    query = query.where(col(Org.path).startswith(scope_path))
    if org_path:
        query = query.where(col(Org.path).startswith(org_path))
    if status is not None:
        query = query.where(Case.status == status)
    if category is not None:
        query = query.where(Case.category == category)
    elif not include_hidden:
        query = query.where(col(Case.hidden).is_(False))
    if channel is not None:
        query = query.where(Case.channel == channel)
    if q:
        query = query.where(col(Case.text).contains(q, autoescape=True))
    if overdue_at is not None:
        query = query.join(Clock, col(Clock.id) == col(Case.answer_clock_id)).where(
            Clock.state == ClockState.running, col(Clock.due_at) < overdue_at
        )
    query = query.order_by(col(Case.received_at).desc(), col(Case.id).desc())
    return list(session.exec(query.offset(offset).limit(limit)).all())


def to_public(*, session: Session, cases: Sequence[Case], now: datetime) -> list[CasePublic]:
    org_ids = {c.org_id for c in cases}
    account_ids = {c.account_id for c in cases if c.account_id is not None}
    clock_ids = {
        i for c in cases for i in (c.first_response_clock_id, c.answer_clock_id) if i is not None
    }
    thread_ids = {c.thread_id for c in cases}
    orgs = {o.id: o for o in session.exec(select(Org).where(col(Org.id).in_(org_ids))).all()}
    accounts = {
        a.id: a for a in session.exec(select(Account).where(col(Account.id).in_(account_ids)))
    }
    clock_rows = {c.id: c for c in session.exec(select(Clock).where(col(Clock.id).in_(clock_ids)))}
    threads = {t.id: t for t in session.exec(select(Thread).where(col(Thread.id).in_(thread_ids)))}
    out = []
    for case in cases:
        org = orgs[case.org_id]
        first = clock_rows.get(case.first_response_clock_id or -1)
        answer = clock_rows.get(case.answer_clock_id or -1)
        account = accounts.get(case.account_id or -1)
        thread = threads.get(case.thread_id)
        overdue = answer is not None and clocks.status_of(answer, now).value == "overdue"
        window = (
            rules.window_open(thread.last_inbound_at if thread else None, now)
            if case.channel is Channel.wechat_message
            else None
        )
        out.append(
            CasePublic(
                id=case.id,
                channel=case.channel,
                account_id=case.account_id,
                account_name=account.name if account else "",
                thread_id=case.thread_id,
                remote_id=case.remote_id,
                author_handle=case.author_handle,
                msg_type=case.msg_type,
                text=case.text,
                received_at=case.received_at,
                post_url=case.post_url,
                post_excerpt=case.post_excerpt,
                category=case.category,
                hidden=case.hidden,
                status=case.status,
                org_code=org.code,
                org_name=org.name,
                first_response_due_at=first.due_at if first else None,
                answer_due_at=answer.due_at if answer else None,
                overdue=overdue,
                replied_at=case.replied_at,
                needs_other_channel=case.needs_other_channel,
                public_answer=case.public_answer,
                reply_window_open=window,
            )
        )
    return out


def thread_cases(*, session: Session, case: Case) -> list[Case]:
    return list(
        session.exec(
            select(Case).where(Case.thread_id == case.thread_id).order_by(col(Case.received_at))
        ).all()
    )


def events_public(*, session: Session, case: Case) -> list[EventPublic]:
    events = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.id))
    ).all()
    ids = {i for e in events for i in (e.from_org_id, e.to_org_id) if i is not None}
    names = {o.id: o.name for o in session.exec(select(Org).where(col(Org.id).in_(ids)))}
    return [
        EventPublic(
            at=e.at,
            actor=e.actor_name,
            kind=e.kind,
            from_org=names.get(e.from_org_id) if e.from_org_id else None,
            to_org=names.get(e.to_org_id) if e.to_org_id else None,
            detail=e.detail,
        )
        for e in events
    ]


def replies_public(*, session: Session, case: Case) -> list[ReplyPublic]:
    return [
        ReplyPublic(
            id=r.id,
            text=r.text,
            status=r.status,
            publish_on_hall=r.publish_on_hall,
            final=r.final,
            remote_id=r.remote_id,
            error=r.error,
            created_at=r.created_at,
            sent_at=r.sent_at,
        )
        for r in session.exec(
            select(Reply).where(Reply.case_id == case.id).order_by(col(Reply.id))
        ).all()
    ]


# -- handling -----------------------------------------------------------------------------------


def _move(case: Case, target: CaseStatus) -> None:
    if not rules.can_move(case.status, target):
        raise Conflict(rules.move_error(case.status, target))
    case.status = target
    case.updated_at = utcnow()


def triage(*, session: Session, case: Case, category: Category, who: Who) -> Case:
    before = case.category
    case.category = category
    case.hidden = rules.is_hidden(category)
    case.updated_at = utcnow()
    session.add(case)
    _event(
        session,
        case,
        who,
        "triage",
        f"{rules.CATEGORY_ZH[before]} → {rules.CATEGORY_ZH[category]}",
    )
    _audit(
        session, case, who, "case.triage", f"留言 #{case.id} 分类为{rules.CATEGORY_ZH[category]}"
    )
    session.flush()
    return case


def assign(*, session: Session, case: Case, org: Org, who: Who) -> Case:
    """Hand the case to ``org`` (first assignment, or within the same handling)."""
    before = case.org_id
    _move(case, CaseStatus.assigned)
    case.org_id = org.id  # type: ignore[assignment]
    _move_clocks(session, case, org)
    session.add(case)
    _event(session, case, who, "assign", "", from_org=before, to_org=org.id)
    _audit(session, case, who, "case.assign", f"留言 #{case.id} 分派给{org.name}")
    session.flush()
    return case


def transfer(*, session: Session, case: Case, org: Org, reason: str, who: Who) -> Case:
    """Transfer to another org (§13) with a reason: history and clocks are kept (not restarted)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("转办需要说明理由", field="reason")
    if org.id == case.org_id:
        raise Invalid(f"留言已由{org.name}办理", field="org_code")
    before = case.org_id
    _move(case, CaseStatus.assigned)
    case.org_id = org.id  # type: ignore[assignment]
    _move_clocks(session, case, org)
    session.add(case)
    _event(session, case, who, "transfer", reason, from_org=before, to_org=org.id)
    _audit(session, case, who, "case.transfer", f"留言 #{case.id} 转办{org.name}：{reason}")
    session.flush()
    return case


def _move_clocks(session: Session, case: Case, org: Org) -> None:
    ids = [i for i in (case.first_response_clock_id, case.answer_clock_id) if i is not None]
    if ids:
        session.execute(
            update(Clock)
            .where(col(Clock.id).in_(ids), col(Clock.state) == ClockState.running)
            .values(org_id=org.id)
            .execution_options(synchronize_session=False)
        )
        for clock_id in ids:
            clock = session.get(Clock, clock_id)
            if clock is not None:
                session.refresh(clock)


def add_note(*, session: Session, case: Case, text: str, who: Who) -> Case:
    _event(session, case, who, "note", text.strip())
    session.flush()
    return case


def set_in_progress(*, session: Session, case: Case, who: Who) -> Case:
    _move(case, CaseStatus.in_progress)
    session.add(case)
    _event(session, case, who, "status", rules.STATUS_ZH[CaseStatus.in_progress])
    session.flush()
    return case


def close(*, session: Session, case: Case, reason: str, who: Who) -> Case:
    _move(case, CaseStatus.closed)
    case.closed_at = utcnow()
    session.add(case)
    _event(session, case, who, "close", reason.strip())
    _audit(session, case, who, "case.close", f"留言 #{case.id} 办结：{reason.strip()}")
    session.flush()
    return case


def review_required(*, session: Session, org_id: int) -> bool:
    setting = session.get(InboxSetting, org_id)
    return bool(setting and setting.review_replies)


def set_review(*, session: Session, org: Org, review_replies: bool, who: Who) -> InboxSetting:
    setting = session.get(InboxSetting, org.id) or InboxSetting(org_id=org.id)  # type: ignore[arg-type]
    setting.review_replies = review_replies
    session.add(setting)
    record(
        session=session,
        actor_id=who.user_id,
        actor_name=who.name,
        action="inbox.settings",
        object_type="org",
        object_id=org.code,
        org_id=org.id,
        summary=f"{org.name}：答复{'须' if review_replies else '无须'}审核",
        client_ip=who.client_ip,
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
    if case.channel is Channel.weibo_comment:
        from connectors.weibo_rules import TEXT_MAX, weibo_length

        if weibo_length(plain) > TEXT_MAX:
            raise Invalid(
                f"微博评论回复不能超过{TEXT_MAX}字（当前{weibo_length(plain)}字）", field="text"
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
        _event(session, case, who, "reply", f"答复待审核：{plain[:200]}")
    session.flush()
    return reply


def approve_reply(*, session: Session, reply: Reply, who: Who) -> Reply:
    """A reviewer (not the author) approves a held reply: it is ``queued`` for sending."""
    if reply.status is not ReplyStatus.pending_review:
        raise Conflict(f"答复 {reply.id} 不在待审核状态")
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
        raise Conflict(f"答复 {reply.id} 不在待发送状态")
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
        _event(session, case, who, "reply", f"答复未发出：{reply.error}")
        session.add(case)
        session.flush()
        return reply
    case.first_response_at = case.first_response_at or now
    _stop(session, case.first_response_clock_id, now, who)
    if reply.final:
        case.replied_at = now
        _stop(session, case.answer_clock_id, now, who)
        if case.status is not CaseStatus.replied:
            _move(case, CaseStatus.replied)
    elif case.status in (CaseStatus.new, CaseStatus.assigned):
        _move(case, CaseStatus.in_progress)
    if reply.publish_on_hall and reply.final and not case.hidden:
        case.public_answer = True
    case.needs_other_channel = False
    case.updated_at = now
    session.add(case)
    _event(session, case, who, "reply", reply.text)
    _audit(session, case, who, "case.reply", f"答复留言 #{case.id}：{reply.text[:200]}")
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
        actor_id=who.user_id,
        actor_name=who.name,
        client_ip=who.client_ip,
    )


def _deliver(session: Session, case: Case, text: str, settings: Settings, who: Who) -> str:
    from hub.delivery.channels import connector_account, connector_for
    from hub.delivery.rules import rip_for

    if case.channel is Channel.manual or case.account_id is None:
        return ""  # answered outside the platforms (recorded only)
    account = session.get(Account, case.account_id)
    if account is None:
        raise NotFound(f"account {case.account_id} does not exist")
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
    raise Invalid(f"channel {case.channel.value} cannot be answered through {account.platform}")


# -- routing rules ------------------------------------------------------------------------------


def list_rules(*, session: Session) -> list[tuple[RoutingRule, Org]]:
    rows = session.exec(
        select(RoutingRule, Org)
        .join(Org, col(Org.id) == col(RoutingRule.org_id))
        .order_by(col(RoutingRule.priority), col(RoutingRule.id))
    ).all()
    return [(r, o) for r, o in rows]


# -- statistics, the audit's count, the hall -----------------------------------------------------


def stats_per_org(
    *, session: Session, scope_path: str, now: datetime, since: datetime | None = None
) -> list[tuple[Org, rules.Stats]]:
    answer = select(Clock.id, Clock.due_at).subquery()
    query = (
        select(Case, Org, answer.c.due_at)
        .join(Org, col(Org.id) == col(Case.org_id))
        .outerjoin(answer, answer.c.id == col(Case.answer_clock_id))
        .where(col(Org.path).startswith(scope_path), col(Case.hidden).is_(False))
    )
    if since is not None:
        query = query.where(col(Case.received_at) >= since)
    per_org: dict[int, list[rules.CaseTimes]] = defaultdict(list)
    orgs: dict[int, Org] = {}
    for case, org, due in session.exec(query).all():
        orgs[org.id] = org  # type: ignore[index]
        per_org[org.id].append(  # type: ignore[index]
            rules.CaseTimes(case.received_at, case.first_response_at, _aware(due), case.replied_at)
        )
    return sorted(
        ((orgs[i], rules.stats_of(times, now)) for i, times in per_org.items()),
        key=lambda pair: pair[0].path,
    )


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def overdue_case_counts(*, session: Session, cutoff: datetime) -> dict[int, int]:
    """Per account: cases received before ``cutoff`` whose answer deadline passed before it and
    that were neither answered nor closed before it (spam and abuse left out). Feeds the
    audit's ``cases_overdue`` finding."""
    rows = session.execute(
        select(col(Case.account_id), func.count(col(Case.id)))
        .join(Clock, col(Clock.id) == col(Case.answer_clock_id))
        .where(
            col(Case.account_id).is_not(None),
            col(Case.hidden).is_(False),
            col(Case.received_at) < cutoff,
            col(Clock.due_at) < cutoff,
            or_(col(Case.replied_at).is_(None), col(Case.replied_at) >= cutoff),
            or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= cutoff),
        )
        .group_by(col(Case.account_id))
    ).all()
    return {int(account_id): int(count) for account_id, count in rows}


@dataclass(frozen=True)
class PublicAnswer:
    case_id: int
    author: str  # masked
    question: str
    answer: str
    org_name: str
    asked_at: datetime
    answered_at: datetime


def public_answers(*, session: Session, limit: int = 50) -> list[PublicAnswer]:
    rows = session.exec(
        select(Case, Org, Reply)
        .join(Org, col(Org.id) == col(Case.org_id))
        .join(Reply, col(Reply.case_id) == col(Case.id))
        .where(
            col(Case.public_answer).is_(True),
            col(Case.hidden).is_(False),
            Reply.status == ReplyStatus.sent,
            col(Reply.publish_on_hall).is_(True),
        )
        .order_by(col(Reply.sent_at).desc())
        .limit(limit)
    ).all()
    return [
        PublicAnswer(
            case_id=case.id,  # type: ignore[arg-type]
            author=rules.mask_handle(case.author_handle),
            question=case.text,
            answer=reply.text,
            org_name=org.name,
            asked_at=case.received_at,
            answered_at=reply.sent_at or case.received_at,
        )
        for case, org, reply in rows
    ]
