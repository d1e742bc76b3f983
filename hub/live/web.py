"""HTTP for micro-live: the JSON API, the public page, its event stream, the editor console.

``/live/{slug}/events`` is a hand-written streaming response (no per-reader task group, no
per-reader timer): a reader is one bounded queue filled by the process's broadcaster plus one
small task waiting for the client to go away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import Session
from starlette.types import Receive, Scope, Send

from hub.config import get_settings
from hub.db import get_engine
from hub.errors import Forbidden, HubError, NotFound
from hub.live import rules, service, views
from hub.live.broadcast import Broadcaster, Message, Reader, server_draining
from hub.live.models import (
    EntryCreate,
    EntryDelete,
    EntryUpdate,
    LiveSession,
    LiveSessionCreate,
    LiveSessionPublic,
    LiveSessionUpdate,
    LiveStatus,
)
from hub.posts.models import Post
from hub.sqltypes import MAX_INT, Count, Id, utcnow
from hub.users.service import actor_of
from hub.users.who import Who
from hub.web.deps import Principal, PrincipalDep, SessionDep, WhoDep, client_ip
from hub.web.hardening import content_security_policy
from hub.web.pages import page_of, page_user, refuse, render, to_login

api = APIRouter(prefix="/api/v1/live-sessions", tags=["live"])
pages = APIRouter(include_in_schema=False)


# -- the process's broadcaster --------------------------------------------------------------------


def _load_events(live_id: int, after: int, upto: int) -> list[Message]:
    with Session(get_engine()) as session:
        return service.events_between(session=session, live_id=live_id, after=after, upto=upto)


def _load_last_id(live_id: int) -> int:
    with Session(get_engine()) as session:
        live = session.get(LiveSession, live_id)
        return live.last_event_id if live else 0


def _load_heads(live_ids: list[int]) -> dict[int, int]:
    with Session(get_engine()) as session:
        return service.event_heads(session=session, live_ids=live_ids)


def broadcaster_of(app: Any) -> Broadcaster:
    found: Broadcaster = app.state.live_broadcaster
    return found


def install(app: FastAPI) -> None:
    """Mount the routers and give the app one broadcaster, stopped with the app."""
    settings = get_settings()
    app.state.live_broadcaster = Broadcaster(
        redis_url=settings.redis_url,
        load_events=_load_events,
        load_last_id=_load_last_id,
        load_heads=_load_heads,
        poll_seconds=settings.live_poll_seconds,
        trace=os.environ.get("GOVHUB_LIVE_TRACE") == "1",
        freeze_gc=os.environ.get("GOVHUB_GC_FREEZE") == "1",  # set by `hub serve`, not tests
        draining=server_draining,  # SIGTERM ends the streams, so `govhub serve` can stop
    )
    app.include_router(api)
    app.include_router(views.router)  # /live and /live/new before /live/{slug}
    app.include_router(pages)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        async with inner(owner) as state:
            try:
                yield state
            finally:
                await broadcaster_of(app).stop()

    app.router.lifespan_context = lifespan


def _publish(request: Request, messages: list[Message]) -> None:
    broadcaster = broadcaster_of(request.app)
    for message in messages:
        broadcaster.publish(message)


# -- JSON API -------------------------------------------------------------------------------------


def _readable(session: Session, principal: Principal, live: LiveSession) -> None:
    from hub.orgs import service as orgs
    from hub.users.rules import Action

    org = orgs.get(session=session, org_id=live.org_id)
    if not (principal.allows(Action.live_run, org) or principal.allows(Action.post_read, org)):
        raise NotFound("微直播 %(live_id)s 不存在", live_id=live.id)


@api.post("", status_code=201, response_model=LiveSessionPublic)
def create_session(data: LiveSessionCreate, who: WhoDep, session: SessionDep) -> LiveSessionPublic:
    live = service.create_session(session=session, who=who, data=data, now=utcnow())
    session.commit()
    return service.to_public(live)


@api.get("/{live_id}", response_model=LiveSessionPublic)
def get_session(live_id: Id, principal: PrincipalDep, session: SessionDep) -> LiveSessionPublic:
    live = service.get(session=session, live_id=live_id)
    _readable(session, principal, live)
    return service.to_public(live)


@api.patch("/{live_id}", response_model=LiveSessionPublic)
def update_session(
    live_id: Id,
    data: LiveSessionUpdate,
    who: WhoDep,
    session: SessionDep,
    request: Request,
) -> LiveSessionPublic:
    """The kill switch: ``poll_interval_seconds`` reaches every polling reader."""
    live = service.get(session=session, live_id=live_id)
    messages: list[Message] = []
    if data.approval_required is not None:
        service.require_run(session, who, live)
        live.approval_required = data.approval_required
    if data.approver_ids is not None or data.plan is not None:
        service.configure(
            session=session, who=who, live=live, approver_ids=data.approver_ids, plan=data.plan
        )
    if data.poll_interval_seconds is not None:
        messages = service.set_poll_interval(
            session=session, who=who, live=live, seconds=data.poll_interval_seconds, now=utcnow()
        )
    session.commit()
    _publish(request, messages)
    return service.to_public(live)


@api.post("/{live_id}/start", response_model=LiveSessionPublic)
def start_session(
    live_id: Id, who: WhoDep, session: SessionDep, request: Request
) -> LiveSessionPublic:
    live = service.get(session=session, live_id=live_id)
    messages = service.start(session=session, who=who, live=live, now=utcnow())
    session.commit()
    _publish(request, messages)
    return service.to_public(live)


@api.post("/{live_id}/end")
def end_session(live_id: Id, who: WhoDep, session: SessionDep, request: Request) -> dict[str, Any]:
    live = service.get(session=session, live_id=live_id)
    messages, summary = service.end(session=session, who=who, live=live, now=utcnow())
    session.commit()
    _publish(request, messages)
    out = service.to_public(live).model_dump(mode="json")
    out["summary_post"] = (
        {"id": summary.id, "status": summary.status.value, "reason": summary.reason}
        if summary
        else None
    )
    return out


@api.post("/{live_id}/entries", status_code=201)
def add_entry(
    live_id: Id, data: EntryCreate, who: WhoDep, session: SessionDep, request: Request
) -> dict[str, Any]:
    live = service.get(session=session, live_id=live_id)
    entry, messages = service.add_entry(
        session=session, who=who, live=live, data=data, now=utcnow()
    )
    session.commit()
    _publish(request, messages)
    out = service.entry_data(entry, who.user.display_name or who.user.username)
    # proofreading warnings of this entry: for the console that wrote it, never for readers
    out["proofread"] = [h for m in messages if m["type"] == "proofread" for h in m["data"]["hits"]]
    return out


@api.patch("/{live_id}/entries/{seq}")
def update_entry(
    live_id: Id,
    seq: Count,
    data: EntryUpdate,
    who: WhoDep,
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    live = service.get(session=session, live_id=live_id)
    entry, messages = service.update_entry(
        session=session, who=who, live=live, seq=seq, data=data, now=utcnow()
    )
    session.commit()
    _publish(request, messages)
    return service.entry_public(session=session, entry=entry)


@api.delete("/{live_id}/entries/{seq}")
def delete_entry(
    live_id: Id,
    seq: Count,
    data: EntryDelete,
    who: WhoDep,
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    live = service.get(session=session, live_id=live_id)
    entry, messages = service.delete_entry(
        session=session,
        who=who,
        live=live,
        seq=seq,
        note=data.correction_note,
        now=utcnow(),
    )
    session.commit()
    _publish(request, messages)
    return service.entry_public(session=session, entry=entry)


@api.post("/{live_id}/entries/{seq}/approve")
def approve_entry(
    live_id: Id, seq: Count, who: WhoDep, session: SessionDep, request: Request
) -> dict[str, Any]:
    live = service.get(session=session, live_id=live_id)
    entry, messages = service.approve_entry(
        session=session, who=who, live=live, seq=seq, now=utcnow()
    )
    session.commit()
    _publish(request, messages)
    return service.entry_public(session=session, entry=entry)


@api.post("/{live_id}/plan/approve", response_model=LiveSessionPublic)
def approve_plan(
    live_id: Id, who: WhoDep, session: SessionDep, request: Request
) -> LiveSessionPublic:
    """A reviewer approves the session's plan before it starts (key events then need no
    per-event approval; docs/live.md)."""
    live = service.get(session=session, live_id=live_id)
    service.approve_plan(session=session, who=who, live=live, now=utcnow())
    session.commit()
    return service.to_public(live)


@api.post("/{live_id}/entries/{seq}/approve-key")
def approve_key_event(
    live_id: Id, seq: Count, who: WhoDep, session: SessionDep, request: Request
) -> dict[str, Any]:
    """One of the session's approvers releases a key event to social media."""
    live = service.get(session=session, live_id=live_id)
    entry, messages = service.approve_key_event(
        session=session, who=who, live=live, seq=seq, now=utcnow()
    )
    session.commit()
    _publish(request, messages)
    return {**service.entry_public(session=session, entry=entry), "key_state": "approved"}


