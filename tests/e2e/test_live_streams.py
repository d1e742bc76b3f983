"""Two API processes sharing entries: an entry posted through one reaches SSE readers of the
other within a deadline; a reader that reconnects with Last-Event-ID gets exactly what it missed,
in order, once. Through Redis pub/sub when it is configured, and on the embedded default (no
Redis) through each process's poll of the database."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from hub.users.models import Role
from tests.e2e.browser import one_database
from tests.e2e.live_support import Server, SSEReader
from tests.factories import load_guizhou, make_user, token_for

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("GOVHUB_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["redis", "embedded"])
def two_servers(
    request: pytest.FixtureRequest, hub_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[Server, Server]]:
    env = {**os.environ, **hub_env}
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.ConnectionError:
            if os.environ.get("GOVHUB_TEST_REDIS_URL"):
                raise
            pytest.skip(f"no Redis at {REDIS_URL} (set GOVHUB_TEST_REDIS_URL)")
        env["GOVHUB_REDIS_URL"] = REDIS_URL
    else:  # the embedded default: nothing shared but the database
        env.pop("GOVHUB_REDIS_URL", None)
        env["GOVHUB_BROKER_URL"] = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    make_user(url, "kaili-editor", Role.editor, "522601")
    servers = [Server(env, tmp_path, tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        yield servers[0].wait_ready(), servers[1].wait_ready()
    finally:
        for server in servers:
            server.stop()


def test_entries_cross_processes_and_reconnects_replay_exactly_what_was_missed(
    two_servers: tuple[Server, Server], hub_env: dict[str, str]
) -> None:
    a, b = two_servers
    headers = token_for("kaili-editor", hub_env["GOVHUB_DATABASE_URL"])
    live = httpx.post(
        f"{a.base}/api/v1/live-sessions", json={"title": "凯里市新闻发布会"}, headers=headers
    ).json()
    api = f"/api/v1/live-sessions/{live['id']}"
    stream = f"/live/{live['slug']}/events"
    assert httpx.get(f"{b.base}{stream}").status_code == 404  # the public waits for the start
    assert httpx.post(f"{a.base}{api}/start", headers=headers).status_code == 200  # event 1

    def post(server: Server, text: str) -> None:
        response = httpx.post(f"{server.base}{api}/entries", json={"text": text}, headers=headers)
        assert response.status_code == 201, response.text

    reader = SSEReader(f"{b.base}{stream}")
    other = SSEReader(f"{b.base}{stream}")
    posted = time.monotonic()
    post(a, "第一条")  # written through A, read through B
    [first] = reader.take(1)
    assert time.monotonic() - posted < 3  # a reader sees it at once, not at its next reconnect
    assert (first.id, first.type, first.data["text"]) == ("2", "entry", "第一条")
    assert other.take(1)[0].data["text"] == "第一条"
    reader.close()

    for i, server in enumerate([a, b, a, b], start=2):  # missed while disconnected
        post(server, f"第{i}条")
    assert [e.data["text"] for e in other.take(4)] == ["第2条", "第3条", "第4条", "第5条"]

    back = SSEReader(f"{a.base}{stream}", last_event_id=first.id)
    post(b, "第6条")
    post(a, "第7条")
    got = back.take(6)
    assert [e.id for e in got] == ["3", "4", "5", "6", "7", "8"]
    assert [e.data["text"] for e in got] == [f"第{i}条" for i in range(2, 8)]

    ended = httpx.post(f"{b.base}{api}/end", headers=headers)
    assert ended.status_code == 200
    final = back.next()
    assert final is not None and final.type == "status" and final.data["status"] == "ended"
    assert back.next() is None  # the server closed the stream after the final event
    assert [e.id for e in other.take(3)] == ["7", "8", "9"]
    assert other.next() is None
    back.close()
    other.close()


@one_database
def test_serve_stops_on_sigterm_while_readers_listen(
    hub_env: dict[str, str], tmp_path: Path
) -> None:
    """A rolling restart: SIGTERM ends the open live streams, so the process exits at once
    instead of waiting for readers that never leave (until a supervisor kills it)."""
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    make_user(url, "kaili-editor", Role.editor, "522601")
    env = {k: v for k, v in os.environ.items() if k != "GOVHUB_REDIS_URL"}
    server = Server({**env, **hub_env}, tmp_path, tmp_path / "serve.log").wait_ready()
    try:
        headers = token_for("kaili-editor", url)
        api = f"{server.base}/api/v1/live-sessions"
        live = httpx.post(api, json={"title": "凯里市新闻发布会"}, headers=headers).json()
        assert httpx.post(f"{api}/{live['id']}/start", headers=headers).status_code == 200
        stream = f"{server.base}/live/{live['slug']}/events"
        readers = [SSEReader(stream) for _ in range(2)]  # connected: the streams are open

        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=10)  # before: waited for the readers until killed
        for reader in readers:
            assert reader.next(timeout=5) is None  # the stream ended (the client reconnects)
            reader.close()
    finally:
        server.stop()
