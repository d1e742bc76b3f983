"""Reach and tenancy (issue 14, items 1, 2, 10, 13), as a lower-level login would try it.

An admin of 黔东南州 mints users only inside 黔东南州 and never a wider reach; a supervisor reads its
government only; the audit log shows the reader's subtree; live entries by id need a login; and
every action on an object answers 404 to a caller who cannot see it, 403 to one who sees it
without the right, before anything looks at the object's state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.users.models import Role
from tests.factories import make_user, token_for

pytestmark = pytest.mark.integration

Auth = dict[str, dict[str, str]]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _account(client: TestClient, auth: Auth, code: str, name: str) -> int:
    body = {"org_code": code, "platform": "hall", "name": name}
    return int(_ok(client.post("/api/v1/accounts", json=body, headers=auth["admin"]), 201)["id"])


def _post(client: TestClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"title": "防汛通知", "body": "内部草稿：尚未发布。", **extra}
    return _ok(client.post("/api/v1/posts", json=body, headers=headers), 201)  # type: ignore[no-any-return]


def _new_user(client: TestClient, headers: dict[str, str], name: str, role: str, org: str) -> Any:
    body = {"username": name, "password": "long-enough-1", "role": role, "org_code": org}
    return client.post("/api/v1/users", json=body, headers=headers)


# -- 1. one reach rule; no role mints a wider one ---------------------------------------------


# (creator, new role, new org, status): the admin of 黔东南州 and the province's admin
CREATE_CASES = [
    ("qdn-admin", "supervisor", "522600", 201),
    ("qdn-admin", "editor", "522601", 201),
    ("qdn-admin", "admin", "522622", 201),
    ("qdn-admin", "supervisor", "520000", 403),
    ("qdn-admin", "supervisor", "520000-bgt", 403),  # a provincial office reads the province
    ("qdn-admin", "admin", "520000", 403),
    ("qdn-admin", "editor", "520100", 403),
    ("kaili-admin", "editor", "522622", 403),
    ("bgt-admin", "editor", "520000-bgt", 201),
    ("bgt-admin", "supervisor", "520000-bgt", 403),  # its reads would reach the province
    ("admin", "supervisor", "520000-bgt", 201),
    ("admin", "admin", "522600", 201),
    ("qdn-editor", "editor", "522601", 403),
    ("supervisor", "editor", "522601", 403),
]


@pytest.mark.parametrize(("creator", "role", "org", "status"), CREATE_CASES)
def test_an_admin_creates_users_only_in_its_subtree_and_never_a_wider_reach(
    client: TestClient, auth: Auth, guizhou: dict[str, str], creator: str, role: str, org: str,
    status: int,
) -> None:  # fmt: skip
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    make_user(url, "kaili-admin", Role.admin, "522601")
    make_user(url, "bgt-admin", Role.admin, "520000-bgt")  # an admin of a provincial office
    response = _new_user(client, token_for(creator, url), f"new-{role}", role, org)
    assert response.status_code == status, response.text
    if status == 403:
        listed = client.get("/api/v1/users", headers=auth["admin"]).json()
        assert f"new-{role}" not in {u["username"] for u in listed}


def test_a_supervisor_made_by_a_prefecture_admin_reads_that_prefecture_only(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    qdn_admin = token_for("qdn-admin", url)
    province_account = _account(client, auth, "520000-xwb", "省新闻办发布厅")
    kaili_account = _account(client, auth, "522601", "凯里发布厅")
    province_post = _post(client, auth["prov-editor"])
    kaili_post = _post(client, auth["kaili-editor"])
    case = _ok(
        client.post(
            "/api/v1/cases",
            json={"org_code": "520000-xwb", "author_handle": "市民", "text": "咨询"},
            headers=auth["prov-editor"],
        ),
        201,
    )

    _ok(_new_user(client, qdn_admin, "qdn-supervisor", "supervisor", "522600"), 201)
    spy = token_for("qdn-supervisor", url)
    for path in (
        f"/api/v1/posts/{province_post['id']}",
        f"/api/v1/cases/{case['id']}",
        f"/api/v1/accounts/{province_account}",
    ):
        assert client.get(path, headers=spy).status_code == 404, path
    assert client.get(f"/api/v1/posts/{kaili_post['id']}", headers=spy).status_code == 200
    assert client.get(f"/api/v1/accounts/{kaili_account}", headers=spy).status_code == 200
    assert [p["id"] for p in client.get("/api/v1/posts", headers=spy).json()] == [kaili_post["id"]]
    assert [a["id"] for a in client.get("/api/v1/accounts", headers=spy).json()] == [kaili_account]
    assert client.get("/api/v1/audits/matrix", headers=spy).status_code == 403
    about = {
        (e["object_type"], e["object_id"])
        for e in client.get("/api/v1/audit-log", headers=spy).json()["items"]
    }
    assert ("post", str(kaili_post["id"])) in about and ("account", str(kaili_account)) in about
    assert ("post", str(province_post["id"])) not in about
    assert ("account", str(province_account)) not in about

    # the demo's supervisor at 省政府办公厅 still reads the whole province
    supervisor = auth["supervisor"]
    for path in (f"/api/v1/posts/{province_post['id']}", f"/api/v1/cases/{case['id']}"):
        assert client.get(path, headers=supervisor).status_code == 200, path
    assert client.get("/api/v1/audits/matrix", headers=supervisor).status_code == 200


# -- 2. the audit log: the reader's subtree; logins, refusals and user changes -----------------


def test_the_audit_log_shows_the_readers_subtree_with_logins_and_refusals(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    qdn_admin = token_for("qdn-admin", url)
    _ok(_new_user(client, auth["admin"], "prov-new", "editor", "520000-xwb"), 201)
    _ok(_new_user(client, qdn_admin, "kaili-new", "editor", "522601"), 201)
    _post(client, auth["prov-editor"], title="省级稿件")
    login = {"username": "kaili-editor", "password": "kaili-editor-password"}
    assert client.post("/api/v1/auth/token", data=login).status_code == 200
    wrong = {"username": "kaili-editor", "password": "not-the-password"}
    assert client.post("/api/v1/auth/token", data=wrong).status_code == 422
    ghost = {"username": "nobody-at-all", "password": "whatever-1"}
    assert client.post("/api/v1/auth/token", data=ghost).status_code == 422
    assert client.get("/api/v1/audit-log", headers=auth["huangping-editor"]).status_code == 403
    assert client.get("/api/v1/users", headers=auth["prov-editor"]).status_code == 403

    def entries(headers: dict[str, str]) -> list[dict[str, Any]]:
        body = _ok(client.get("/api/v1/audit-log", params={"limit": 500}, headers=headers))
        assert body["total"] == len(body["items"])
        return body["items"]  # type: ignore[no-any-return]

    def seen(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(e["action"], e["actor_name"]) for e in items}

    mine = entries(qdn_admin)
    assert seen(mine) == {
        ("user.create", "qdn-admin"),
        ("auth.login", "kaili-editor"),
        ("auth.login_failed", "kaili-editor"),
        ("auth.forbidden", "huangping-editor"),
    }
    assert {e["client_ip"] for e in mine} == {"203.0.113.7"}
    everything = entries(auth["admin"])
    assert seen(mine) < seen(everything)
    assert {
        ("user.create", "admin"),
        ("post.create", "prov-editor"),
        ("auth.forbidden", "prov-editor"),
        ("auth.login_failed", "nobody-at-all"),  # of no org: the root's admin only
    } <= seen(everything)
    assert seen(entries(auth["supervisor"])) == seen(everything)  # 省政府办公厅: the province


def test_a_throttled_login_is_an_audit_event_of_the_users_org(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    wrong = {"username": "huangping-editor", "password": "not-the-password"}
    answers = [client.post("/api/v1/auth/token", data=wrong).status_code for _ in range(6)]
    assert answers == [422] * 5 + [429]
    body = _ok(client.get("/api/v1/audit-log", params={"actor": "huangping-editor"},
                          headers=token_for("qdn-admin", url)))  # fmt: skip
    assert [e["action"] for e in body["items"]] == ["auth.login_locked"] + ["auth.login_failed"] * 5
    elsewhere = client.get("/api/v1/audit-log", headers=auth["kaili-editor"])
    assert elsewhere.status_code == 403


def _login(client: TestClient, username: str) -> None:
    """Log in through the login page (a fresh client: no session cookie yet)."""
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    form = {"username": username, "password": f"{username}-password", "csrf": csrf}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def test_the_audit_log_page_is_scoped_and_page_refusals_are_logged(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    _ok(_new_user(client, auth["admin"], "prov-secret-user", "editor", "520000-xwb"), 201)
    _login(client, "huangping-editor")
    assert client.get("/audit-log").status_code == 403  # a page's refusal
    client.cookies.clear()
    _login(client, "qdn-admin")
    log = client.get("/audit-log")
    assert log.status_code == 200
    assert "prov-secret-user" not in log.text
    for seen in ("auth.login", "qdn-admin", "auth.forbidden", "huangping-editor"):
        assert seen in log.text, seen


# -- 10. live entries by id need a login; the public reads by slug once started ---------------


def test_live_entries_by_id_need_the_reach_and_the_public_waits_for_the_start(
    client: TestClient, auth: Auth
) -> None:
    editor = auth["kaili-editor"]
    live = _ok(
        client.post(
            "/api/v1/live-sessions",
            json={"title": "凯里市政府常务会议", "org_code": "522601"},
            headers=editor,
        ),
        201,
    )
    by_id = f"/api/v1/live-sessions/{live['id']}/entries"
    by_slug = f"/live/{live['slug']}/entries"
    _ok(client.post(by_id, json={"text": "内部备注：书记发言稿待定"}, headers=editor), 201)

    assert client.get(by_id).status_code == 401
    assert client.get(by_id, headers=auth["huangping-editor"]).status_code == 404
    mine = _ok(client.get(by_id, headers=editor))
    assert [e["text"] for e in mine["entries"]] == ["内部备注：书记发言稿待定"]
    assert client.get(by_slug).status_code == 404
    assert client.get(f"/live/{live['slug']}/events").status_code == 404
    page = client.get(f"/live/{live['slug']}")
    assert page.status_code == 200 and "即将开始" in page.text
    assert "书记发言稿" not in page.text

    _ok(client.post(f"/api/v1/live-sessions/{live['id']}/start", headers=editor))
    public = _ok(client.get(by_slug))
    assert [e["text"] for e in public["entries"]] == ["内部备注：书记发言稿待定"]
    assert public["status"] == "live"
    assert "书记发言稿" in client.get(f"/live/{live['slug']}").text


# -- 13. permission before state ------------------------------------------------------------


@pytest.fixture
def objects(client: TestClient, auth: Auth, guizhou: dict[str, str]) -> dict[str, Any]:
    """Objects of 凯里市 (and one offer to it), each in a state its actions would refuse (409/422)."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-reviewer", Role.reviewer, "522600")
    editor, reviewer = auth["kaili-editor"], auth["kaili-reviewer"]
    kaili = _account(client, auth, "522601", "凯里发布厅")
    qdn = _account(client, auth, "522600", "黔东南发布厅")
    draft = _post(client, editor, target_account_ids=[kaili])
    approved = _post(client, editor, target_account_ids=[kaili])
    _ok(client.post(f"/api/v1/posts/{approved['id']}/submit", headers=editor))
    approved = _ok(client.post(f"/api/v1/posts/{approved['id']}/approve", headers=reviewer))
    delivery = approved["deliveries"][0]["id"]
    client.post(f"/api/v1/deliveries/{delivery}/cancel", headers=editor)
    offered = _post(client, auth["qdn-editor"], target_account_ids=[qdn], org_code="522600")
    _ok(client.post(f"/api/v1/posts/{offered['id']}/submit", headers=auth["qdn-editor"]))
    qdn_reviewer = token_for("qdn-reviewer", url)
    _ok(client.post(f"/api/v1/posts/{offered['id']}/approve", headers=qdn_reviewer))
    offer = _ok(
        client.post(
            f"/api/v1/posts/{offered['id']}/forward",
            json={"org_codes": ["522601"]},
            headers=auth["qdn-editor"],
        )
    )[0]["offer_id"]
    _ok(client.post(f"/api/v1/forward-offers/{offer}/decline", json={}, headers=editor))
    now = datetime.now(UTC).isoformat()
    clock = _ok(
        client.post(
            "/api/v1/clocks",
            json={"kind": "emergency", "org_code": "522601", "subject": "险情", "started_at": now},
            headers=editor,
        ),
        201,
    )["id"]
    _ok(client.post(f"/api/v1/clocks/{clock}/stop", json={}, headers=editor))
    case = _ok(
        client.post(
            "/api/v1/cases",
            json={"org_code": "522601", "author_handle": "市民", "text": "路灯坏了"},
            headers=editor,
        ),
        201,
    )["id"]
    _ok(client.post(f"/api/v1/cases/{case}/close", json={"reason": "已处理"}, headers=editor))
    live = _ok(
        client.post("/api/v1/live-sessions", json={"title": "会议", "org_code": "522601"}, headers=editor),
        201,
    )["id"]  # fmt: skip
    _ok(client.post(f"/api/v1/live-sessions/{live}/entries", json={"text": "一"}, headers=editor), 201)  # fmt: skip
    _ok(client.post(f"/api/v1/live-sessions/{live}/end", headers=editor))
    return {
        "draft": draft["id"],
        "approved": approved["id"],
        "delivery": delivery,
        "offered": offered["id"],
        "offer": offer,
        "clock": clock,
        "case": case,
        "live": live,
        "account": kaili,
    }


