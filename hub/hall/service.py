"""The release hall (发布厅) as read by the public: the stream, search, post and entry pages.

The stream is every ``HallEntry`` not withdrawn (published through govhub, or ingested from an
account's timeline), newest first. Entries of a withdrawn post vanish with it.

Search works for Chinese, which has no spaces between words: terms of three characters or more
go through the trigram index (SQLite FTS5 ``tokenize='trigram'``; PostgreSQL ``pg_trgm`` GIN
indexes, which ILIKE uses); shorter terms fall back to LIKE/ILIKE. Whitespace separates terms,
and every term must match (title or text).

Partner webhooks are in :mod:`hub.hall.partners`; ``notify_partners`` and
``enqueue_partner_notifications`` are re-exported here for the delivery engine.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import ColumnElement, and_, func, literal_column, or_, text
from sqlmodel import Session, col, select

from connectors.markup import markdown_to_html, markdown_to_text
from hub.accounts.models import Account, Platform
from hub.audit.rules import PLATFORM_ZH
from hub.delivery.models import Delivery, DeliveryStatus, HallEntry
from hub.hall.partners import enqueue_partner_notifications, notify_partners
from hub.hall.rules import (
    EXCERPT_CHARS,
    excerpt,
    fts_phrase,
    like_pattern,
    public_url,
    sanitised,
    search_terms,
    text_to_html,
    uses_trigram,
)
from hub.orgs.models import Org, OrgLevel
from hub.posts.models import Post, PostStatus, PostVersion

__all__ = [
    "EntryPage",
    "HallItem",
    "HallPage",
    "HallQuery",
    "PostPage",
    "Withdrawn",
    "enqueue_partner_notifications",
    "entry_page",
    "fingerprint",
    "hall_platforms",
    "list_entries",
    "notify_partners",
    "org_choices",
    "post_page",
]


def hall_platforms() -> tuple[str, ...]:
    """The platforms whose copies the hall lists and links to (its filter's choices)."""
    return tuple(p.value for p in Platform.all() if p.info.public_copies)


PER_PAGE = 20


@dataclass(frozen=True)
class HallQuery:
    """What the reader asked for: ``org`` is an org code (its subtree is included)."""

    org: str = ""
    platform: str = ""
    q: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    def key(self) -> str:
        return f"org={self.org}&platform={self.platform}&q={self.q}&page={self.page}"


@dataclass(frozen=True)
class HallItem:
    """One entry as pages and feeds show it."""

    id: int
    post_id: int | None
    title: str
    text: str
    html: str  # sanitised; empty for ingested entries
    source_url: str  # where the copy lives (Weibo, WeChat) when it is an http(s) URL
    platform: str
    source: str
    org_code: str
    org_name: str
    account_name: str
    published_at: datetime

    @property
    def platform_name(self) -> str:
        return PLATFORM_ZH.get(self.platform, self.platform)

    @property
    def heading(self) -> str:
        return self.title or excerpt(self.text, 40) or f"{self.org_name}{self.platform_name}"

    @property
    def summary(self) -> str:
        return excerpt(self.text, EXCERPT_CHARS)

    @property
    def path(self) -> str:
        """The hall page of this entry: the post page for govhub posts."""
        if self.post_id is not None:
            return f"/hall/posts/{self.post_id}"
        return f"/hall/entries/{self.id}"

    @property
    def body_html(self) -> Markup:
        """The body as safe HTML: the stored sanitised HTML (cleaned again), else escaped text."""
        if self.html:
            return sanitised(self.html)
        return text_to_html(self.text)


@dataclass(frozen=True)
class HallPage:
    items: list[HallItem]
    total: int
    page: int
    pages: int
    org: Org | None
    unknown_org: bool = False


@dataclass(frozen=True)
class Copy:
    """Where one copy of a post landed."""

    label: str
    url: str


@dataclass(frozen=True)
class PostPage:
    post_id: int
    version: int
    title: str
    html: Markup
    description: str
    org: Org
    published_at: datetime | None
    correction_note: str
    copies: list[Copy] = field(default_factory=list)


@dataclass(frozen=True)
class EntryPage:
    item: HallItem


@dataclass(frozen=True)
class Withdrawn:
    """A withdrawn post or entry: the page says so (410) and shows the reason."""

    reason: str
    org: Org | None


# -- queries -------------------------------------------------------------------------------------


def _term_filter(session: Session, term: str, index: int) -> ColumnElement[bool]:
    dialect = session.get_bind().dialect.name
    pattern = like_pattern(term)
    if dialect == "postgresql":  # pg_trgm's GIN indexes serve ILIKE for 3+ characters
        return or_(
            col(HallEntry.title).ilike(pattern, escape="\\"),
            col(HallEntry.text).ilike(pattern, escape="\\"),
        )
    if dialect == "sqlite" and uses_trigram(term):
        name = f"fts_{index}"
        matches: Any = (
            select(literal_column("rowid"))
            .select_from(text("hall_entries_fts"))
            .where(text(f"hall_entries_fts MATCH :{name}").bindparams(**{name: fts_phrase(term)}))
        )
        return col(HallEntry.id).in_(matches)
    return or_(
        col(HallEntry.title).like(pattern, escape="\\"),
        col(HallEntry.text).like(pattern, escape="\\"),
    )


def _visible() -> ColumnElement[bool]:
    return and_(
        col(HallEntry.withdrawn_at).is_(None),
        or_(col(HallEntry.post_id).is_(None), col(Post.status) != PostStatus.withdrawn),
    )


def _filtered(session: Session, query: HallQuery, org: Org | None, stmt: Any) -> Any:
    stmt = (
        stmt.join(Org, col(Org.id) == col(HallEntry.org_id))
        .outerjoin(Post, col(Post.id) == col(HallEntry.post_id))
        .where(_visible())
    )
    if org is not None:
        stmt = stmt.where(col(Org.path).startswith(org.path))
    if query.platform:
        stmt = stmt.where(col(HallEntry.platform) == query.platform)
    for index, term in enumerate(search_terms(query.q)):
        stmt = stmt.where(_term_filter(session, term, index))
    return stmt


def _org_of(session: Session, code: str) -> Org | None:
    if not code:
        return None
    return session.exec(select(Org).where(Org.code == code)).first()


def fingerprint(*, session: Session, query: HallQuery, kind: str) -> str:
    """A validator for a list page or feed: changes when an entry appears or vanishes.

    Built from the visible set's count, newest id, id sum and newest time plus the query, so a
    reader's ``If-None-Match`` is answered without rendering the page.
    """
    org = _org_of(session, query.org)
    stmt = _filtered(
        session,
        query,
        org,
        select(
            func.count(col(HallEntry.id)),
            func.max(col(HallEntry.id)),
            func.sum(col(HallEntry.id)),
            func.max(col(HallEntry.published_at)),
        ),
    )
    row = session.exec(stmt).one()
    raw = f"{kind}|{query.key()}|{org.id if org else ''}|{tuple(row)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def list_entries(*, session: Session, query: HallQuery) -> HallPage:
    """One page of the stream (newest first) for ``query``."""
    org = _org_of(session, query.org)
    if query.org and org is None:
        return HallPage(items=[], total=0, page=1, pages=1, org=None, unknown_org=True)
    count_stmt = _filtered(session, query, org, select(func.count(col(HallEntry.id))))
    total = int(session.exec(count_stmt).one())
    pages = max(1, math.ceil(total / query.per_page))
    page = min(max(1, query.page), pages)
    stmt = _filtered(session, query, org, select(HallEntry, Org, Account))
    stmt = (
        stmt.join(Account, col(Account.id) == col(HallEntry.account_id))
        .order_by(col(HallEntry.published_at).desc(), col(HallEntry.id).desc())
        .offset((page - 1) * query.per_page)
        .limit(query.per_page)
    )
    items = [_item(entry, entry_org, account) for entry, entry_org, account in session.exec(stmt)]
    return HallPage(items=items, total=total, page=page, pages=pages, org=org)


def _item(entry: HallEntry, org: Org, account: Account) -> HallItem:
    assert entry.id is not None
    return HallItem(
        id=entry.id,
        post_id=entry.post_id,
        title=entry.title,
        text=entry.text,
        html=entry.html,
        source_url=public_url(entry.url),
        platform=entry.platform,
        source=entry.source,
        org_code=org.code,
        org_name=org.name,
        account_name=account.name,
        published_at=entry.published_at,
    )


def org_choices(*, session: Session) -> list[tuple[str, list[Org]]]:
    """Orgs for the filter, grouped: the province, each prefecture with its counties, departments."""
    orgs = list(session.exec(select(Org).order_by(col(Org.path))).all())
    groups: dict[str, list[Org]] = {}
    labels: dict[str, str] = {}
    departments: list[Org] = []
    for org in orgs:
        if org.level is OrgLevel.department:
            departments.append(org)
            continue
        parts = [p for p in org.path.split("/") if p]
        top = parts[1] if len(parts) > 1 else parts[0] if parts else org.code
        groups.setdefault(top, []).append(org)
        if org.code == top:
            labels[top] = org.name
    result = [(labels.get(top, top), members) for top, members in groups.items()]
    if departments:
        result.append(("部门", departments))
    return result


# -- one post, one entry -------------------------------------------------------------------------


def post_page(*, session: Session, post_id: int) -> PostPage | Withdrawn | None:
    """The post's latest published version as the hall shows it; None when never published."""
    post = session.get(Post, post_id)
    if post is None:
        return None
    org = session.get(Org, post.org_id)
    if post.status is PostStatus.withdrawn:
        return Withdrawn(reason=post.reason, org=org)
    entries = list(
        session.exec(
            select(HallEntry, Account)
            .join(Account, col(Account.id) == col(HallEntry.account_id))
            .where(HallEntry.post_id == post_id)
            .order_by(col(HallEntry.id))
        ).all()
    )
    live = [(e, a) for e, a in entries if e.withdrawn_at is None]
    deliveries = list(
        session.exec(
            select(Delivery, Account)
            .join(Account, col(Account.id) == col(Delivery.account_id))
            .where(Delivery.post_id == post_id, Delivery.status == DeliveryStatus.published)
            .order_by(col(Delivery.id))
        ).all()
    )
    versions = {e.version for e, _ in live if e.version is not None}
    versions |= {d.version for d, _ in deliveries}
    if not versions:
        if entries:  # it was on the hall, and every copy has been taken down
            return Withdrawn(reason=post.reason, org=org)
        return None
    version_no = max(versions)
    version = session.exec(
        select(PostVersion).where(PostVersion.post_id == post_id, PostVersion.version == version_no)
    ).first()
    if version is None or org is None:
        return None
    hall_rows = [(e, a) for e, a in live if e.version == version_no]
    if hall_rows:
        html = sanitised(hall_rows[0][0].html)
    else:
        html = sanitised(markdown_to_html(version.body))
    correction_note = version.correction_note
    if correction_note and correction_note in _plain(html):
        correction_note = ""  # the hall's article shows its correction note itself
    copies = [
        Copy(
            f"{PLATFORM_ZH.get(account.platform.value)} · {account.name}",
            f"/hall/entries/{entry.id}",
        )
        for entry, account in hall_rows
    ]
    copies += [
        Copy(
            f"{PLATFORM_ZH.get(account.platform.value, account.platform.value)} · {account.name}",
            public_url(delivery.remote_url),
        )
        for delivery, account in deliveries
        if delivery.version == version_no and not account.platform.info.builtin_channel
    ]
    times = [e.published_at for e, _ in hall_rows]
    times += [d.published_at for d, _ in deliveries if d.version == version_no and d.published_at]
    published_at = min(times) if times else post.released_at
    return PostPage(
        post_id=post_id,
        version=version_no,
        title=version.title,
        html=html,
        description=excerpt(version.summary or markdown_to_text(version.body), EXCERPT_CHARS),
        org=org,
        published_at=published_at,
        correction_note=correction_note,
        copies=copies,
    )


def _plain(html: Markup) -> str:
    return html.striptags()


def entry_page(*, session: Session, entry_id: int) -> EntryPage | Withdrawn | None:
    row = session.exec(
        select(HallEntry, Org, Account)
        .join(Org, col(Org.id) == col(HallEntry.org_id))
        .join(Account, col(Account.id) == col(HallEntry.account_id))
        .where(HallEntry.id == entry_id)
    ).first()
    if row is None:
        return None
    entry, org, account = row
    post = session.get(Post, entry.post_id) if entry.post_id is not None else None
    if post is not None and post.status is PostStatus.withdrawn:
        return Withdrawn(reason=post.reason, org=org)
    if entry.withdrawn_at is not None:
        return Withdrawn(reason=post.reason if post is not None else "", org=org)
    return EntryPage(item=_item(entry, org, account))
