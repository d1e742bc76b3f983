"""Celery beat's scheduler, with a heartbeat that proves beat can still send.

Beat records its heartbeat (``heartbeats.name = 'beat'``) after a task has actually reached the
broker, at most every :data:`HEARTBEAT_EVERY` seconds. A beat that runs on but cannot publish (a
jammed broker) therefore goes stale, and ``/readyz``, ``govhub status`` and the admins' banner say
so, instead of the process merely being alive.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry

HEARTBEAT_EVERY = 30.0

logger = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    _last_heartbeat = 0.0

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        from hub.metrics import metrics

        sends = metrics().beat_sends
        try:
            result = super().apply_async(entry, producer, advance, **kwargs)  # raises if not sent
        except Exception:
            sends.labels(entry.name, "failed").inc()
            raise
        sends.labels(entry.name, "sent").inc()
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY:
            from hub.system import record_heartbeat

            try:
                record_heartbeat("beat")
                self._last_heartbeat = now
            except Exception:  # the database is away: the next send tries again
                logger.warning("beat could not record its heartbeat", exc_info=True)
        return result
