"""create_app(): mounts routers, static files, error handlers and middleware."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import Settings, get_settings
from hub.errors import HubError
from hub.web import i18n
from hub.web.hardening import NulGuard, OriginGuard, SecurityHeaders

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # path -> its own limit (image uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        if limit != self.max_bytes:
            await BodySizeLimit(self.app, limit)(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app says now is dropped
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        limit_mb = self.max_bytes / (1024 * 1024)
        response = JSONResponse(
            {"detail": f"the request is too large (limit {limit_mb:.0f} MB)"}, status_code=413
        )
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts)


def _readable(error: dict[str, Any]) -> dict[str, str]:
    field = _field_of(tuple(error.get("loc", ())))
    kind = error.get("type", "")
    if kind == "json_invalid":
        return {"field": "", "message": "the request body is not valid JSON"}
    if kind == "missing":
        return {"field": field, "message": f"{field} is required"}
    if kind == "extra_forbidden":
        return {"field": field, "message": f"{field} is not a known field"}
    if kind in ("enum", "literal_error"):
        expected = error.get("ctx", {}).get("expected", "")
        return {"field": field, "message": f"{field}: must be one of {expected}"}
    return {"field": field, "message": f"{field}: {error.get('msg', 'invalid value')}"}


def audit_refusal(request: Request, message: str) -> None:
    """Every 403 is an audit event (``auth.forbidden``), in a transaction of its own (the
    request's is rolled back), belonging to the refused user's org."""
    from hub.auditlog.service import record_now
    from hub.web.deps import client_ip

    user_id, username, org_id = getattr(request.state, "govhub_user", (None, "", None))
    record_now(
        actor_id=user_id,
        actor_name=username,
        action="auth.forbidden",
        object_type="request",
        object_id=f"{request.method} {request.url.path}"[:80],
        summary=message,
        client_ip=client_ip(request),
        org_id=org_id,
    )


OVERFLOW_MESSAGE = (
    "请求中的数值超出范围或含有无法保存的字符（a value in the request is out of range or cannot be "
    "stored）"
)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not an API client, not a script's fetch)."""
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/media/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def not_found_page(request: Request) -> Response:
    """The house layout's 页面不存在, with the menu when someone is logged in."""
    from sqlmodel import Session

    from hub.db import get_engine
    from hub.web.pages import page_of, refuse

    with Session(get_engine(), expire_on_commit=False) as session:
        return refuse(request, page_of(request, session), 404)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # unknown URLs: browsers get a page in words; API clients keep {"detail": "Not Found"}
        if exc.status_code == 404 and wants_page(request):
            return await run_in_threadpool(not_found_page, request)
        return await http_exception_handler(request, exc)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # Backstop: ids and counts are bounded where they are read (hub.sqltypes.Id), but a
        # value the database cannot hold (SQLite: OverflowError; PostgreSQL: "integer out of
        # range", a DataError) must never become a 500. Logged: it means a bound is missing.
        log.warning("%s %s: value out of range: %s", request.method, request.url.path, exc)
        body = {"detail": OVERFLOW_MESSAGE, "errors": [{"field": "", "message": OVERFLOW_MESSAGE}]}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        if exc.status_code == 403:
            await run_in_threadpool(audit_refusal, request, exc.message)
        body: dict[str, Any] = {"detail": i18n.error_text(exc, request)}
        if exc.field:
            body["field"] = exc.field
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_readable(dict(e)) for e in exc.errors()]
        summary = "; ".join(e["message"] for e in errors) or "invalid request"
        return JSONResponse({"detail": summary, "errors": errors}, status_code=422)


VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "description": (
        "Every 422: `detail` is one readable sentence; `errors` lists each problem (request "
        "validation); `field` names the field a domain rule refused."
    ),
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {
            "type": "array",
            "title": "Errors",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "title": "Field"},
                    "message": {"type": "string", "title": "Message"},
                },
            },
        },
        "field": {"type": "string", "title": "Field"},
    },
}


def _document_real_422(app: FastAPI) -> None:
    """Make the OpenAPI document describe the 422 the handlers above really send.

    FastAPI documents its own list-shaped ``detail``; ours is ``{"detail": str, "errors": [...]}``
    (and ``field`` for a domain rule), for every operation that can answer 422.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
        schemas.pop("ValidationError", None)
        ref = {"$ref": "#/components/schemas/HTTPValidationError"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                answer = operation["responses"].setdefault("422", {})
                answer.setdefault("description", "Validation Error")
                answer["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _freeze_gc_after_startup(app: FastAPI) -> None:
    """After startup, move every object alive (modules, routes, models) out of the collector's way.

    A full collection walks every tracked object; with thousands of live readers it runs every
    ten entries or so and pauses the process for all of them. Frozen objects are not walked, so
    the pause shrinks to the readers' own objects (bench/live.py: about 400 -> 230 ms at 5,000).
    Only for the server process: a test process would keep its earlier apps forever.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        async with inner(owner) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan


def _retire_metrics_at_shutdown(app: FastAPI) -> None:
    """At the app's shutdown, remove this process's live gauges from the metrics folder."""
    from hub.metrics import retire

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        async with inner(owner) as state:
            try:
                yield state
            finally:
                retire()

    app.router.lifespan_context = lifespan


