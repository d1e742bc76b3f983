from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.accounts.models import Account
from hub.auditlog.models import AuditEntry
from hub.db import engine_for

SECRET = "wx-secret-do-not-leak-123"
WEIBO_TOKEN = "2.00weibo-token-do-not-leak"


def wechat_account(org: str = "522601", **extra: object) -> dict[str, object]:
    return {
        "org_code": org,
        "platform": "wechat",
        "name": "凯里发布",
        "handle": "gh_kaili",
        "opened_on": "2014-05-01",
        "interaction_channel": True,
        "credentials": {"app_id": "wxkaili", "app_secret": SECRET},
        **extra,
    }


def count(model: type, database_url: str) -> int:
    with Session(engine_for(database_url)) as session:
        return len(session.exec(select(model)).all())


def test_admin_creates_accounts_and_credentials_never_come_back(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    guizhou: dict[str, str],
) -> None:
    caplog.set_level(logging.DEBUG)
    created = client.post("/api/v1/accounts", json=wechat_account(), headers=auth["admin"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] and body["org_name"] == "凯里市" and body["has_credentials"] is True
    weibo = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "weibo",
            "name": "凯里发布微博",
            "credentials": {"access_token": WEIBO_TOKEN, "expires_at": "2027-01-31T00:00:00+08:00"},
        },
        headers=auth["admin"],
    )
    assert weibo.status_code == 201
    assert weibo.json()["token_expires_at"].startswith("2027-01-30T16:00:00")

    everything = [
        client.get("/api/v1/accounts", headers=auth["admin"]).text,
        client.get(f"/api/v1/accounts/{body['id']}", headers=auth["kaili-editor"]).text,
        client.patch(
            f"/api/v1/accounts/{body['id']}", json={"name": "凯里发布 官方"}, headers=auth["admin"]
        ).text,
        client.get("/openapi.json").text,
        client.get("/api/v1/audit-log", headers=auth["admin"]).text,
        caplog.text,
    ]
    for text in everything:
        assert SECRET not in text and WEIBO_TOKEN not in text
        assert "credentials_encrypted" not in text
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        stored = session.exec(select(Account).where(Account.platform == "wechat")).one()
        assert SECRET not in stored.credentials_encrypted
        assert SECRET not in repr(stored) and "redacted" in repr(stored)


def test_county_editor_sees_only_its_county(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    kaili = client.post("/api/v1/accounts", json=wechat_account("522601"), headers=auth["admin"])
    huangping = client.post(
        "/api/v1/accounts", json=wechat_account("522622", name="黄平发布"), headers=auth["admin"]
    )
    kaili_id, huangping_id = kaili.json()["id"], huangping.json()["id"]

    editor = auth["kaili-editor"]
    assert client.get(f"/api/v1/accounts/{kaili_id}", headers=editor).status_code == 200
    denied = client.get(f"/api/v1/accounts/{huangping_id}", headers=editor)
    assert denied.status_code == 404  # outside the reach: as if it did not exist
    assert "黄平县" not in denied.json()["detail"]
    assert [a["id"] for a in client.get("/api/v1/accounts", headers=editor).json()] == [kaili_id]
    assert (
        client.get("/api/v1/accounts", params={"org_code": "522622"}, headers=editor).status_code
        == 403
    )
    # an editor may not register or change accounts, even in its own county
    assert (
        client.post("/api/v1/accounts", json=wechat_account("522601"), headers=editor).status_code
        == 403
    )
    assert (
        client.patch(f"/api/v1/accounts/{kaili_id}", json={"name": "x"}, headers=editor).status_code
        == 403
    )
    # the prefecture editor sees both counties; the supervisor sees everything
    qdn = {a["id"] for a in client.get("/api/v1/accounts", headers=auth["qdn-editor"]).json()}
    assert qdn == {kaili_id, huangping_id}
    supervisor = client.get("/api/v1/accounts", headers=auth["supervisor"]).json()
    assert {a["id"] for a in supervisor} == {kaili_id, huangping_id}
    assert (
        client.patch(
            f"/api/v1/accounts/{kaili_id}", json={"name": "x"}, headers=auth["supervisor"]
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (wechat_account("999999"), 422, "999999"),
        ({**wechat_account(), "platform": "douyin"}, 422, "platform"),
        ({"org_code": "522601", "platform": "wechat"}, 422, "name is required"),
        ({**wechat_account(), "credentials": {"app_id": "wx"}}, 422, "app_secret"),
        ({**wechat_account(), "credentials": None}, 422, "须填写凭据"),
        ({**wechat_account(), "opened_on": "yesterday"}, 422, "opened_on"),
        ({**wechat_account(), "colour": "red"}, 422, "colour is not a known field"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_is_written(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
    body: dict[str, object],
    status: int,
    message: str,
) -> None:
    response = client.post("/api/v1/accounts", json=body, headers=auth["admin"])
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    url = guizhou["GOVHUB_DATABASE_URL"]
    assert count(Account, url) == 0
    assert count(AuditEntry, url) == 0


def test_malformed_json_and_huge_bodies(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    headers = {**auth["admin"], "content-type": "application/json"}
    broken = client.post("/api/v1/accounts", content=b'{"org_code": "522601",', headers=headers)
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["detail"]

    huge = json.dumps({**wechat_account(), "name": "长" * (10 * 1024 * 1024 // 3)}).encode()
    assert len(huge) >= 10 * 1024 * 1024
    too_big = client.post("/api/v1/accounts", content=huge, headers=headers)
    assert too_big.status_code == 413
    assert "too large" in too_big.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(11):
            yield b" " * (1024 * 1024)

    streamed = client.post("/api/v1/accounts", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert count(Account, guizhou["GOVHUB_DATABASE_URL"]) == 0


def test_reauthorising_clears_needs_reauth_and_is_audited(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    created = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "weibo",
            "name": "凯里微博",
            "credentials": {"access_token": "old"},
        },
        headers=auth["admin"],
    ).json()
    patched = client.patch(
        f"/api/v1/accounts/{created['id']}", json={"status": "needs_reauth"}, headers=auth["admin"]
    )
    assert patched.json()["status"] == "needs_reauth"
    fixed = client.patch(
        f"/api/v1/accounts/{created['id']}",
        json={"credentials": {"access_token": "new-token", "expires_at": "2027-06-30T00:00:00Z"}},
        headers=auth["admin"],
    ).json()
    assert fixed["status"] == "active"
    log = client.get(
        "/api/v1/audit-log", params={"action": "account."}, headers=auth["supervisor"]
    ).json()
    assert [e["action"] for e in log["items"]] == [
        "account.update",
        "account.update",
        "account.create",
    ]
    assert log["items"][0]["summary"] == "changed: credentials"
    assert all(e["actor_name"] == "admin" and e["client_ip"] == "203.0.113.7" for e in log["items"])
