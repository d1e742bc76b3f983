"""Every table, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from hub.accounts.models import Account, PlatformToken
from hub.auditlog.models import AuditEntry
from hub.orgs.models import Org, OrgName
from hub.system import Heartbeat
from hub.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "AuditEntry",
    "Heartbeat",
    "LoginFailure",
    "Org",
    "OrgName",
    "PlatformToken",
    "User",
    "metadata",
]
