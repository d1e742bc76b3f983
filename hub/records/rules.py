"""Records retention (档案移交): which posts belong to a year, and how the export names things.

Pure functions: no session, no settings, no clock.

A post belongs to the year in which its first copy became public (the earliest ``published_at``
of its deliveries, withdrawn copies included), counted in GOVHUB_TIMEZONE: a post published at
00:30 on 1 January Beijing time belongs to the new year although it is still the old one in UTC.
A post that never reached the public (draft, rejected, every copy failed) is not a record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

ROOT = "govhub-archive-{year}"

POST_STATUS = {
    "draft": "草稿",
    "in_review": "待审核",
    "cosigning": "会签中",
    "approved": "已批准",
    "scheduled": "已定时",
    "publishing": "发布中",
    "published": "已发布",
    "partly_failed": "部分失败",
    "failed": "失败",
    "rejected": "已驳回",
    "missed": "错过发布时间",
    "withdrawn": "已撤回",
}
DELIVERY_STATUS = {
    "queued": "待发送",
    "sending": "发送中",
    "pending": "等待平台结果",
    "published": "已发布",
    "unconfirmed": "结果未确认",
    "failed": "失败",
    "parked": "已暂停",
    "cancelled": "已取消",
    "withdrawn": "已撤回",
}
APPROVAL_KIND = {"approve": "审核通过", "cosign": "会签确认", "reject": "驳回"}


def year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of ``year`` in ``tz``, as UTC instants."""
    start = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    return start, end


def year_refusal(year: int, today_year: int) -> str | None:
    if year < 2000 or year > today_year:
        return f"--year must be between 2000 and {today_year}, not {year}"
    return None


def local(value: datetime | None, tz: ZoneInfo) -> str | None:
    """An instant as ISO 8601 in ``tz`` with its offset (2025-01-01T00:30:00+08:00)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).isoformat(timespec="seconds")


def readable(value: str | None) -> str:
    """An ISO time from :func:`local` as people read it (2025-01-01 00:30)."""
    return value[:16].replace("T", " ") if value else ""


def post_stem(post_id: int) -> str:
    """``posts/000042``: zero-padded so that the ZIP's name order is the ids' order."""
    return f"posts/{post_id:06d}"


def record_order(first_published_at: datetime, post_id: int) -> tuple[datetime, int]:
    """Records are listed in the order they became public, ties by post id."""
    return (first_published_at, post_id)
