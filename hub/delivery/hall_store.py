"""The release hall's entries in the database: the hub side of ``connectors.hall.HallStore``.

Idempotency keys are ``"{post_id}:{version}:{account_id}"`` (see ``service.idempotency_key``), so
an entry knows the post it shows; saving a known key returns the existing entry.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connectors.hall import HallEntry as ConnectorEntry
from hub.accounts.models import Account
from hub.delivery.models import HallEntry
from hub.platforms import builtin_channel
from hub.sqltypes import utcnow


def _to_connector(row: HallEntry) -> ConnectorEntry:
    return ConnectorEntry(
        account_id=row.account_id,
        idempotency_key=row.idempotency_key,
        title=row.title,
        html=row.html,
        text=row.text,
        link=row.url,
        entry_id=str(row.id),
        url=row.url,
        created_at=row.published_at,
    )


class DatabaseHallStore:
    def __init__(self, engine: Engine, public_base_url: str) -> None:
        self.engine = engine
        self.base = public_base_url.rstrip("/")

    def __repr__(self) -> str:
        return "DatabaseHallStore()"

    def save(self, entry: ConnectorEntry) -> ConnectorEntry:
        with Session(self.engine, expire_on_commit=False) as session:
            existing = session.exec(
                select(HallEntry).where(
                    HallEntry.account_id == entry.account_id,
                    HallEntry.idempotency_key == entry.idempotency_key,
                )
            ).first()
            if existing is not None:
                return _to_connector(existing)
            account = session.get(Account, entry.account_id)
            if account is None:
                raise LookupError(f"account {entry.account_id} does not exist")
            post_id, version = _post_of(entry.idempotency_key)
            row = HallEntry(
                account_id=entry.account_id,
                org_id=account.org_id,
                post_id=post_id,
                version=version,
                remote_id=entry.idempotency_key,
                idempotency_key=entry.idempotency_key,
                platform=builtin_channel().value,
                title=entry.title,
                text=entry.text,
                html=entry.html,
                url=entry.link,
                published_at=utcnow(),
            )
            session.add(row)
            session.flush()
            row.remote_id = str(row.id)
            row.url = entry.link or f"{self.base}/hall/entries/{row.id}"
            session.add(row)
            session.commit()
            return replace(_to_connector(row), link=entry.link)

    def get(self, account_id: int, entry_id: str) -> ConnectorEntry | None:
        if not entry_id.isdigit():
            return None
        with Session(self.engine) as session:
            row = session.get(HallEntry, int(entry_id))
            if row is None or row.account_id != account_id or row.withdrawn_at is not None:
                return None
            return _to_connector(row)

    def delete(self, account_id: int, entry_id: str) -> bool:
        if not entry_id.isdigit():
            return False
        with Session(self.engine) as session:
            row = session.get(HallEntry, int(entry_id))
            if row is None or row.account_id != account_id or row.withdrawn_at is not None:
                return False
            row.withdrawn_at = utcnow()
            session.add(row)
            session.commit()
            return True

    def recent(self, account_id: int, since: str | None = None) -> list[ConnectorEntry]:
        with Session(self.engine) as session:
            query = select(HallEntry).where(
                HallEntry.account_id == account_id, col(HallEntry.withdrawn_at).is_(None)
            )
            if since and since.isdigit():
                query = query.where(col(HallEntry.id) > int(since))
            rows = session.exec(query.order_by(col(HallEntry.id).desc()).limit(100)).all()
            return [_to_connector(r) for r in rows]


def _post_of(key: str) -> tuple[int | None, int | None]:
    parts = key.split(":")
    if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
        return int(parts[0]), int(parts[1])
    return None, None
