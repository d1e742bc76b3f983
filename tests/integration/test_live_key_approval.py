"""Live key events need a second person before they reach social media: one of the session's
approvers (never the key event's author) in one click, or a plan a reviewer approved before the
session started."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.auditlog.models import AuditEntry
from hub.db import engine_for
from hub.live import service
from hub.live.models import LiveFanout
from hub.posts.models import Approval
from hub.users.models import Role, User
from tests.factories import make_user, token_for
from tests.integration.test_editor_pages import login
from tests.integration.test_live_api import account, new_session

pytestmark = pytest.mark.integration


def user_id(url: str, username: str) -> int:
    with Session(engine_for(url)) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        assert user.id is not None
        return user.id


def fan_out(url: str) -> list[tuple[int, int]]:
    """Run the beat's fan-out once; every (seq, post) sent so far."""
    with Session(engine_for(url)) as session:
        service.fanout(session=session, now=datetime.now(UTC))
        session.commit()
        return [(f.seq, f.post_id) for f in session.exec(select(LiveFanout)).all()]


@pytest.fixture
def setup(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> dict[str, Any]:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "kaili-editor2", Role.editor, "522601")
    return {
        "url": url,
        "weibo": account(url, "522601", "weibo"),
        "editor2": token_for("kaili-editor2", url),
        "editor2_id": user_id(url, "kaili-editor2"),
        "editor_id": user_id(url, "kaili-editor"),
        "reviewer_id": user_id(url, "kaili-reviewer"),
    }


def test_a_key_event_waits_for_an_approver_who_is_not_its_author(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    url, editor = setup["url"], auth["kaili-editor"]
    creator_as_approver = client.post(
        "/api/v1/live-sessions",
        json={"title": "x", "org_code": "522601", "approver_ids": [setup["editor_id"]]},
        headers=editor,
    )
    assert creator_as_approver.status_code == 422 and "创建人" in creator_as_approver.text
    live = new_session(
        client,
        editor,
        target_account_ids=[setup["weibo"]],
        approver_ids=[setup["reviewer_id"], setup["editor2_id"]],
    )
    assert live["approval_required"] is True  # the default now
    assert live["approver_ids"] == [setup["reviewer_id"], setup["editor2_id"]]
    base = f"/api/v1/live-sessions/{live['id']}"
    client.post(f"{base}/start", headers=editor)
    first = client.post(
        f"{base}/entries",
        json={"text": "会议通过《营商环境条例》", "key_event": True},
        headers=editor,
    )
    assert first.status_code == 201 and first.json()["approved"] is True  # readers see it
    assert fan_out(url) == []  # ... but it does not reach Weibo yet
    waiting = client.get(f"{base}/key-pending", headers=auth["kaili-reviewer"]).json()
    assert [(e["seq"], e["key_state"]) for e in waiting] == [(1, "pending_approval")]

    own = client.post(f"{base}/entries/1/approve-key", headers=editor)
    assert own.status_code == 403 and "作者" in own.json()["detail"]
    not_named = client.post(f"{base}/entries/1/approve-key", headers=auth["qdn-editor"])
    assert not_named.status_code == 403 and "指定的审核人" in not_named.json()["detail"]
    outside = client.post(f"{base}/entries/1/approve-key", headers=auth["huangping-editor"])
    assert outside.status_code == 404

    second = client.post(
        f"{base}/entries", json={"text": "第二项要点", "key_event": True}, headers=setup["editor2"]
    )
    assert second.status_code == 201 and second.json()["approved"] is False  # a contributor's
    assert client.post(f"{base}/entries/2/approve", headers=editor).status_code == 200  # 总编
    # editor2 is an approver, but wrote this key event
    assert client.post(f"{base}/entries/2/approve-key", headers=setup["editor2"]).status_code == 403

    approved = client.post(f"{base}/entries/1/approve-key", headers=auth["kaili-reviewer"])
    assert approved.status_code == 200, approved.text
    assert client.post(f"{base}/entries/1/approve-key", headers=setup["editor2"]).status_code == 409
    sent = fan_out(url)
    assert [seq for seq, _ in sent] == [1]
    with Session(engine_for(url)) as session:
        approvals = session.exec(select(Approval).where(Approval.post_id == sent[0][1])).all()
        audit = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "post.approve", AuditEntry.object_id == str(sent[0][1])
            )
        ).all()
    assert [a.reviewer_id for a in approvals] == [setup["reviewer_id"]]
    assert [a.actor_name for a in audit] == ["kaili-reviewer"]
    left = client.get(f"{base}/key-pending", headers=editor).json()
    assert [e["seq"] for e in left] == [2]
    assert client.post(f"{base}/entries/2/approve-key", headers=editor).status_code == 403
    assert (
        client.post(f"{base}/entries/2/approve-key", headers=auth["kaili-reviewer"]).status_code
        == 200
    )
    assert sorted(seq for seq, _ in fan_out(url)) == [1, 2]


