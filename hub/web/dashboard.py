"""The editor's workbench (工作台): what needs this user's attention now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus
from hub.clocks.models import Clock, ClockState
from hub.delivery.models import Delivery, DeliveryStatus
from hub.inbox.models import Case, CaseStatus
from hub.orgs.models import Org
from hub.posts.models import Post, PostStatus
from hub.users.models import User
from hub.users.rules import Action, Actor, may, scope_path

ATTENTION = (DeliveryStatus.failed, DeliveryStatus.unconfirmed, DeliveryStatus.parked)
EXPIRY_WARNING = timedelta(days=7)
DUE_WITHIN = timedelta(days=1)  # a clock or a case is "due" a day ahead (and once overdue)
WAITING = (PostStatus.in_review, PostStatus.cosigning)
OPEN_CASES = (CaseStatus.new, CaseStatus.assigned, CaseStatus.in_progress)


@dataclass
class Workbench:
    drafts: list[Post] = field(default_factory=list)
    waiting: list[Post] = field(default_factory=list)  # mine, in review or co-signing
    to_review: list[Post] = field(default_factory=list)
    attention: list[tuple[Delivery, Account, Post]] = field(default_factory=list)
    expiring: list[tuple[Account, Org]] = field(default_factory=list)
    today: list[Post] = field(default_factory=list)
    clocks_due: list[Clock] = field(default_factory=list)
    cases_due: list[tuple[Case, Clock]] = field(default_factory=list)
    orgs: dict[int, Org] = field(default_factory=dict)


def review_queue(*, session: Session, actor: Actor) -> list[Post]:
    """Posts waiting for this user: in review within their scope, or co-signing by their org.

    Emergencies first, then the oldest.
    """
    posts: list[Post] = []
    if may(actor, Action.post_review):
        posts += session.exec(
            select(Post)
            .join(Org, col(Post.org_id) == col(Org.id))
            .where(
                Post.status == PostStatus.in_review,
                col(Org.path).startswith(scope_path(actor, Action.post_review)),
                Post.author_id != actor.user_id,
            )
        ).all()
    if may(actor, Action.post_cosign):
        cosigning = session.exec(select(Post).where(Post.status == PostStatus.cosigning)).all()
        for post in cosigning:
            paths = [
                o.path for o in (session.get(Org, i) for i in post.cosign_org_ids) if o is not None
            ]
            if any(may(actor, Action.post_cosign, p) for p in paths):
                posts.append(post)
    posts.sort(key=lambda p: (p.urgency.value != "emergency", p.updated_at))
    return posts


def workbench(
    *, session: Session, user: User, actor: Actor, now: datetime, tz: ZoneInfo
) -> Workbench:
    out = Workbench()
    scope = scope_path(actor, Action.post_read)
    in_scope = col(Org.path).startswith(scope)
    out.drafts = list(
        session.exec(
            select(Post)
            .where(
                Post.author_id == user.id,
                col(Post.status).in_([PostStatus.draft, PostStatus.rejected, PostStatus.missed]),
            )
            .order_by(col(Post.updated_at).desc())
            .limit(20)
        ).all()
    )
    out.waiting = list(
        session.exec(
            select(Post)
            .where(Post.author_id == user.id, col(Post.status).in_(WAITING))
            .order_by(col(Post.updated_at).desc())
            .limit(20)
        ).all()
    )
    out.to_review = review_queue(session=session, actor=actor)
    _due(session, actor, now, out)
    if may(actor, Action.post_read):
        out.attention = [
            (d, a, p)
            for d, a, p in session.exec(
                select(Delivery, Account, Post)
                .join(Account, col(Delivery.account_id) == col(Account.id))
                .join(Post, col(Delivery.post_id) == col(Post.id))
                .join(Org, col(Post.org_id) == col(Org.id))
                .where(col(Delivery.status).in_(ATTENTION), in_scope)
                .order_by(col(Delivery.updated_at).desc())
                .limit(30)
            ).all()
        ]
        start = datetime.combine(now.astimezone(tz).date(), time(), tz)
        out.today = list(
            session.exec(
                select(Post)
                .join(Org, col(Post.org_id) == col(Org.id))
                .where(
                    in_scope,
                    col(Post.scheduled_at) >= start,
                    col(Post.scheduled_at) < start + timedelta(days=1),
                    col(Post.status).not_in([PostStatus.withdrawn]),
                )
                .order_by(col(Post.scheduled_at))
            ).all()
        )
    if may(actor, Action.account_read):
        out.expiring = [
            (a, o)
            for a, o in session.exec(
                select(Account, Org)
                .join(Org, col(Account.org_id) == col(Org.id))
                .where(
                    col(Org.path).startswith(scope_path(actor, Action.account_read)),
                    col(Account.token_expires_at).is_not(None),
                    col(Account.token_expires_at) < now + EXPIRY_WARNING,
                    Account.status != AccountStatus.closed,
                )
                .order_by(col(Account.token_expires_at))
                .limit(50)
            ).all()
        ]
    ids = {p.org_id for p in out.drafts + out.waiting + out.to_review + out.today}
    ids |= {p.org_id for _, _, p in out.attention}
    ids |= {c.org_id for c in out.clocks_due} | {c.org_id for c, _ in out.cases_due}
    for org_id in ids:
        org = session.get(Org, org_id)
        if org is not None:
            out.orgs[org_id] = org
    return out


def _due(session: Session, actor: Actor, now: datetime, out: Workbench) -> None:
    """Running clocks and open cases in reach due within a day (or already overdue)."""
    cutoff = now + DUE_WITHIN
    if may(actor, Action.clock_read):
        out.clocks_due = list(
            session.exec(
                select(Clock)
                .join(Org, col(Clock.org_id) == col(Org.id))
                .where(
                    col(Org.path).startswith(scope_path(actor, Action.clock_read)),
                    Clock.state == ClockState.running,
                    col(Clock.due_at) < cutoff,
                )
                .order_by(col(Clock.due_at))
                .limit(20)
            ).all()
        )
    if may(actor, Action.case_handle):
        out.cases_due = [
            (case, clock)
            for case, clock in session.exec(
                select(Case, Clock)
                .join(Org, col(Case.org_id) == col(Org.id))
                .join(Clock, col(Case.answer_clock_id) == col(Clock.id))
                .where(
                    col(Org.path).startswith(scope_path(actor, Action.case_handle)),
                    col(Case.status).in_(OPEN_CASES),
                    Clock.state == ClockState.running,
                    col(Clock.due_at) < cutoff,
                )
                .order_by(col(Clock.due_at))
                .limit(20)
            ).all()
        ]
