"""Micro-live across processes without Redis: a second process's broadcaster learns of entries
written through another one from the database, with ONE query per poll however many readers it
holds, frames each event once for all of them, and hands them over in order, once."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hub.db import get_engine
from hub.live import web
from hub.live.broadcast import Broadcaster, Reader

pytestmark = pytest.mark.integration

READERS = 30


async def frames_until(reader: Reader, count: int, deadline: float) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {got} before the deadline"
        for event_id, kind, frame in await asyncio.wait_for(reader.queue.take(), left):
            assert kind != "close", "the reader was dropped"
            if event_id is not None:
                got.append((event_id, frame))
    return got


def test_another_process_gets_entries_through_its_database_poll(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    editor = auth["kaili-editor"]
    live = client.post(
        "/api/v1/live-sessions",
        json={"title": "凯里市新闻发布会", "org_code": "522601"},
        headers=editor,
    ).json()
    api = f"/api/v1/live-sessions/{live['id']}"
    assert client.post(f"{api}/start", headers=editor).status_code == 200
    # The app behind `client` is the process taking the POSTs; `other` stands for a second serve
    # process on the same database with no Redis between them.
    other = Broadcaster(
        redis_url=None,
        load_events=web._load_events,
        load_last_id=web._load_last_id,
        load_heads=web._load_heads,
        poll_seconds=0.05,
    )
    head_queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "live_sessions" in statement and "last_event_id" in statement and " IN " in statement:
            head_queries.append(statement)

    async def scenario() -> None:
        await other.start()
        try:
            readers = [await other.subscribe(live["id"]) for _ in range(READERS)]
            for text in ("第一条", "第二条", "第三条"):
                posted = await asyncio.to_thread(
                    client.post, f"{api}/entries", json={"text": text}, headers=editor
                )
                assert posted.status_code == 201, posted.text
            deadline = time.monotonic() + 5
            got = [await frames_until(r, 3, deadline) for r in readers]
            ids = [event_id for event_id, _frame in got[0]]
            assert ids == [ids[0], ids[0] + 1, ids[0] + 2]  # in order, once
            assert "第三条".encode() in got[0][2][1]
            for frames in got[1:]:
                assert [i for i, _f in frames] == ids
                # one serialized payload per event, the same bytes object for every reader
                assert all(f is g for (_i, f), (_j, g) in zip(frames, got[0], strict=True))
            assert other.frames_built == 3
            assert other.caught_up == 3

            event.listen(get_engine(), "before_cursor_execute", count)
            try:
                polls = other.polls
                deadline = time.monotonic() + 5
                while other.polls < polls + 5:
                    assert time.monotonic() < deadline, "the poll stopped"
                    await asyncio.sleep(0.02)
                made = other.polls - polls
                queries = len(head_queries)
            finally:
                event.remove(get_engine(), "before_cursor_execute", count)
            assert made <= queries <= made + 1  # one query per poll, not one per reader
        finally:
            await other.stop()

    # A loop of its own in a thread of its own: in the whole suite the browser tests' Playwright
    # keeps an event loop running on the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scenario()).result()
