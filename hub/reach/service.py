"""Reach over the database: the pull (``pull_all``) and the questions people ask of it.

The pull, once per beat tick (``reach.pull``) or by hand (``govhub reach pull``): for every
active account whose platform's connector implements :class:`connectors.base.Metrics` and whose
``reach_pulls.next_pull_at`` has come, the copies published through the hub in the last
``GOVHUB_REACH_DAYS`` (and still counted by the platform) are asked for their totals of the
platform's day (today for live counts, yesterday for the WeChat datacube), in as few calls as the
platform batches. Each account runs in a transaction of its own; its rows for that day are
replaced (a re-pull is idempotent). Per-account pacing: an account is pulled at most every
``GOVHUB_REACH_INTERVAL_MINUTES``; after a failure it waits that long doubled per failure in a
row, at most ``GOVHUB_REACH_BACKOFF_MAX_MINUTES``, and never before a rate limit resets.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from connectors import registry
from connectors.base import Account as ConnectorAccount
from connectors.base import Connector, CopyRef, MetricField, Metrics
from connectors.errors import ConnectorError, QuotaExhausted, RateLimited
from hub.accounts.models import Account, AccountStatus
from hub.config import Settings
from hub.db import engine_for
from hub.delivery.models import Delivery, DeliveryStatus
from hub.orgs.models import Org
from hub.reach import rules
from hub.reach.models import ReachCount, ReachPull
from hub.sqltypes import utcnow

log = logging.getLogger(__name__)

ConnectorFactory = Callable[[str], Connector]
AccountAdapter = Callable[[Account], ConnectorAccount]


# -- what the platforms count (declared by the connectors) ------------------------------------


def metrics_platforms() -> tuple[str, ...]:
    """Platforms whose connector reads readers' counts back, in display order."""
    return tuple(
        key for key in registry.platforms() if issubclass(registry.connector_class(key), Metrics)
    )


def fields_of(platform: str) -> tuple[MetricField, ...]:
    cls = registry.connector_class(platform)
    if not issubclass(cls, Metrics):
        return ()
    return cls.metrics_spec().fields


def metric_fields(platforms: Iterable[str] | None = None) -> list[MetricField]:
    """Every count of the given platforms (default: all), each key once, in display order."""
    seen: dict[str, MetricField] = {}
    chosen = set(platforms) if platforms is not None else None
    for key in metrics_platforms():
        if chosen is not None and key not in chosen:
            continue
        for f in fields_of(key):
            seen.setdefault(f.key, f)
    return list(seen.values())


def label(f: MetricField, locale: str = "zh") -> str:
    return f.label_en if locale.startswith("en") else f.label_zh


# -- the pull ---------------------------------------------------------------------------------


@dataclass
class AccountPull:
    account_id: int
    name: str
    platform: str
    day: date | None = None
    copies: int = 0
    stored: int = 0
    error: str = ""
    next_pull_at: datetime | None = None


@dataclass
class PullReport:
    outcomes: list[AccountPull] = field(default_factory=list)
    not_due: int = 0

    @property
    def failures(self) -> list[AccountPull]:
        return [o for o in self.outcomes if o.error]

    def line(self) -> str:
        ok = [o for o in self.outcomes if not o.error]
        return (
            f"{len(ok)} accounts pulled ({sum(o.stored for o in ok)} copies), "
            f"{len(self.failures)} failed, {self.not_due} not due yet"
        )


def _default_factories(settings: Settings) -> tuple[ConnectorFactory, AccountAdapter]:
    from hub.delivery.channels import connector_account, connector_for

    return (
        lambda platform: connector_for(platform, settings),
        lambda account: connector_account(account, settings),
    )


def due_accounts(
    *, session: Session, now: datetime, force: bool = False, account_ids: Iterable[int] = ()
) -> tuple[list[int], int]:
    """Active accounts of platforms that report counts, whose pull is due: (ids, not due)."""
    platforms = metrics_platforms()
    if not platforms:
        return [], 0
    query = (
        select(Account.id, ReachPull.next_pull_at)
        .join(ReachPull, col(ReachPull.account_id) == col(Account.id), isouter=True)
        .where(col(Account.platform).in_(platforms), Account.status == AccountStatus.active)
        .order_by(col(Account.id))
    )
    wanted = set(account_ids)
    if wanted:
        query = query.where(col(Account.id).in_(wanted))
    due: list[int] = []
    waiting = 0
    for account_id, next_pull_at in session.exec(query).all():
        assert account_id is not None
        if force or next_pull_at is None or next_pull_at <= now:
            due.append(account_id)
        else:
            waiting += 1
    return due, waiting


