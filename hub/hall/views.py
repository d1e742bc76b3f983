"""The public release hall (发布厅): pages and feeds anyone may read, no login.

``/hall`` (the stream, with filters and search), ``/hall/orgs/{code}`` (one org and everything
below it), ``/hall/posts/{post_id}`` (a post: Weibo's link target), ``/hall/entries/{id}`` (one
entry), and Atom / JSON Feed for the whole hall and per org. Most answers come from
:mod:`hub.hall.cache` (rendered here once per hall change). What reaches these routes carries
the hall's ``Cache-Control`` and an ETag; a matching ``If-None-Match`` gets 304. Lists and feeds
validate against :func:`hub.hall.service.fingerprint` (no rendering for a 304); single pages
against a hash of their body. Server-rendered, no scripts, no external assets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from html import unescape
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from hub.audit.rules import PLATFORM_ZH
from hub.config import Settings
from hub.hall import feeds, service
from hub.hall.cache import cache_control
from hub.hall.rules import etag_matches
from hub.hall.service import HallQuery, Withdrawn, hall_platforms
from hub.orgs.models import Org
from hub.sqltypes import utcnow
from hub.web.deps import SessionDep, SettingsDep
from hub.web.templating import get_templates

router = APIRouter(include_in_schema=False)

HALL_NAME = "政务新媒体发布厅"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"


# -- caching -------------------------------------------------------------------------------------


def _cached(
    request: Request, settings: Settings, etag: str, build: Callable[[], Response]
) -> Response:
    tag = f'"{etag}"'
    headers = {"ETag": tag, "Cache-Control": cache_control(settings)}
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    response = build()
    response.headers.update(headers)
    return response


def _body_cached(request: Request, settings: Settings, response: Response) -> Response:
    """Validate a single page by a hash of its body (its copies' links change after publish)."""
    digest = hashlib.sha256(bytes(response.body)).hexdigest()[:32]
    return _cached(request, settings, digest, lambda: response)


# -- query parsing -------------------------------------------------------------------------------


def _query(request: Request, org: str = "") -> HallQuery:
    params = request.query_params
    page_raw = params.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and len(page_raw) < 7 else 1
    platform = params.get("platform", "")
    return HallQuery(
        org=org or params.get("org", "").strip()[:32],
        platform=platform if platform in hall_platforms() else "",
        q=params.get("q", "").strip()[:200],
        page=page,
    )


def _page_link(path: str, query: HallQuery, page: int, *, with_org: bool) -> str:
    params = {
        "org": query.org if with_org else "",
        "platform": query.platform,
        "q": query.q,
        "page": str(page) if page > 1 else "",
    }
    encoded = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{encoded}" if encoded else path


def _context(request: Request, settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        "hall_name": HALL_NAME,
        "base_url": settings.public_base_url.rstrip("/"),
        "platforms": [(p, PLATFORM_ZH.get(p, p)) for p in hall_platforms()],
        **extra,
    }


def _org_or_none(session: Session, code: str) -> Org | None:
    return session.exec(select(Org).where(Org.code == code)).first()


def _not_found(request: Request, settings: Settings, message: str) -> Response:
    return get_templates().TemplateResponse(
        request,
        "pages/hall_missing.html",
        _context(request, settings, message=message),
        status_code=404,
    )


# -- the stream ----------------------------------------------------------------------------------


def _stream(
    request: Request, session: Session, settings: Settings, query: HallQuery, org: Org | None
) -> Response:
    path = f"/hall/orgs/{org.code}" if org is not None else "/hall"

    def build() -> Response:
        page = service.list_entries(session=session, query=query)
        children: list[Org] = []
        parent: Org | None = None
        if org is not None:
            children = list(
                session.exec(
                    select(Org).where(Org.parent_id == org.id).order_by(col(Org.code))
                ).all()
            )
            parent = session.get(Org, org.parent_id) if org.parent_id else None
        link = _page_link(path, query, 1, with_org=org is None)
        return get_templates().TemplateResponse(
            request,
            "pages/hall.html",
            _context(
                request,
                settings,
                page=page,
                query=query,
                org=org,
                parent=parent,
                children=children,
                org_choices=service.org_choices(session=session) if org is None else [],
                path=path,
                canonical=link,
                prev_link=_page_link(path, query, page.page - 1, with_org=org is None)
                if page.page > 1
                else "",
                next_link=_page_link(path, query, page.page + 1, with_org=org is None)
                if page.page < page.pages
                else "",
                feed_base=f"{path}/feed" if org is not None else "/hall/feed",
            ),
        )

    etag = service.fingerprint(session=session, query=query, kind="html")
    return _cached(request, settings, etag, build)


@router.get("/hall")
def hall(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _stream(request, session, settings, _query(request), None)


@router.get("/hall/orgs/{code}")
def org_hall(code: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    org = _org_or_none(session, code)
    if org is None:
        return _not_found(request, settings, "未找到该机构")
    return _stream(request, session, settings, _query(request, org.code), org)


# -- one post, one entry -------------------------------------------------------------------------


def _withdrawn(request: Request, settings: Settings, withdrawn: Withdrawn) -> Response:
    response = get_templates().TemplateResponse(
        request,
        "pages/hall_withdrawn.html",
        _context(request, settings, withdrawn=withdrawn),
        status_code=410,
    )
    return _body_cached(request, settings, response)


_IMG_SRC = re.compile(r"<img\b[^>]*?\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE)
SHARE_IMAGE = "/static/img/hall-share.png"  # the hall's own picture when a post has none


def _share_image(base: str, html: str) -> str:
    """The absolute URL of the post's first picture (og:image), else the hall's picture."""
    found = _IMG_SRC.search(html)
    src = unescape(found.group(1)) if found else SHARE_IMAGE
    if src.startswith(("https://", "http://")):
        return src
    if src.startswith("//"):
        return f"{urlsplit(base).scheme or 'https'}:{src}"
    return urljoin(f"{base}/hall/posts/", src)


@router.get("/hall/posts/{post_id}")
def post(post_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    found = (
        service.post_page(session=session, post_id=int(post_id))
        if post_id.isdigit() and len(post_id) < 12
        else None
    )
    if found is None:
        return _not_found(request, settings, "未找到该稿件")
    if isinstance(found, Withdrawn):
        return _withdrawn(request, settings, found)
    base = settings.public_base_url.rstrip("/")
    response = get_templates().TemplateResponse(
        request,
        "pages/hall_post.html",
        _context(
            request,
            settings,
            post=found,
            og_url=f"{base}/hall/posts/{post_id}",
            og_image=_share_image(base, str(found.html)),
        ),
    )
    return _body_cached(request, settings, response)


@router.get("/hall/entries/{entry_id}")
def entry(entry_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    found = (
        service.entry_page(session=session, entry_id=int(entry_id))
        if entry_id.isdigit() and len(entry_id) < 12
        else None
    )
    if found is None:
        return _not_found(request, settings, "未找到该条目")
    if isinstance(found, Withdrawn):
        return _withdrawn(request, settings, found)
    base = settings.public_base_url.rstrip("/")
    response = get_templates().TemplateResponse(
        request,
        "pages/hall_entry.html",
        _context(request, settings, item=found.item, og_url=f"{base}/hall/entries/{entry_id}"),
    )
    return _body_cached(request, settings, response)


# -- feeds ---------------------------------------------------------------------------------------


def _feed(
    request: Request,
    session: Session,
    settings: Settings,
    org: Org | None,
    kind: str,
) -> Response:
    query = HallQuery(
        org=org.code if org else "",
        platform=_query(request).platform,
        per_page=feeds.FEED_SIZE,
    )

    def build() -> Response:
        items = service.list_entries(session=session, query=query).items
        base = settings.public_base_url.rstrip("/")
        path = f"/hall/orgs/{org.code}" if org is not None else "/hall"
        suffix = f"?platform={query.platform}" if query.platform else ""
        updated: datetime = max((i.published_at for i in items), default=utcnow())
        info = feeds.FeedInfo(
            title=f"{org.name} · {HALL_NAME}" if org is not None else HALL_NAME,
            feed_url=f"{base}{path}/feed.{kind}{suffix}",
            home_url=f"{base}{path}{suffix}",
            base_url=base,
            updated=updated,
        )
        if kind == "atom":
            return Response(feeds.atom_feed(info, items), media_type=ATOM_TYPE)
        return Response(feeds.json_feed(info, items), media_type=JSON_FEED_TYPE)

    etag = service.fingerprint(session=session, query=query, kind=kind)
    return _cached(request, settings, etag, build)


@router.get("/hall/feed.atom")
def hall_atom(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _feed(request, session, settings, None, "atom")


@router.get("/hall/feed.json")
def hall_json(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _feed(request, session, settings, None, "json")


@router.get("/hall/orgs/{code}/feed.atom")
def org_atom(code: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    org = _org_or_none(session, code)
    if org is None:
        return _not_found(request, settings, "未找到该机构")
    return _feed(request, session, settings, org, "atom")


@router.get("/hall/orgs/{code}/feed.json")
def org_json(code: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    org = _org_or_none(session, code)
    if org is None:
        return _not_found(request, settings, "未找到该机构")
    return _feed(request, session, settings, org, "json")
