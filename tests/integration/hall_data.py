"""Release-hall test data, made through the hub's own tables and the hall's database store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from connectors.base import Content
from connectors.hall import HallConnector, MemoryHallStore
from connectors.hall import HallEntry as ConnectorEntry
from connectors.markup import markdown_to_text
from hub.accounts.models import Account, Platform
from hub.db import engine_for
from hub.delivery.hall_store import DatabaseHallStore
from hub.delivery.models import Delivery, DeliveryStatus, HallEntry
from hub.orgs.service import get_by_code
from hub.posts.models import Post, PostStatus, PostVersion
from hub.sqltypes import utcnow
from hub.users.models import User

BASE = "http://hall.test"


def account(url: str, org_code: str, platform: Platform, name: str = "") -> int:
    with Session(engine_for(url)) as session:
        org = get_by_code(session=session, code=org_code)
        row = Account(
            org_id=org.id,  # type: ignore[arg-type]
            platform=platform,
            name=name or f"{org.name}{platform.value}",
        )
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


@dataclass
class PublishedPost:
    post_id: int
    entry_id: int
    account_id: int


def publish(
    url: str,
    *,
    org_code: str,
    title: str,
    body: str,
    author: str = "kaili-editor",
    hall_account: int | None = None,
    correction_note: str = "",
    version: int = 1,
    post_id: int | None = None,
) -> PublishedPost:
    """A post (and version) published to an org's hall account via the hall's database store."""
    engine = engine_for(url)
    with Session(engine, expire_on_commit=False) as session:
        org = get_by_code(session=session, code=org_code)
        user = session.exec(select(User).where(User.username == author)).one()
        if post_id is None:
            post = Post(
                org_id=org.id,  # type: ignore[arg-type]
                author_id=user.id,  # type: ignore[arg-type]
                title=title,
                status=PostStatus.published,
                current_version=version,
                approved_version=version,
                released_at=utcnow(),
            )
            session.add(post)
            session.flush()
            assert post.id is not None
            post_id = post.id
        else:
            found = session.get(Post, post_id)
            assert found is not None
            post = found
            post.current_version = post.approved_version = version
            session.add(post)
        session.add(
            PostVersion(
                post_id=post_id,
                version=version,
                title=title,
                body=body,
                correction_note=correction_note,
                content_hash=hashlib.sha256(body.encode()).hexdigest(),
                author_id=user.id,  # type: ignore[arg-type]
            )
        )
        session.commit()
    if hall_account is None:
        hall_account = account(url, org_code, Platform("hall"))
    # the article as the hall connector renders it when the engine publishes the post
    rendition = HallConnector(MemoryHallStore(BASE), public_base_url=BASE).render(
        Content(post_id, version, title, body, org_name=org.name, correction_note=correction_note)
    )
    saved = DatabaseHallStore(engine, BASE).save(
        ConnectorEntry(
            account_id=hall_account,
            idempotency_key=f"{post_id}:{version}:{hall_account}",
            title=title,
            html=rendition.html,
            text=markdown_to_text(body),
            link=f"{BASE}/hall/posts/{post_id}",
        )
    )
    return PublishedPost(post_id=post_id, entry_id=int(saved.entry_id), account_id=hall_account)


def ingested(
    url: str,
    *,
    account_id: int,
    text: str,
    remote_id: str,
    published_at: datetime | None = None,
    html: str = "",
    remote_url: str = "",
) -> int:
    """An entry ingested from an account's timeline (as hub.audit.ingest records it)."""
    with Session(engine_for(url)) as session:
        acc = session.get(Account, account_id)
        assert acc is not None
        row = HallEntry(
            account_id=account_id,
            org_id=acc.org_id,
            remote_id=remote_id,
            platform=acc.platform.value,
            text=text,
            html=html,
            url=remote_url or f"https://weibo.com/{account_id}/{remote_id}",
            published_at=published_at or utcnow(),
            source="ingested",
        )
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def delivered(url: str, *, post_id: int, version: int, account_id: int, remote_url: str) -> None:
    """A published delivery of a post to a Weibo/WeChat account (where that copy landed)."""
    with Session(engine_for(url)) as session:
        session.add(
            Delivery(
                post_id=post_id,
                version=version,
                account_id=account_id,
                status=DeliveryStatus.published,
                remote_id=remote_url.rsplit("/", 1)[-1],
                remote_url=remote_url,
                published_at=utcnow() - timedelta(seconds=5),
            )
        )
        session.commit()


def withdraw(url: str, *, post_id: int, reason: str) -> None:
    """What withdrawing does to the hall: the post is withdrawn, its hall entries taken down."""
    with Session(engine_for(url)) as session:
        post = session.get(Post, post_id)
        assert post is not None
        post.status = PostStatus.withdrawn
        post.reason = reason
        session.add(post)
        for entry in session.exec(select(HallEntry).where(HallEntry.post_id == post_id)).all():
            entry.withdrawn_at = utcnow()
            session.add(entry)
        session.commit()
