"""Celery tasks of the public interaction inbox: thin wrappers around ``hub.inbox.ingestion``."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="inbox.ingest")
def ingest_cases() -> str:
    """One pass over the Weibo accounts' new comments (WeChat messages arrive by callback)."""
    from hub.config import get_settings
    from hub.inbox.ingestion import ingest_all

    return ingest_all(settings=get_settings()).line()
