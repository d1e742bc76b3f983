"""Celery tasks for notifications: send one by e-mail or group robot, and the daily look at
authorisations about to expire."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="notify.send")
def send(notification_id: int, channel: str) -> bool:
    """Send one notification on one channel (retried inside; failures are logged)."""
    from hub.db import session_scope
    from hub.notify.service import send as send_one

    with session_scope() as session:
        return send_one(session, notification_id, channel)


@shared_task(name="notify.tokens")
def tokens() -> int:
    """Tell who may re-authorise an account whose token ends within 7 days (once per expiry)."""
    from hub.db import session_scope
    from hub.notify.service import remind_tokens
    from hub.sqltypes import utcnow

    with session_scope() as session:
        return remind_tokens(session, now=utcnow())
