"""``govhub archive --year YYYY``: a year's published posts as a ZIP for the archives office (档案室).

The ZIP holds, under ``govhub-archive-YYYY/``::

    index.json / index.html           every record of the year, in the order it became public
    posts/000042.json / .html         one post: versions, approvals, deliveries (where each copy
                                      landed), corrections, withdrawal and its audit history

JSON for systems, HTML for people: self-contained pages (inline style, no script, no external
asset) that open from the unpacked folder. Entries are written in a fixed order with fixed
timestamps, so the same data and export time give the same bytes.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
from sqlmodel import Session, col, select

from hub import platforms
from hub.accounts.models import Account
from hub.auditlog.models import AuditEntry
from hub.delivery.models import Attempt, Delivery
from hub.orgs.models import Org
from hub.posts.models import Approval, Post, PostVersion
from hub.records import rules
from hub.users.models import User

CHUNK = 500  # ids per IN (...): well under every database's bound-parameter limit
Row = TypeVar("Row")


@dataclass(frozen=True)
class Archived:
    path: Path
    year: int
    posts: int
    deliveries: int


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


def first_publications(*, session: Session, year: int, tz: ZoneInfo) -> dict[int, datetime]:
    """Post id -> when its first copy became public, for the posts that belong to ``year``."""
    start, end = rules.year_bounds(year, tz)
    first: dict[int, datetime] = {}
    rows = session.exec(
        select(Delivery.post_id, Delivery.published_at).where(
            col(Delivery.published_at).is_not(None), col(Delivery.published_at) < end
        )
    ).all()
    for post_id, published_at in rows:
        if published_at is not None and (post_id not in first or published_at < first[post_id]):
            first[post_id] = published_at
    return {p: at for p, at in first.items() if at >= start}


def _by_post(session: Session, model: type[Row], column: Any, ids: list[int]) -> list[Row]:
    found: list[Row] = []
    for chunk in _chunks(ids):
        found += session.exec(select(model).where(col(column).in_(chunk))).all()
    return found


def _person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"username": user.username, "display_name": user.display_name or user.username}


def _org(org: Org | None) -> dict[str, str] | None:
    return None if org is None else {"code": org.code, "name": org.name}


def collect(*, session: Session, year: int, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Every record of ``year`` as plain data, in the order the posts became public."""
    first = first_publications(session=session, year=year, tz=tz)
    ids = sorted(first, key=lambda p: rules.record_order(first[p], p))
    posts = {p.id: p for p in _by_post(session, Post, Post.id, ids)}
    versions: dict[int, list[PostVersion]] = defaultdict(list)
    for version in _by_post(session, PostVersion, PostVersion.post_id, ids):
        versions[version.post_id].append(version)
    approvals: dict[int, list[Approval]] = defaultdict(list)
    for approval in _by_post(session, Approval, Approval.post_id, ids):
        approvals[approval.post_id].append(approval)
    deliveries: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in _by_post(session, Delivery, Delivery.post_id, ids):
        deliveries[delivery.post_id].append(delivery)
    delivery_ids = sorted(d.id for ds in deliveries.values() for d in ds if d.id is not None)
    withdrawn_at: dict[int, datetime] = {}
    for attempt in _by_post(session, Attempt, Attempt.delivery_id, delivery_ids):
        if attempt.action == "withdraw" and attempt.outcome == "withdrawn":
            withdrawn_at[attempt.delivery_id] = max(
                attempt.at, withdrawn_at.get(attempt.delivery_id, attempt.at)
            )
    history: dict[int, list[AuditEntry]] = defaultdict(list)
    for chunk in _chunks(ids):
        for entry in session.exec(
            select(AuditEntry).where(
                AuditEntry.object_type == "post",
                col(AuditEntry.object_id).in_([str(i) for i in chunk]),
            )
        ).all():
            history[int(entry.object_id)].append(entry)
    users = {u.id: u for u in session.exec(select(User)).all()}
    orgs = {o.id: o for o in session.exec(select(Org)).all()}
    accounts = {a.id: a for a in session.exec(select(Account)).all()}

    def at(value: datetime | None) -> str | None:
        return rules.local(value, tz)

    records = []
    for post_id in ids:
        post = posts[post_id]
        own_versions = sorted(versions[post_id], key=lambda v: v.version)
        own_history = sorted(history[post_id], key=lambda e: (e.at, e.id or 0))
        withdrawals = [e for e in own_history if e.action == "post.withdraw"]
        copies = []
        for d in sorted(deliveries[post_id], key=lambda d: d.id or 0):
            account = accounts.get(d.account_id)
            copies.append(
                {
                    "id": d.id,
                    "version": d.version,
                    "platform": account.platform.value if account else "",
                    "platform_label": platforms.label(account.platform.value) if account else "",
                    "account": {
                        "id": d.account_id,
                        "name": account.name if account else "",
                        "handle": account.handle if account else "",
                        "org": _org(orgs.get(account.org_id)) if account else None,
                    },
                    "status": d.status.value,
                    "status_label": rules.DELIVERY_STATUS.get(d.status.value, d.status.value),
                    "mode": d.mode,
                    "remote_id": d.remote_id,
                    "remote_url": d.remote_url,
                    "published_at": at(d.published_at),
                    "withdrawn_at": at(withdrawn_at.get(d.id or 0)),
                }
            )
        current = own_versions[-1] if own_versions else None
        records.append(
            {
                "id": post_id,
                "title": current.title if current else post.title,
                "org": _org(orgs.get(post.org_id)),
                "author": _person(users.get(post.author_id)),
                "status": post.status.value,
                "status_label": rules.POST_STATUS.get(post.status.value, post.status.value),
                "urgency": post.urgency.value,
                "created_at": at(post.created_at),
                "first_published_at": at(first[post_id]),
                "current_version": post.current_version,
                "approved_version": post.approved_version,
                "versions": [
                    {
                        "version": v.version,
                        "title": v.title,
                        "summary": v.summary,
                        "body": v.body,
                        "images": [i.get("path", "") for i in v.images],
                        "link": v.link,
                        "correction_note": v.correction_note,
                        "content_hash": v.content_hash,
                        "author": _person(users.get(v.author_id)),
                        "created_at": at(v.created_at),
                    }
                    for v in own_versions
                ],
                "approvals": [
                    {
                        "version": a.version,
                        "kind": a.kind.value,
                        "kind_label": rules.APPROVAL_KIND.get(a.kind.value, a.kind.value),
                        "level": a.level,  # the review-chain level (三审三校), null without one
                        "by": _person(users.get(a.reviewer_id)),
                        "org": _org(orgs.get(a.org_id)),
                        "comment": a.comment,
                        "at": at(a.at),
                    }
                    for a in sorted(approvals[post_id], key=lambda a: (a.at, a.id or 0))
                ],
                "deliveries": copies,
                "corrections": [
                    {
                        "version": v.version,
                        "note": v.correction_note,
                        "by": _person(users.get(v.author_id)),
                        "at": at(v.created_at),
                    }
                    for v in own_versions
                    if v.correction_note
                ],
                "withdrawal": None
                if post.status.value != "withdrawn"
                else {
                    "reason": post.reason,
                    "by": {"username": withdrawals[-1].actor_name} if withdrawals else None,
                    "at": at(withdrawals[-1].at) if withdrawals else None,
                },
                "history": [
                    {
                        "at": at(e.at),
                        "actor": e.actor_name,
                        "action": e.action,
                        "summary": e.summary,
                    }
                    for e in own_history
                ],
            }
        )
    return records


