"""Middleware against hostile input and for browser hardening (docs/security.md).

* :class:`NulGuard`: a NUL byte in the path, the query string or a JSON/form body is refused
  with 422 before any route runs (PostgreSQL text cannot hold one; SQLite's full-text parser
  stops at one).
* :class:`OriginGuard`: a cookie-authenticated write whose ``Origin`` is neither the public base
  URL's nor the request's own host is refused with 403 (a second line behind the CSRF token).
* :class:`SecurityHeaders`: CSP, frame, sniffing, referrer and permissions headers on every
  response, HSTS when the public base URL is https.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_COOKIE = "govhub_session"

NUL_MESSAGE = "请求中含有空字符（NUL），已拒绝（the request contains a NUL character）"
ORIGIN_MESSAGE = (
    "请求来源与本站不符，已拒绝；请从本站页面操作"
    "（the request comes from another site: use the hub's own pages）"
)


def content_security_policy(*, frame_ancestors: str = "'none'") -> str:
    """Only our own origin: scripts and styles from /static, no inline script, no plugins.

    ``style-src`` has no ``'unsafe-inline'``: the templates carry no ``style=`` attribute and the
    channel previews link /static/css/preview-frame.css instead of an inline ``<style>``.
    """
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            "connect-src 'self'",
            "media-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def _has_nul_in_json(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul_in_json(k) or _has_nul_in_json(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul_in_json(v) for v in value)
    return False


def body_has_nul(content_type: str, body: bytes) -> bool:
    """True when a JSON or url-encoded form body carries a NUL in any of its strings."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        if b"\\u0000" not in body and b"\x00" not in body:
            return False
        try:
            return _has_nul_in_json(json.loads(body))
        except ValueError:
            return False  # not JSON: the route's own validation answers 422
    if kind == "application/x-www-form-urlencoded":
        if b"%00" not in body and b"\x00" not in body:
            return False
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        return any("\x00" in k or "\x00" in v for k, v in pairs)
    return False


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await JSONResponse(body, status_code=status)({"type": "http"}, no_body, send)


class NulGuard:
    """Refuse NUL bytes in the path, the query string and JSON / url-encoded bodies (422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode()
        query = scope.get("query_string", b"")
        if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(
            query.replace(b"+", b" ")
        ):
            await _answer(send, 422, _nul_error("query" if query else "path"))
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if scope.get("method") not in UNSAFE_METHODS or not (
            "json" in content_type or "x-www-form-urlencoded" in content_type
        ):
            await self.app(scope, receive, send)
            return
        # JSON and form bodies are small (GOVHUB_MAX_BODY_BYTES): read, check, replay.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body_has_nul(content_type, body):
            await _answer(send, 422, _nul_error("body"))
            return
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )


def _nul_error(where: str) -> dict[str, Any]:
    return {"detail": NUL_MESSAGE, "errors": [{"field": where, "message": NUL_MESSAGE}]}


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port if parts.port is not None and parts.port != default else None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def origin_allowed(origin: str, *, public_base_url: str, host: str, scheme: str) -> bool:
    """An ``Origin`` header is ours when it is the public base URL's origin or the request's."""
    given = _origin_of(origin.strip())
    if not given:
        return False
    allowed = {_origin_of(public_base_url)}
    if host:
        allowed.add(_origin_of(f"{scheme}://{host}"))
    return given in allowed


class OriginGuard:
    """Cookie-authenticated writes must come from our own pages when the browser says where from."""

    def __init__(self, app: ASGIApp, public_base_url: str) -> None:
        self.app = app
        self.public_base_url = public_base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        by_cookie = SESSION_COOKIE + "=" in headers.get("cookie", "")
        by_token = headers.get("authorization", "").lower().startswith("bearer ")
        if (
            origin is not None
            and by_cookie
            and not by_token
            and not origin_allowed(
                origin,
                public_base_url=self.public_base_url,
                host=headers.get("host", ""),
                scheme=scope.get("scheme", "http"),
            )
        ):
            await _answer(send, 403, {"detail": ORIGIN_MESSAGE})
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Hardening headers on every response; a route may set its own CSP (the live embed page)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts
        self.csp = content_security_policy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own_csp = headers.get("content-security-policy")
                if own_csp is None:
                    headers["Content-Security-Policy"] = self.csp
                embeddable = (
                    own_csp is not None
                    and "frame-ancestors" in own_csp
                    and "frame-ancestors 'none'" not in own_csp
                )
                if not embeddable:
                    headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, with_headers)
