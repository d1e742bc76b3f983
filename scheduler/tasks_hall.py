"""Celery tasks of the release hall: thin wrappers around ``hub.hall.partners``."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="hall.notify_partners")
def notify_partners(entry_id: int) -> str:
    """Send one new hall entry to every partner (enqueued after the entry's commit)."""
    from hub.db import session_scope
    from hub.hall import partners

    with session_scope() as session:
        return partners.notify_partners(session=session, entry_id=entry_id).line()


@shared_task(name="hall.sweep_partners")
def sweep_partners() -> str:
    """Beat, every 10 s: outbox rows for new entries, then every due partner delivery."""
    from hub.db import session_scope
    from hub.hall import partners

    with session_scope() as session:
        return partners.sweep_partners(session=session).line()