@api.get("/{live_id}/key-pending")
def key_pending(
    live_id: Id, who: WhoDep, session: SessionDep, request: Request
) -> list[dict[str, Any]]:
    """Key events waiting for an approver before they may reach social media (the console)."""
    live = service.get(session=session, live_id=live_id)
    service.require_visible(session, who, live)
    if not service.may_view_console(session, who, live):
        service.require_run(session, who, live)
    return service.pending_key_events(session=session, live=live)


@api.get("/{live_id}/pending")
def pending_entries(live_id: Id, who: WhoDep, session: SessionDep) -> list[dict[str, Any]]:
    """Entries waiting for the chief editor (approval mode), for the console."""
    live = service.get(session=session, live_id=live_id)
    service.require_run(session, who, live)
    rows = service.entries_data(session=session, live=live, include_pending=True)
    return [e for e in rows if not e["approved"] and not e["deleted"]]


@api.get("/{live_id}/entries")
def entries(
    live_id: Id,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    after: int = Query(default=0, ge=0, le=MAX_INT),
) -> Response:
    """The published entries by id, for people of the session's reach (before the start too).

    The public polls ``/live/{slug}/entries`` instead (ids are sequential; slugs are not).
    """
    live = service.get(session=session, live_id=live_id)
    _readable(session, principal, live)
    return _entries_response(request, session, live, after, cache="private, no-store")


