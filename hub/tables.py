"""Every table, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from hub.accounts.models import Account, PlatformToken
from hub.audit.models import AccountActivity, AuditRun, Spokesperson
from hub.auditlog.models import AuditEntry
from hub.clocks.models import (
    CalendarOverride,
    CalendarYear,
    Clock,
    ClockPost,
    ClockReminder,
    Obligation,
    ObligationRecord,
)
from hub.delivery.models import Attempt, Delivery, HallEntry, PaceSlot
from hub.hall.models import Partner, PartnerDelivery
from hub.inbox.models import (
    Case,
    CaseEvent,
    InboxCursor,
    InboxSetting,
    Reply,
    RoutingRule,
    Thread,
)
from hub.live.models import EntryRevision, LiveEntry, LiveEvent, LiveFanout, LiveSession
from hub.orgs.models import Org, OrgName
from hub.posts.models import Approval, ForwardOffer, Post, PostVersion, ReviewChain
from hub.proofread.models import Acknowledgement, Finding, LeaderRow, LexiconRow
from hub.reach.models import ReachCount, ReachPull
from hub.system import Heartbeat, Worker
from hub.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "AccountActivity",
    "Acknowledgement",
    "Approval",
    "Attempt",
    "AuditEntry",
    "AuditRun",
    "CalendarOverride",
    "CalendarYear",
    "Case",
    "CaseEvent",
    "Clock",
    "ClockPost",
    "ClockReminder",
    "Delivery",
    "EntryRevision",
    "Finding",
    "ForwardOffer",
    "HallEntry",
    "Heartbeat",
    "InboxCursor",
    "InboxSetting",
    "LeaderRow",
    "LexiconRow",
    "LiveEntry",
    "LiveEvent",
    "LiveFanout",
    "LiveSession",
    "LoginFailure",
    "Obligation",
    "ObligationRecord",
    "Org",
    "OrgName",
    "PaceSlot",
    "Partner",
    "PartnerDelivery",
    "PlatformToken",
    "Post",
    "PostVersion",
    "ReachCount",
    "ReachPull",
    "Reply",
    "ReviewChain",
    "RoutingRule",
    "Spokesperson",
    "Thread",
    "User",
    "Worker",
    "metadata",
]
