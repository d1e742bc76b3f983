"""Micro-live tasks: fan key events out to Weibo under each account's pace."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="live.fanout")
def fanout() -> int:
    """Send pending key events (one, or several merged) as pre-approved posts; enqueue them."""
    from hub.db import session_scope
    from hub.delivery import service as engine
    from hub.live import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        delivery_ids = service.fanout(session=session, now=utcnow())
    return engine.enqueue(delivery_ids)
