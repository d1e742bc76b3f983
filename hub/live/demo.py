"""The demo's live session (``govhub demo``): one 凯里市 press conference, not started, with a
key-event approver, so the sessions list, the console and the public page have something to show."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus
from hub.config import get_settings
from hub.live import service
from hub.live.models import LiveSession, LiveSessionCreate, MeetingKind
from hub.orgs.service import get_by_code
from hub.users.models import User
from hub.users.service import actor_of
from hub.users.who import Who

DEMO_TITLE = "凯里市人民政府新闻发布会（演示）"
DEMO_ORG = "522601"
DEMO_CREATOR = "kaili-editor"
DEMO_APPROVER = "kaili-reviewer"


def seed_session(*, session: Session, now: datetime) -> str:
    """Create the demo session once (scheduled for 09:00 tomorrow, Beijing time); idempotent."""
    found = session.exec(select(LiveSession).where(LiveSession.title == DEMO_TITLE)).first()
    if found is not None:
        return f"live session /live/{found.slug}/console ({found.status.value})"
    creator = session.exec(select(User).where(User.username == DEMO_CREATOR)).first()
    approver = session.exec(select(User).where(User.username == DEMO_APPROVER)).first()
    if creator is None or approver is None or approver.id is None:
        return "live session: demo users missing, none created"
    org = get_by_code(session=session, code=DEMO_ORG)
    targets = session.exec(
        select(Account).where(Account.org_id == org.id, col(Account.status) != AccountStatus.closed)
    ).all()
    tz = get_settings().tz
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    live = service.create_session(
        session=session,
        who=Who(user=creator, actor=actor_of(session=session, user=creator)),
        data=LiveSessionCreate(
            title=DEMO_TITLE,
            org_code=DEMO_ORG,
            meeting_kind=MeetingKind.press,
            starts_at=datetime.combine(tomorrow, time(9, 0), tz),
            target_account_ids=[a.id for a in targets if a.id is not None],
            approver_ids=[approver.id],
            plan="发布会议程：市领导通报一季度经济运行情况；答记者问。要点限于通报的数据和已公开的政策。",
        ),
        now=now,
    )
    return f"live session /live/{live.slug}/console (scheduled, approver {DEMO_APPROVER})"