REASON = {"reason": "不予发布"}
# (method, path, body, status for 凯里市's reviewer: it sees everything, may not write)
ROUTES: list[tuple[str, str, dict[str, Any] | None, int | None]] = [
    ("GET", "/api/v1/posts/{draft}", None, 200),
    ("PATCH", "/api/v1/posts/{draft}", {"title": "改"}, 403),
    ("GET", "/api/v1/posts/{draft}/preview", None, 200),
    ("GET", "/api/v1/posts/{draft}/versions", None, 200),
    ("POST", "/api/v1/posts/{approved}/submit", None, 403),
    ("POST", "/api/v1/posts/{draft}/approve", {}, None),
    ("POST", "/api/v1/posts/{draft}/reject", REASON, None),
    ("POST", "/api/v1/posts/{approved}/cosign", {}, 403),
    ("POST", "/api/v1/posts/{draft}/withdraw", REASON, 403),
    ("POST", "/api/v1/posts/{draft}/correct", {"note": "更正"}, 403),
    ("POST", "/api/v1/posts/{draft}/forward", {"org_codes": ["522622"]}, 403),
    ("GET", "/api/v1/posts/{approved}/forwarding", None, 200),
    ("POST", "/api/v1/deliveries/{delivery}/retry", None, 403),
    ("POST", "/api/v1/deliveries/{delivery}/cancel", None, 403),
    ("POST", "/api/v1/deliveries/{delivery}/mark-published", {"remote_url": "x"}, 403),
    ("GET", "/api/v1/deliveries/{delivery}/attempts", None, 200),
    ("POST", "/api/v1/forward-offers/{offer}/accept", {"account_ids": [1]}, 403),
    ("POST", "/api/v1/forward-offers/{offer}/decline", {}, 403),
    ("GET", "/api/v1/clocks/{clock}", None, 200),
    ("POST", "/api/v1/clocks/{clock}/stop", {}, 403),
    ("POST", "/api/v1/clocks/{clock}/cancel", {"reason": "误开"}, 403),
    ("GET", "/api/v1/cases/{case}", None, 200),
    ("POST", "/api/v1/cases/{case}/triage", {"category": "question"}, None),
    ("POST", "/api/v1/cases/{case}/assign", {"org_code": "522601"}, None),
    ("POST", "/api/v1/cases/{case}/transfer", {"org_code": "522622", "reason": "转办"}, None),
    ("POST", "/api/v1/cases/{case}/notes", {"text": "备注"}, None),
    ("POST", "/api/v1/cases/{case}/replies", {"text": "您好"}, None),
    ("POST", "/api/v1/cases/{case}/close", {}, None),
    ("POST", "/api/v1/cases/triage", None, None),  # body built below: the case's id
    ("GET", "/api/v1/live-sessions/{live}", None, 200),
    ("PATCH", "/api/v1/live-sessions/{live}", {"poll_interval_seconds": 60}, 403),
    ("POST", "/api/v1/live-sessions/{live}/start", None, 403),
    ("POST", "/api/v1/live-sessions/{live}/end", None, 403),
    ("GET", "/api/v1/live-sessions/{live}/entries", None, 200),
    ("GET", "/api/v1/live-sessions/{live}/pending", None, 403),
    ("POST", "/api/v1/live-sessions/{live}/entries", {"text": "x"}, 403),
    ("PATCH", "/api/v1/live-sessions/{live}/entries/1", {"pinned": True}, 403),
    ("DELETE", "/api/v1/live-sessions/{live}/entries/1", {"correction_note": "删"}, 403),
    ("POST", "/api/v1/live-sessions/{live}/entries/1/approve", None, None),
    ("GET", "/api/v1/accounts/{account}", None, 200),
    ("PATCH", "/api/v1/accounts/{account}", {"status": "closed"}, 403),
    ("POST", "/api/v1/accounts/{account}/test", None, 403),
    ("GET", "/accounts/{account}/weibo/authorize", None, 403),
]


