"""Appending to the audit log. The application never updates or deletes a row.

Every entry belongs to an org (``org_id``): the org of the object it is about (the post's, the
account's, the user's ...), or, when it is about no object of an org (logins, refusals, matrix-wide
settings), the org of the acting user. Readers see the entries of their reach
(``users.rules.scope_path(actor, audit_log.read)``); entries with no org at all (system jobs, a
failed login with an unknown username) only readers whose reach is a root of the matrix.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from hub.auditlog.models import AuditEntry
from hub.orgs.models import Org
from hub.users.models import User
from hub.users.rules import is_root_path
from hub.users.who import Who


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
    """Add an entry to the caller's transaction (it commits with the change it describes).

    Without ``org_id`` the entry belongs to the acting user's org.
    """
    if org_id is None and actor_id is not None:
        actor = session.get(User, actor_id)
        org_id = actor.org_id if actor is not None else None
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


def audit(
    session: Session,
    who: Who,
    action: str,
    object_type: str,
    object_id: object = "",
    *,
    org_id: int | None = None,
    summary: str = "",
) -> AuditEntry:
    """What ``who`` did, in the caller's transaction: :func:`record` with the acting user's id,
    name and address (or the system's name)."""
    return record(
        session=session,
        actor_id=who.user_id,
        actor_name=who.name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        summary=summary,
        client_ip=who.client_ip,
        org_id=org_id,
    )


def record_now(
    *,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: str = "",
    client_ip: str = "",
    org_id: int | None = None,
) -> None:
    """Record in a transaction of its own: for events whose request is answered with an error
    (a refusal, a failed login), whose own transaction is rolled back or never committed."""
    from hub.db import get_engine

    with Session(get_engine()) as session:
        record(
            session=session,
            actor_id=actor_id,
            actor_name=actor_name,
            action=action,
            object_type=object_type,
            object_id=object_id,
            summary=summary,
            client_ip=client_ip,
            org_id=org_id,
        )
        session.commit()


def search(
    *,
    session: Session,
    scope_path: str,
    action: str | None = None,
    object_type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Entries of orgs under ``scope_path`` (and entries of no org when it is a root's path)."""
    in_reach: ColumnElement[bool] = col(AuditEntry.org_id).in_(
        select(Org.id).where(col(Org.path).startswith(scope_path))
    )
    if is_root_path(scope_path):
        in_reach = or_(in_reach, col(AuditEntry.org_id).is_(None))
    query = select(AuditEntry).where(in_reach)
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