def test_a_changed_key_event_needs_approving_again(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    editor = auth["kaili-editor"]
    live = new_session(client, editor, approver_ids=[setup["reviewer_id"]])
    base = f"/api/v1/live-sessions/{live['id']}"
    client.post(f"{base}/entries", json={"text": "初稿", "key_event": True}, headers=editor)
    client.post(f"{base}/entries/1/approve-key", headers=auth["kaili-reviewer"])
    assert client.get(f"{base}/key-pending", headers=editor).json() == []
    client.patch(
        f"{base}/entries/1", json={"text": "改稿", "correction_note": "更正数字"}, headers=editor
    )
    assert [e["text"] for e in client.get(f"{base}/key-pending", headers=editor).json()] == ["改稿"]


def test_a_plan_approved_before_the_start_covers_the_sessions_key_events(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    url, editor = setup["url"], auth["kaili-editor"]
    live = new_session(client, editor, target_account_ids=[setup["weibo"]])
    base = f"/api/v1/live-sessions/{live['id']}"
    empty = client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"])
    assert empty.status_code == 422 and "方案为空" in empty.text
    client.patch(base, json={"plan": "发布常务会议审议的三项议题要点"}, headers=editor)
    assert client.post(f"{base}/plan/approve", headers=editor).status_code == 403  # not a reviewer
    ok = client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"])
    assert ok.status_code == 200 and ok.json()["plan_approved_by"] == setup["reviewer_id"]
    changed = client.patch(base, json={"plan": "另一个方案"}, headers=editor).json()
    assert changed["plan_approved_by"] is None  # a changed plan needs approving again
    client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"])
    client.post(f"{base}/start", headers=editor)
    late = client.patch(base, json={"plan": "开始后改方案"}, headers=editor)
    assert late.status_code == 409
    client.post(f"{base}/entries", json={"text": "要点一", "key_event": True}, headers=editor)
    assert client.get(f"{base}/key-pending", headers=editor).json() == []
    assert [seq for seq, _ in fan_out(url)] == [1]


def test_a_plan_approved_after_the_start_is_refused(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    editor = auth["kaili-editor"]
    live = new_session(client, editor, plan="议题要点")
    base = f"/api/v1/live-sessions/{live['id']}"
    client.post(f"{base}/start", headers=editor)
    late = client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"])
    assert late.status_code == 409 and "开始前" in late.json()["detail"]


def test_the_console_offers_the_one_click_release_to_approvers_only(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    live = new_session(client, auth["kaili-editor"], approver_ids=[setup["reviewer_id"]])
    login(client, "kaili-reviewer")  # a reviewer: no live.run, but named approver
    page = client.get(f"/live/{live['slug']}/console")
    assert page.status_code == 200
    assert 'data-approver="1"' in page.text and "待审要点" in page.text
    assert "要点经审核人通过后才发往社交媒体（您是审核人）" in page.text
    client.cookies.clear()
    login(client, "kaili-editor")
    mine = client.get(f"/live/{live['slug']}/console")
    assert 'data-approver="0"' in mine.text


def test_the_console_shows_the_plan_and_lets_a_reviewer_approve_it_before_the_start(
    client: TestClient, auth: dict[str, dict[str, str]], setup: dict[str, Any]
) -> None:
    live = new_session(client, auth["kaili-editor"], plan="审议三项议题的要点")
    console = f"/live/{live['slug']}/console"
    login(client, "kaili-editor")  # the session's creator may not approve its own plan
    mine = client.get(console).text
    assert "审议三项议题的要点" in mine and 'id="approve-plan"' not in mine
    client.cookies.clear()
    login(client, "kaili-reviewer")
    page = client.get(console).text
    assert 'id="approve-plan"' in page and "未审定：要点须逐条由审核人通过" in page
    client.post(f"/api/v1/live-sessions/{live['id']}/plan/approve", headers=auth["kaili-reviewer"])
    approved = client.get(console).text
    assert "已由 kaili-reviewer" in approved and 'id="approve-plan"' not in approved
    assert "要点按预先审定的方案发往社交媒体" in approved
