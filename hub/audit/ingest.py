"""Activity ingestion (活跃度采集): read each account's recent posts from its platform.

Per run, for every active Weibo and WeChat account (one at a time, at most ``max_accounts``):
``connector.recent(account, since=last_seen_remote_id)`` returns what is new since the last run;
each post is recorded in ``account_activity`` and, unless it is already there, on the release
hall as an ``ingested`` entry (a post published through govhub already has its own hall page).
The account's ``last_activity_at`` and ``last_seen_remote_id`` move forward.

Every account runs in its own transaction: one account's failure never stops or undoes the
others. An expired or revoked token (:class:`connectors.errors.AuthExpired`) marks the account
``needs_reauth`` (and the audit log says so); a rate limit or a network error leaves it for the
next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.base import Account as ConnectorAccount
from connectors.base import Connector, RemotePost
from connectors.errors import AccountBlocked, AuthExpired, ConnectorError
from hub.accounts.health import flag_blocked
from hub.accounts.models import Account, AccountStatus, Platform
from hub.audit.models import AccountActivity
from hub.auditlog.service import audit
from hub.config import Settings, get_settings
from hub.db import engine_for
from hub.delivery.models import Delivery, HallEntry
from hub.platforms import with_flag
from hub.sqltypes import utcnow
from hub.users.who import Who

log = logging.getLogger(__name__)


def ingested_platforms() -> tuple[Platform, ...]:
    """The platforms whose accounts' activity the audit reads (``PlatformInfo.audited``)."""
    return with_flag("audited")


EXCERPT_CHARS = 280


@dataclass
class AccountOutcome:
    account_id: int
    name: str
    platform: str
    new_posts: int = 0
    error: str = ""
    needs_reauth: bool = False


@dataclass
class IngestReport:
    accounts_ok: int = 0
    accounts_failed: int = 0
    accounts_skipped: int = 0
    """Left for the next run (the per-run cap)."""
    new_posts: int = 0
    outcomes: list[AccountOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.error]

    def line(self) -> str:
        return (
            f"{self.accounts_ok} accounts ok, {self.accounts_failed} failed, "
            f"{self.accounts_skipped} left for the next run, {self.new_posts} new posts"
        )


ConnectorFactory = Callable[[str], Connector]
AccountAdapter = Callable[[Account], ConnectorAccount]


def _default_factories(settings: Settings) -> tuple[ConnectorFactory, AccountAdapter]:
    from hub.delivery.channels import connector_account, connector_for

    return (
        lambda platform: connector_for(platform, settings),
        lambda account: connector_account(account, settings),
    )


def ingest_all(
    *,
    settings: Settings,
    now: datetime | None = None,
    max_accounts: int = 500,
    connector_for: ConnectorFactory | None = None,
    connector_account: AccountAdapter | None = None,
    progress: Callable[[AccountOutcome], None] | None = None,
) -> IngestReport:
    """One ingestion pass over the matrix (see the module docstring)."""
    default_for, default_account = _default_factories(settings)
    build = connector_for or default_for
    adapt = connector_account or default_account
    engine = engine_for(settings.database_url)
    with Session(engine) as session:
        ids = list(
            session.exec(
                select(Account.id)
                .where(
                    col(Account.platform).in_(ingested_platforms()),
                    Account.status == AccountStatus.active,
                )
                .order_by(col(Account.id))
            ).all()
        )
    report = IngestReport(accounts_skipped=max(0, len(ids) - max_accounts))
    connectors: dict[str, Connector | str] = {}
    for account_id in ids[:max_accounts]:
        assert account_id is not None
        outcome = ingest_account(
            engine_url=settings.database_url,
            account_id=account_id,
            connectors=connectors,
            build=build,
            adapt=adapt,
            now=now,
        )
        report.outcomes.append(outcome)
        if outcome.error:
            report.accounts_failed += 1
        else:
            report.accounts_ok += 1
            report.new_posts += outcome.new_posts
        if progress is not None:
            progress(outcome)
    return report


