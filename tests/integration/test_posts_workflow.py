"""The review workflow through the API: four eyes, scope, co-signing, emergencies, versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.db import engine_for
from hub.delivery.models import Delivery
from hub.users.models import Role
from tests.factories import make_user, token_for


@pytest.fixture
def accounts(client: TestClient, auth: dict[str, dict[str, str]]) -> dict[str, int]:
    made = {}
    for code, name in (("522601", "kaili"), ("522622", "huangping"), ("520000-xwb", "xwb")):
        response = client.post(
            "/api/v1/accounts",
            json={"org_code": code, "platform": "hall", "name": f"{name}发布厅"},
            headers=auth["admin"],
        )
        assert response.status_code == 201, response.text
        made[name] = response.json()["id"]
    return made


def draft(client: TestClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"title": "凯里市召开防汛工作会议", "body": "会议部署了**防汛**工作。", **extra}
    response = client.post("/api/v1/posts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_author_cannot_approve_own_post_and_reviewer_can(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "kaili-admin", Role.admin, "522601")  # an admin may also review
    post = draft(client, auth["kaili-editor"], target_account_ids=[accounts["kaili"]])
    assert post["status"] == "draft" and post["version"] == 1
    unsubmitted = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"])
    assert unsubmitted.status_code == 409
    submitted = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert submitted.json()["status"] == "in_review"

    own = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-editor"])
    assert own.status_code == 403
    assert "post.review" in own.json()["detail"]  # an editor: the role first, then the state
    other_county = client.post(
        f"/api/v1/posts/{post['id']}/approve", headers=auth["huangping-editor"]
    )
    assert other_county.status_code == 404  # outside the reach: as if it did not exist

    approved = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"])
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "publishing" and body["approved_version"] == 1
    assert [d["account_id"] for d in body["deliveries"]] == [accounts["kaili"]]
    assert body["deliveries"][0]["status"] == "queued"
    kaili_admin = token_for("kaili-admin", url)
    assert client.get(f"/api/v1/posts/{post['id']}", headers=kaili_admin).status_code == 200


def test_editing_after_approval_withdraws_the_approval(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    post = draft(
        client, auth["kaili-editor"], target_account_ids=[accounts["kaili"]], scheduled_at=later
    )
    client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    scheduled = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"])
    assert scheduled.json()["status"] == "scheduled"
    first_hash = scheduled.json()["content_hash"]

    edited = client.patch(
        f"/api/v1/posts/{post['id']}",
        json={"body": "会议部署了防汛和地质灾害防治工作。"},
        headers=auth["kaili-editor"],
    ).json()
    assert edited["status"] == "draft"
    assert edited["approved_version"] is None and edited["version"] == 2
    assert edited["content_hash"] != first_hash
    assert {d["status"] for d in edited["deliveries"]} == {"cancelled"}
    # nothing of the old version may go out, and the new one needs a fresh approval
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        live = session.exec(
            select(Delivery).where(Delivery.post_id == post["id"], Delivery.status == "queued")
        ).all()
    assert live == []
    again = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"])
    assert again.status_code == 409
    assert "稿件状态为「草稿」，不能批准" in again.json()["detail"]


def test_targets_outside_the_authors_scope_are_refused(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    refused = client.post(
        "/api/v1/posts",
        json={"title": "t", "body": "b", "target_account_ids": [accounts["huangping"]]},
        headers=auth["kaili-editor"],
    )
    assert refused.status_code == 403
    assert "不在您的范围内" in refused.json()["detail"]
    unknown = client.post(
        "/api/v1/posts",
        json={"title": "t", "body": "b", "target_account_ids": [99999]},
        headers=auth["kaili-editor"],
    )
    assert unknown.status_code == 422 and "99999" in unknown.json()["detail"]
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        from hub.posts.models import Post

        assert session.exec(select(Post)).all() == []
    # the prefecture editor's group resolves only inside its own subtree
    post = draft(
        client, auth["qdn-editor"], target_groups=[{"platform": "hall", "level": "county"}]
    )
    preview = client.get(f"/api/v1/posts/{post['id']}/preview", headers=auth["qdn-editor"])
    assert preview.status_code == 200
    assert [p["platform"] for p in preview.json()] == ["hall"]


def test_another_countys_post_is_not_visible(
    client: TestClient, auth: dict[str, dict[str, str]], accounts: dict[str, int]
) -> None:
    post = draft(client, auth["kaili-editor"], target_account_ids=[accounts["kaili"]])
    assert (
        client.get(f"/api/v1/posts/{post['id']}", headers=auth["huangping-editor"]).status_code
        == 404  # outside the reach: as if it did not exist
    )
    listed = client.get("/api/v1/posts", headers=auth["huangping-editor"]).json()
    assert listed == []
    assert len(client.get("/api/v1/posts", headers=auth["supervisor"]).json()) == 1
    assert (
        client.patch(
            f"/api/v1/posts/{post['id']}", json={"title": "x"}, headers=auth["supervisor"]
        ).status_code
        == 403
    )


def test_cosigning_orgs_confirm_before_approval(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "huangping-reviewer", Role.reviewer, "522622")
    post = draft(
        client,
        auth["kaili-editor"],
        target_account_ids=[accounts["kaili"]],
        cosign_org_codes=["522622"],
    )
    assert (
        client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"]).json()[
            "status"
        ]
        == "cosigning"
    )
    early = client.post(f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"])
    assert early.status_code == 403 and "黄平县" in early.json()["detail"]
    stranger = client.post(f"/api/v1/posts/{post['id']}/cosign", headers=auth["kaili-reviewer"])
    assert stranger.status_code == 403
    hp = token_for("huangping-reviewer", url)
    assert (
        client.post(f"/api/v1/posts/{post['id']}/cosign", headers=hp).json()["status"]
        == "in_review"
    )
    assert (
        client.post(
            f"/api/v1/posts/{post['id']}/approve", headers=auth["kaili-reviewer"]
        ).status_code
        == 200
    )


def test_emergency_fast_path_and_rejection(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-reviewer", Role.reviewer, "522600")
    post = draft(
        client,
        auth["kaili-editor"],
        target_account_ids=[accounts["kaili"]],
        urgency="emergency",
        cosign_org_codes=["522622"],
    )
    # emergencies skip co-signing and may be approved by the parent org's reviewer
    assert (
        client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"]).json()[
            "status"
        ]
        == "in_review"
    )
    approved = client.post(
        f"/api/v1/posts/{post['id']}/approve", headers=token_for("qdn-reviewer", url)
    )
    assert approved.status_code == 200, approved.text

    routine = draft(client, auth["kaili-editor"], target_account_ids=[accounts["kaili"]])
    client.post(f"/api/v1/posts/{routine['id']}/submit", headers=auth["kaili-editor"])
    no_reason = client.post(
        f"/api/v1/posts/{routine['id']}/reject", json={}, headers=auth["kaili-reviewer"]
    )
    assert no_reason.status_code == 422 and "reason is required" in no_reason.json()["detail"]
    rejected = client.post(
        f"/api/v1/posts/{routine['id']}/reject",
        json={"reason": "标题需注明时间"},
        headers=auth["kaili-reviewer"],
    ).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "标题需注明时间"
    resubmitted = client.post(f"/api/v1/posts/{routine['id']}/submit", headers=auth["kaili-editor"])
    assert resubmitted.json()["status"] == "in_review"


def test_submit_refuses_blocking_problems(
    client: TestClient, auth: dict[str, dict[str, str]], accounts: dict[str, int]
) -> None:
    nothing = draft(client, auth["kaili-editor"])
    refused = client.post(f"/api/v1/posts/{nothing['id']}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422 and "发布账号" in refused.json()["detail"]
    bad_time = client.post(
        "/api/v1/posts",
        json={"title": "t", "body": "b", "scheduled_at": "2026-12-01T09:00:00"},
        headers=auth["kaili-editor"],
    )
    assert bad_time.status_code == 422 and "须带时区" in bad_time.json()["detail"]


def test_matrix_forwarding_offer_accept_decline_and_deadline(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    accounts: dict[str, int],
    guizhou: dict[str, str],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "prov-reviewer", Role.reviewer, "520000")
    make_user(url, "gov-editor", Role.editor, "520000")
    editor, reviewer = token_for("gov-editor", url), token_for("prov-reviewer", url)
    post = draft(client, editor, target_account_ids=[accounts["xwb"]])
    client.post(f"/api/v1/posts/{post['id']}/submit", headers=editor)
    early = client.post(
        f"/api/v1/posts/{post['id']}/forward", json={"org_codes": ["522601"]}, headers=editor
    )
    assert early.status_code == 409  # not approved yet
    assert client.post(f"/api/v1/posts/{post['id']}/approve", headers=reviewer).status_code == 200

    due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    offered = client.post(
        f"/api/v1/posts/{post['id']}/forward",
        json={"org_codes": ["522601", "522622"], "due_at": due},
        headers=editor,
    )
    assert offered.status_code == 200, offered.text
    assert {r["org_code"]: r["status"] for r in offered.json()} == {
        "522601": "offered",
        "522622": "offered",
    }
    mine = client.get("/api/v1/forward-offers", headers=auth["kaili-editor"]).json()
    assert [r["org_code"] for r in mine] == ["522601"]
    kaili_offer = mine[0]["offer_id"]
    huangping_offer = next(r["offer_id"] for r in offered.json() if r["org_code"] == "522622")

    not_mine = client.post(
        f"/api/v1/forward-offers/{kaili_offer}/accept",
        json={"account_ids": [accounts["huangping"]]},
        headers=auth["kaili-editor"],
    )
    assert not_mine.status_code == 403
    accepted = client.post(
        f"/api/v1/forward-offers/{kaili_offer}/accept",
        json={"account_ids": [accounts["kaili"]]},
        headers=auth["kaili-editor"],
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["on_time"] is True
    declined = client.post(
        f"/api/v1/forward-offers/{huangping_offer}/decline",
        json={"reason": "本县已另行发布"},
        headers=auth["huangping-editor"],
    )
    assert declined.json()["status"] == "declined"
    again = client.post(
        f"/api/v1/forward-offers/{kaili_offer}/accept",
        json={"account_ids": [accounts["kaili"]]},
        headers=auth["kaili-editor"],
    )
    assert again.status_code == 409

    detail = client.get(f"/api/v1/posts/{post['id']}", headers=editor).json()
    assert sorted(d["account_id"] for d in detail["deliveries"]) == sorted(
        [accounts["xwb"], accounts["kaili"]]
    )
    report = client.get(f"/api/v1/posts/{post['id']}/forwarding", headers=auth["supervisor"])
    assert {r["org_code"]: r["status"] for r in report.json()} == {
        "522601": "accepted",
        "522622": "declined",
    }
