"""Watching the web process: request ids, one access line per request, HTTP latency by route,
and ``GET /metrics`` for Prometheus (docs/operations.md, "Watching")."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import logs
from hub.config import get_settings
from hub.metrics import exposition, metrics

REQUEST_ID_HEADER = b"x-request-id"
# An id from a proxy or a client is kept when it is short and plain; otherwise one is made.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
UNMATCHED = "(unmatched)"  # the route label of a request no route answered (404s): one series
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger(logs.ACCESS)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1").strip()
            if _SANE_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The route template that answered (``/api/v1/posts/{post_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    return UNMATCHED


class RequestLog:
    """Outermost middleware: gives each request an id (``X-Request-ID`` in and out), times it by
    route template for ``govhub_http_request_duration_seconds`` and writes one access line.

    The access line is written unless ``access_log`` is off (``govhub serve --no-access-log``);
    the timing is kept either way. Event streams are timed to their first byte.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope.get("headers") or [])
        token = logs.REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        first_byte: float | None = None
        streaming = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                first_byte = time.perf_counter()
                headers = list(message.get("headers") or [])
                streaming = any(
                    name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in headers
                )
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            ended = first_byte if streaming and first_byte is not None else time.perf_counter()
            seconds = ended - started
            route = route_of(scope)
            method = str(scope.get("method", ""))
            label = method if method in METHODS else "other"  # any token is a method to HTTP
            metrics().http_duration.labels(label, route, str(status)).observe(seconds)
            if self.access_log:
                user = (scope.get("state") or {}).get("govhub_user")
                access_log.info(
                    "%s %s %s",
                    method,
                    scope.get("path", ""),
                    status,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "path": scope.get("path", ""),
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                        "user_id": user[0] if user else None,
                    },
                )
            logs.REQUEST_ID.reset(token)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format. Off (404) unless ``GOVHUB_METRICS_TOKEN`` is set; then it wants
    ``Authorization: Bearer <token>`` (401 otherwise), compared in constant time."""
    settings = get_settings()
    if settings.metrics_token is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    expected = b"Bearer " + settings.metrics_token.get_secret_value().encode()
    given = request.headers.get("authorization", "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected):
        return JSONResponse(
            {"detail": "指标接口需要令牌（Authorization: Bearer <GOVHUB_METRICS_TOKEN>）"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await run_in_threadpool(exposition, settings)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
