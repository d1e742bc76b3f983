"""The media library: recording uploads, searching an org subtree's images, alt text, and what a
post's rendering takes from the library (alt text, the org's default cover)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.media import rules
from hub.media.models import MediaItem, MediaPublic
from hub.orgs.models import Org
from hub.users.models import User


def add(
    *,
    session: Session,
    org: Org,
    user: User,
    path: str,
    data: bytes,
    verdict: rules.Verdict,
    original_name: str,
    alt: str = "",
) -> MediaItem:
    """Record an upload in the library (the caller commits)."""
    item = MediaItem(
        org_id=org.id,  # type: ignore[arg-type]
        path=path,
        original_name=(original_name or "")[:255],
        content_hash=hashlib.sha256(data).hexdigest(),
        content_type=verdict.content_type,
        size=len(data),
        width=verdict.width,
        height=verdict.height,
        alt=rules.clean_alt(alt)[: rules.ALT_MAX],
        uploaded_by=user.id,
    )
    session.add(item)
    session.flush()
    return item


@dataclass(frozen=True)
class Found:
    items: list[tuple[MediaItem, str, str]]  # (item, org code, uploader's name)
    total: int


def search(
    *,
    session: Session,
    under_path: str,
    name: str = "",
    since: date | None = None,
    until: date | None = None,
    tz: str = "Asia/Shanghai",
    page: int = 1,
    per_page: int = 40,
) -> Found:
    """Images of orgs under ``under_path``, newest first; ``name`` matches the original file name
    or the alt text; ``since``/``until`` are whole days in ``tz``."""
    where = [col(Org.path).startswith(under_path)]
    term = rules.search_term(name)
    if term:
        pattern = f"%{term.lower()}%"
        where.append(
            (func.lower(col(MediaItem.original_name)).like(pattern, escape="\\"))
            | (func.lower(col(MediaItem.alt)).like(pattern, escape="\\"))
        )
    zone = ZoneInfo(tz)
    if since is not None:
        where.append(col(MediaItem.created_at) >= datetime.combine(since, time(), tzinfo=zone))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time(), tzinfo=zone)
        where.append(col(MediaItem.created_at) < end)
    base = select(MediaItem, Org.code, User.display_name, User.username).join(
        Org, col(Org.id) == col(MediaItem.org_id)
    )
    base = base.outerjoin(User, col(User.id) == col(MediaItem.uploaded_by)).where(*where)
    total = session.exec(
        select(func.count())
        .select_from(MediaItem)
        .join(Org, col(Org.id) == col(MediaItem.org_id))
        .where(*where)
    ).one()
    rows = session.exec(
        base.order_by(col(MediaItem.created_at).desc(), col(MediaItem.id).desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Found([(item, code, shown or login or "") for item, code, shown, login in rows], total)


def public(item: MediaItem, org_code: str = "", uploader: str = "") -> MediaPublic:
    return MediaPublic(
        id=item.id or 0,
        path=item.path,
        url=f"/media/{item.path}",
        org_code=org_code,
        original_name=item.original_name,
        content_type=item.content_type,
        size=item.size,
        width=item.width,
        height=item.height,
        alt=item.alt,
        uploaded_by=uploader,
        created_at=item.created_at,
    )


def by_path(session: Session, paths: Iterable[str]) -> dict[str, MediaItem]:
    wanted = list(dict.fromkeys(p for p in paths if p))
    if not wanted:
        return {}
    found = session.exec(select(MediaItem).where(col(MediaItem.path).in_(wanted))).all()
    return {item.path: item for item in found}


@dataclass(frozen=True)
class Library:
    """What a post's rendering takes from the library: alt text by path, the default cover."""

    alts: dict[str, str]
    default_cover: str = ""
    default_cover_alt: str = ""


def library_for(session: Session, org: Org, paths: Iterable[str]) -> Library:
    cover = org.default_cover or ""
    items = by_path(session, [*paths, cover])
    alts = {path: item.alt for path, item in items.items() if item.alt}
    return Library(alts, cover, alts.get(cover, ""))