def ingest_account(
    *,
    engine_url: str,
    account_id: int,
    connectors: dict[str, Connector | str],
    build: ConnectorFactory,
    adapt: AccountAdapter,
    now: datetime | None = None,
) -> AccountOutcome:
    """Read one account's new posts and record them, in one transaction of its own."""
    engine = engine_for(engine_url)
    with Session(engine, expire_on_commit=False) as session:
        account = session.get(Account, account_id)
        if account is None:
            return AccountOutcome(account_id, "", "", error="account no longer exists")
        outcome = AccountOutcome(account_id, account.name, account.platform.value)
        platform = account.platform.value
        if platform not in connectors:
            try:
                connectors[platform] = build(platform)
            except (KeyError, ValueError) as exc:
                connectors[platform] = f"no connector for {platform}: {exc}"
        connector = connectors[platform]
        if isinstance(connector, str):
            outcome.error = connector
            return outcome
        try:
            posts = connector.recent(adapt(account), since=account.last_seen_remote_id or None)
        except AuthExpired as exc:
            outcome.error, outcome.needs_reauth = str(exc), True
            account.status = AccountStatus.needs_reauth
            account.updated_at = utcnow()
            session.add(account)
            audit(
                session,
                Who(system="activity.ingest"),
                "account.needs_reauth",
                "account",
                account.id,
                org_id=account.org_id,
                summary=f"采集「{account.name}」时平台拒绝授权：{exc}",
            )
            session.commit()
            return outcome
        except AccountBlocked as exc:  # the account's setup: flag it as a send would
            outcome.error = str(exc)
            flag_blocked(session, account, exc, get_settings(), now or utcnow())
            session.commit()
            return outcome
        except ConnectorError as exc:
            outcome.error = str(exc)
            return outcome
        except Exception as exc:  # a bad answer must not stop the other accounts
            log.exception("activity ingestion failed for account %s", account_id)
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
        try:
            outcome.new_posts = _record(session, account, posts, now or utcnow())
            session.commit()
        except IntegrityError:  # another ingestion recorded the same post meanwhile
            session.rollback()
            outcome.error = "recorded concurrently by another run; retried next time"
        return outcome


def _record(session: Session, account: Account, posts: list[RemotePost], now: datetime) -> int:
    if not posts:
        return 0
    remote_ids = [p.remote_id for p in posts]
    assert account.id is not None
    seen = set(
        session.exec(
            select(AccountActivity.remote_id).where(
                AccountActivity.account_id == account.id,
                col(AccountActivity.remote_id).in_(remote_ids),
            )
        ).all()
    )
    in_hall = set(
        session.exec(
            select(HallEntry.remote_id).where(
                HallEntry.account_id == account.id, col(HallEntry.remote_id).in_(remote_ids)
            )
        ).all()
    )
    ours = set(
        session.exec(
            select(Delivery.remote_id).where(
                Delivery.account_id == account.id, col(Delivery.remote_id).in_(remote_ids)
            )
        ).all()
    )
    new = 0
    for post in posts:
        if post.remote_id in seen:
            continue
        seen.add(post.remote_id)
        new += 1
        session.add(
            AccountActivity(
                account_id=account.id,
                remote_id=post.remote_id,
                posted_at=post.created_at,
                url=post.url[:1000],
                excerpt=post.text[:EXCERPT_CHARS],
            )
        )
        if post.remote_id not in in_hall and post.remote_id not in ours:
            session.add(
                HallEntry(
                    account_id=account.id,
                    org_id=account.org_id,
                    remote_id=post.remote_id,
                    platform=account.platform.value,
                    text=post.text,
                    url=post.url[:1000],
                    published_at=post.created_at,
                    source="ingested",
                )
            )
    # The newest post (lists come newest first; ``max`` keeps the first of equal times).
    newest = max(posts, key=lambda p: p.created_at)
    account.last_seen_remote_id = newest.remote_id
    if account.last_activity_at is None or newest.created_at > account.last_activity_at:
        account.last_activity_at = newest.created_at
    account.updated_at = now
    session.add(account)
    return new
