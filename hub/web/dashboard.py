"""The editor's workbench (工作台): what needs this user's attention now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus
from hub.delivery.models import Delivery, DeliveryStatus
from hub.orgs.models import Org
from hub.posts.models import Post, PostStatus
from hub.users.models import User
from hub.users.rules import Action, Actor, may, scope_path

ATTENTION = (DeliveryStatus.failed, DeliveryStatus.unconfirmed, DeliveryStatus.parked)
EXPIRY_WARNING = timedelta(days=7)


@dataclass
class Workbench:
    drafts: list[Post] = field(default_factory=list)
    to_review: list[Post] = field(default_factory=list)
    attention: list[tuple[Delivery, Account, Post]] = field(default_factory=list)
    expiring: list[tuple[Account, Org]] = field(default_factory=list)
    today: list[Post] = field(default_factory=list)
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
    out.to_review = review_queue(session=session, actor=actor)
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
    ids = {p.org_id for p in out.drafts + out.to_review + out.today}
    ids |= {p.org_id for _, _, p in out.attention}
    for org_id in ids:
        org = session.get(Org, org_id)
        if org is not None:
            out.orgs[org_id] = org
    return out