DOCS_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>govhub API 文档</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/api-docs-assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api-docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/js/docs.js"></script></body></html>
"""


def install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) with its script and stylesheet from this server, not a CDN: the
    fastapi-offline package ships them. The page starts Swagger UI from /static/js/docs.js, so
    the CSP's ``script-src 'self'`` holds; Swagger UI sets inline styles, which its page allows."""
    from importlib.resources import files

    assets = Path(str(files("fastapi_offline") / "static"))
    app.mount("/api-docs-assets", StaticFiles(directory=assets), name="api-docs-assets")

    async def docs() -> Response:
        from hub.web.hardening import content_security_policy

        csp = content_security_policy().replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'"
        )
        return Response(DOCS_PAGE, media_type="text/html", headers={"Content-Security-Policy": csp})

    app.add_api_route("/docs", docs, include_in_schema=False)


class HubApp(FastAPI):
    """FastAPI, except that public live event streams are served before the middleware stack.

    Thousands of readers each hold one open; see ``hub.live.web.public_stream_of``.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from hub.live.web import open_public_stream, public_stream_of

        public = public_stream_of(scope)
        if public is None:
            await super().__call__(scope, receive, send)
            return
        stream = await open_public_stream(self, *public, scope, receive, send)
        if stream is not None:
            await stream(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    from hub import metrics

    if os.environ.get("GOVHUB_LOG_LEVEL"):  # a web process of `govhub serve` (not a test)
        from hub.logs import configure

        configure(os.environ["GOVHUB_LOG_LEVEL"], production=settings.env == "production")
        metrics.setup(settings)  # before the first count: into the host's metrics folder
    app = HubApp(
        title="govhub",
        version="0.1.0",
        summary="Publishing hub for government press offices (先审后发, one draft, every channel).",
        docs_url=None,  # served below from local assets: /docs works offline
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    _document_real_422(app)
    from hub.proofread.presets import preset_entries

    preset_entries(tuple(settings.policies))  # a bad lexicon file stops the hub, naming its line

    from hub.accounts.api import router as accounts_router
    from hub.accounts.callbacks import router as callbacks_router
    from hub.accounts.oauth import router as oauth_router
    from hub.audit.api import router as matrix_audit_router
    from hub.audit.api import spokespersons_router
    from hub.audit.views import router as audit_views_router
    from hub.auditlog.api import router as audit_router
    from hub.clocks.api import router as clocks_router
    from hub.clocks.views import router as clocks_views_router
    from hub.delivery.api import router as delivery_router
    from hub.hall.api import router as partners_router
    from hub.hall.views import router as hall_views_router
    from hub.inbox.api import router as inbox_router
    from hub.inbox.views import router as inbox_views_router
    from hub.media.api import router as media_router
    from hub.notify.api import router as notify_router
    from hub.notify.views import router as notify_views_router
    from hub.orgs.api import router as orgs_router
    from hub.posts.api import router as posts_router
    from hub.posts.chain_api import router as review_chain_router
    from hub.posts.chain_views import router as review_chain_views_router
    from hub.posts.forward_api import router as forward_router
    from hub.posts.versions_api import router as versions_router
    from hub.proofread.api import router as proofread_router
    from hub.proofread.views import router as proofread_views_router
    from hub.reach.api import router as reach_router
    from hub.reach.views import router as reach_views_router
    from hub.users.api import router as users_router
    from hub.web.account_views import router as account_views_router
    from hub.web.admin_views import router as admin_views_router
    from hub.web.editor_views import router as editor_views_router
    from hub.web.health import router as health_router
    from hub.web.media_views import router as media_views_router
    from hub.web.observe import router as metrics_router
    from hub.web.orgs_views import router as orgs_views_router
    from hub.web.posts_views import router as posts_views_router
    from hub.web.tools_api import router as tools_router
    from hub.web.views import router as views_router

    for router in (
        health_router,
        metrics_router,
        users_router,
        orgs_router,
        accounts_router,
        callbacks_router,
        oauth_router,
        posts_router,
        delivery_router,
        review_chain_router,
        forward_router,
        versions_router,
        media_router,
        tools_router,
        audit_router,
        clocks_router,
        matrix_audit_router,
        spokespersons_router,
        views_router,
        clocks_views_router,
        audit_views_router,
        hall_views_router,
        partners_router,
        editor_views_router,
        posts_views_router,
        media_views_router,
        orgs_views_router,
        admin_views_router,
        review_chain_views_router,
        account_views_router,
        inbox_router,
        inbox_views_router,
        reach_router,
        reach_views_router,
        proofread_router,
        proofread_views_router,
        notify_router,
        notify_views_router,
    ):
        app.include_router(router)

    from hub.live.web import install as install_live

    install_live(app)  # micro-live: API, pages, SSE, and the process's broadcaster
    if os.environ.get("GOVHUB_GC_FREEZE") == "1":  # set by `hub serve` (not by tests)
        _freeze_gc_after_startup(app)
    if os.environ.get("GOVHUB_LOG_LEVEL"):  # `hub serve`: its live gauges go with the process
        _retire_metrics_at_shutdown(app)

    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="govhub_session",
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
        max_age=settings.session_max_hours * 3600,
    )
    from hub.hall.cache import HallCache, install

    install()  # this process's commits stamp the hall version
    app.add_middleware(HallCache, settings=settings)  # outside the session, inside the headers
    app.add_middleware(OriginGuard, public_base_url=settings.public_base_url)
    app.add_middleware(NulGuard)
    app.add_middleware(SecurityHeaders, hsts=settings.public_base_url.startswith("https://"))
    from hub.media.api import UPLOAD_BODY_MAX

    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger={"/api/v1/media": max(UPLOAD_BODY_MAX, settings.max_body_bytes)},
    )
    from hub.web.observe import RequestLog

    # outermost: every answer (a 413 or a NUL refusal too) gets an id, a timing and a line
    app.add_middleware(RequestLog, access_log=os.environ.get("GOVHUB_ACCESS_LOG", "1") != "0")
    return app