def pull_all(
    *,
    settings: Settings,
    now: datetime | None = None,
    force: bool = False,
    account_ids: Iterable[int] = (),
    connector_for: ConnectorFactory | None = None,
    connector_account: AccountAdapter | None = None,
    progress: Callable[[AccountPull], None] | None = None,
) -> PullReport:
    """One pull over every account that is due (``force``: every account, due or not)."""
    now = now or utcnow()
    default_for, default_account = _default_factories(settings)
    build = connector_for or default_for
    adapt = connector_account or default_account
    engine = engine_for(settings.database_url)
    with Session(engine) as session:
        ids, waiting = due_accounts(session=session, now=now, force=force, account_ids=account_ids)
    report = PullReport(not_due=waiting)
    connectors: dict[str, Connector] = {}
    for account_id in ids:
        outcome = pull_account(
            settings=settings,
            account_id=account_id,
            now=now,
            connectors=connectors,
            build=build,
            adapt=adapt,
        )
        report.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return report


def pull_account(
    *,
    settings: Settings,
    account_id: int,
    now: datetime,
    connectors: dict[str, Connector],
    build: ConnectorFactory,
    adapt: AccountAdapter,
) -> AccountPull:
    """Pull one account's copies and store them, in a transaction of its own."""
    engine = engine_for(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        account = session.get(Account, account_id)
        if account is None:
            return AccountPull(account_id, "", "", error="account no longer exists")
        platform = account.platform.value
        outcome = AccountPull(account_id, account.name, platform)
        state = session.get(ReachPull, account_id) or ReachPull(account_id=account_id)
        try:
            if platform not in connectors:
                connectors[platform] = build(platform)
            connector = connectors[platform]
            if not isinstance(connector, Metrics):
                outcome.error = "the platform reports no counts"
                return outcome
            spec = type(connector).metrics_spec()
            today = now.astimezone(settings.tz).date()
            day = rules.pull_day(today, spec.lag_days)
            outcome.day = day
            copies = _copies(
                session, account_id, day, settings=settings, window_days=spec.window_days
            )
            outcome.copies = len(copies)
            got = (
                connector.fetch_metrics(adapt(account), [c for c, _ in copies], day)
                if copies
                else []
            )
        except ConnectorError as exc:
            outcome.error = str(exc)
            until = exc.until if isinstance(exc, RateLimited | QuotaExhausted) else None
            _failed(session, state, now, settings, outcome, str(exc), not_before=until)
            return outcome
        except Exception as exc:  # a bad answer must not stop the other accounts
            log.exception("reach pull failed for account %s", account_id)
            outcome.error = f"{type(exc).__name__}: {exc}"
            _failed(session, state, now, settings, outcome, outcome.error)
            return outcome
        by_remote = {c.remote_id: delivery_id for c, delivery_id in copies}
        keys = {f.key for f in spec.fields}
        stored = {by_remote[m.remote_id]: m for m in got if m.remote_id in by_remote}
        if stored:
            session.exec(
                delete(ReachCount).where(
                    col(ReachCount.delivery_id).in_(list(stored)), col(ReachCount.day) == day
                )
            )
        for delivery_id, metrics in stored.items():
            for metric, value in metrics.counts.items():
                if metric in keys:
                    session.add(
                        ReachCount(
                            delivery_id=delivery_id,
                            account_id=account_id,
                            day=day,
                            metric=metric,
                            value=int(value),
                            pulled_at=now,
                        )
                    )
        outcome.stored = len(stored)
        state.last_pulled_at, state.last_day = now, day
        state.failures, state.last_error = 0, ""
        state.next_pull_at = now + timedelta(minutes=settings.reach_interval_minutes)
        outcome.next_pull_at = state.next_pull_at
        session.add(state)
        try:
            session.commit()
        except IntegrityError:  # another pull of the same account stored the day meanwhile
            session.rollback()
            outcome.error = "pulled concurrently by another run; its counts stand"
        return outcome


def _copies(
    session: Session, account_id: int, day: date, *, settings: Settings, window_days: int
) -> list[tuple[CopyRef, int]]:
    """The account's copies still counted for ``day``, with their delivery ids."""
    earliest = day - timedelta(days=settings.reach_days + 1)
    rows = session.exec(
        select(Delivery)
        .where(
            Delivery.account_id == account_id,
            Delivery.status == DeliveryStatus.published,
            col(Delivery.remote_id) != "",
            col(Delivery.published_at).is_not(None),
            col(Delivery.published_at)
            >= datetime.combine(earliest, datetime.min.time(), settings.tz),
        )
        .order_by(col(Delivery.id))
    ).all()
    copies: list[tuple[CopyRef, int]] = []
    for d in rows:
        assert d.published_at is not None and d.id is not None
        published_on = d.published_at.astimezone(settings.tz).date()
        if not rules.counted(
            published_on, day, reach_days=settings.reach_days, window_days=window_days
        ):
            continue
        meta = {"msg_data_id": d.msg_data_id} if d.msg_data_id else {}
        copies.append((CopyRef(d.remote_id, d.published_at, meta=meta), d.id))
    return copies


def _failed(
    session: Session,
    state: ReachPull,
    now: datetime,
    settings: Settings,
    outcome: AccountPull,
    error: str,
    *,
    not_before: datetime | None = None,
) -> None:
    state.failures += 1
    state.last_error = error[:2000]
    state.next_pull_at = rules.backoff(
        state.failures,
        now,
        base=timedelta(minutes=settings.reach_interval_minutes),
        longest=timedelta(minutes=settings.reach_backoff_max_minutes),
        not_before=not_before,
    )
    outcome.next_pull_at = state.next_pull_at
    session.add(state)
    try:
        session.commit()
    except IntegrityError:  # another pull recorded this account's state meanwhile
        session.rollback()


# -- questions --------------------------------------------------------------------------------

Snapshots = dict[date, dict[str, int]]


def _snapshots(
    session: Session,
    *,
    delivery_ids: Iterable[int] = (),
    account_ids: Iterable[int] = (),
    until: date | None = None,
) -> dict[int, Snapshots]:
    """delivery id -> day -> counts."""
    query = select(
        col(ReachCount.delivery_id),
        col(ReachCount.day),
        col(ReachCount.metric),
        col(ReachCount.value),
    )
    dids, aids = list(delivery_ids), list(account_ids)
    if dids:
        query = query.where(col(ReachCount.delivery_id).in_(dids))
    if aids:
        query = query.where(col(ReachCount.account_id).in_(aids))
    if not dids and not aids:
        return {}
    if until is not None:
        query = query.where(col(ReachCount.day) <= until)
    out: dict[int, Snapshots] = defaultdict(dict)
    for delivery_id, day, metric, value in session.exec(query).all():
        out[delivery_id].setdefault(day, {})[metric] = int(value)
    return out


def _fields_json(fields: list[MetricField], locale: str) -> list[dict[str, str]]:
    return [{"key": f.key, "label": label(f, locale)} for f in fields]


def post_reach(*, session: Session, post_id: int, locale: str = "zh") -> dict[str, Any]:
    """Every copy of the post with its latest totals, grouped per platform, and the totals."""
    rows = session.exec(
        select(Delivery, Account)
        .join(Account, col(Delivery.account_id) == col(Account.id))
        .where(Delivery.post_id == post_id)
        .order_by(col(Delivery.id))
    ).all()
    snapshots = _snapshots(session, delivery_ids=[d.id for d, _ in rows if d.id is not None])
    channels: dict[str, dict[str, Any]] = {}
    totals: rules.Counts = {}
    for delivery, account in rows:
        platform = account.platform.value
        if platform not in metrics_platforms():
            continue
        channel = channels.setdefault(
            platform,
            {
                "platform": platform,
                "label": registry.labels(locale).get(platform, platform),
                "fields": _fields_json(list(fields_of(platform)), locale),
                "copies": [],
                "totals": {},
            },
        )
        day, counts = rules.latest(snapshots.get(delivery.id or 0, {}))
        channel["copies"].append(
            {
                "delivery_id": delivery.id,
                "account_id": account.id,
                "account_name": account.name,
                "version": delivery.version,
                "status": delivery.status.value,
                "remote_url": delivery.remote_url,
                "day": day.isoformat() if day else None,
                "counts": counts,
            }
        )
        rules.add(channel["totals"], counts)
        rules.add(totals, counts)
    platforms = list(channels)
    return {
        "post_id": post_id,
        "fields": _fields_json(metric_fields(platforms), locale),
        "channels": [channels[p] for p in platforms],
        "totals": totals,
    }


def org_reach(
    *,
    session: Session,
    org: Org,
    since: date,
    until: date,
    by: str = rules.TOTAL,
    locale: str = "zh",
) -> dict[str, Any]:
    """What ``org``'s accounts and its direct sub-orgs gained in ``[since, until]``, ranked."""
    accounts = session.exec(
        select(Account, Org)
        .join(Org, col(Account.org_id) == col(Org.id))
        .where(
            or_(col(Org.path).startswith(org.path), col(Org.id) == org.id),
            col(Account.platform).in_(metrics_platforms()),
        )
        .order_by(col(Account.id))
    ).all()
    snapshots = _snapshots(
        session, account_ids=[a.id for a, _ in accounts if a.id is not None], until=until
    )
    copies_of: dict[int, list[int]] = defaultdict(list)
    if snapshots:
        for delivery_id, account_id in session.exec(
            select(Delivery.id, Delivery.account_id).where(col(Delivery.id).in_(list(snapshots)))
        ).all():
            assert delivery_id is not None
            copies_of[account_id].append(delivery_id)
    children = session.exec(
        select(Org).where(Org.parent_id == org.id).order_by(col(Org.code))
    ).all()
    account_rows: list[rules.Row] = []
    child_counts: dict[str, rules.Counts] = {c.path: {} for c in children}
    child_copies: dict[str, int] = {c.path: 0 for c in children}
    totals: rules.Counts = {}
    for account, home in accounts:
        counts: rules.Counts = {}
        copies = 0
        for delivery_id in copies_of.get(account.id or 0, []):
            gained = rules.growth(snapshots[delivery_id], since, until)
            if gained:
                copies += 1
                rules.add(counts, gained)
        account_rows.append(
            rules.Row(
                key=str(account.id),
                name=account.name,
                counts=counts,
                copies=copies,
                detail=f"{home.name} · {registry.labels(locale).get(account.platform.value, '')}",
            )
        )
        rules.add(totals, counts)
        for child in children:
            if home.path.startswith(child.path):
                rules.add(child_counts[child.path], counts)
                child_copies[child.path] += copies
    org_rows = [
        rules.Row(key=c.code, name=c.name, counts=child_counts[c.path], copies=child_copies[c.path])
        for c in children
    ]
    fields = metric_fields({a.platform.value for a, _ in accounts} or None)
    keys = {f.key for f in fields}
    if by != rules.TOTAL and by not in keys:
        by = rules.TOTAL

    def ranked(rows: list[rules.Row]) -> list[dict[str, Any]]:
        return [
            {
                "rank": r.rank,
                "key": r.row.key,
                "name": r.row.name,
                "detail": r.row.detail,
                "copies": r.row.copies,
                "counts": r.row.counts,
                "value": r.value,
            }
            for r in rules.rank(rows, by)
        ]

    return {
        "org": {"code": org.code, "name": org.name},
        "since": since.isoformat(),
        "until": until.isoformat(),
        "by": by,
        "fields": _fields_json(fields, locale),
        "totals": totals,
        "accounts": ranked(account_rows),
        "orgs": ranked(org_rows),
    }


def account_reach(
    *, session: Session, account_ids: Iterable[int], since: date, until: date
) -> dict[int, rules.Counts]:
    """What each account gained in ``[since, until]`` (the matrix audit's columns)."""
    ids = list(account_ids)
    snapshots = _snapshots(session, account_ids=ids, until=until)
    out: dict[int, rules.Counts] = {i: {} for i in ids}
    if not snapshots:
        return out
    for delivery_id, account_id in session.exec(
        select(Delivery.id, Delivery.account_id).where(col(Delivery.id).in_(list(snapshots)))
    ).all():
        assert delivery_id is not None
        rules.add(
            out.setdefault(account_id, {}), rules.growth(snapshots[delivery_id], since, until)
        )
    return out


def pull_states(*, session: Session, account_ids: Iterable[int]) -> dict[int, ReachPull]:
    ids = list(account_ids)
    if not ids:
        return {}
    return {
        s.account_id: s
        for s in session.exec(select(ReachPull).where(col(ReachPull.account_id).in_(ids))).all()
    }
