"""Appending to the audit log. The application never updates or deletes a row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.auditlog.models import AuditEntry


def record(
    *,
    session: Session,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: str = "",
    client_ip: str = "",
    org_id: int | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction (it commits with the change it describes)."""
    entry = AuditEntry(
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary[:2000],
        client_ip=client_ip,
        org_id=org_id,
    )
    session.add(entry)
    return entry


def search(
    *,
    session: Session,
    action: str | None = None,
    object_type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if action:
        query = query.where(col(AuditEntry.action).startswith(action))
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
    if since:
        query = query.where(col(AuditEntry.at) >= since)
    if until:
        query = query.where(col(AuditEntry.at) < until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)
