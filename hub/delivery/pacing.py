"""Per-account pacing below the platform's declared limit, shared by every worker.

A sliding one-hour window: a send takes a slot; when the window is full the caller learns when
the oldest slot leaves it. Redis (a sorted set, updated atomically by a Lua script) when
``GOVHUB_REDIS_URL`` is set, the database otherwise (the account row is locked for the check).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

WINDOW = timedelta(hours=1)


class Pacer(Protocol):
    def reserve(self, account_id: int, per_hour: int, now: datetime) -> datetime | None:
        """Take a slot (returns None) or return when the next slot opens."""
        ...


class DatabasePacer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve(self, account_id: int, per_hour: int, now: datetime) -> datetime | None:
        from hub.delivery.models import PaceSlot
        from hub.sqltypes import UTCDateTime

        start = now - WINDOW
        bind = UTCDateTime()
        with self.engine.begin() as conn:
            # Take the account's write lock first (row lock on PostgreSQL, the database write
            # lock on SQLite) so two workers cannot both see the last free slot.
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"), {"id": account_id}
                )
            else:
                conn.execute(text("UPDATE accounts SET id = id WHERE id = :id"), {"id": account_id})
            slots = PaceSlot.__table__  # type: ignore[attr-defined]
            conn.execute(slots.delete().where(slots.c.account_id == account_id, slots.c.at < start))
            rows = conn.execute(
                slots.select()
                .with_only_columns(slots.c.at)
                .where(slots.c.account_id == account_id, slots.c.at >= start)
                .order_by(slots.c.at)
            ).all()
            if len(rows) < per_hour:
                conn.execute(slots.insert().values(account_id=account_id, at=now))
                return None
            oldest = bind.process_result_value(rows[len(rows) - per_hour][0], conn.dialect)
            assert oldest is not None
            return oldest + WINDOW


_RESERVE_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('EXPIRE', key, window * 2)
  return '0'
end
local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window)
"""


class RedisPacer:
    def __init__(self, url: str, prefix: str = "govhub:pace:") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.script = self.client.register_script(_RESERVE_LUA)

    def reserve(self, account_id: int, per_hour: int, now: datetime) -> datetime | None:
        result = self.script(
            keys=[f"{self.prefix}{account_id}"],
            args=[now.timestamp(), WINDOW.total_seconds(), per_hour, uuid.uuid4().hex],
        )
        value = float(result.decode() if isinstance(result, bytes) else result)
        if value == 0:
            return None
        return datetime.fromtimestamp(value, tz=now.tzinfo)


@lru_cache(maxsize=4)
def _redis_pacer(url: str) -> RedisPacer:
    return RedisPacer(url)


def get_pacer() -> Pacer:
    from hub.config import get_settings
    from hub.db import get_engine

    settings = get_settings()
    if settings.redis_url:
        return _redis_pacer(settings.redis_url)
    return DatabasePacer(get_engine())
