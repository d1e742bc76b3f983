"""The 稿件 page: my posts and my org's (within reach), drafts included, searchable and filtered.

``/drafts`` is the same page with the draft filter. Each row links to the page its reader may
use: the editor to compose (a draft) or the board (a post that went out), everyone else to the
read-only review page.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from annotated_types import Le
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, func, or_, select

from hub.config import get_settings
from hub.orgs.models import Org
from hub.posts.models import Post, PostStatus, PostVersion, Urgency
from hub.users.models import User
from hub.users.rules import Action, scope_path
from hub.web.deps import SessionDep
from hub.web.pages import Page, page_of, query_day, refuse, render, to_login

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 30
# the draft filter: what an editor may still change (rejected and missed posts go back to draft)
DRAFTS = (PostStatus.draft, PostStatus.rejected, PostStatus.missed)
# where a post's copies are: the board
WENT_OUT = {
    PostStatus.scheduled,
    PostStatus.publishing,
    PostStatus.published,
    PostStatus.partly_failed,
    PostStatus.failed,
    PostStatus.withdrawn,
}


def link_for(page: Page, post: Post, org: Org) -> str:
    """The page this reader may open for a post (never a page that would answer 403)."""
    if post.status in WENT_OUT or post.status is PostStatus.approved:
        return f"/posts/{post.id}/board"
    if post.status in DRAFTS and page.may(Action.post_write, org):
        return f"/posts/{post.id}/edit"
    return f"/review/{post.id}"


def search_posts(
    *,
    session: Session,
    page: Page,
    q: str,
    status: str,
    urgency: str,
    mine: bool,
    since: date | None,
    until: date | None,
    page_no: int,
) -> tuple[list[tuple[Post, Org, str]], int]:
    """Posts within the reader's reach matching the filters, newest change first, and the total."""
    tz = get_settings().tz
    query = (
        select(Post, Org, PostVersion)
        .join(Org, col(Post.org_id) == col(Org.id))
        .join(
            PostVersion,
            (col(PostVersion.post_id) == col(Post.id))
            & (col(PostVersion.version) == col(Post.current_version)),
        )
        .where(col(Org.path).startswith(scope_path(page.actor, Action.post_read)))
    )
    if q:
        pattern = f"%{q}%"
        query = query.where(
            or_(col(PostVersion.title).ilike(pattern), col(PostVersion.body).ilike(pattern))
        )
    if status == "drafts":
        query = query.where(col(Post.status).in_(DRAFTS))
    elif status in PostStatus.__members__:
        query = query.where(Post.status == PostStatus(status))
    if urgency in Urgency.__members__:
        query = query.where(Post.urgency == Urgency(urgency))
    if mine:
        query = query.where(Post.author_id == page.user.id)
    if since is not None:
        query = query.where(col(Post.updated_at) >= datetime.combine(since, time(), tz))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time(), tz)
        query = query.where(col(Post.updated_at) < end)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Post.updated_at).desc(), col(Post.id).desc())
        .offset((page_no - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    authors: dict[int, str] = {}
    for post, _org, _v in rows:
        if post.author_id not in authors:
            author = session.get(User, post.author_id)
            authors[post.author_id] = (author.display_name or author.username) if author else ""
    return [(p, o, authors[p.author_id]) for p, o, _v in rows], int(total)


@router.get("/drafts")
def drafts() -> Response:
    return RedirectResponse("/posts?status=drafts&mine=1", status_code=303)


@router.get("/posts", response_class=HTMLResponse)
def posts_page(
    request: Request,
    session: SessionDep,
    q: str = "",
    status: str = "",
    urgency: str = "",
    mine: str = "",
    since: str = "",
    until: str = "",
    page_no: Annotated[int, Le(1_000_000)] = 1,
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.post_read):
        return refuse(request, page, 403)
    q = q.strip()[:200]
    since_day, until_day = query_day(since), query_day(until)
    page_no = max(page_no, 1)
    rows, total = search_posts(
        session=session,
        page=page,
        q=q,
        status=status,
        urgency=urgency,
        mine=mine == "1",
        since=since_day,
        until=until_day,
        page_no=page_no,
    )
    filters = {
        "q": q,
        "status": status,
        "urgency": urgency,
        "mine": "1" if mine == "1" else "",
        "since": since,
        "until": until,
    }
    return render(
        request,
        "pages/posts.html",
        page,
        rows=[(p, o, author, link_for(page, p, o)) for p, o, author in rows],
        total=total,
        page_no=page_no,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        statuses=[s.value for s in PostStatus],
        bad_dates=bool((since and since_day is None) or (until and until_day is None)),
    )
