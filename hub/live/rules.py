"""Micro-live rules as pure functions: status moves, SSE framing, fan-out pacing and wording.

Fan-out pacing (要点推送节奏). Key events go to each Weibo account under its hourly limit
(``per_hour``, 30 for Weibo) and none waits longer than ``max_delay`` (10 minutes). Whenever the
hub sends, it sends *every* pending key event for the account: one event alone, several merged
into one post. When to send:

* burst mode — fewer than ``per_hour - reserve`` sends in the last hour: send now;
* reserve mode — otherwise: send when ``gap`` has passed since the last send.

``gap`` is 60 % of ``max_delay`` (6 minutes) and ``reserve`` is ``ceil(hour / gap)`` (10). In any
hour window the burst sends are then at most ``per_hour - reserve`` (the last of them saw fewer
before it) and the reserve sends after it at most ``reserve - 1``, so our own sends never fill the
window and a slot is always free: no key event waits more than ``gap``. When other posts have
filled the account's window anyway, the rule waits for the oldest send to leave it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.weibo_rules import TEXT_MAX, shorten, weibo_length
from hub.errors import Conflict, Reason
from hub.live.models import LiveStatus

WINDOW = timedelta(hours=1)
MAX_DELAY = timedelta(minutes=10)

# -- status ---------------------------------------------------------------------------------------

MOVES: dict[str, tuple[frozenset[LiveStatus], LiveStatus]] = {
    "start": (frozenset({LiveStatus.scheduled}), LiveStatus.live),
    "end": (frozenset({LiveStatus.scheduled, LiveStatus.live}), LiveStatus.ended),
    "archive": (frozenset({LiveStatus.ended}), LiveStatus.archived),
}
MOVE_WORDS = {  # a Reason each: translated inside the message
    "start": Reason("开播"),
    "end": Reason("结束"),
    "archive": Reason("归档"),
}
STATUS_WORDS = {  # as the pages say it (hub.live.views.status_labels), a Reason each
    LiveStatus.scheduled: Reason("未开始"),
    LiveStatus.live: Reason("直播中"),
    LiveStatus.ended: Reason("已结束"),
    LiveStatus.archived: Reason("已归档"),
}


def next_status(move: str, status: LiveStatus) -> LiveStatus:
    allowed, target = MOVES[move]
    if status not in allowed:
        raise Conflict(
            "微直播当前状态为「%(status)s」，不能%(move)s",
            status=STATUS_WORDS[status],
            move=MOVE_WORDS[move],
        )
    return target


def accepts_entries(status: LiveStatus) -> bool:
    """Entries may be written before the start (prepared text) and while live, not after."""
    return status in (LiveStatus.scheduled, LiveStatus.live)


def is_public(status: LiveStatus) -> bool:
    """The public reads entries once the session has started (before: prepared, internal text)."""
    return status is not LiveStatus.scheduled


def is_over(status: LiveStatus) -> bool:
    return status in (LiveStatus.ended, LiveStatus.archived)


# -- Server-Sent Events ---------------------------------------------------------------------------


def sse_frame(event_id: int | None, event_type: str, data: dict[str, Any]) -> bytes:
    """One SSE message. Compact JSON has no raw newlines, so ``data`` is one line."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event_type}\ndata: {body}\n\n".encode()


KEEPALIVE_FRAME = b": keep-alive\n\n"


def parse_last_event_id(value: str | None) -> int:
    """``Last-Event-ID`` (or ``?last_event_id=``) as an int; anything unreadable means 0."""
    if not value:
        return 0
    value = value.strip()
    return int(value) if value.isdigit() else 0


# -- fan-out --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    seq: int
    created_at: datetime
    text: str


@dataclass(frozen=True)
class Send:
    seqs: tuple[int, ...]  # one: a single key event; several: one merged post

    @property
    def merged(self) -> bool:
        return len(self.seqs) > 1


@dataclass(frozen=True)
class Wait:
    until: datetime


def pace_parameters(per_hour: int, max_delay: timedelta = MAX_DELAY) -> tuple[timedelta, int]:
    """(gap between reserve-mode sends, sends kept in reserve) for an hourly limit."""
    gap = max(max_delay * 0.6, WINDOW / per_hour)
    reserve = math.ceil(WINDOW / gap)
    return gap, min(reserve, per_hour)