def _templates() -> jinja2.Environment:
    from connectors.markup import TEMPLATES_DIR

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(TEMPLATES_DIR) / "records")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["readable"] = rules.readable
    return environment


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def landed(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Each account the post reached, once (a corrected post has a copy per version there)."""
    places: dict[int, dict[str, Any]] = {}
    for copy in record["deliveries"]:
        if not copy["published_at"]:
            continue
        place = places.setdefault(
            copy["account"]["id"],
            {
                "platform": copy["platform"],
                "platform_label": copy["platform_label"],
                "account": copy["account"]["name"],
                "withdrawn": True,
            },
        )
        place["withdrawn"] = place["withdrawn"] and copy["status"] == "withdrawn"
    return list(places.values())


def render(
    *, records: list[dict[str, Any]], year: int, timezone: str, exported_at: str, hub_version: str
) -> dict[str, bytes]:
    """Member name -> content of the archive, names in the order they are written."""
    root = rules.ROOT.format(year=year)
    pages = _templates()
    index = {
        "year": year,
        "timezone": timezone,
        "exported_at": exported_at,
        "hub_version": hub_version,
        "count": len(records),
        "rule": "posts whose first copy became public in this year (GOVHUB_TIMEZONE)",
        "posts": [
            {
                "id": r["id"],
                "title": r["title"],
                "org": r["org"],
                "status": r["status"],
                "first_published_at": r["first_published_at"],
                "landed": landed(r),
                "json": f"{rules.post_stem(r['id'])}.json",
                "html": f"{rules.post_stem(r['id'])}.html",
            }
            for r in records
        ],
    }
    context = {"year": year, "timezone": timezone, "exported_at": exported_at}
    members = {
        f"{root}/index.json": _json(index),
        f"{root}/index.html": pages.get_template("index.html")
        .render(index=index, labels=rules.POST_STATUS, stem=rules.post_stem, **context)
        .encode(),
    }
    for record in records:
        stem = rules.post_stem(record["id"])
        members[f"{root}/{stem}.json"] = _json(record)
        members[f"{root}/{stem}.html"] = (
            pages.get_template("post.html").render(post=record, **context).encode()
        )
    return members


def write_zip(members: dict[str, bytes], target: Path, exported: datetime) -> None:
    """Write ``members`` in order, every entry stamped with the export time (reproducible)."""
    stamp = exported.timetuple()[:6]
    partial = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def archive_year(
    *,
    session: Session,
    year: int,
    tz: ZoneInfo,
    timezone: str,
    now: datetime,
    target: Path,
    hub_version: str,
) -> Archived:
    records = collect(session=session, year=year, tz=tz)
    exported = now.astimezone(tz)
    members = render(
        records=records,
        year=year,
        timezone=timezone,
        exported_at=exported.isoformat(timespec="seconds"),
        hub_version=hub_version,
    )
    write_zip(members, target, exported)
    return Archived(
        path=target,
        year=year,
        posts=len(records),
        deliveries=sum(len(r["deliveries"]) for r in records),
    )
