"""The demo's clocks (``govhub demo``): two on 凯里市, one running (an emergency's first release,
due within hours) and one overdue (a hot topic left unanswered two days ago), so the 时限看板 and
the 工作台 have something to show."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from hub.clocks import service
from hub.clocks.models import Clock
from hub.orgs.service import get_by_code
from hub.users.models import User
from hub.users.service import actor_of
from hub.users.who import Who

DEMO_ORG = "522601"
DEMO_OPENER = "kaili-editor"
# (kind, subject, started how long ago)
DEMO_CLOCKS = (
    ("emergency", "凯里市城区燃气管道泄漏处置（演示）", timedelta(hours=1)),
    ("hot_topic", "网传凯里市学校食堂食材问题回应（演示）", timedelta(days=2)),
)


def seed_clocks(*, session: Session, now: datetime) -> str:
    """Open the demo clocks once each (by subject); idempotent."""
    opener = session.exec(select(User).where(User.username == DEMO_OPENER)).first()
    if opener is None:
        return "clocks: demo users missing, none opened"
    who = Who(user=opener, actor=actor_of(session=session, user=opener))
    org = get_by_code(session=session, code=DEMO_ORG)
    policy = service.policy_in_force()
    subjects = [subject for _kind, subject, _ago in DEMO_CLOCKS]
    have = set(session.exec(select(Clock.subject).where(col(Clock.subject).in_(subjects))).all())
    opened = 0
    for kind, subject, ago in DEMO_CLOCKS:
        if subject in have or kind not in policy.clocks:
            continue
        service.create_clock(
            session=session,
            kind=kind,
            org=org,
            subject=subject,
            started_at=now - ago,
            who=who,
            policy=policy,
        )
        opened += 1
    return f"clocks: {opened} opened, /clocks ({len(have)} already there)"
