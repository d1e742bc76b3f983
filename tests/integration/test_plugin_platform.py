"""A platform the hub has never heard of, added from outside ``hub/`` (tests/bulletin.py).

It is registered with ``connectors.registry.register`` only, and goes through everything an
editor and a supervisor do: account creation, compose and preview, review, fan-out by the
engine's publish task, the delivery board, withdrawal and the matrix coverage audit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from connectors import registry
from hub.audit.service import audit_to_dict, run_audit
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.pacing import get_pacer
from hub.policies import parse_policy
from tests.bulletin import BOARD, BulletinConnector

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def bulletin() -> Iterator[None]:
    BOARD.reset()
    BOARD.open_board("kaili-east", "board-key-7f3a")
    registry.register(BulletinConnector)
    yield
    registry.unregister("bulletin")
    BOARD.reset()


def _board_account(client: TestClient, auth: dict[str, dict[str, str]]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "bulletin",
            "name": "凯里东区社区公告栏",
            "credentials": {"board": "kaili-east", "access_key": "board-key-7f3a"},
        },
        headers=auth["admin"],
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _run(url: str, delivery_id: int, task: str = "publish") -> str:
    with Session(engine_for(url)) as session:
        if task == "withdraw":
            return engine.withdraw(session=session, delivery_id=delivery_id)
        return engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())


def test_an_unregistered_platform_is_refused_in_words(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "bulletin", "name": "公告栏"},
        headers=auth["admin"],
    )
    assert response.status_code == 422
    assert "未知平台「bulletin」" in response.text


def test_a_platform_from_outside_the_hub_goes_from_compose_to_withdrawal(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    bulletin: None,
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    missing_key = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "bulletin", "name": "公告栏"},
        headers=auth["admin"],
    )
    assert missing_key.status_code == 422  # its connector says credentials are needed
    account = _board_account(client, auth)
    assert account["platform"] == "bulletin" and account["has_credentials"] is True
    listed = client.get("/api/v1/accounts", params={"platform": "bulletin"}, headers=auth["admin"])
    assert [a["id"] for a in listed.json()] == [account["id"]]

    # compose and preview: the connector's rendition and its problems, in the editor's words
    editor = auth["kaili-editor"]
    created = client.post(
        "/api/v1/posts",
        json={
            "title": "东区停水通知",
            "body": "因管网检修，**明日**9时至17时停水。" + "请提前储水。" * 100,
            "target_account_ids": [account["id"]],
        },
        headers=editor,
    )
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    preview = client.get(f"/api/v1/posts/{post_id}/preview", headers=editor).json()
    board_preview = next(p for p in preview if p["platform"] == "bulletin")
    assert [p["code"] for p in board_preview["problems"]] == ["bulletin.too_long"]
    assert "公告正文超过500字" in board_preview["problems"][0]["message"]
    refused = client.post(f"/api/v1/posts/{post_id}/submit", headers=editor)
    assert refused.status_code in (400, 409, 422)
    assert "公告正文超过500字" in refused.text

    edited = client.patch(
        f"/api/v1/posts/{post_id}",
        json={"body": "因管网检修，**明日**9时至17时停水。请提前储水。"},
        headers=editor,
    )
    assert edited.status_code == 200, edited.text
    preview = client.get(f"/api/v1/posts/{post_id}/preview", headers=editor).json()
    board_preview = next(p for p in preview if p["platform"] == "bulletin")
    assert board_preview["problems"] == []
    assert board_preview["text"] == "因管网检修，明日9时至17时停水。请提前储水。"

    # review, then the fan-out through the engine's publish task
    assert client.post(f"/api/v1/posts/{post_id}/submit", headers=editor).status_code == 200
    approved = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert approved.status_code == 200, approved.text
    deliveries = approved.json()["deliveries"]
    assert [d["account_id"] for d in deliveries] == [account["id"]]
    delivery_id = deliveries[0]["id"]
    assert _run(url, delivery_id) == "published"
    assert _run(url, delivery_id) == "skipped"  # already done: never sent twice
    notices = BOARD.on("kaili-east")
    assert [n.title for n in notices] == ["东区停水通知"]
    assert f"http://hall.test/hall/posts/{post_id}" in notices[0].text
    assert BOARD.calls == {"publish": 1}

    # the delivery board: the API and the page, with the platform's own label
    post = client.get(f"/api/v1/posts/{post_id}", headers=editor).json()
    (row,) = post["deliveries"]
    assert (row["status"], row["remote_id"]) == ("published", notices[0].remote_id)
    assert row["remote_url"] == f"https://board.example/kaili-east/{notices[0].remote_id}"
    page_client = TestClient(client.app, client=("203.0.113.7", 50001))
    _log_in(page_client, "kaili-editor")
    board_page = page_client.get(f"/posts/{post_id}/board")
    assert board_page.status_code == 200
    assert "社区公告栏" in board_page.text
    blob = re.search(
        r'<script type="application/json" id="platforms">(.*?)</script>', board_page.text
    )
    assert blob and '"bulletin": {"label": "社区公告栏"' in blob.group(1)
    accounts_page = page_client.get("/accounts")
    assert "凯里东区社区公告栏" in accounts_page.text and "社区公告栏" in accounts_page.text
    assert f"/accounts/{account['id']}/bulletin/authorize" not in accounts_page.text
    # no OAuth capability: no binding route either
    no_binding = page_client.get(f"/accounts/{account['id']}/bulletin/authorize")
    assert no_binding.status_code == 404

    # withdrawal takes the notice down
    withdrawn = client.post(
        f"/api/v1/posts/{post_id}/withdraw", json={"reason": "检修推迟"}, headers=editor
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert _run(url, delivery_id, "withdraw") == "withdrawn"
    assert BOARD.on("kaili-east") == []
    post = client.get(f"/api/v1/posts/{post_id}", headers=editor).json()
    assert [d["status"] for d in post["deliveries"]] == ["withdrawn"]


def test_the_matrix_audit_counts_the_new_platform(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    bulletin: None,
) -> None:
    """A province's own policy can require the new platform; the audit names it in words."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    _board_account(client, auth)
    policy = parse_policy(
        [
            (
                "boards",
                {
                    "preset": {"title_zh": "社区公告栏全覆盖", "title_en": "Community boards"},
                    "audit": {"platforms": ["bulletin"]},
                    "findings": {"missing": {"veto": True}},
                    "coverage": {
                        "county-boards": {
                            "title_zh": "县级政府开设社区公告栏",
                            "title_en": "County governments run a community board",
                            "levels": ["county"],
                            "platforms": ["bulletin"],
                        }
                    },
                },
            )
        ]
    )
    with Session(engine_for(url)) as session:
        audit = run_audit(
            session=session,
            policy=policy,
            as_of=date(2026, 6, 30),
            tz=SHANGHAI,
            now=datetime(2026, 6, 30, 12, tzinfo=SHANGHAI),
        )
    body = audit_to_dict(audit)
    missing = {f["org_code"]: f for f in body["findings"] if f["code"] == "missing"}
    assert "522601" not in missing  # 凯里市 has its board
    assert missing["522622"]["platform"] == "bulletin"  # 黄平县 has none
    assert missing["522622"]["text_zh"] == "未开通社区公告栏"
    assert missing["522622"]["text_en"] == "No community notice board"


def _log_in(browser: TestClient, username: str) -> None:
    form = browser.get("/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match is not None
    answer = browser.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": match.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
