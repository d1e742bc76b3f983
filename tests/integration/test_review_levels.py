"""Review levels (三审三校) through the API: an org's chain, a post moving level by level, the
author and a second-level repeat refused, rejection, the emergency fast path, and no chain."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.users.models import Role
from tests.factories import make_user, token_for
from tests.integration.test_editor_pages import login
from tests.integration.test_posts_workflow import draft

pytestmark = pytest.mark.integration


@pytest.fixture
def hall(client: TestClient, auth: dict[str, dict[str, str]]) -> int:
    response = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def people(guizhou: dict[str, str]) -> dict[str, Any]:
    url = guizhou["GOVHUB_DATABASE_URL"]
    lead = make_user(url, "kaili-lead", Role.reviewer, "522601")
    make_user(url, "kaili-reviewer2", Role.reviewer, "522601")
    make_user(url, "kaili-admin", Role.admin, "522601")
    outsider = make_user(url, "huangping-reviewer", Role.reviewer, "522622")
    return {
        "lead_id": lead.id,
        "outsider_id": outsider.id,
        **{name: token_for(name, url) for name in ("kaili-lead", "kaili-reviewer2", "kaili-admin")},
    }


CHAIN = "/api/v1/orgs/522601/review-chain"


def set_chain(
    client: TestClient, headers: dict[str, str], lead_id: int, emergency: str = "last"
) -> dict[str, Any]:
    body = {
        "levels": [{"name": "初审", "role": "reviewer"}, {"name": "终审", "user_ids": [lead_id]}],
        "emergency": emergency,
    }
    response = client.put(CHAIN, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def submitted(client: TestClient, headers: dict[str, str], hall: int, **extra: Any) -> int:
    post = draft(client, headers, target_account_ids=[hall], **extra)
    response = client.post(f"/api/v1/posts/{post['id']}/submit", headers=headers)
    assert response.status_code == 200, response.text
    return int(post["id"])


def test_only_admins_of_the_org_set_a_valid_chain(
    client: TestClient, auth: dict[str, dict[str, str]], people: dict[str, Any]
) -> None:
    default = client.get(CHAIN, headers=auth["kaili-editor"]).json()
    assert default["configured"] is False and len(default["levels"]) == 1
    lead = people["lead_id"]
    ok = {"levels": [{"name": "初审", "role": "reviewer"}]}
    assert client.put(CHAIN, json=ok, headers=auth["kaili-editor"]).status_code == 403
    assert (
        client.put("/api/v1/orgs/522622/review-chain", json=ok, headers=people["kaili-admin"])
    ).status_code == 404  # another county: outside the admin's reach
    four = {"levels": [{"name": f"第{i}级", "role": "reviewer"} for i in range(4)]}
    assert client.put(CHAIN, json=four, headers=auth["admin"]).status_code == 422
    nobody = client.put(CHAIN, json={"levels": [{"name": "初审"}]}, headers=auth["admin"])
    assert nobody.status_code == 422 and "须指定角色" in nobody.text
    same = {"levels": [{"name": "初审", "role": "reviewer"}, {"name": "初审", "role": "admin"}]}
    assert "不能重复" in client.put(CHAIN, json=same, headers=auth["admin"]).text
    far = {"levels": [{"name": "终审", "user_ids": [people["outsider_id"]]}]}
    outside = client.put(CHAIN, json=far, headers=auth["admin"])
    assert outside.status_code == 422 and "不能审核凯里市的稿件" in outside.text
    chain = set_chain(client, people["kaili-admin"], lead)
    assert chain["configured"] is True
    assert [lv["name"] for lv in chain["levels"]] == ["初审", "终审"]
    assert chain["levels"][1]["users"] == ["kaili-lead"]


def test_a_post_climbs_the_chain_one_person_per_level(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    set_chain(client, auth["admin"], people["lead_id"])
    post_id = submitted(client, people["kaili-admin"], hall)  # an admin may write and review
    url = f"/api/v1/posts/{post_id}"
    review = client.get(url, headers=auth["kaili-editor"]).json()["review"]
    assert review["current_level"] == 1
    assert [s["state"] for s in review["steps"]] == ["waiting", "pending"]

    own = client.post(f"{url}/approve", headers=people["kaili-admin"])
    assert own.status_code == 403 and "作者" in own.json()["detail"]
    first = client.post(
        f"{url}/approve", json={"comment": "事实无误"}, headers=auth["kaili-reviewer"]
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "in_review" and body["deliveries"] == []  # nothing goes out yet
    assert body["review"]["current_level"] == 2
    step = body["review"]["steps"][0]
    assert (step["state"], step["decided_by"], step["comment"]) == (
        "approved",
        "kaili-reviewer",
        "事实无误",
    )
    assert step["decided_at"]

    again = client.post(f"{url}/approve", headers=auth["kaili-reviewer"])
    assert again.status_code == 403 and "已审核过" in again.json()["detail"]
    unnamed = client.post(f"{url}/approve", headers=people["kaili-reviewer2"])
    assert unnamed.status_code == 403 and "终审" in unnamed.json()["detail"]

    last = client.post(f"{url}/approve", headers=people["kaili-lead"])
    assert last.status_code == 200, last.text
    body = last.json()
    assert body["status"] == "publishing" and body["approved_version"] == 1
    assert [d["account_id"] for d in body["deliveries"]] == [hall]
    assert [(s["state"], s["decided_by"]) for s in body["review"]["steps"]] == [
        ("approved", "kaili-reviewer"),
        ("approved", "kaili-lead"),
    ]


def test_a_rejection_at_any_level_returns_the_post_to_its_author(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    set_chain(client, auth["admin"], people["lead_id"])
    post_id = submitted(client, auth["kaili-editor"], hall)
    url = f"/api/v1/posts/{post_id}"
    assert client.post(f"{url}/approve", headers=auth["kaili-reviewer"]).status_code == 200
    rejected = client.post(
        f"{url}/reject", json={"reason": "数据需核实"}, headers=people["kaili-lead"]
    )
    assert rejected.status_code == 200
    body = rejected.json()
    assert body["status"] == "rejected" and body["reason"] == "数据需核实"
    assert [s["state"] for s in body["review"]["steps"]] == ["approved", "rejected"]
    assert body["review"]["steps"][1]["decided_by"] == "kaili-lead"
    again = client.post(f"{url}/submit", headers=auth["kaili-editor"]).json()
    assert again["status"] == "in_review" and again["review"]["current_level"] == 1


def test_emergency_posts_take_the_orgs_fast_path(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    set_chain(client, auth["admin"], people["lead_id"], emergency="last")
    post_id = submitted(client, auth["kaili-editor"], hall, urgency="emergency")
    url = f"/api/v1/posts/{post_id}"
    review = client.get(url, headers=auth["kaili-editor"]).json()["review"]
    assert review["current_level"] == 2 and review["fast_path"] is True
    assert client.post(f"{url}/approve", headers=auth["kaili-reviewer"]).status_code == 403
    done = client.post(f"{url}/approve", headers=people["kaili-lead"]).json()
    assert done["status"] == "publishing"
    assert [s["state"] for s in done["review"]["steps"]] == ["skipped", "approved"]

    set_chain(client, auth["admin"], people["lead_id"], emergency="one")
    post_id = submitted(client, auth["kaili-editor"], hall, urgency="emergency")
    one = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert one.status_code == 200 and one.json()["status"] == "publishing"

    set_chain(client, auth["admin"], people["lead_id"], emergency="full")
    post_id = submitted(client, auth["kaili-editor"], hall, urgency="emergency")
    full = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert full.json()["status"] == "in_review" and full.json()["review"]["current_level"] == 2


def test_without_a_chain_one_approval_still_releases(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    set_chain(client, auth["admin"], people["lead_id"])
    assert client.delete(CHAIN, headers=auth["admin"]).status_code == 204
    post_id = submitted(client, auth["kaili-editor"], hall)
    body = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"]).json()
    assert body["status"] == "publishing" and body["review"] is None


def test_the_admin_form_sets_the_chain_and_the_pages_show_it(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    login(client, "kaili-admin")
    form = client.get("/admin/review-chain?org=522601")
    assert form.status_code == 200 and "一级审核（未设置审核链）" in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    fields = {
        "csrf": csrf.group(1),
        "org": "522601",
        "name1": "初审",
        "role1": "reviewer",
        "name2": "终审",
        "users2": str(people["lead_id"]),
        "emergency": "one",
    }
    saved = client.post("/admin/review-chain", data=fields, follow_redirects=True)
    assert "已保存凯里市的审核流程：初审 → 终审" in saved.text
    assert client.get(CHAIN, headers=auth["kaili-editor"]).json()["emergency"] == "one"
    bad = client.post(
        "/admin/review-chain",
        data={**fields, "users2": str(people["outsider_id"])},
        follow_redirects=True,
    )
    assert "不能审核凯里市的稿件" in bad.text
    assert client.get("/admin/review-chain?org=522622").status_code == 404

    post_id = submitted(client, auth["kaili-editor"], hall)
    client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    client.cookies.clear()
    login(client, "kaili-lead")
    queue = client.get("/review")
    assert f'href="/review/{post_id}"' in queue.text and "终审" in queue.text
    page = client.get(f"/review/{post_id}")
    assert "审核流程" in page.text and "kaili-reviewer" in page.text
    assert 'data-state="waiting"' in page.text and "批准发布" in page.text
    board = client.get(f"/posts/{post_id}/board")
    assert 'data-level="1" data-state="approved"' in board.text


def test_a_post_submitted_before_the_chain_existed_enters_it_at_its_next_decision(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    people: dict[str, Any],
    hall: int,
) -> None:
    post_id = submitted(client, auth["kaili-editor"], hall)
    set_chain(client, auth["admin"], people["lead_id"])
    first = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert first.json()["status"] == "in_review" and first.json()["review"]["current_level"] == 2
