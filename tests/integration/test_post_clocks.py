"""Clocks of posts run from the event: ``event_at`` (never in the future), or an open clock
linked with ``clock_id`` that publishing the post stops; ``GET /api/v1/clocks?post_id=N``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.pacing import get_pacer
from tests.integration.test_clocks_api import open_clock
from tests.integration.test_editor_pages import login
from tests.integration.test_posts_workflow import draft

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def hall(client: TestClient, auth: dict[str, dict[str, str]]) -> int:
    response = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def clocks_of(client: TestClient, headers: dict[str, str], post_id: int) -> list[dict[str, Any]]:
    response = client.get("/api/v1/clocks", params={"post_id": post_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def publish(client: TestClient, auth: dict[str, dict[str, str]], post_id: int) -> None:
    """Submit, approve and run the deliveries as a worker would."""
    client.post(f"/api/v1/posts/{post_id}/submit", headers=auth["kaili-editor"])
    approved = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert approved.status_code == 200, approved.text
    for delivery in approved.json()["deliveries"]:
        with Session(engine_for(get_settings().database_url)) as session:
            outcome = engine.publish(session=session, delivery_id=delivery["id"], pacer=get_pacer())
        assert outcome == "published"


def test_an_emergency_clock_runs_from_the_event_so_a_late_draft_is_late(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    editor = auth["kaili-editor"]
    event = (datetime.now(SHANGHAI) - timedelta(hours=4)).replace(microsecond=0)
    post = draft(
        client, editor, urgency="emergency", event_at=event.isoformat(), target_account_ids=[hall]
    )
    assert datetime.fromisoformat(post["event_at"]) == event
    [clock] = clocks_of(client, editor, post["id"])
    assert clock["kind"] == "emergency" and clock["post_ids"] == [post["id"]]
    assert datetime.fromisoformat(clock["started_at"]) == event
    assert datetime.fromisoformat(clock["due_at"]) == event + timedelta(hours=3)
    assert clock["status"] == "overdue"  # the 3 hours ran out before the draft existed
    publish(client, auth, post["id"])
    [clock] = clocks_of(client, editor, post["id"])
    assert clock["status"] == "met_late"  # not "met": the dashboard tells the truth


def test_a_hot_topic_has_until_the_end_of_the_day_it_happened(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).replace(hour=9, minute=0, second=0)
    post = draft(
        client,
        auth["kaili-editor"],
        urgency="hot_topic",
        event_at=yesterday.isoformat(),
        target_account_ids=[hall],
    )
    [clock] = clocks_of(client, auth["kaili-editor"], post["id"])
    due = datetime.fromisoformat(clock["due_at"])
    assert (due.date(), due.hour, due.minute) == (yesterday.date(), 23, 59)
    assert clock["status"] == "overdue"


def test_without_event_at_the_event_is_now_and_bad_times_are_refused(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    editor = auth["kaili-editor"]
    before = datetime.now(SHANGHAI)
    post = draft(client, editor, urgency="emergency", target_account_ids=[hall])
    [clock] = clocks_of(client, editor, post["id"])
    assert datetime.fromisoformat(clock["started_at"]) >= before.replace(microsecond=0)
    assert clock["status"] == "running"
    body = {"title": "突发", "body": "内容", "urgency": "emergency"}
    future = (datetime.now(SHANGHAI) + timedelta(hours=1)).isoformat()
    refused = client.post("/api/v1/posts", json={**body, "event_at": future}, headers=editor)
    assert refused.status_code == 422 and "不能晚于现在" in refused.text
    naive = client.post(
        "/api/v1/posts", json={**body, "event_at": "2026-11-30T08:00:00"}, headers=editor
    )
    assert naive.status_code == 422 and "时区" in naive.text
    routine = client.post(
        "/api/v1/posts",
        json={**body, "urgency": "routine", "event_at": before.isoformat()},
        headers=editor,
    )
    assert routine.status_code == 422 and "突发事件和热点" in routine.text


def test_a_post_linked_to_an_open_clock_stops_it_when_published(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    editor = auth["kaili-editor"]
    reported = (datetime.now(SHANGHAI) - timedelta(hours=1)).replace(microsecond=0)
    clock = open_clock(client, editor, "emergency", "522601", reported.isoformat())
    post = draft(
        client, editor, urgency="emergency", clock_id=clock["id"], target_account_ids=[hall]
    )
    assert [c["id"] for c in clocks_of(client, editor, post["id"])] == [clock["id"]]  # no new one
    assert post["event_at"] is None
    publish(client, auth, post["id"])
    [stopped] = clocks_of(client, editor, post["id"])
    assert stopped["id"] == clock["id"] and stopped["status"] == "met"

    body = {"title": "续报", "body": "内容", "clock_id": clock["id"]}
    finished = client.post("/api/v1/posts", json=body, headers=editor)
    assert finished.status_code == 409 and "已结束" in finished.text
    other = open_clock(
        client, auth["huangping-editor"], "emergency", "522622", reported.isoformat()
    )
    hidden = client.post("/api/v1/posts", json={**body, "clock_id": other["id"]}, headers=editor)
    assert hidden.status_code == 404
    both = client.post(
        "/api/v1/posts",
        json={**body, "urgency": "emergency", "event_at": reported.isoformat()},
        headers=editor,
    )
    assert both.status_code == 422


def test_clocks_of_a_post_outside_the_reach_are_not_found(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    post = draft(client, auth["kaili-editor"], urgency="emergency", target_account_ids=[hall])
    answer = client.get(
        "/api/v1/clocks", params={"post_id": post["id"]}, headers=auth["huangping-editor"]
    )
    assert answer.status_code == 404


def test_a_draft_made_urgent_later_starts_its_clock_and_a_corrected_event_time_moves_it(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    editor = auth["kaili-editor"]
    post = draft(client, editor, target_account_ids=[hall])  # the compose page's first autosave
    assert clocks_of(client, editor, post["id"]) == []
    url = f"/api/v1/posts/{post['id']}"
    event = (datetime.now(SHANGHAI) - timedelta(hours=1)).replace(microsecond=0)
    urgent = client.patch(
        url, json={"urgency": "emergency", "event_at": event.isoformat()}, headers=editor
    )
    assert urgent.status_code == 200, urgent.text
    [clock] = clocks_of(client, editor, post["id"])
    assert datetime.fromisoformat(clock["started_at"]) == event
    earlier = event - timedelta(hours=1)
    client.patch(
        url, json={"urgency": "emergency", "event_at": earlier.isoformat()}, headers=editor
    )
    [moved] = clocks_of(client, editor, post["id"])
    assert moved["id"] == clock["id"]
    assert datetime.fromisoformat(moved["due_at"]) == earlier + timedelta(hours=3)
    future = (datetime.now(SHANGHAI) + timedelta(hours=2)).isoformat()
    refused = client.patch(url, json={"event_at": future}, headers=editor)
    assert refused.status_code == 422 and "不能晚于现在" in refused.text
    client.patch(url, json={"title": "标题改了"}, headers=editor)
    assert len(clocks_of(client, editor, post["id"])) == 1  # edits start no second clock


def test_the_compose_page_asks_when_it_happened(client: TestClient) -> None:
    login(client, "kaili-editor")
    page = client.get("/compose")
    assert 'id="event-at"' in page.text and "事件发生时间" in page.text
