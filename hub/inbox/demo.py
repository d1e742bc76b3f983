"""The demo's inbox case (``govhub demo``): a citizen's Weibo comment to 凯里市's account, recorded
as the comment ingestion records it (its clocks started), then assigned to 凯里市 by the demo
reviewer, so 互动留言, the case page and its history have something to show."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus, Platform
from hub.inbox import ingestion, service
from hub.inbox.models import Case, CaseStatus, Channel
from hub.orgs.service import get_by_code
from hub.users.models import User
from hub.users.service import actor_of
from hub.users.who import Who

DEMO_REMOTE_ID = "demo-comment-1"
DEMO_ORG = "522601"
DEMO_ASSIGNER = "kaili-reviewer"
DEMO_TEXT = "请问凯里市大十字附近的道路施工什么时候结束？晚上噪音很大，影响休息。"


def seed_case(*, session: Session, now: datetime) -> str:
    """Record the demo comment once (received an hour ago) and assign it; idempotent."""
    found = session.exec(select(Case).where(Case.remote_id == DEMO_REMOTE_ID)).first()
    if found is not None:
        return f"inbox case /inbox/cases/{found.id} ({found.status.value})"
    org = get_by_code(session=session, code=DEMO_ORG)
    account = session.exec(
        select(Account).where(
            Account.org_id == org.id,
            Account.platform == Platform("weibo"),
            col(Account.status) != AccountStatus.closed,
        )
    ).first()
    assigner = session.exec(select(User).where(User.username == DEMO_ASSIGNER)).first()
    if account is None or assigner is None:
        return "inbox case: the demo's Weibo account or users are missing, none created"
    case = ingestion.receive(
        session=session,
        incoming=ingestion.Incoming(
            channel=Channel.weibo_comment,
            remote_id=DEMO_REMOTE_ID,
            author_id="demo-citizen-1",
            author_handle="凯里市民小杨",
            text=DEMO_TEXT,
            received_at=now - timedelta(hours=1),
            post_remote_id="demo-status-1",
            post_excerpt="【通知】大十字片区道路改造施工期间交通管制的通告",
        ),
        account=account,
    )
    if case is None:  # recorded meanwhile
        return "inbox case: already recorded"
    if case.status is CaseStatus.new:  # no routing rule took it: the reviewer assigns it
        who = Who(user=assigner, actor=actor_of(session=session, user=assigner))
        service.assign(session=session, case=case, org=org, who=who)
    return f"inbox case /inbox/cases/{case.id} (assigned to {org.name})"
