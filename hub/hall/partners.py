"""Partner sites (合作网站) subscribed to the release hall: registration and signed webhooks.

Every new hall entry goes to every active partner once, through an outbox: one
``partner_deliveries`` row per (partner, entry), unique, so concurrent sweeps and the immediate
notification after an entry is created cannot send it twice. A row is claimed with a conditional
update before the call (``pending`` -> ``sending`` with a lease), sent with the
:class:`~connectors.webhook.WebhookConnector` (HMAC-SHA256 signed, ``X-Govhub-Delivery:
hall-entry-<id>`` so a partner can drop a repeat after an unanswered call), and retried with
exponential backoff up to ``MAX_ATTEMPTS``. A partner answering 4xx (other than 401/403/408/429)
has refused the entry: the row fails at once.

A partner registered today receives entries created from now on, not the archive.

Withdrawals follow the same path: once an entry a partner has received is withdrawn (the hall
copy deleted, or its post withdrawn), a second row for the pair (event ``withdrawn``) sends
``{"event": "post.withdrawn", "id": "hall-entry-<id>"}``, the id the partner got the entry under.
An entry withdrawn before it reached a partner is simply never sent to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from connectors.base import Account as ConnectorAccount
from connectors.base import Rendition
from connectors.errors import ConnectorError, Misconfigured, RateLimited, Rejected, Transient
from connectors.webhook import WebhookConnector
from hub.accounts.models import Account
from hub.config import Settings, get_settings
from hub.delivery.models import HallEntry
from hub.errors import Conflict, Invalid, NotFound
from hub.hall.models import (
    Partner,
    PartnerCreate,
    PartnerDelivery,
    PartnerDeliveryStatus,
    PartnerEvent,
    PartnerPublic,
)
from hub.hall.rules import EXCERPT_CHARS, backoff, excerpt, public_url
from hub.orgs.models import Org
from hub.posts.models import Post, PostStatus
from hub.security import decrypt_credentials, encrypt_credentials
from hub.sqltypes import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
BATCH = 200


# -- registration --------------------------------------------------------------------------------


def _connector(settings: Settings) -> WebhookConnector:
    from hub.delivery.channels import http_client

    return WebhookConnector(http_client(), allow_private=settings.webhook_allow_private)


def _connector_account(partner: Partner, settings: Settings) -> ConnectorAccount:
    secret = decrypt_credentials(settings.credentials_key, partner.secret_encrypted).get(
        "secret", ""
    )
    return ConnectorAccount(
        id=partner.id or 0,
        platform=WebhookConnector.platform,
        handle=partner.name,
        name=partner.name,
        credentials={"url": partner.url, "secret": secret},
    )


def check_url(
    url: str,
    *,
    settings: Settings,
    connector: WebhookConnector | None = None,
    field: str = "url",
) -> None:
    """Refuse a URL the webhook connector would refuse (scheme, SSRF guard) with a clear 422.

    The one check for every outbound URL people register: partner sites here, and accounts
    with ``platform=webhook`` (hub.accounts.service); see connectors.outbound.
    """
    connector = connector or _connector(settings)
    probe = ConnectorAccount(
        id=0, platform=WebhookConnector.platform, handle=url, credentials={"url": url}
    )
    try:
        connector.checked_target(probe)
    except Misconfigured as exc:
        raise Invalid(str(exc.args[0]) if exc.args else "推送地址无效", field=field) from None
    except Transient as exc:
        raise Invalid(str(exc.args[0]) if exc.args else "无法解析推送地址", field=field) from None


def create_partner(
    *, session: Session, data: PartnerCreate, created_by: int | None, settings: Settings
) -> Partner:
    name = data.name.strip()
    url = data.url.strip()
    check_url(url, settings=settings)
    if session.exec(select(Partner).where(Partner.name == name)).first() is not None:
        raise Conflict("已有名为 %(name)r 的合作方", field="name", name=name)
    newest = session.exec(select(func.max(col(HallEntry.id)))).one()
    partner = Partner(
        name=name,
        url=url,
        secret_encrypted=encrypt_credentials(settings.credentials_key, {"secret": data.secret}),
        since_entry_id=int(newest or 0),
        created_by=created_by,
    )
    session.add(partner)
    session.flush()
    return partner


def list_partners(*, session: Session) -> list[PartnerPublic]:
    partners = session.exec(
        select(Partner).where(col(Partner.active).is_(True)).order_by(col(Partner.id))
    ).all()
    counts: dict[tuple[int, str], int] = {}
    for partner_id, status, count in session.exec(
        select(PartnerDelivery.partner_id, PartnerDelivery.status, func.count()).group_by(
            col(PartnerDelivery.partner_id), col(PartnerDelivery.status)
        )
    ).all():
        counts[(partner_id, str(status))] = int(count)
    return [to_public(p, counts) for p in partners]


def to_public(partner: Partner, counts: dict[tuple[int, str], int] | None = None) -> PartnerPublic:
    assert partner.id is not None
    counts = counts or {}
    return PartnerPublic(
        id=partner.id,
        name=partner.name,
        url=partner.url,
        active=partner.active,
        created_at=partner.created_at,
        pending=counts.get((partner.id, PartnerDeliveryStatus.pending), 0)
        + counts.get((partner.id, PartnerDeliveryStatus.sending), 0),
        sent=counts.get((partner.id, PartnerDeliveryStatus.sent), 0),
        failed=counts.get((partner.id, PartnerDeliveryStatus.failed), 0),
    )


def delete_partner(*, session: Session, partner_id: int) -> Partner:
    """Stop sending to a partner (kept, inactive, so its delivery history stays)."""
    partner = session.get(Partner, partner_id)
    if partner is None or not partner.active:
        raise NotFound("合作方 %(partner_id)s 不存在", partner_id=partner_id)
    partner.active = False
    session.add(partner)
    session.execute(
        update(PartnerDelivery)
        .where(
            col(PartnerDelivery.partner_id) == partner_id,
            col(PartnerDelivery.status) == PartnerDeliveryStatus.pending,
        )
        .values(status=PartnerDeliveryStatus.failed, last_error="partner removed")
    )
    return partner


# -- the outbox ----------------------------------------------------------------------------------


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = PartnerDelivery.__table__  # type: ignore[attr-defined]
    if dialect == "postgresql":
        stmt: Any = pg_insert(table).values(rows).on_conflict_do_nothing()
    else:
        stmt = sqlite_insert(table).values(rows).on_conflict_do_nothing()
    session.execute(stmt)


def _outbox_row(
    partner_id: int, entry_id: int, event: PartnerEvent, now: datetime
) -> dict[str, Any]:
    """A due ``pending`` outbox row (inserted in bulk, duplicates ignored)."""
    return {
        "partner_id": partner_id,
        "entry_id": entry_id,
        "event": event.value,
        "status": PartnerDeliveryStatus.pending.value,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


def _visible_entry_ids(session: Session, entry_ids: Iterable[int] | None, above: int) -> Any:
    stmt = (
        select(HallEntry.id)
        .outerjoin(Post, col(Post.id) == col(HallEntry.post_id))
        .where(
            col(HallEntry.id) > above,
            col(HallEntry.withdrawn_at).is_(None),
            (col(HallEntry.post_id).is_(None)) | (col(Post.status) != PostStatus.withdrawn),
        )
    )
    if entry_ids is not None:
        stmt = stmt.where(col(HallEntry.id).in_(list(entry_ids)))
    return stmt


def create_rows(*, session: Session, now: datetime, entry_ids: Iterable[int] | None = None) -> int:
    """Outbox rows for visible entries each active partner has not had yet (all new ones, or
    just ``entry_ids``). Idempotent: the unique (partner, entry) pair absorbs repeats."""
    ids = list(entry_ids) if entry_ids is not None else None
    created = 0
    for partner in session.exec(select(Partner).where(col(Partner.active).is_(True))).all():
        assert partner.id is not None
        already = select(PartnerDelivery.entry_id).where(
            PartnerDelivery.partner_id == partner.id,
            PartnerDelivery.event == PartnerEvent.published,
        )
        stmt = (
            _visible_entry_ids(session, ids, partner.since_entry_id)
            .where(col(HallEntry.id).not_in(already))
            .order_by(col(HallEntry.id))
            .limit(BATCH)
        )
        new = [int(entry_id) for entry_id in session.exec(stmt).all()]
        _insert_ignoring_duplicates(
            session,
            [_outbox_row(partner.id, entry_id, PartnerEvent.published, now) for entry_id in new],
        )
        created += len(new)
    created += _withdrawal_rows(session, now, ids)
    return created


def _withdrawal_rows(session: Session, now: datetime, entry_ids: list[int] | None) -> int:
    """A ``withdrawn`` row for every entry a partner received that has been withdrawn since."""
    withdrawn_entry = or_(
        col(HallEntry.withdrawn_at).is_not(None), col(Post.status) == PostStatus.withdrawn
    )
    sent = aliased(PartnerDelivery)  # the outer query's row; the subquery looks for its sibling
    told = select(PartnerDelivery.id).where(
        col(PartnerDelivery.partner_id) == sent.partner_id,
        col(PartnerDelivery.entry_id) == sent.entry_id,
        PartnerDelivery.event == PartnerEvent.withdrawn,
    )
    stmt = (
        select(sent.partner_id, sent.entry_id)
        .join(Partner, col(Partner.id) == sent.partner_id)
        .join(HallEntry, col(HallEntry.id) == sent.entry_id)
        .outerjoin(Post, col(Post.id) == col(HallEntry.post_id))
        .where(
            col(Partner.active).is_(True),
            sent.event == PartnerEvent.published,
            sent.status == PartnerDeliveryStatus.sent,
            withdrawn_entry,
            ~told.exists(),
        )
        .order_by(col(sent.id))
        .limit(BATCH)
    )
    if entry_ids is not None:
        stmt = stmt.where(col(sent.entry_id).in_(entry_ids))
    rows = [
        _outbox_row(partner_id, entry_id, PartnerEvent.withdrawn, now)
        for partner_id, entry_id in session.exec(stmt).all()
    ]
    _insert_ignoring_duplicates(session, rows)
    return len(rows)


def _claim(session: Session, row_id: int, now: datetime) -> bool:
    """pending and due -> sending, leased; False when another worker got there first."""
    result = session.execute(
        update(PartnerDelivery)
        .where(
            col(PartnerDelivery.id) == row_id,
            col(PartnerDelivery.status) == PartnerDeliveryStatus.pending,
            col(PartnerDelivery.next_attempt_at) <= now,
        )
        .values(
            status=PartnerDeliveryStatus.sending,
            lease_until=now + LEASE,
            attempts=col(PartnerDelivery.attempts) + 1,
        )
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))


def _rendition(session: Session, entry: HallEntry, settings: Settings) -> Rendition:
    org = session.get(Org, entry.org_id)
    account = session.get(Account, entry.account_id)
    base = settings.public_base_url.rstrip("/")
    page = (
        f"{base}/hall/posts/{entry.post_id}"
        if entry.post_id is not None
        else f"{base}/hall/entries/{entry.id}"
    )
    return Rendition(
        platform=WebhookConnector.platform,
        title=entry.title or excerpt(entry.text, 40),
        text=excerpt(entry.text, EXCERPT_CHARS * 4),
        html=entry.html,
        author=org.name if org else "",
        link=page,
        meta={
            "entry_id": str(entry.id),
            "post_id": str(entry.post_id or ""),
            "version": str(entry.version or ""),
            "org_code": org.code if org else "",
            "org_name": org.name if org else "",
            "account_name": account.name if account else "",
            "platform": entry.platform,
            "source": entry.source,
            "source_url": public_url(entry.url),
            "published_at": entry.published_at.isoformat(),
        },
    )


def send_one(
    *,
    session: Session,
    row_id: int,
    now: datetime,
    settings: Settings,
    connector: WebhookConnector | None = None,
) -> str:
    """Claim and send one outbox row; the outcome as a short word."""
    if not _claim(session, row_id, now):
        return "skipped"
    row = session.get(PartnerDelivery, row_id)
    assert row is not None
    session.refresh(row)
    partner = session.get(Partner, row.partner_id)
    entry = session.get(HallEntry, row.entry_id)
    withdrawal = row.event is PartnerEvent.withdrawn
    gone = entry is None or (entry.withdrawn_at is not None and not withdrawal)
    if partner is None or not partner.active or entry is None or gone:
        row.status = PartnerDeliveryStatus.failed
        row.last_error = "partner removed or entry withdrawn before sending"
        session.add(row)
        session.commit()
        return "dropped"
    connector = connector or _connector(settings)
    try:
        if withdrawal:
            connector.withdraw(_connector_account(partner, settings), f"hall-entry-{entry.id}")
        else:
            connector.publish(
                _connector_account(partner, settings),
                _rendition(session, entry, settings),
                idempotency_key=f"hall-entry-{entry.id}",
            )
    except ConnectorError as exc:
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        row.last_error = f"{type(exc).__name__}: {message}"[:2000]
        row.lease_until = None
        if isinstance(exc, Rejected) or row.attempts >= MAX_ATTEMPTS:
            row.status = PartnerDeliveryStatus.failed
        else:
            row.status = PartnerDeliveryStatus.pending
            wait = backoff(row.attempts)
            if isinstance(exc, RateLimited) and exc.until is not None:
                wait = max(wait, exc.until - now)
            elif isinstance(exc, Transient) and exc.retry_after:
                wait = max(wait, timedelta(seconds=exc.retry_after))
            row.next_attempt_at = now + wait
        session.add(row)
        session.commit()
        log.info("partner %s entry %s: %s", partner.name, entry.id, row.last_error)
        return "failed" if row.status is PartnerDeliveryStatus.failed else "retry"
    row.status = PartnerDeliveryStatus.sent
    row.sent_at = now
    row.lease_until = None
    row.last_error = ""
    session.add(row)
    session.commit()
    return "sent"


def _due(session: Session, now: datetime, entry_ids: list[int] | None = None) -> list[int]:
    stmt = select(PartnerDelivery.id).where(
        PartnerDelivery.status == PartnerDeliveryStatus.pending,
        col(PartnerDelivery.next_attempt_at) <= now,
    )
    if entry_ids is not None:
        stmt = stmt.where(col(PartnerDelivery.entry_id).in_(entry_ids))
    rows = session.exec(stmt.order_by(col(PartnerDelivery.id)).limit(BATCH)).all()
    return [i for i in rows if i is not None]


def _release_expired_leases(session: Session, now: datetime) -> None:
    session.execute(
        update(PartnerDelivery)
        .where(
            col(PartnerDelivery.status) == PartnerDeliveryStatus.sending,
            col(PartnerDelivery.lease_until) < now,
        )
        .values(status=PartnerDeliveryStatus.pending, lease_until=None, next_attempt_at=now)
    )


@dataclass
class SweepResult:
    created: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0

    def line(self) -> str:
        return (
            f"partners: {self.created} new, {self.sent} sent, {self.retry} to retry, "
            f"{self.failed} failed"
        )


def _send_all(
    session: Session,
    ids: list[int],
    now: datetime,
    settings: Settings,
    result: SweepResult,
    connector: WebhookConnector | None,
) -> None:
    for row_id in ids:
        outcome = send_one(
            session=session, row_id=row_id, now=now, settings=settings, connector=connector
        )
        if outcome == "sent":
            result.sent += 1
        elif outcome == "retry":
            result.retry += 1
        elif outcome in ("failed", "dropped"):
            result.failed += 1


def sweep_partners(
    *,
    session: Session,
    now: datetime | None = None,
    settings: Settings | None = None,
    connector: WebhookConnector | None = None,
) -> SweepResult:
    """Beat's pass: outbox rows for new entries, leases run out, then every due row sent."""
    now = now or utcnow()
    settings = settings or get_settings()
    result = SweepResult()
    _release_expired_leases(session, now)
    result.created = create_rows(session=session, now=now)
    session.commit()
    _send_all(session, _due(session, now), now, settings, result, connector)
    return result


def notify_partners(
    *,
    session: Session,
    entry_id: int,
    now: datetime | None = None,
    settings: Settings | None = None,
    connector: WebhookConnector | None = None,
) -> SweepResult:
    """Send one new hall entry to every partner now (call after the entry's transaction commits;
    the sweep catches anything this misses)."""
    now = now or utcnow()
    settings = settings or get_settings()
    result = SweepResult()
    result.created = create_rows(session=session, now=now, entry_ids=[entry_id])
    session.commit()
    _send_all(session, _due(session, now, [entry_id]), now, settings, result, connector)
    return result


def enqueue_partner_notifications(entry_ids: Iterable[int]) -> int:
    """One ``hall.notify_partners`` task per new hall entry. Call after the commit."""
    from scheduler.app import get_celery

    app = get_celery()
    count = 0
    for entry_id in entry_ids:
        app.send_task("hall.notify_partners", args=[entry_id])
        count += 1
    return count
