"""Reading the audit log (admins and supervisors), the entries of the reader's reach only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from hub.auditlog import service
from hub.auditlog.models import AuditEntryPublic
from hub.sqltypes import MAX_INT
from hub.users.rules import Action, scope_path
from hub.web.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1/audit-log", tags=["audit log"])


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntryPublic]


@router.get("", summary="Search the audit log", response_model=AuditPage)
def search(
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    action: Annotated[
        str | None, Query(description="action, or its prefix such as 'account.'")
    ] = None,
    object_type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> AuditPage:
    principal.require(Action.audit_log_read)
    rows, total = service.search(
        session=session,
        scope_path=scope_path(principal.actor, Action.audit_log_read),
        action=action,
        object_type=object_type,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    response.headers["X-Total-Count"] = str(total)
    return AuditPage(
        total=total,
        items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows],
    )