def _entries_response(
    request: Request, session: Session, live: LiveSession, after: int, cache: str
) -> Response:
    tag = hashlib.sha256(f"{live.id}:{live.last_event_id}:{after}".encode()).hexdigest()[:20]
    etag = f'W/"{tag}"'
    headers = {"ETag": etag, "Cache-Control": cache}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    rows = service.entries_data(session=session, live=live)
    body = {
        "id": live.id,
        "status": live.status.value,
        "poll_interval": live.poll_interval_seconds,
        "last_seq": live.last_seq,
        "last_event_id": live.last_event_id,
        "entries": [e for e in rows if e["seq"] > after],
        "corrected": [e for e in rows if e["seq"] <= after and e["edited_at"]],
    }
    return JSONResponse(body, headers=headers)


def _public_live(session: Session, slug: str) -> LiveSession:
    """The session by slug for the public: 404 until it has started (prepared text is internal)."""
    live = service.get_by_slug(session=session, slug=slug)
    if not rules.is_public(live.status):
        raise NotFound("微直播 %(slug)r 不存在", slug=slug)
    return live


@pages.get("/live/{slug}/entries")
def poll_entries(
    slug: str,
    request: Request,
    session: SessionDep,
    after: int = Query(default=0, ge=0, le=MAX_INT),
) -> Response:
    """Public and cacheable: entries after ``after``, those corrected since, the poll interval.

    Readers without Server-Sent Events poll this; ``poll_interval`` is the server's kill switch
    (raise it to shed load; 0 = stop polling). 404 while the session is only scheduled.
    """
    live = _public_live(session, slug)
    return _entries_response(request, session, live, after, cache="public, max-age=2")


# -- pages ----------------------------------------------------------------------------------------


def _json_ld(live: LiveSession, entries: list[dict[str, Any]], url: str) -> str:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "headline": live.title,
        "url": url,
        "coverageStartTime": (live.started_at or live.starts_at or live.created_at).isoformat(),
        "liveBlogUpdate": [
            {
                "@type": "BlogPosting",
                "headline": e["text"][:100] or "已删除",
                "articleBody": e["text"],
                "datePublished": e["created_at"],
                "url": f"{url}#e{e['seq']}",
                **({"dateModified": e["edited_at"]} if e["edited_at"] else {}),
            }
            for e in entries
        ],
    }
    if live.ended_at:
        data["coverageEndTime"] = live.ended_at.isoformat()
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _public_page(
    request: Request, session: Session, slug: str, *, embed: bool, key_only: bool
) -> Response:
    live = service.get_by_slug(session=session, slug=slug)
    started = rules.is_public(live.status)  # before the start: the announcement, no entries
    entries = service.entries_data(session=session, live=live) if started else []
    url = service.public_url(live)
    shown = [e for e in entries if e["key_event"]] if key_only else entries
    response = render(
        request,
        "pages/live.html",
        None,
        live=live,
        entries=list(reversed(shown)),
        pinned=[e for e in entries if e["pinned"] and not e["deleted"]],
        revisions=service.revisions(session=session, live=live) if started else {},
        json_ld=_json_ld(live, entries, url),
        url=url,
        embed=embed,
        key_only=key_only,
        over=rules.is_over(live.status),
    )
    if embed:  # the one page other sites may frame; everything else is frame-ancestors 'none'
        response.headers["Content-Security-Policy"] = content_security_policy(frame_ancestors="*")
    if rules.is_over(live.status):  # the archive is a static page
        response.headers["Cache-Control"] = "public, max-age=300"
    return response


