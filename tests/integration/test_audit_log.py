from __future__ import annotations

from fastapi.testclient import TestClient


def test_audit_log_is_for_admins_and_supervisors_and_filters(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    client.post(
        "/api/v1/users",
        json={
            "username": "new-editor",
            "password": "long-enough-1",
            "role": "editor",
            "org_code": "522622",
        },
        headers=auth["admin"],
    )
    client.post(
        "/api/v1/accounts",
        json={"org_code": "522622", "platform": "hall", "name": "黄平发布厅"},
        headers=auth["admin"],
    )
    for who in ("kaili-editor", "kaili-reviewer"):
        assert client.get("/api/v1/audit-log", headers=auth[who]).status_code == 403
    everything = client.get("/api/v1/audit-log", headers=auth["supervisor"])
    assert everything.status_code == 200
    assert everything.json()["total"] == 4
    refusals = [e for e in everything.json()["items"] if e["action"] == "auth.forbidden"]
    assert sorted(e["actor_name"] for e in refusals) == ["kaili-editor", "kaili-reviewer"]
    assert {e["object_id"] for e in refusals} == {"GET /api/v1/audit-log"}
    users_only = client.get(
        "/api/v1/audit-log", params={"object_type": "user"}, headers=auth["admin"]
    ).json()
    assert [e["summary"] for e in users_only["items"]] == ["new-editor (editor) @ 黄平县"]
    none_yet = client.get(
        "/api/v1/audit-log", params={"since": "2999-01-01T00:00:00Z"}, headers=auth["admin"]
    ).json()
    assert none_yet["total"] == 0
    # the log has no write routes at all
    assert client.delete("/api/v1/audit-log", headers=auth["admin"]).status_code == 405


def test_users_are_created_within_the_admins_scope(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    short = client.post(
        "/api/v1/users",
        json={"username": "x", "password": "short", "role": "editor", "org_code": "522601"},
        headers=auth["admin"],
    )
    assert short.status_code == 422 and "密码太短" in short.json()["detail"]
    dup = client.post(
        "/api/v1/users",
        json={
            "username": "kaili-editor",
            "password": "long-enough-1",
            "role": "editor",
            "org_code": "522601",
        },
        headers=auth["admin"],
    )
    assert dup.status_code == 409
    assert (
        client.post(
            "/api/v1/users",
            json={
                "username": "y",
                "password": "long-enough-1",
                "role": "admin",
                "org_code": "522601",
            },
            headers=auth["kaili-editor"],
        ).status_code
        == 403
    )
