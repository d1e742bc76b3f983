"""Micro-live API: sessions, entries, corrections, permissions, the public page and the poll."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.auditlog.models import AuditEntry
from hub.config import get_settings
from hub.db import engine_for
from hub.live.models import EntryRevision, LiveEvent
from hub.orgs.models import Org
from hub.posts.models import Post

pytestmark = pytest.mark.integration


def account(url: str, code: str, platform: str) -> int:
    with Session(engine_for(url)) as session:
        org = session.exec(select(Org).where(Org.code == code)).one()
        creds = (
            {"access_token": "t", "uid": "1"}
            if platform == "weibo"
            else {"app_id": "wx1", "app_secret": "s"}
        )
        row = create_account(
            session=session,
            data=AccountCreate(
                org_code=code,
                platform=Platform(platform),
                name=f"{code}{platform}",
                credentials=creds,
            ),
            credentials_key=get_settings().credentials_key,
            org=org,
        )
        session.commit()
        assert row.id is not None
        return row.id


def new_session(client: TestClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"title": "凯里市政府常务会议", "org_code": "522601", **extra}
    response = client.post("/api/v1/live-sessions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_session_runs_from_first_entry_to_archive(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    wechat = account(url, "522601", "wechat")
    editor = auth["kaili-editor"]
    live = new_session(client, editor, target_account_ids=[wechat])
    assert live["status"] == "scheduled"
    assert live["public_url"].endswith(f"/live/{live['slug']}")
    base = f"/api/v1/live-sessions/{live['id']}"

    assert client.post(f"{base}/start", headers=editor).json()["status"] == "live"
    first = client.post(f"{base}/entries", json={"text": "会议开始。"}, headers=editor)
    key = client.post(
        f"{base}/entries",
        json={"text": "会议审议通过《营商环境条例》。", "key_event": True},
        headers=editor,
    )
    assert (first.status_code, key.status_code) == (201, 201)
    assert [first.json()["seq"], key.json()["seq"]] == [1, 2]

    edited = client.patch(
        f"{base}/entries/1",
        json={"text": "会议于9时开始。", "correction_note": "补充时间"},
        headers=editor,
    )
    assert edited.status_code == 200
    assert edited.json()["edited_at"] and edited.json()["correction_note"] == "补充时间"
    deleted = client.request(
        "DELETE", f"{base}/entries/2", json={"correction_note": "误发"}, headers=editor
    )
    assert deleted.json()["deleted"] is True and deleted.json()["text"] == ""

    page = client.get(f"/live/{live['slug']}")
    assert page.status_code == 200
    assert "会议于9时开始。" in page.text and "已更正" in page.text and "补充时间" in page.text
    assert "已删除" in page.text and "误发" in page.text
    assert "《营商环境条例》" not in page.text  # a deleted entry's text is gone from the page
    assert "修订记录" in page.text and "会议开始。" in page.text  # an edit's history is shown
    assert '"@type": "LiveBlogPosting"' in page.text
    assert "/static/js/live.js" in page.text

    with Session(engine_for(url)) as session:
        events = session.exec(select(LiveEvent).order_by(LiveEvent.event_id)).all()
        assert [e.type.value for e in events] == ["status", "entry", "entry", "update", "delete"]
        assert [e.event_id for e in events] == [1, 2, 3, 4, 5]
        history = session.exec(select(EntryRevision)).all()
        assert {r.text for r in history} == {"会议开始。", "会议审议通过《营商环境条例》。"}

    ended = client.post(f"{base}/end", headers=editor).json()
    assert ended["status"] == "ended"
    summary = ended["summary_post"]
    with Session(engine_for(url)) as session:
        post = session.get(Post, summary["id"])
        assert post is not None and post.target_account_ids == [wechat]
        assert post.status.value in ("in_review", "draft")
    archive = client.get(f"/live/{live['slug']}")
    assert "/static/js/live.js" not in archive.text  # static archive: no stream opened
    assert "public" in archive.headers["cache-control"]
    with client.stream("GET", f"/live/{live['slug']}/events") as stream:  # final event, closed
        body = b"".join(stream.iter_bytes()).decode()
    assert "event: status" in body and '"status":"ended"' in body
    assert client.post(f"{base}/entries", json={"text": "晚了"}, headers=editor).status_code == 409


def test_the_poll_endpoint_is_cacheable_and_carries_the_kill_switch(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    editor = auth["kaili-editor"]
    live = new_session(client, editor)
    base = f"/api/v1/live-sessions/{live['id']}"
    public = f"/live/{live['slug']}/entries"
    client.post(f"{base}/start", headers=editor)
    for text in ("一", "二", "三"):
        client.post(f"{base}/entries", json={"text": text}, headers=editor)
    first = client.get(f"{public}?after=1")
    assert first.status_code == 200
    assert [e["text"] for e in first.json()["entries"]] == ["二", "三"]
    assert first.json()["poll_interval"] == 5
    assert "max-age=2" in first.headers["cache-control"]
    again = client.get(f"{public}?after=1", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    client.patch(base, json={"poll_interval_seconds": 60}, headers=editor)
    changed = client.get(f"{public}?after=1", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["poll_interval"] == 60


def test_validation_and_permissions(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    other_county = account(url, "522622", "weibo")
    editor = auth["kaili-editor"]
    assert (
        client.post("/api/v1/live-sessions", json={"title": ""}, headers=editor).status_code == 422
    )
    assert (
        client.post("/api/v1/live-sessions", json={"title": "x", "bogus": 1}, headers=editor)
    ).status_code == 422
    naive = client.post(
        "/api/v1/live-sessions",
        json={"title": "x", "starts_at": "2026-12-01T09:00:00"},
        headers=editor,
    )
    assert naive.status_code == 422
    foreign = client.post(
        "/api/v1/live-sessions",
        json={"title": "x", "target_account_ids": [other_county]},
        headers=editor,
    )
    assert foreign.status_code == 422 and foreign.json()["field"] == "target_account_ids"
    assert (
        client.post(
            "/api/v1/live-sessions", json={"title": "x", "org_code": "522622"}, headers=editor
        )
    ).status_code == 403
    assert client.post("/api/v1/live-sessions", json={"title": "x"}).status_code == 401
    assert (
        client.post("/api/v1/live-sessions", json={"title": "x"}, headers=auth["supervisor"])
    ).status_code == 403

    live = new_session(client, editor)
    base = f"/api/v1/live-sessions/{live['id']}"
    for who, status in (("huangping-editor", 404), ("kaili-reviewer", 403), ("supervisor", 403)):
        response = client.post(f"{base}/entries", json={"text": "x"}, headers=auth[who])
        assert response.status_code == status, who  # 404: outside the reach, it does not exist
    assert client.post(f"{base}/entries", json={"text": "  "}, headers=editor).status_code == 422
    assert client.post(f"{base}/entries", json={"text": ""}, headers=editor).status_code == 422
    client.post(f"{base}/entries", json={"text": "原文"}, headers=editor)
    no_note = client.patch(f"{base}/entries/1", json={"text": "改"}, headers=editor)
    assert no_note.status_code == 422 and no_note.json()["field"] == "correction_note"
    assert client.request("DELETE", f"{base}/entries/1", json={}, headers=editor).status_code == 422
    assert (
        client.patch(f"{base}/entries/99", json={"pinned": True}, headers=editor).status_code == 404
    )
    assert client.get("/api/v1/live-sessions/9999", headers=editor).status_code == 404
    assert client.get(base, headers=auth["huangping-editor"]).status_code == 404
    assert client.post(f"{base}/end", headers=auth["huangping-editor"]).status_code == 404
    assert client.post(f"{base}/end", headers=auth["kaili-reviewer"]).status_code == 403
    assert client.post(f"{base}/end", headers=editor).status_code == 200
    assert client.post(f"{base}/start", headers=editor).status_code == 409
    with Session(engine_for(url)) as session:
        actions = {e.action for e in session.exec(select(AuditEntry)).all()}
    assert {"live.create", "live.end"} <= actions


def test_approval_mode_holds_contributors_entries_for_the_chief_editor(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    chief = auth["qdn-editor"]  # the prefecture editor creates the county's session
    live = new_session(client, chief, approval_required=True)
    base = f"/api/v1/live-sessions/{live['id']}"
    contributor = auth["kaili-editor"]
    held = client.post(f"{base}/entries", json={"text": "待审内容"}, headers=contributor)
    assert held.status_code == 201 and held.json()["approved"] is False
    assert client.get(f"{base}/entries", headers=chief).json()["entries"] == []
    assert "待审内容" not in client.get(f"/live/{live['slug']}").text
    assert [e["seq"] for e in client.get(f"{base}/pending", headers=chief).json()] == [1]
    refused = client.post(f"{base}/entries/1/approve", headers=contributor)
    assert refused.status_code == 403
    reviewer_ok = client.post(f"{base}/entries/1/approve", headers=auth["kaili-reviewer"])
    assert reviewer_ok.status_code == 200 and reviewer_ok.json()["approved"] is True
    assert [e["text"] for e in client.get(f"{base}/entries", headers=chief).json()["entries"]] == [
        "待审内容"
    ]
    own = client.post(f"{base}/entries", json={"text": "总编直发"}, headers=chief)
    assert own.json()["approved"] is True


def test_the_console_needs_a_login(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    live = new_session(client, auth["kaili-editor"])
    response = client.get(f"/live/{live['slug']}/console", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/live/no-such-session").status_code == 404
    embed = client.get(f"/live/{live['slug']}/embed")
    assert embed.status_code == 200
    assert "frame-ancestors *" in embed.headers["content-security-policy"]  # other sites frame it
    assert "script-src 'self'" in embed.headers["content-security-policy"]
    assert "x-frame-options" not in embed.headers
    page = client.get(f"/live/{live['slug']}")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_event_streams_replay_from_the_last_event_id_and_refuse_what_they_should(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    editor = auth["kaili-editor"]
    live = new_session(client, editor)
    base = f"/api/v1/live-sessions/{live['id']}"
    client.post(f"{base}/start", headers=editor)
    for text in ("一", "二"):
        client.post(f"{base}/entries", json={"text": text}, headers=editor)
    client.post(f"{base}/end", headers=editor)
    stream = f"/live/{live['slug']}/events"

    def body(url: str, **headers: str) -> str:
        with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            return b"".join(response.iter_bytes()).decode()

    replayed = body(f"{stream}?last_event_id=2")  # the entry "二" (3), then the end (4)
    assert "id: 2\n" not in replayed and "id: 3\n" in replayed and '"status":"ended"' in replayed
    header_wins = body(f"{stream}?last_event_id=0", **{"Last-Event-ID": "3"})
    assert "id: 3\n" not in header_wins and "id: 4\n" in header_wins
    missing = client.get("/live/no-such-session/events")
    assert missing.status_code == 404 and "detail" in missing.json()
    assert client.get(f"{stream}?console=1").status_code == 403  # the route: needs a login
    assert client.get(f"{stream}?console=yes").status_code == 422
