"""Messages from the public become cases (once each): routed, their clocks started. The
ingestion pass reads comments from every platform whose connector has ``Comments``; followers'
messages arrive by callback (:func:`receive_message`). Both commit per account / per message;
:func:`receive` joins the caller's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.base import Comments, InboundMessage
from connectors.errors import CapabilityUnavailable, ConnectorError
from hub.accounts import service as accounts_service
from hub.accounts.health import COMMENTS
from hub.accounts.models import Account, AccountStatus, Platform
from hub.clocks import service as clocks
from hub.config import Settings, get_settings
from hub.db import engine_for
from hub.inbox import rules
from hub.inbox.models import Case, CaseStatus, Channel, InboxCursor, RoutingRule, Thread
from hub.inbox.service import INBOX, add_event, comment_channel, message_channel
from hub.orgs.models import Org
from hub.sqltypes import utcnow
from hub.users.who import Who

log = logging.getLogger(__name__)

FIRST_RESPONSE = "case_first_response"
ANSWER = "case_answer"


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
            who=INBOX,
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
    who: Who = INBOX,
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
    add_event(session, case, who, "created", detail, to_org=target.id, at=incoming.received_at)
    if matched is not None:
        add_event(session, case, who, "assign", f"按分派规则 #{matched.rule_id}", to_org=target.id)
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
