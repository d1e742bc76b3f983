"""The editor's pages: compose and edit, the review queue and page, the calendar, delivery boards.

Pages read through the same services and the same rule (users.rules.may) as the JSON API; their
scripts (hub/static/js) write through the JSON API with the session's X-CSRF-Token.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlmodel import Session, col, func, or_, select

from hub.config import get_settings
from hub.delivery.api import deliveries_of
from hub.delivery.models import Delivery, DeliveryStatus
from hub.errors import Forbidden, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts import chains, service
from hub.posts.api import to_public
from hub.posts.models import Post, PostStatus
from hub.posts.versions_api import baseline, diff_table, versions_of
from hub.proofread import rules as proofread_rules
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, may, scope_path
from hub.users.who import Who
from hub.web.dashboard import review_queue
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import Page, page_of, refuse, render, to_login
from hub.web.posts_views import link_for

router = APIRouter(include_in_schema=False)

EDITABLE = {PostStatus.draft, PostStatus.rejected, PostStatus.missed}
MOVABLE = {PostStatus.draft, PostStatus.rejected, PostStatus.approved, PostStatus.scheduled}


def _who(page: Page, request: Request) -> Who:
    return Who(page.user, page.actor, client_ip(request))


def _load(
    request: Request, session: Session, page: Page, post_id: int, action: Action
) -> Post | Response:
    """The post, or the 403/404 page (an editor cannot open another county's post)."""
    try:
        return service.get(session=session, post_id=post_id, who=_who(page, request), action=action)
    except NotFound:
        return refuse(request, page, 404)
    except Forbidden:
        return refuse(request, page, 403)


def _post_json(session: Session, post: Post) -> dict[str, Any]:
    public = to_public(session, post, with_deliveries=False)
    version = service.version_of(session, post)
    data = public.model_dump(mode="json", exclude={"deliveries"})
    data["images"] = [i["path"] for i in version.images]
    data["overrides"] = version.overrides
    return data


# -- compose ------------------------------------------------------------------------------------


def _compose(request: Request, session: Session, page: Page, post: Post | None) -> Response:
    settings = get_settings()
    org = (post and orgs.get(session=session, org_id=post.org_id)) or page.org
    return render(
        request,
        "pages/compose.html",
        page,
        post=post,
        post_json=_post_json(session, post) if post else None,
        editable=post is None or post.status in EDITABLE,
        compose_config={
            "postId": post.id if post else None,
            "orgCode": org.code if org else "",
            "scopeCode": page.org.code if page.org else "",
            "timezone": settings.timezone,
            "publicBase": settings.public_base_url.rstrip("/"),
            "editable": post is None or post.status in EDITABLE,
            "wechatComments": (post.wechat_comments if post else None)
            or (org.wechat_comments if org else "closed"),
        },
    )


@router.get("/compose", response_class=HTMLResponse)
def compose(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.post_write):
        return refuse(request, page, 403, _("您的角色不能撰写稿件。"))
    return _compose(request, session, page, None)


@router.get("/posts/{post_id}/edit", response_class=HTMLResponse)
def edit(post_id: Id, request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    post = _load(request, session, page, post_id, Action.post_write)
    if isinstance(post, Response):
        return post
    return _compose(request, session, page, post)


# -- review -------------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_list(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    posts = review_queue(session=session, actor=page.actor)
    names = {p.org_id: orgs.get(session=session, org_id=p.org_id).name for p in posts}
    return render(
        request,
        "pages/review_list.html",
        page,
        posts=posts,
        org_names=names,
        level_names=chains.waiting_levels(session, posts),
    )


def _is_cosigner(session: Session, page: Page, post: Post) -> bool:
    return any(
        may(page.actor, Action.post_cosign, orgs.get(session=session, org_id=o).path)
        for o in post.cosign_org_ids
    )


def marked_segments(
    text: str, hits: list[proofread_rules.Hit]
) -> list[tuple[str, proofread_rules.Hit | None]]:
    """``text`` cut at the hits, for the template to mark (``<mark>``) without raw HTML."""
    out: list[tuple[str, proofread_rules.Hit | None]] = []
    at = 0
    for hit in sorted(hits, key=lambda h: h.start):
        if hit.start < at:
            continue
        out.append((text[at : hit.start], None))
        out.append((text[hit.start : hit.end], hit))
        at = hit.end
    out.append((text[at:], None))
    return out


@router.get("/review/{post_id}", response_class=HTMLResponse)
def review_page(post_id: Id, request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    found = session.get(Post, post_id)
    if found is not None and _is_cosigner(session, page, found):
        post: Post | Response = found
    else:
        post = _load(request, session, page, post_id, Action.post_read)
    if isinstance(post, Response):
        return post
    versions = versions_of(session, post)
    current = next(v for v in versions if v.version == post.current_version)
    base = baseline(versions, post.current_version)
    diff = diff_table(
        base,
        current,
        (
            _("第 %(n)s 版") % {"n": base.version}
            + (_("（已批准）") if base.approved else _("（上次送审）"))
        )
        if base
        else _("（无）"),
        _("第 %(n)s 版（待审）") % {"n": current.version},
    )
    org = orgs.get(session=session, org_id=post.org_id)
    public = to_public(session, post, with_deliveries=False)
    hits = service.proofread_post(session, post)
    body_hits = [h for h in hits if h.field == "body"]
    author = session.get(User, post.author_id)
    return render(
        request,
        "pages/review.html",
        page,
        proof_hits=hits,
        proof_warnings=proofread_rules.missing_acknowledgements(hits, ()),
        proof_blocking=proofread_rules.blocking(hits),
        proof_segments=marked_segments(current.body, body_hits),
        post=post,
        public=public,
        org_name=org.name,
        author_name=(author.display_name or author.username) if author else "",
        current=current,
        base=base,
        diff=Markup(diff),
        can_review=page.may(Action.post_review, org)
        and post.status is PostStatus.in_review
        and post.author_id != page.user.id,
        can_cosign=post.status is PostStatus.cosigning and _is_cosigner(session, page, post),
        approve_releases=chains.releases_next(session, post),
        config={
            "postId": post.id,
            "timezone": get_settings().timezone,
            "publicBase": get_settings().public_base_url.rstrip("/"),
        },
    )


# -- calendar -----------------------------------------------------------------------------------


@router.get("/calendar", response_class=HTMLResponse)
def calendar(
    request: Request,
    session: SessionDep,
    view: str = "week",
    org: str = "",
    day: str = "",
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    tz = get_settings().tz
    view = view if view in ("week", "month") else "week"
    try:
        anchor = date.fromisoformat(day) if day else utcnow().astimezone(tz).date()
    except ValueError:
        anchor = utcnow().astimezone(tz).date()
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        days = [first + timedelta(days=i) for i in range(7)]
        prev_day, next_day = first - timedelta(days=7), first + timedelta(days=7)
    else:
        month_start = anchor.replace(day=1)
        first = month_start - timedelta(days=month_start.weekday())
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        weeks = ((next_month - first).days + 6) // 7
        days = [first + timedelta(days=i) for i in range(weeks * 7)]
        prev_day = (month_start - timedelta(days=1)).replace(day=1)
        next_day = next_month
    start = datetime.combine(days[0], time(), tz)
    end = datetime.combine(days[-1] + timedelta(days=1), time(), tz)
    scope = scope_path(page.actor, Action.post_read)
    query = (
        select(Post, Org)
        .join(Org, col(Post.org_id) == col(Org.id))
        .where(
            col(Org.path).startswith(scope),
            or_(
                (col(Post.scheduled_at) >= start) & (col(Post.scheduled_at) < end),
                (col(Post.released_at) >= start) & (col(Post.released_at) < end),
            ),
            col(Post.status).not_in([PostStatus.withdrawn]),
        )
    )
    chosen: Org | None = None
    if org:
        try:
            chosen = orgs.get_by_code(session=session, code=org)
        except NotFound:
            chosen = None
        if chosen is not None:
            query = query.where(col(Org.path).startswith(chosen.path))
    by_day: dict[date, list[tuple[Post, Org, datetime]]] = {d: [] for d in days}
    for post, post_org in session.exec(query).all():
        when = post.scheduled_at or post.released_at
        if post.status in (PostStatus.published, PostStatus.partly_failed, PostStatus.publishing):
            when = post.released_at or when
        if when is None:
            continue
        local = when.astimezone(tz)
        if local.date() in by_day:
            by_day[local.date()].append((post, post_org, local))
    for items in by_day.values():
        items.sort(key=lambda item: item[2])
    # each post links to a page this reader may open (a supervisor: the read-only review page)
    links = {p.id: link_for(page, p, o) for items in by_day.values() for p, o, _when in items}
    org_choices = session.exec(
        select(Org)
        .where(col(Org.path).startswith(scope))
        .order_by(func.length(Org.path), col(Org.code))
        .limit(400)
    ).all()
    return render(
        request,
        "pages/calendar.html",
        page,
        view=view,
        days=days,
        anchor=anchor,
        by_day=by_day,
        links=links,
        today=utcnow().astimezone(tz).date(),
        prev_day=prev_day,
        next_day=next_day,
        org_code=chosen.code if chosen else "",
        org_choices=org_choices,
        movable={s.value for s in MOVABLE},
        can_write=page.may(Action.post_write),
        config={"timezone": get_settings().timezone},
    )


# -- deliveries ---------------------------------------------------------------------------------

BOARD_STATUSES = [
    PostStatus.scheduled,
    PostStatus.publishing,
    PostStatus.published,
    PostStatus.partly_failed,
    PostStatus.failed,
    PostStatus.withdrawn,
]


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    scope = scope_path(page.actor, Action.post_read)
    rows = session.exec(
        select(Post, Org)
        .join(Org, col(Post.org_id) == col(Org.id))
        .where(col(Org.path).startswith(scope), col(Post.status).in_(BOARD_STATUSES))
        .order_by(col(Post.updated_at).desc())
        .limit(60)
    ).all()
    ids = [p.id for p, _o in rows if p.id is not None]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for post_id, status, n in session.exec(
            select(Delivery.post_id, Delivery.status, func.count())
            .where(col(Delivery.post_id).in_(ids))
            .group_by(col(Delivery.post_id), col(Delivery.status))
        ).all():
            counts[post_id][DeliveryStatus(status).value] = n
    return render(
        request, "pages/deliveries.html", page, rows=_group_live(session, rows, counts), counts={}
    )


def _group_live(
    session: Session, rows: Sequence[tuple[Post, Org]], counts: dict[int, dict[str, int]]
) -> list[dict[str, Any]]:
    """One row per post, except a live session's key events: the console sends them as one post
    per account and batch, each titled with the session's name, so they are one row per
    session (their tallies added up) that opens the console."""
    from hub.live.models import LiveFanout, LiveSession

    ids = [p.id for p, _o in rows if p.id is not None]
    session_of: dict[int, LiveSession] = {}
    if ids:
        for post_id, found in session.exec(
            select(LiveFanout.post_id, LiveSession)
            .join(LiveSession, col(LiveSession.id) == col(LiveFanout.session_id))
            .where(col(LiveFanout.post_id).in_(ids))
        ).all():
            session_of[post_id] = found
    out: list[dict[str, Any]] = []
    grouped: dict[int, dict[str, Any]] = {}
    for post, org in rows:
        pid = post.id or 0
        when = post.released_at or post.scheduled_at or post.updated_at
        live = session_of.get(pid)
        if live is None:
            out.append(
                {
                    "post": post,
                    "org": org,
                    "href": f"/posts/{pid}/board",
                    "live": None,
                    "posts": 1,
                    "status": post.status.value,
                    "counts": counts.get(pid, {}),
                    "at": when,
                }
            )
            continue
        row = grouped.get(live.id or 0)
        if row is None:
            row = {
                "post": post,
                "org": org,
                "href": f"/live/{live.slug}/console",
                "live": live,
                "posts": 0,
                "status": post.status.value,
                "counts": {},
                "at": when,
            }
            grouped[live.id or 0] = row
            out.append(row)
        row["posts"] += 1
        for status, n in counts.get(pid, {}).items():
            row["counts"][status] = row["counts"].get(status, 0) + n
    return out


@router.get("/posts/{post_id}/board", response_class=HTMLResponse)
def board(post_id: Id, request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    post = _load(request, session, page, post_id, Action.post_read)
    if isinstance(post, Response):
        return post
    org = orgs.get(session=session, org_id=post.org_id)
    rows = deliveries_of(session, [post_id]).get(post_id, [])
    from hub.reach.service import post_reach
    from hub.web.i18n import current_locale

    return render(
        request,
        "pages/board.html",
        page,
        post=post,
        org_name=org.name,
        rows=rows,
        reach=post_reach(session=session, post_id=post_id, locale=current_locale()),
        review=chains.describe(session, post),
        can_manage=page.may(Action.delivery_manage, org),
        can_edit=page.may(Action.post_write, org),
        config={
            "postId": post_id,
            "timezone": get_settings().timezone,
            "canManage": page.may(Action.delivery_manage, org),
        },
    )
