"""A tiny partner-site webhook receiver (ASGI) recording what it receives, for tests and demos.

``POST /hooks/{name}`` receives deliveries; each is checked with
:func:`connectors.webhook.verify_signature` against the secret registered for ``name``
(``POST /_sandbox/secrets {"name": .., "secret": ..}``). Like a well-behaved partner it keeps one
entry per delivery id and removes it on ``post.withdrawn``.

Control: ``GET /_sandbox/received`` (every request, in order), ``GET /_sandbox/entries/{name}``
(stored entries), ``POST /_sandbox/faults {"status": 503, "times": 1, "drop": false,
"accept": false, "retry_after": null}``, ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.asgi import Receive, Scope, Send, drop_after, serve_droppable
from connectors.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass
class Received:
    name: str
    delivery: str
    verified: bool
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class PartnerFault:
    """The next ``times`` deliveries get ``status`` (after storing when ``accept``), or a drop."""

    status: int = 503
    times: int = 1
    accept: bool = False
    drop: bool = False
    retry_after: int | None = None


class PartnerSandbox:
    """Records deliveries; answers 401 to a bad signature, 200 ``{"id", "url"}`` otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        self.reset()
        self._app = Starlette(
            routes=[
                Route("/hooks/{name}", self._hook, methods=["POST"]),
                Route("/_sandbox/secrets", self._http_secret, methods=["POST"]),
                Route("/_sandbox/received", self._http_received, methods=["GET"]),
                Route("/_sandbox/entries/{name}", self._http_entries, methods=["GET"]),
                Route("/_sandbox/faults", self._http_fault, methods=["POST"]),
                Route("/_sandbox/reset", self._http_reset, methods=["POST"]),
            ]
        )

    def __repr__(self) -> str:
        return f"PartnerSandbox(received={len(self._received)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_droppable(self._app, scope, receive, send)

    def reset(self) -> None:
        with self._lock:
            self._received: list[Received] = []
            self._entries: dict[str, dict[str, dict[str, Any]]] = {}
            self._faults: list[PartnerFault] = []

    def set_secret(self, name: str, secret: str) -> None:
        with self._lock:
            self._secrets[name] = secret

    def add_fault(self, fault: PartnerFault) -> None:
        with self._lock:
            self._faults.append(fault)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def entries(self, name: str) -> dict[str, dict[str, Any]]:
        """Stored entries of receiver ``name`` by delivery id."""
        with self._lock:
            return dict(self._entries.get(name, {}))

    async def _hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        raw = await request.body()
        with self._lock:
            secret = self._secrets.get(name, "")
            fault = self._faults[0] if self._faults else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
        if fault is not None and not (fault.accept or fault.drop):
            return _fault_response(fault)
        verified = bool(secret) and verify_signature(
            secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            raw,
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        body = json.loads(raw) if raw else {}
        delivery = request.headers.get(DELIVERY_HEADER, "")
        with self._lock:
            self._received.append(Received(name, delivery, verified, body))
            if not verified:
                return JSONResponse({"error": "bad signature"}, status_code=401)
            entries = self._entries.setdefault(name, {})
            if body.get("event") == "post.withdrawn":
                entries.pop(str(body.get("id")), None)
            else:
                entries.setdefault(str(body.get("id")), body)
        if fault is not None and fault.drop:
            drop_after(request)
            return Response(status_code=500)
        if fault is not None:
            return _fault_response(fault)
        entry_id = str(body.get("id"))
        return JSONResponse({"id": entry_id, "url": f"https://partner.example/news/{entry_id}"})

    async def _http_secret(self, request: Request) -> Response:
        spec = await request.json()
        self.set_secret(str(spec["name"]), str(spec["secret"]))
        return JSONResponse({"ok": True})

    async def _http_received(self, request: Request) -> Response:
        return JSONResponse({"received": [asdict(r) for r in self.received()]})

    async def _http_entries(self, request: Request) -> Response:
        return JSONResponse({"entries": self.entries(request.path_params["name"])})

    async def _http_fault(self, request: Request) -> Response:
        self.add_fault(PartnerFault(**(await request.json())))
        return JSONResponse({"ok": True})

    async def _http_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})


def _fault_response(fault: PartnerFault) -> Response:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    return JSONResponse({"error": "injected"}, status_code=fault.status, headers=headers)
