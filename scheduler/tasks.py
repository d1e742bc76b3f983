"""Celery tasks: thin wrappers that open a session and call a service function."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="system.heartbeat")
def heartbeat() -> str:
    """Beat's liveness mark: the worker processed a scheduled task."""
    from hub.system import record_heartbeat

    return record_heartbeat("worker")