def fanout_decision(
    *,
    recent_sends: Sequence[datetime],
    pending: Sequence[Pending],
    now: datetime,
    per_hour: int,
    max_delay: timedelta = MAX_DELAY,
) -> Send | Wait | None:
    """What to do now for one account: nothing (None), send the pending events, or wait."""
    if not pending:
        return None
    gap, reserve = pace_parameters(per_hour, max_delay)
    window = sorted(t for t in recent_sends if t > now - WINDOW)
    seqs = tuple(p.seq for p in sorted(pending, key=lambda p: p.seq))
    if len(window) >= per_hour:  # full (other posts took the slots): wait for the oldest to leave
        return Wait(window[len(window) - per_hour] + WINDOW)
    if len(window) < per_hour - reserve:
        return Send(seqs)
    next_at = window[-1] + gap
    return Send(seqs) if now >= next_at else Wait(next_at)


def sends_in_any_window(sends: Sequence[datetime]) -> int:
    """The most sends falling in any one-hour window (what the platform's limit counts)."""
    ordered = sorted(sends)
    most = 0
    start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - WINDOW:
            start += 1
        most = max(most, end - start + 1)
    return most


def weibo_text(
    *, title: str, events: Sequence[str], hall_link: str, live_link: str, limit: int = TEXT_MAX
) -> str:
    """The Weibo status for one key event or several merged ones, the hall link kept last.

    Every event's text when it fits; otherwise the count, the first event shortened and the link
    to the live page's anchor where all of them stand. ``#`` is neutralised by the connector.
    """

    def fits(text: str) -> bool:
        status = f"{text} {hall_link}"
        return (
            weibo_length(status) <= limit - 2 and weibo_length(status, https_as_url=False) <= limit
        )

    head = f"【{title}】" if title else ""
    if len(events) == 1:
        whole = f"{head}{events[0]}"
    else:
        whole = head + " ".join(f"{i}. {text}" for i, text in enumerate(events, 1))
    if fits(whole):
        return whole
    tail = f"（共{len(events)}条要点，全文见 {live_link} ）" if len(events) > 1 else f" {live_link}"
    budget = 2 * limit
    while budget > 0:
        text = f"{head}{shorten(events[0], budget)}{tail}"
        if fits(text):
            return text
        budget -= 2
    return f"{head}{tail}".strip()


def merged_body(events: Sequence[tuple[int, str]], live_link: str) -> str:
    """The post body (release hall, review): every merged key event in full, with its anchor."""
    lines = [f"- {text}（[第{seq}条]({live_link}#e{seq})）" for seq, text in events]
    return "\n".join(lines) + f"\n\n直播全文：{live_link}"


def summary_body(*, key_points: Sequence[str], archive_link: str) -> str:
    """The end-of-session summary article (WeChat, release hall)."""
    points = "\n".join(f"{i}. {text}" for i, text in enumerate(key_points, 1))
    return (f"## 会议要点\n\n{points}\n\n" if points else "") + f"图文直播回顾：{archive_link}"


# -- key events to social media: a second person ---------------------------------------------------
#
# A key event goes to social media only once someone other than its author has approved it: one of
# the session's approvers (one click in the console), or a reviewer who approved the session's
# plan before the session started. docs/live.md says what a plan covers.

KEY_PENDING = "pending_approval"
KEY_APPROVED = "approved"
KEY_PLAN = "plan"


def plan_in_force(plan_approved_at: datetime | None, started_at: datetime | None) -> bool:
    """A plan counts when a reviewer approved it before the session started."""
    if plan_approved_at is None:
        return False
    return started_at is None or plan_approved_at <= started_at


def key_state(
    *,
    key_event: bool,
    deleted: bool,
    key_approved: bool,
    plan_approved_at: datetime | None,
    started_at: datetime | None,
) -> str:
    """'' (not a key event), ``approved``, ``plan`` (covered by the approved plan) or
    ``pending_approval`` (waits for an approver before it may reach social media)."""
    if not key_event or deleted:
        return ""
    if key_approved:
        return KEY_APPROVED
    if plan_in_force(plan_approved_at, started_at):
        return KEY_PLAN
    return KEY_PENDING


def key_approval_refusal(
    *, user_id: int, approver_ids: Sequence[int], author_id: int, key_by: int | None
) -> str | None:
    """Why this user may not release a key event to social media; None when they may."""
    if user_id in (author_id, key_by):
        return Reason("要点的作者不能审核自己的要点，须由另一名审核人通过")
    if user_id not in approver_ids:
        return Reason("只有本场直播指定的审核人可以通过要点")
    return None


def approvers_problem(creator_id: int, approver_ids: Sequence[int]) -> str | None:
    if creator_id in approver_ids:
        return Reason("直播的创建人不能作为要点审核人（须由另一人审核）")
    return None
