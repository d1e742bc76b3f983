"""Pure rules of reach: which day to ask a platform for, which copies are still counted, when a
failed account is tried again, what a period adds up to, and how accounts rank.

Counts are running totals per copy per day (a snapshot); what a copy gained over a period
``[since, until]`` is its latest snapshot up to ``until`` minus its latest snapshot before
``since`` (zero when there is none: the copy was new in the period).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

Counts = dict[str, int]
TOTAL = "total"  # ranking by the sum of every count


def pull_day(today: date, lag_days: int) -> date:
    """The platform's day whose totals are asked for: today for live counts, else the last
    final day (``lag_days`` back)."""
    return today - timedelta(days=max(0, lag_days))


def counted(published_on: date, day: date, *, reach_days: int, window_days: int) -> bool:
    """Is a copy published on ``published_on`` still pulled for ``day``? Within the hub's
    ``reach_days`` and, when the platform stops counting, its ``window_days``."""
    if published_on > day:
        return False
    age = (day - published_on).days
    if age >= reach_days:
        return False
    return window_days <= 0 or age < window_days


def backoff(
    failures: int,
    now: datetime,
    *,
    base: timedelta,
    longest: timedelta,
    not_before: datetime | None = None,
) -> datetime:
    """When an account whose pull failed ``failures`` times in a row is tried again: ``base``
    doubled per further failure, at most ``longest``, never before the platform's own
    ``not_before`` (a rate limit's reset)."""
    wait = min(longest, base * (1 << min(30, max(0, failures - 1))))
    due = now + wait
    if not_before is not None and not_before > due:
        return not_before
    return due


def growth(snapshots: Mapping[date, Mapping[str, int]], since: date, until: date) -> Counts:
    """What one copy gained in ``[since, until]`` from its daily running totals."""
    inside = [d for d in snapshots if d <= until]
    if not inside:
        return {}
    last = snapshots[max(inside)]
    earlier = [d for d in snapshots if d < since]
    base = snapshots[max(earlier)] if earlier else {}
    if max(inside) < since:
        return {key: 0 for key in last}
    return {key: max(0, value - base.get(key, 0)) for key, value in last.items()}


def latest(snapshots: Mapping[date, Mapping[str, int]]) -> tuple[date | None, Counts]:
    """The newest day and its totals (a copy's reach so far)."""
    if not snapshots:
        return None, {}
    day = max(snapshots)
    return day, dict(snapshots[day])


def add(into: Counts, counts: Mapping[str, int]) -> Counts:
    """``into`` plus ``counts``, key by key (in place, returned)."""
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value
    return into


def total(counts: Mapping[str, int]) -> int:
    return sum(counts.values())


@dataclass(frozen=True)
class Row:
    """One ranked thing (an account or an org) and what it gained."""

    key: str
    name: str
    counts: Counts = field(default_factory=dict)
    copies: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Ranked:
    rank: int
    row: Row
    value: int


def score(row: Row, by: str) -> int:
    return total(row.counts) if by == TOTAL else row.counts.get(by, 0)


def rank(rows: Iterable[Row], by: str = TOTAL) -> list[Ranked]:
    """Highest first by ``by`` (a count key, or ``total``); equal values share a rank (1, 2, 2,
    4), then by name."""
    ordered = sorted(rows, key=lambda r: (-score(r, by), r.name, r.key))
    out: list[Ranked] = []
    for index, row in enumerate(ordered):
        value = score(row, by)
        if out and out[-1].value == value:
            out.append(Ranked(out[-1].rank, row, value))
        else:
            out.append(Ranked(index + 1, row, value))
    return out


def period(
    since: date | None, until: date | None, *, today: date, default_days: int, longest: int = 366
) -> tuple[date, date]:
    """The period asked for, with defaults (the last ``default_days`` days up to today); a
    ``ValueError`` with a Chinese message when it is backwards or too long."""
    end = until or today
    start = since or end - timedelta(days=default_days - 1)
    if start > end:
        raise ValueError("开始日期不能晚于结束日期")
    if (end - start).days + 1 > longest:
        raise ValueError(f"统计区间最长{longest}天")
    return start, end


def bar_widths(values: Sequence[int], width: float) -> list[float]:
    """Bar lengths for values on a shared scale (the largest fills ``width``)."""
    top = max(values, default=0)
    if top <= 0:
        return [0.0 for _ in values]
    return [round(width * v / top, 1) for v in values]
