"""A worker's threads share one HTTP client and one connector per platform, however many ask
at once (a fan-out's first wave asks from every thread together)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hub.delivery import channels


def all_at_once(threads: int, call: Any) -> list[Any]:
    barrier = threading.Barrier(threads)
    got: list[Any] = []

    def run() -> None:
        barrier.wait()
        got.append(call())

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return got


def test_sixteen_threads_asking_at_once_get_one_http_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channels, "_client", None)
    built: list[object] = []
    real = channels.httpx.Client

    def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(object())
        return real(*args, **kwargs)

    monkeypatch.setattr(channels.httpx, "Client", counted)
    clients = all_at_once(16, channels.http_client)
    assert len({id(c) for c in clients}) == 1
    assert len(built) == 1  # one TLS context parsed, not sixteen


def test_sixteen_threads_asking_at_once_get_one_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channels, "_connectors", {})
    connectors = all_at_once(16, lambda: channels.connector_for("weibo"))
    assert len({id(c) for c in connectors}) == 1


def test_the_shared_client_carries_no_cookie_from_one_call_to_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One account's answer sets a cookie (as a platform's load balancer may); the next call,
    another org's account on the same host, must not send it. Over real HTTP, on loopback."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "SESSION=org-a-session; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(channels, "_client", None)
    try:
        client = channels.http_client()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        first = client.get(f"{base}/2/statuses/share.json?account=a")
        assert first.cookies.get("SESSION") == "org-a-session"  # the answer itself has it
        client.get(f"{base}/2/statuses/share.json?account=b")
    finally:
        server.shutdown()
        server.server_close()
        channels.http_client().close()
    assert seen == [None, None]
