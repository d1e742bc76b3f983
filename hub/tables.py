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
from hub.orgs.models import Org, OrgName
from hub.posts.models import Approval, ForwardOffer, Post, PostVersion
from hub.system import Heartbeat
from hub.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "AccountActivity",
    "Approval",
    "Attempt",
    "AuditEntry",
    "AuditRun",
    "CalendarOverride",
    "CalendarYear",
    "Clock",
    "ClockPost",
    "ClockReminder",
    "Delivery",
    "ForwardOffer",
    "HallEntry",
    "Heartbeat",
    "LoginFailure",
    "Obligation",
    "ObligationRecord",
    "Org",
    "OrgName",
    "PaceSlot",
    "PlatformToken",
    "Post",
    "PostVersion",
    "Spokesperson",
    "User",
    "metadata",
]
