"""ASGI plumbing shared by the simulators: dropping a connection after doing the work.

A handler calls :func:`drop_after` on its request; :func:`serve_droppable` then closes the TCP
connection instead of sending the answer, so the client sees "server disconnected without
sending a response" although the call took effect (a post stored, say).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_KEY = "govhub.sandbox.exchange"


class _Exchange:
    drop = False


def drop_after(request: Request) -> None:
    """Ask :func:`serve_droppable` to drop this request's connection instead of answering."""
    exchange = request.scope.get(_KEY)
    if isinstance(exchange, _Exchange):
        exchange.drop = True


async def serve_droppable(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``; for requests marked with :func:`drop_after`, close instead of answering."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    exchange = _Exchange()
    scope[_KEY] = exchange

    async def guarded_send(message: Message) -> None:
        if not exchange.drop:
            await send(message)
        elif message["type"] == "http.response.start":
            await _drop_connection(send, receive)

    await app(scope, receive, guarded_send)


async def _drop_connection(send: Send, receive: Receive) -> None:
    """Close the socket (uvicorn), then wait until the server has seen the disconnect.

    ``send`` is uvicorn's bound ``RequestResponseCycle.send``, whose ``transport`` is the
    connection. Under another server there is no transport: raise, which at worst turns the drop
    into a 500.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox: drop connection")
    transport.close()
    for _ in range(10):
        try:
            message = await asyncio.wait_for(receive(), timeout=1.0)
        except TimeoutError:
            return
        if message["type"] == "http.disconnect":
            return
