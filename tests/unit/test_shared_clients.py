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
