"""Celery tasks for compliance clocks: thin wrappers around :mod:`hub.clocks.reminders` and
:mod:`hub.clocks.obligations`."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="clocks.remind")
def remind() -> int:
    """One reminder pass (50 % / 80 % / overdue, each once per clock); how many were sent."""
    from hub.clocks.reminders import remind_now
    from hub.db import session_scope

    with session_scope() as session:
        return len(remind_now(session=session))


@shared_task(name="clocks.obligations")
def obligations() -> int:
    """Open this period's recurring obligations and mark met / missed; how many changed."""
    from hub.clocks.obligations import refresh_obligations
    from hub.clocks.service import policy_in_force
    from hub.config import get_settings
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    settings = get_settings()
    with session_scope() as session:
        report = refresh_obligations(
            session=session,
            policy=policy_in_force(settings),
            today=utcnow().astimezone(settings.tz).date(),
            tz=settings.tz,
        )
    return report.created + report.changed