def _call(
    client: TestClient, objects: dict[str, Any], route: tuple[str, str, Any, Any], who: dict[str, str]
) -> Any:  # fmt: skip
    method, path, body, _ = route
    if path == "/api/v1/cases/triage":
        body = {"case_ids": [objects["case"]], "category": "question"}
    kwargs: dict[str, Any] = {"headers": who, "follow_redirects": False}
    if body is not None:
        kwargs["json"] = body
    return client.request(method, path.format(**objects), **kwargs)


def test_an_unrelated_county_editor_learns_nothing_about_another_countys_objects(
    client: TestClient, auth: Auth, objects: dict[str, Any]
) -> None:
    """Every route: 404 (never 403, 409 or 422), and no name of the object's org in the answer."""
    answers = {}
    for route in ROUTES:
        response = _call(client, objects, route, auth["huangping-editor"])
        leaks = "凯里" in response.text or "黄平" in response.text
        answers[f"{route[0]} {route[1]}"] = (response.status_code, leaks)
    wrong = {route: answer for route, answer in answers.items() if answer != (404, False)}
    assert wrong == {}


def test_who_sees_an_object_without_the_right_gets_403_before_its_state(
    client: TestClient, auth: Auth, objects: dict[str, Any]
) -> None:
    """凯里市's reviewer sees every object: reads answer 200, writes it has no right to 403."""
    answers = {
        f"{route[0]} {route[1]}": _call(client, objects, route, auth["kaili-reviewer"]).status_code
        for route in ROUTES
        if route[3] is not None
    }
    expected = {f"{m} {p}": status for m, p, _, status in ROUTES if status is not None}
    assert answers == expected


def test_a_post_named_for_co_signature_is_seen_by_the_co_signer_only(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "huangping-reviewer", Role.reviewer, "522622")
    post = _post(client, auth["kaili-editor"], cosign_org_codes=["522622"])
    cosigner = token_for("huangping-reviewer", url)
    assert client.get(f"/api/v1/posts/{post['id']}", headers=cosigner).status_code == 200
    early = client.post(f"/api/v1/posts/{post['id']}/cosign", json={}, headers=cosigner)
    assert early.status_code == 409  # it sees the post: the state may be told
    stranger = client.post(
        f"/api/v1/posts/{post['id']}/cosign", json={}, headers=auth["qdn-editor"]
    )
    assert stranger.status_code == 403  # 黔东南州 sees 凯里市's post but co-signs nothing
