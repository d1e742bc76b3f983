"""The inbox with a database: cases read, triaged, assigned, transferred, noted and closed,
routing rules, statistics and the audit's overdue count. Messages become cases in
:mod:`hub.inbox.ingestion`; replies are written, reviewed and sent in :mod:`hub.inbox.replies`.

Every function joins the caller's transaction (flush, never commit).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from hub.accounts.models import Account
from hub.auditlog.service import audit
from hub.clocks import service as clocks
from hub.clocks.models import Clock, ClockState
from hub.errors import Conflict, Invalid, NotFound
from hub.inbox import rules
from hub.inbox.models import (
    Case,
    CaseEvent,
    CasePublic,
    CaseStatus,
    Category,
    Channel,
    EventPublic,
    Reply,
    ReplyPublic,
    ReplyStatus,
    RoutingRule,
    Thread,
)
from hub.orgs.models import Org
from hub.sqltypes import utcnow
from hub.users.who import Who

log = logging.getLogger(__name__)

SYSTEM = "inbox"
INBOX = Who(system=SYSTEM)
"""The inbox itself acting (ingestion, callbacks), as case histories and the audit log name it."""


def add_event(
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


def audit_case(session: Session, case: Case, who: Who, action: str, summary: str) -> None:
    audit(session, who, action, "case", case.id, org_id=case.org_id, summary=summary)


def comment_channel(platform: str) -> Channel | None:
    """The inbox channel of comments under ``platform``'s posts (None: the inbox has none)."""
    return Channel._value2member_map_.get(f"{platform}_comment")  # type: ignore[return-value]


def message_channel(platform: str) -> Channel | None:
    """The inbox channel of followers' messages to a ``platform`` account (None: none)."""
    return Channel._value2member_map_.get(f"{platform}_message")  # type: ignore[return-value]


# -- reading ------------------------------------------------------------------------------------


def get_case(*, session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("留言 %(case_id)s 不存在", case_id=case_id)
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


def move_case(case: Case, target: CaseStatus) -> None:
    if not rules.can_move(case.status, target):
        raise Conflict(
            "留言状态为「%(current)s」，不能改为「%(target)s」",
            current=rules.STATUS_ZH[case.status],
            target=rules.STATUS_ZH[target],
        )
    case.status = target
    case.updated_at = utcnow()


def triage(*, session: Session, case: Case, category: Category, who: Who) -> Case:
    before = case.category
    case.category = category
    case.hidden = rules.is_hidden(category)
    case.updated_at = utcnow()
    session.add(case)
    add_event(
        session,
        case,
        who,
        "triage",
        f"{rules.CATEGORY_ZH[before]} → {rules.CATEGORY_ZH[category]}",
    )
    audit_case(
        session, case, who, "case.triage", f"留言 #{case.id} 分类为{rules.CATEGORY_ZH[category]}"
    )
    session.flush()
    return case


def assign(*, session: Session, case: Case, org: Org, who: Who) -> Case:
    """Hand the case to ``org`` (first assignment, or within the same handling)."""
    before = case.org_id
    move_case(case, CaseStatus.assigned)
    case.org_id = org.id  # type: ignore[assignment]
    _move_clocks(session, case, org)
    session.add(case)
    add_event(session, case, who, "assign", "", from_org=before, to_org=org.id)
    audit_case(session, case, who, "case.assign", f"留言 #{case.id} 分派给{org.name}")
    session.flush()
    return case


def transfer(*, session: Session, case: Case, org: Org, reason: str, who: Who) -> Case:
    """Transfer to another org (§13) with a reason: history and clocks are kept (not restarted)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("转办需要说明理由", field="reason")
    if org.id == case.org_id:
        raise Invalid("留言已由%(org)s办理", field="org_code", org=org.name)
    before = case.org_id
    move_case(case, CaseStatus.assigned)
    case.org_id = org.id  # type: ignore[assignment]
    _move_clocks(session, case, org)
    session.add(case)
    add_event(session, case, who, "transfer", reason, from_org=before, to_org=org.id)
    audit_case(session, case, who, "case.transfer", f"留言 #{case.id} 转办{org.name}：{reason}")
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
    add_event(session, case, who, "note", text.strip())
    session.flush()
    return case


def set_in_progress(*, session: Session, case: Case, who: Who) -> Case:
    move_case(case, CaseStatus.in_progress)
    session.add(case)
    add_event(session, case, who, "status", rules.STATUS_ZH[CaseStatus.in_progress])
    session.flush()
    return case


def close(*, session: Session, case: Case, reason: str, who: Who) -> Case:
    move_case(case, CaseStatus.closed)
    case.closed_at = utcnow()
    session.add(case)
    add_event(session, case, who, "close", reason.strip())
    audit_case(session, case, who, "case.close", f"留言 #{case.id} 办结：{reason.strip()}")
    session.flush()
    return case


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
