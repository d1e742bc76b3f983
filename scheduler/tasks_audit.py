"""Celery tasks of the matrix audit: thin wrappers around ``hub.audit`` services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="activity.ingest")
def ingest_activity() -> str:
    """One activity-ingestion pass over the matrix's Weibo and WeChat accounts."""
    from hub.audit.ingest import ingest_all
    from hub.config import get_settings

    return ingest_all(settings=get_settings()).line()
