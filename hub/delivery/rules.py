"""What the engine does after each platform call: one pure function of the error class.

Tasks stay thin; this table is the retry policy. ``decide`` never sees a session or the clock.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    ConnectorError,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from hub.accounts.models import AccountStatus
from hub.delivery.models import DeliveryStatus
from hub.errors import Reason

MAX_TRANSIENT_ATTEMPTS = 15
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    retry_at: datetime | None = None
    flag: AccountStatus | None = None  # flag the account (needs_reauth, misconfigured)
    reconcile: bool = False  # look at the platform before anything else
    message: str = ""


def backoff(
    attempt: int,
    *,
    rand: random.Random | None = None,
    hint: float = 0.0,
    cap: float = BACKOFF_CAP_SECONDS,
) -> float:
    """Exponential backoff with full jitter, never shorter than the platform's hint."""
    rng = rand or random.Random()
    ceiling = min(cap, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return max(hint, rng.uniform(ceiling / 2, ceiling))


def decide(
    error: ConnectorError,
    *,
    attempt: int,
    now: datetime,
    rand: random.Random | None = None,
    max_attempts: int = MAX_TRANSIENT_ATTEMPTS,
    backoff_cap: float = BACKOFF_CAP_SECONDS,
) -> Decision:
    """The next state of a delivery whose call raised ``error`` on attempt number ``attempt``.

    ``max_attempts`` and ``backoff_cap`` are the operator's settings (GOVHUB_RETRY_*).
    """
    words = str(error)
    if isinstance(error, Unconfirmed):
        return Decision(DeliveryStatus.unconfirmed, reconcile=True, message=words)
    if isinstance(error, AuthExpired):
        return Decision(DeliveryStatus.parked, flag=AccountStatus.needs_reauth, message=words)
    if isinstance(error, AccountBlocked):
        # the account's setup, not the content: park until its connection test passes again
        return Decision(DeliveryStatus.parked, flag=AccountStatus.misconfigured, message=words)
    if isinstance(error, QuotaExhausted):
        return Decision(DeliveryStatus.parked, retry_at=error.until, message=words)
    if isinstance(error, RateLimited):
        return Decision(DeliveryStatus.queued, retry_at=error.until, message=words)
    if isinstance(error, Transient):
        if attempt >= max_attempts:
            return Decision(
                DeliveryStatus.failed, message=f"gave up after {attempt} attempts: {words}"
            )
        delay = backoff(attempt, rand=rand, hint=error.retry_after, cap=backoff_cap)
        return Decision(
            DeliveryStatus.queued, retry_at=now + timedelta(seconds=delay), message=words
        )
    if isinstance(error, Rejected):
        return Decision(DeliveryStatus.failed, message=error.reason)
    return Decision(DeliveryStatus.failed, message=words)


# Who may do what to a delivery by hand (the delivery board).
MANUAL: dict[str, frozenset[DeliveryStatus]] = {
    # unconfirmed: once a person has checked the platform and found nothing went out
    "retry": frozenset(
        {
            DeliveryStatus.failed,
            DeliveryStatus.parked,
            DeliveryStatus.cancelled,
            DeliveryStatus.unconfirmed,
        }
    ),
    "cancel": frozenset({DeliveryStatus.queued, DeliveryStatus.parked, DeliveryStatus.failed}),
    "mark_published": frozenset(
        {
            DeliveryStatus.unconfirmed,
            DeliveryStatus.failed,
            DeliveryStatus.parked,
            DeliveryStatus.pending,
        }
    ),
}


def manual_refusal(action: str, status: DeliveryStatus) -> str | None:
    if status in MANUAL[action]:
        return None
    state = STATUS_WORDS[status]
    if action == "retry":
        return Reason(
            "投递状态为「%(status)s」，不能重试：只有失败、已暂停、已取消或结果未确认的投递可以重试",
            status=state,
        )
    if action == "cancel":
        return Reason(
            "投递状态为「%(status)s」，不能取消：只有待发送、已暂停或失败的投递可以取消",
            status=state,
        )
    return Reason(
        "投递状态为「%(status)s」，不能标记为已发布：只有等待平台结果、结果未确认、失败或已暂停的投递可以标记",
        status=state,
    )


STATUS_WORDS = {  # the labels of hub.records.rules.DELIVERY_STATUS, as a Reason each
    DeliveryStatus.queued: Reason("待发送"),
    DeliveryStatus.sending: Reason("发送中"),
    DeliveryStatus.pending: Reason("等待平台结果"),
    DeliveryStatus.published: Reason("已发布"),
    DeliveryStatus.unconfirmed: Reason("结果未确认"),
    DeliveryStatus.failed: Reason("失败"),
    DeliveryStatus.parked: Reason("已暂停"),
    DeliveryStatus.cancelled: Reason("已取消"),
    DeliveryStatus.withdrawn: Reason("已撤回"),
}


# -- who a send is made for (Weibo's rip) -----------------------------------------------------------


def valid_ip(value: str | None) -> str:
    """``value`` as a normalised IP address string, or "" when it is not one ("testclient")."""
    text = (value or "").strip()
    if not text or len(text) > 64:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def rip_for(person_ip: str, fallback: str) -> str:
    """The IP reported to Weibo for a send made on behalf of the person at ``person_ip``.

    Their own address when it is a public one; otherwise (unknown, or an intranet/loopback
    address that means nothing to Weibo) the configured fallback, the unit's egress IP; and
    when there is no fallback either, their address as it is, if it is an address at all.
    """
    person, backup = valid_ip(person_ip), valid_ip(fallback)
    if person and ipaddress.ip_address(person).is_global:
        return person
    return backup or person


def recheck_delay(failures: int, *, base_seconds: float, max_seconds: float) -> timedelta:
    """How long beat waits before re-testing a misconfigured account: doubling, capped."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, min(failures, 30))))


# -- WeChat: publish and push (群发) -------------------------------------------------------------

PUSH_ALLOWANCE: dict[str, tuple[int, str]] = {
    "subscription": (1, "day"),  # 订阅号: one mass send a day
    "service": (4, "month"),  # 服务号: four a month per follower, counted per account
}
KIND_WORDS = {"subscription": "订阅号", "service": "服务号"}


@dataclass(frozen=True)
class PushQuota:
    """Mass sends an account has left in the current day or month (in the hub's time zone)."""

    kind: str
    allowed: int
    used: int
    period: str  # "day" | "month"
    renews_at: datetime  # start of the next period (aware)

    @property
    def remaining(self) -> int:
        return max(0, self.allowed - self.used)

    @property
    def words(self) -> str:
        """``今日剩余 1 次`` / ``本月剩余 3 次``: shown next to the account in compose."""
        return f"{'今日' if self.period == 'day' else '本月'}剩余 {self.remaining} 次"


def push_quota(kind: str, pushes: Iterable[datetime], *, now: datetime, tz: tzinfo) -> PushQuota:
    """What is left of an account's mass-send allowance at ``now``.

    ``pushes`` are the moments of the account's pushes that count (sent, under way or planned;
    aware datetimes). A subscription account (订阅号) has one a calendar day, a service account
    (服务号) four a calendar month, both in ``tz``. An account of unknown kind has none: an
    administrator must say which it is first (:func:`push_refusal` says so).
    """
    local = now.astimezone(tz)
    allowed, period = PUSH_ALLOWANCE.get(kind, (0, "day"))
    if period == "day":
        start = datetime.combine(local.date(), time(0), tz)
        renews = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    else:
        start = datetime(local.year, local.month, 1, tzinfo=tz)
        renews = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=tz)
    used = sum(1 for at in pushes if start <= at.astimezone(tz) < renews)
    return PushQuota(kind=kind, allowed=allowed, used=used, period=period, renews_at=renews)


def push_refusal(account_name: str, quota: PushQuota) -> str | None:
    """Why a push to this account cannot be accepted now (Chinese, for the editor), or None."""
    if quota.kind not in PUSH_ALLOWANCE:
        return f"公众号「{account_name}」尚未设置类型（订阅号或服务号），无法群发：请管理员先在账号设置中选择"
    if quota.remaining > 0:
        return None
    if quota.period == "day":
        return (
            f"公众号「{account_name}」（订阅号）今日群发次数已用完（每天1次）："
            "请改为「仅发布」，或定时到明天再群发"
        )
    return (
        f"公众号「{account_name}」（服务号）本月群发次数已用完（每月4次）："
        "请改为「仅发布」，或定时到下月再群发"
    )


def reconcile_submit(
    *, found: bool, submitted_at: datetime, now: datetime, grace: timedelta
) -> str:
    """A WeChat submit whose answer was lost: ``"published"`` (found in the published list),
    ``"look_again"`` (within the grace period) or ``"ask_a_person"``. Never ``"resubmit"``: a
    draft still in the draft box may be under audit, so a second submit could publish twice."""
    if found:
        return "published"
    if now < submitted_at + grace:
        return "look_again"
    return "ask_a_person"


# -- claims of workers that died ------------------------------------------------------------------


def lease_reclaimable(
    *,
    lease_until: datetime | None,
    holder: str,
    holder_seen: datetime | None,
    last_touched: datetime,
    now: datetime,
    dead_after: timedelta,
) -> bool:
    """Whether the sweeper may take a claimed delivery (``sending``, or a ``pending`` one being
    polled) away from the worker that holds it.

    - Its lease ran out: always (the backstop, whoever the holder was).
    - Claimed by no named worker (an older version, an in-process run): only the lease decides.
    - Its worker's own heartbeat (``holder_seen``; None when its row is gone: stopped cleanly, or
      never recorded) is fresher than ``dead_after``: never, the worker is alive.
    - Otherwise the worker is dead, and the delivery is taken once it has also not been touched
      for ``dead_after`` (``last_touched``: its claim, or its fence right before the public call).
      A worker that passed its fence just before it went silent thus has ``dead_after`` to finish
      that one call before anyone looks at the platform in its place.

    Taking over never sends blindly: a ``sending`` delivery becomes ``unconfirmed`` and is
    reconciled with the platform first, and the old worker's fence no longer matches.
    """
    if lease_until is None or lease_until < now:
        return True
    if not holder:
        return False
    if holder_seen is not None and now - holder_seen <= dead_after:
        return False
    return now - last_touched > dead_after