@pages.get("/live/{slug}", response_class=HTMLResponse)
def live_page(request: Request, session: SessionDep, slug: str, key: Count = 0) -> Response:
    return _public_page(request, session, slug, embed=False, key_only=bool(key))


@pages.get("/live/{slug}/embed", response_class=HTMLResponse)
def live_embed(request: Request, session: SessionDep, slug: str, key: Count = 0) -> Response:
    return _public_page(request, session, slug, embed=True, key_only=bool(key))


@pages.get("/live/{slug}/console", response_class=HTMLResponse)
def live_console(request: Request, session: SessionDep, slug: str) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    who = Who(page.user, page.actor, client_ip(request))
    try:
        live = service.get_by_slug(session=session, slug=slug)
        org = service.require_visible(session, who, live)  # outside the reach: 404, as if missing
        if not service.may_view_console(session, who, live):
            service.require_run(session, who, live)
    except (NotFound, Forbidden) as exc:
        return refuse(request, page, exc.status_code)
    summary = session.get(Post, live.summary_post_id) if live.summary_post_id else None
    return render(
        request,
        "pages/live_console.html",
        page,
        live=live,
        entries=list(reversed(service.entries_data(session=session, live=live))),
        url=service.public_url(live),
        chief=service.is_chief(session, who, live),
        approver=page.user.id in live.approver_ids,
        plan_in_force=rules.plan_in_force(live.plan_approved_at, live.started_at),
        plan_approver=service.plan_approver_name(session, live),
        can_approve_plan=service.may_approve_plan(session, who, live),
        over=rules.is_over(live.status),
        labels=views.status_labels(),
        summary_url=views.summary_url(page, org, live),
        summary_title=summary.title if summary else "",
        summary_status=summary.status.value if summary else "",
        summary_reason=summary.reason if summary else "",
    )


@pages.post("/live/{slug}/presence", status_code=204)
def live_presence(slug: str, who: WhoDep, session: SessionDep, request: Request) -> Response:
    """A console's heartbeat (every 10 s): who else is editing, through the broadcast channel."""
    live = service.get_by_slug(session=session, slug=slug)
    service.require_run(session, who, live)
    user = who.user
    _publish(
        request,
        [
            {
                "session": live.id,
                "id": None,
                "type": "presence",
                "data": {"user_id": user.id, "name": user.display_name or user.username},
                "console": True,
            }
        ],
    )
    return Response(status_code=204)


# -- the event stream -----------------------------------------------------------------------------


STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """Replay from the event log, then frames from the broadcaster until the end or a drop.

    A plain ASGI callable: public readers get it straight from ``hub.web.app.HubApp`` (no
    middleware between it and the server's ``send``); console streams through
    :class:`EventStreamResponse`. Per message a reader wakes once, takes everything its queue
    holds (several frames become one ``send`` when it fell behind) and sends the shared bytes.
    """

    def __init__(
        self,
        broadcaster: Broadcaster,
        reader: Reader,
        replay: list[bytes],
        last_id: int,
        close_now: bool,
    ) -> None:
        self.broadcaster = broadcaster
        self.reader = reader
        self.replay = replay
        self.last_id = last_id
        self.close_now = close_now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reader = self.reader
        queue = reader.queue
        trace = self.broadcaster.trace

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            queue.close()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            first = b"retry: 3000\n\n" + b"".join(self.replay)
            self.replay = []
            await send({"type": "http.response.body", "body": first, "more_body": True})
            last_id = self.last_id
            done = self.close_now
            while not done:
                frames = await queue.take()
                body = b""
                sent: list[int] = []
                for event_id, kind, frame in frames:
                    if kind == "close":
                        done = True
                        break
                    if event_id is not None:
                        if event_id <= last_id:
                            continue
                        last_id = event_id
                        if trace is not None:
                            sent.append(event_id)
                    body = body + frame if body else frame  # one frame: the shared bytes as is
                    if kind == "final":
                        done = True
                        break
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                for event_id in sent:
                    assert trace is not None
                    trace.sent(reader.session_id, event_id)
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            self.broadcaster.unsubscribe(reader)
            watcher.cancel()


