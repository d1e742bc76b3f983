"""Every table, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from hub.accounts.models import Account, PlatformToken
from hub.auditlog.models import AuditEntry
from hub.delivery.models import Attempt, Delivery, HallEntry, PaceSlot
from hub.orgs.models import Org, OrgName
from hub.posts.models import Approval, ForwardOffer, Post, PostVersion
from hub.system import Heartbeat
from hub.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "Approval",
    "Attempt",
    "Delivery",
    "ForwardOffer",
    "HallEntry",
    "PaceSlot",
    "Post",
    "PostVersion",
    "AuditEntry",
    "Heartbeat",
    "LoginFailure",
    "Org",
    "OrgName",
    "PlatformToken",
    "User",
    "metadata",
]
