"""矩阵联动 (matrix forwarding): an approved post offered to lower-level orgs' accounts.

Each offered org's editor accepts (its chosen accounts join the post's targets and get their
copies of the approved version) or declines; the supervisor sees who forwarded within the
deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus
from hub.delivery import service as engine
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts.models import ForwardOffer, ForwardStatus, Post, PostStatus
from hub.posts.service import _audit
from hub.users.rules import Action, may, sees
from hub.users.who import Who

FORWARDABLE = {
    PostStatus.approved,
    PostStatus.publishing,
    PostStatus.published,
    PostStatus.partly_failed,
    PostStatus.scheduled,
}


def offer(
    *,
    session: Session,
    who: Who,
    post: Post,
    org_codes: list[str],
    due_at: datetime | None,
    now: datetime,
) -> list[ForwardOffer]:
    origin = orgs.get(session=session, org_id=post.org_id)
    if not may(who.actor, Action.post_write, origin.path):
        raise Forbidden("只有稿件所属机构的编辑可以推荐转发")
    if post.status not in FORWARDABLE or post.approved_version is None:
        raise Conflict("只有审核通过的稿件可以推荐转发")
    if due_at is not None and due_at.tzinfo is None:
        raise Invalid("截止时间（due_at）须带时区，例如 2026-12-01T18:00:00+08:00", field="due_at")
    if not org_codes:
        raise Invalid("请至少选择一个推荐转发的机构", field="org_codes")
    offers = []
    for code in dict.fromkeys(org_codes):
        target = orgs.resolve_code(session=session, code=code)
        if target.id == origin.id or not target.path.startswith(origin.path):
            raise Invalid(
                "%(target)s不是%(origin)s的下级机构",
                field="org_codes",
                target=target.name,
                origin=origin.name,
            )
        existing = session.exec(
            select(ForwardOffer).where(
                ForwardOffer.post_id == post.id, ForwardOffer.org_id == target.id
            )
        ).first()
        if existing is not None:
            offers.append(existing)
            continue
        row = ForwardOffer(
            post_id=post.id,  # type: ignore[arg-type]
            org_id=target.id,  # type: ignore[arg-type]
            due_at=due_at,
            created_at=now,
        )
        session.add(row)
        offers.append(row)
    session.flush()
    _audit(session, who, "post.forward_offer", post, f"offered to {len(offers)} orgs")
    return offers


def _offer_for(session: Session, who: Who, offer_id: int) -> tuple[ForwardOffer, Org, Post]:
    row = session.get(ForwardOffer, offer_id)
    if row is None:
        raise NotFound("转发推荐 %(offer_id)s 不存在", offer_id=offer_id)
    org = orgs.get(session=session, org_id=row.org_id)
    if not sees(who.actor, org.path):  # permission before state; outside the reach: 404
        raise NotFound("转发推荐 %(offer_id)s 不存在", offer_id=offer_id)
    if not may(who.actor, Action.post_write, org.path):
        raise Forbidden("只有%(org)s的编辑可以处理这条转发推荐", org=org.name)
    if row.status is not ForwardStatus.offered:
        raise Conflict("这条转发推荐已经处理过（%(status)s）", status=row.status.value)
    post = session.get(Post, row.post_id)
    assert post is not None
    return row, org, post


def accept(
    *, session: Session, who: Who, offer_id: int, account_ids: list[int], now: datetime
) -> tuple[ForwardOffer, list[int]]:
    """Accept: the org's chosen accounts get the approved version. Returns ids to enqueue."""
    row, org, post = _offer_for(session, who, offer_id)
    if post.status not in FORWARDABLE or post.approved_version is None:
        raise Conflict("稿件已不是审核通过状态（已撤回或已修改）")
    if not account_ids:
        raise Invalid("请至少选择一个转发账号", field="account_ids")
    for account_id in account_ids:
        account = session.get(Account, account_id)
        if account is None:
            raise Invalid("账号 %(account_id)s 不存在", field="account_ids", account_id=account_id)
        owner = orgs.get(session=session, org_id=account.org_id)
        if not owner.path.startswith(org.path):
            raise Forbidden("账号「%(account)s」不属于%(org)s", account=account.name, org=org.name)
        if account.status is AccountStatus.closed:
            raise Invalid("账号「%(account)s」已停用", field="account_ids", account=account.name)
    future = post.scheduled_at is not None and post.scheduled_at > now
    deliveries = engine.create_deliveries(
        session=session,
        post_id=post.id,  # type: ignore[arg-type]
        version=post.approved_version,
        account_ids=account_ids,
        not_before=post.scheduled_at if future else None,
    )
    row.status = ForwardStatus.accepted
    row.decided_at = now
    row.decided_by = who.id
    row.account_ids = list(account_ids)
    session.add(row)
    to_enqueue: list[int] = []
    if not future:
        to_enqueue = [d.id for d in deliveries if d.id is not None and d.status == "queued"]
        engine.mark_enqueued(session=session, delivery_ids=to_enqueue, now=now)
        if post.status is PostStatus.published or post.status is PostStatus.partly_failed:
            post.status = PostStatus.publishing
            session.add(post)
    _audit(session, who, "post.forward_accept", post, f"{org.name}: {len(account_ids)} accounts")
    return row, to_enqueue


def decline(
    *, session: Session, who: Who, offer_id: int, reason: str, now: datetime
) -> ForwardOffer:
    row, org, post = _offer_for(session, who, offer_id)
    row.status = ForwardStatus.declined
    row.decided_at = now
    row.decided_by = who.id
    session.add(row)
    _audit(session, who, "post.forward_decline", post, f"{org.name}: {reason}")
    return row


@dataclass(frozen=True)
class ForwardingRow:
    offer_id: int
    post_id: int
    org_code: str
    org_name: str
    status: ForwardStatus
    due_at: datetime | None
    decided_at: datetime | None
    on_time: bool | None  # None while undecided and not yet due
    account_ids: list[int]


def report(
    *, session: Session, post_id: int | None, scope_path: str, now: datetime
) -> list[ForwardingRow]:
    query = select(ForwardOffer, Org).join(Org, col(ForwardOffer.org_id) == col(Org.id))
    query = query.where(col(Org.path).startswith(scope_path))
    if post_id is not None:
        query = query.where(ForwardOffer.post_id == post_id)
    rows = []
    for row, org in session.exec(query.order_by(col(Org.path))).all():
        if row.status is ForwardStatus.accepted and row.decided_at is not None:
            on_time = row.due_at is None or row.decided_at <= row.due_at
        elif row.due_at is not None and now > row.due_at:
            on_time = False
        else:
            on_time = None
        rows.append(
            ForwardingRow(
                offer_id=row.id,  # type: ignore[arg-type]
                post_id=row.post_id,
                org_code=org.code,
                org_name=org.name,
                status=row.status,
                due_at=row.due_at,
                decided_at=row.decided_at,
                on_time=on_time,
                account_ids=row.account_ids,
            )
        )
    return rows
