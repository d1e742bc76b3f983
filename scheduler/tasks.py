"""Celery tasks: thin wrappers that open a session and call a service function.

Publish tasks are idempotent (a delivery is claimed with a conditional update before any call),
so ``acks_late`` and re-delivery after a crash are safe.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="system.heartbeat")
def heartbeat() -> str:
    """Beat's liveness mark: the worker processed a scheduled task."""
    from hub.system import record_heartbeat

    return record_heartbeat("worker")


@shared_task(name="delivery.publish")
def publish(delivery_id: int) -> str:
    from hub.db import session_scope
    from hub.delivery import service
    from hub.delivery.pacing import get_pacer

    with session_scope() as session:
        return service.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())


@shared_task(name="delivery.poll")
def poll(delivery_id: int) -> str:
    from hub.db import session_scope
    from hub.delivery import service

    with session_scope() as session:
        return service.poll(session=session, delivery_id=delivery_id)


@shared_task(name="delivery.withdraw")
def withdraw(delivery_id: int) -> str:
    from hub.db import session_scope
    from hub.delivery import service

    with session_scope() as session:
        return service.withdraw(session=session, delivery_id=delivery_id)


@shared_task(name="delivery.sweep")
def sweep() -> int:
    """Re-enqueue work whose time came or whose lease ran out (lost messages, dead workers)."""
    from hub.db import session_scope
    from hub.delivery import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        work = service.sweep(session=session, now=utcnow())
    service.enqueue(work["publish"])
    service.enqueue(work["poll"], task="delivery.poll")
    return len(work["publish"]) + len(work["poll"])


@shared_task(name="posts.release_due")
def release_due() -> int:
    """Claim scheduled posts whose time has come; mark stale ones missed."""
    from hub.db import session_scope
    from hub.delivery import service as delivery
    from hub.posts import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        to_enqueue, _missed = service.release_due(session=session, now=utcnow())
    delivery.enqueue(to_enqueue)
    return len(to_enqueue)


@shared_task(name="accounts.recheck")
def recheck_accounts() -> str:
    """Re-test misconfigured accounts whose time has come; resume the deliveries of healed ones."""
    from hub.accounts.health import recheck_due
    from hub.config import get_settings
    from hub.db import session_scope
    from hub.delivery import service
    from hub.sqltypes import utcnow

    with session_scope() as session:
        resumed, lines = recheck_due(session=session, settings=get_settings(), now=utcnow())
    service.enqueue(resumed)
    return "; ".join(lines) or "nothing to re-test"


@shared_task(name="accounts.keep_tokens")
def keep_tokens() -> str:
    """Fetch the access tokens that are missing or near their end, ahead of any publication."""
    from hub.accounts.tokens import keep_tokens as keep
    from hub.config import get_settings
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    with session_scope() as session:
        return keep(session=session, settings=get_settings(), now=utcnow()).summary()
