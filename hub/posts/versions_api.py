"""A post's versions and the difference between two of them (for reviewers)."""

from __future__ import annotations

import difflib
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session, col, select

from hub.auditlog.models import AuditEntry
from hub.posts import service
from hub.posts.models import Approval, ApprovalKind, Post, PostVersion
from hub.sqltypes import Id
from hub.users.models import User
from hub.web.deps import SessionDep, WhoDep

router = APIRouter(prefix="/api/v1", tags=["posts"])


class VersionPublic(BaseModel):
    version: int
    title: str
    body: str
    summary: str
    images: list[str]
    correction_note: str
    author: str  # username
    author_name: str = ""  # display name (what people read)
    created_at: datetime
    approved: bool
    # submitted for review, approved, rejected or co-signed: a version a reviewer has seen
    reviewed: bool = False


def versions_of(session: Session, post: Post) -> list[VersionPublic]:
    decisions = session.exec(
        select(Approval.version, Approval.kind).where(Approval.post_id == post.id)
    ).all()
    approved = {v for v, kind in decisions if kind == ApprovalKind.approve}
    # every submission is in the audit log as "v<n>" (autosaves are versions too, but were
    # never put before a reviewer)
    submitted = {
        int(summary[1:])
        for summary in session.exec(
            select(AuditEntry.summary).where(
                AuditEntry.action == "post.submit",
                AuditEntry.object_type == "post",
                AuditEntry.object_id == str(post.id),
            )
        ).all()
        if summary[:1] == "v" and summary[1:].isdigit()
    }
    reviewed = approved | submitted | {v for v, _kind in decisions}
    rows = session.exec(
        select(PostVersion).where(PostVersion.post_id == post.id).order_by(col(PostVersion.version))
    ).all()
    names: dict[int, tuple[str, str]] = {}
    out = []
    for row in rows:
        if row.author_id not in names:
            author = session.get(User, row.author_id)
            names[row.author_id] = (
                (author.username, author.display_name or author.username) if author else ("", "")
            )
        out.append(
            VersionPublic(
                version=row.version,
                title=row.title,
                body=row.body,
                summary=row.summary,
                images=[i["path"] for i in row.images],
                correction_note=row.correction_note,
                author=names[row.author_id][0],
                author_name=names[row.author_id][1],
                created_at=row.created_at,
                approved=row.version in approved,
                reviewed=row.version in reviewed,
            )
        )
    return out


def baseline(versions: list[VersionPublic], current: int) -> VersionPublic | None:
    """What a reviewer compares against: the last approved version, else the last one put
    before a reviewer (submitted, rejected); None for a post never reviewed (its autosaves are
    not a baseline)."""
    earlier = [v for v in versions if v.version < current]
    approved = [v for v in earlier if v.approved]
    if approved:
        return approved[-1]
    reviewed = [v for v in earlier if v.reviewed]
    return reviewed[-1] if reviewed else None


def _lines(v: VersionPublic | None) -> list[str]:
    if v is None:
        return []
    return [f"# {v.title}", "", *([v.summary, ""] if v.summary else []), *v.body.splitlines()]


def diff_table(
    old: VersionPublic | None, new: VersionPublic, old_label: str, new_label: str
) -> str:
    """A side-by-side HTML table (difflib escapes the text it shows)."""
    return difflib.HtmlDiff(wrapcolumn=60).make_table(
        _lines(old), _lines(new), old_label, new_label, context=True, numlines=3
    )


@router.get(
    "/posts/{post_id}/versions",
    summary="Every version of a post (oldest first)",
    response_model=list[VersionPublic],
)
def list_versions(post_id: Id, who: WhoDep, session: SessionDep) -> list[VersionPublic]:
    post = service.get(session=session, post_id=post_id, who=who)
    return versions_of(session, post)
