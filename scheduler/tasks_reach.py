"""Celery task of reach: a thin wrapper around :func:`hub.reach.service.pull_all`."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="reach.pull")
def pull() -> str:
    """Pull readers' counts of every account that is due (docs/reach.md)."""
    from hub.config import get_settings
    from hub.reach.service import pull_all

    return pull_all(settings=get_settings()).line()