class EventStreamResponse(Response):
    """An :class:`EventStream` as the response of a route (console streams)."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(status_code=200)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream(scope, receive, send)


def _stream_start(slug: str, request: Request | None, console: bool) -> tuple[int, LiveStatus]:
    with Session(get_engine()) as session:
        live = service.get_by_slug(session=session, slug=slug)
        if not console and not rules.is_public(live.status):
            raise NotFound("微直播 %(slug)r 不存在", slug=slug)  # the page polls until the start
        if console:
            user = page_user(request, session) if request is not None else None
            if user is None:
                raise Forbidden("请先登录，再打开直播控制台")
            who = Who(user, actor_of(session=session, user=user))
            service.require_run(session, who, live)
        assert live.id is not None
        return live.id, live.status


async def open_stream(
    broadcaster: Broadcaster,
    slug: str,
    request: Request | None,
    given: str | None,
    console: bool,
) -> EventStream:
    """Subscribe, then read what the reader missed (``given``: its Last-Event-ID, if any)."""
    live_id, status = await asyncio.to_thread(_stream_start, slug, request, console)
    reader = await broadcaster.subscribe(live_id, console=console)
    try:
        current = await asyncio.to_thread(_load_last_id, live_id)
        after = rules.parse_last_event_id(given) if given is not None else current
        missed = await asyncio.to_thread(_load_events, live_id, after, current)
        replay = [rules.sse_frame(m["id"], m["type"], m["data"]) for m in missed]
        last_id = max(after, current)
        over = rules.is_over(status) or any(
            m["type"] == "status" and m["data"].get("status") in ("ended", "archived")
            for m in missed
        )
        if over:
            final = await asyncio.to_thread(_load_last_status, live_id)
            if not any(m["type"] == "status" for m in missed[-1:]):
                replay.append(rules.sse_frame(None, "status", final))
    except BaseException:
        broadcaster.unsubscribe(reader)
        raise
    return EventStream(broadcaster, reader, replay, last_id, close_now=over)


@pages.get("/live/{slug}/events")
async def live_events(
    slug: str,
    request: Request,
    last_event_id: str | None = Query(default=None),
    console: Count = 0,
) -> Response:
    """SSE: ``id`` is the event's number, so ``Last-Event-ID`` replays exactly what was missed.

    Without ``Last-Event-ID`` (header, or ``?last_event_id=`` from the server-rendered page)
    the stream starts from now. After the end it sends the final status event and closes.
    Public streams (no ``console``) are served by ``hub.web.app.HubApp`` before the
    middleware stack (:func:`public_stream_of`); this route serves console streams, which need the login session.
    """
    header = request.headers.get("last-event-id")
    given = header if header is not None else last_event_id
    broadcaster = broadcaster_of(request.app)
    stream = await open_stream(broadcaster, slug, request, given, bool(console))
    return EventStreamResponse(stream)


_EVENTS_PATH = re.compile(r"/live/([^/]+)/events")


def public_stream_of(scope: Scope) -> tuple[str, str | None] | None:
    """``(slug, Last-Event-ID)`` when ``scope`` asks for a public event stream, else None.

    ``hub.web.app.HubApp`` serves those before the middleware stack: every frame for every reader
    would otherwise pass through each middleware's ``send`` wrapper (sessions, body limit, error
    handling), and each open stream would keep that stack's frames, request objects and closures
    alive, which the garbage collector walks. A public stream needs none of it: no cookie, no
    request body. Console streams (``?console=`` other than 0) go through the stack to the route.
    """
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    match = _EVENTS_PATH.fullmatch(scope["path"])
    if match is None:
        return None
    query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    if query.get("console", "0") != "0":
        return None
    given = query.get("last_event_id")
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            given = value.decode("latin-1")
            break
    return match.group(1), given


async def open_public_stream(
    owner: Any, slug: str, given: str | None, scope: Scope, receive: Receive, send: Send
) -> EventStream | None:
    """The stream to run, or None when the request was answered with an error (404)."""
    try:
        return await open_stream(broadcaster_of(owner), slug, None, given, False)
    except HubError as exc:
        response = JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        await response(scope, receive, send)
        return None


def _load_last_status(live_id: int) -> dict[str, Any]:
    with Session(get_engine()) as session:
        live = session.get(LiveSession, live_id)
        if live is None:
            raise NotFound("微直播 %(live_id)s 不存在", live_id=live_id)
        return {"status": live.status.value, "poll_interval": live.poll_interval_seconds}
