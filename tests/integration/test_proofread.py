"""Proofreading through the API: the preview names each hit, submit and approve refuse `block`
hits, `warn` hits need a reviewer's reason (recorded), and admins extend the lexicon and the
leaders registry for their subtree (audited)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.users.models import Role
from tests.factories import make_user, token_for
from tests.integration.test_editor_pages import login
from tests.integration.test_inbox import Platforms, _cases, _ingest
from tests.integration.test_inbox import platforms as platforms  # the inbox's fixture
from tests.integration.test_live_api import account

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


def draft(client: TestClient, headers: dict[str, str], body: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/posts", json={"title": "春耕工作会议", "body": body, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def proofread_problems(client: TestClient, post_id: int, headers: dict[str, str]) -> list[Any]:
    preview = client.get(f"/api/v1/posts/{post_id}/preview", headers=headers)
    assert preview.status_code == 200, preview.text
    channel = preview.json()[0]
    return [p for p in channel["problems"] if p["code"].startswith("proofread.")]


def test_preview_names_each_hit_and_submit_refuses_a_serious_misstatement(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    body = "农业部门传达了农业部的通知，凯里市春耕进度全省第一。"
    post = draft(client, auth["kaili-editor"], body, target_account_ids=[hall])
    problems = proofread_problems(client, post["id"], auth["kaili-editor"])
    assert [(p["category"], p["text"], p["suggestion"], p["blocking"]) for p in problems] == [
        ("serious", "农业部", "农业农村部", True),
        ("wording", "全省第一", "", False),
    ]
    serious = problems[0]
    assert body[serious["start"] : serious["end"]] == "农业部" and serious["field"] == "body"
    assert "农业农村部" in serious["message"]

    refused = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422
    assert "「农业部」" in refused.json()["detail"] and "农业农村部" in refused.json()["detail"]
    assert (
        client.get(f"/api/v1/posts/{post['id']}", headers=auth["kaili-editor"]).json()["status"]
        == "draft"
    )

    fixed = body.replace("农业部的", "农业农村部的")
    client.patch(f"/api/v1/posts/{post['id']}", json={"body": fixed}, headers=auth["kaili-editor"])
    submitted = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert submitted.status_code == 200, submitted.text


def test_warn_hits_need_the_reviewers_reason_which_is_recorded(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    post = draft(
        client, auth["kaili-editor"], "凯里市春耕进度全省第一。", target_account_ids=[hall]
    )
    assert (
        client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"]).status_code
        == 200
    )
    url = f"/api/v1/posts/{post['id']}/approve"
    bare = client.post(url, headers=auth["kaili-reviewer"])
    assert bare.status_code == 422
    assert "「全省第一」" in bare.json()["detail"] and "理由" in bare.json()["detail"]
    blank = client.post(
        url,
        json={"acknowledge": [{"text": "全省第一", "reason": "  "}]},
        headers=auth["kaili-reviewer"],
    )
    assert blank.status_code == 422
    reason = "省农业农村厅3月通报的排名"
    approved = client.post(
        url,
        json={"acknowledge": [{"text": "全省第一", "reason": reason}]},
        headers=auth["kaili-reviewer"],
    )
    assert approved.status_code == 200, approved.text
    listed = client.get(
        "/api/v1/proofread/acknowledgements", params={"org": "522601"}, headers=auth["admin"]
    ).json()
    assert [(a["post_id"], a["text"], a["reason"], a["reviewer"]) for a in listed] == [
        (post["id"], "全省第一", reason, "kaili-reviewer")
    ]
    log = client.get(
        "/api/v1/audit-log", params={"action": "proofread."}, headers=auth["admin"]
    ).json()["items"]
    assert any(reason in e["summary"] for e in log)


def test_channel_override_text_is_proofread_for_its_channel_only(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    post = draft(
        client,
        auth["kaili-editor"],
        "会议部署了春耕工作。",
        target_account_ids=[hall],
        overrides={"weibo.text": "请各村按装滴灌设备"},
    )
    preview = client.get(f"/api/v1/posts/{post['id']}/preview", headers=auth["kaili-editor"])
    by_channel = {
        c["platform"]: [p["text"] for p in c["problems"] if p["code"].startswith("proofread.")]
        for c in preview.json()
    }
    assert by_channel["hall"] == []
    refused = client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422 and "「按装」" in refused.json()["detail"]


def test_admins_extend_and_switch_off_entries_for_their_subtree_audited(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    check = "/api/v1/proofread/check"
    text = "凯里帐户管理办法发布，打造最佳营商环境"

    def hits(user: str, org: str) -> list[str]:
        response = client.post(check, json={"text": text, "org_code": org}, headers=auth[user])
        assert response.status_code == 200, response.text
        return [h["text"] for h in response.json()]

    assert hits("kaili-editor", "522601") == ["最佳"]
    entry = {
        "org_code": "522601",
        "category": "typo",
        "term": "帐户",
        "correct": "账户",
        "severity": "block",
    }
    by_editor = client.post("/api/v1/proofread/entries", json=entry, headers=auth["kaili-editor"])
    assert by_editor.status_code == 403
    added = client.post("/api/v1/proofread/entries", json=entry, headers=auth["admin"])
    assert added.status_code == 201, added.text
    off = client.post(
        "/api/v1/proofread/entries",
        json={"org_code": "522601", "category": "wording", "term": "最佳", "enabled": False},
        headers=auth["admin"],
    )
    assert off.status_code == 201
    assert hits("kaili-editor", "522601") == ["帐户"]
    assert hits("huangping-editor", "522622") == ["最佳"]  # another county: the presets only
    outside = client.post(
        check, json={"text": text, "org_code": "522601"}, headers=auth["huangping-editor"]
    )
    assert outside.status_code == 404

    again = client.patch(
        f"/api/v1/proofread/entries/{added.json()['id']}",
        json={"enabled": False},
        headers=auth["admin"],
    )
    assert again.status_code == 200 and again.json()["enabled"] is False
    assert hits("kaili-editor", "522601") == []
    bad = client.post(
        "/api/v1/proofread/entries",
        json={**entry, "term": "农业部", "exceptions": ["农业"]},
        headers=auth["admin"],
    )
    assert bad.status_code == 422 and "应包含词条" in bad.json()["detail"]
    log = client.get(
        "/api/v1/audit-log", params={"action": "proofread.entry"}, headers=auth["admin"]
    ).json()["items"]
    assert {e["action"] for e in log} == {"proofread.entry_add", "proofread.entry_update"}
    assert any("帐户" in e["summary"] and "账户" in e["summary"] for e in log)


def test_leaders_registry_catches_wrong_titles_near_names_and_order(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    for name, title, rank in (("甄立新", "省委书记", 1), ("贾明远", "省长", 2)):
        made = client.post(
            "/api/v1/proofread/leaders",
            json={"org_code": "520000", "name": name, "title": title, "rank": rank, "note": "演示"},
            headers=auth["admin"],
        )
        assert made.status_code == 201, made.text
    text = "副省长贾明远出席。省长贾明元讲话。贾明远、甄立新参加。"
    response = client.post(
        "/api/v1/proofread/check",
        json={"text": text, "org_code": "522601"},
        headers=auth["kaili-editor"],
    )
    found = [(h["text"], h["suggestion"], h["severity"]) for h in response.json()]
    assert found == [
        ("贾明远", "省长", "block"),
        ("贾明元", "贾明远", "block"),
        ("贾明远、甄立新", "甄立新、贾明远", "warn"),
    ]
    listed = client.get("/api/v1/proofread/leaders", headers=auth["kaili-editor"]).json()
    assert [(x["name"], x["rank"]) for x in listed] == [("甄立新", 1), ("贾明远", 2)]
    make_user(guizhou["GOVHUB_DATABASE_URL"], "kaili-admin", Role.admin, "522601")
    county_admin = token_for("kaili-admin", guizhou["GOVHUB_DATABASE_URL"])
    patched = client.patch(
        f"/api/v1/proofread/leaders/{listed[0]['id']}", json={"active": False}, headers=county_admin
    )
    assert patched.status_code == 404  # the province's registry is outside a county's reach


def test_review_page_marks_the_hits_and_asks_a_reason_for_each_warning(
    client: TestClient, auth: dict[str, dict[str, str]], hall: int
) -> None:
    body = "凯里市春耕进度全省第一，打造最佳营商环境。"
    post = draft(client, auth["kaili-editor"], body, target_account_ids=[hall])
    client.post(f"/api/v1/posts/{post['id']}/submit", headers=auth["kaili-editor"])
    login(client, "kaili-reviewer")
    page = client.get(f"/review/{post['id']}")
    assert page.status_code == 200
    assert '<mark class="proof-warn"' in page.text and ">全省第一</mark>" in page.text
    assert 'data-ack-text="全省第一"' in page.text and 'data-ack-text="最佳"' in page.text


def test_live_entries_are_proofread_before_broadcast(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    editor = auth["kaili-editor"]
    made = client.post(
        "/api/v1/live-sessions", json={"title": "春耕现场会", "org_code": "522601"}, headers=editor
    )
    base = f"/api/v1/live-sessions/{made.json()['id']}"
    public = f"/live/{made.json()['slug']}/entries"
    client.post(f"{base}/start", headers=editor)

    refused = client.post(f"{base}/entries", json={"text": "请按装好设备"}, headers=editor)
    assert refused.status_code == 422 and "「按装」" in refused.json()["detail"]
    warned = client.post(f"{base}/entries", json={"text": "春耕进度全省第一"}, headers=editor)
    assert warned.status_code == 201
    assert [h["text"] for h in warned.json()["proofread"]] == ["全省第一"]
    readers = client.get(public).json()["entries"]
    assert [e["text"] for e in readers] == ["春耕进度全省第一"]  # the warning does not block
    assert "proofread" not in readers[0]
    corrected = client.patch(
        f"{base}/entries/{warned.json()['seq']}",
        json={"text": "农业部到会", "correction_note": "改写"},
        headers=editor,
    )
    assert corrected.status_code == 422 and "农业农村部" in corrected.json()["detail"]


def test_inbox_replies_are_proofread_before_they_are_sent(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市春耕通知")
    comment = platforms.weibo.add_comment(status.id, "滴灌设备怎么装？", screen_name="李四")
    _ingest(client, auth)
    case = next(c for c in _cases(client, auth["kaili-editor"]) if c["author_handle"] == "李四")
    url = f"/api/v1/cases/{case['id']}/replies"
    refused = client.post(url, json={"text": "请到站点按装"}, headers=auth["kaili-editor"])
    assert refused.status_code == 422
    assert "「按装」" in refused.json()["detail"] and "安装" in refused.json()["detail"]
    assert platforms.weibo.replies_to(comment.id) == []
    sent = client.post(url, json={"text": "请到站点安装"}, headers=auth["kaili-editor"])
    assert sent.status_code == 201 and sent.json()["status"] == "sent"


def test_an_inspectors_serious_misstatement_finding_vetoes_the_account_under_national_2019(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    weibo = account(guizhou["GOVHUB_DATABASE_URL"], "522601", "weibo")
    finding = {
        "account_id": weibo,
        "link": "https://weibo.com/1234567890/Abc",
        "found_on": "2026-11-02",
        "text": "转发中使用了「中华民国总统」的称谓",
        "note": "省政府办公厅第四季度抽查",
    }
    by_editor = client.post(
        "/api/v1/proofread/findings", json=finding, headers=auth["kaili-editor"]
    )
    assert by_editor.status_code == 403
    recorded = client.post("/api/v1/proofread/findings", json=finding, headers=auth["supervisor"])
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["account_name"] == "522601weibo"
    bad = client.post(
        "/api/v1/proofread/findings", json={**finding, "link": "weibo"}, headers=auth["supervisor"]
    )
    assert bad.status_code == 422 and "链接" in bad.json()["detail"]
    listed = client.get(
        "/api/v1/proofread/findings", params={"org": "522601"}, headers=auth["kaili-editor"]
    )
    assert [f["text"] for f in listed.json()] == [finding["text"]]

    audit = client.get(
        "/api/v1/audits/matrix",
        params={"as_of": "2026-11-20", "policy": "national-2019"},
        headers=auth["supervisor"],
    ).json()
    vetoes = [
        (f["code"], f["org_code"], f["veto"])
        for f in audit["findings"]
        if f["code"] == "serious_misstatement"
    ]
    assert vetoes == [("serious_misstatement", "522601", True)]
    before = client.get(
        "/api/v1/audits/matrix",
        params={"as_of": "2026-11-01", "policy": "national-2019"},
        headers=auth["supervisor"],
    ).json()
    assert all(f["code"] != "serious_misstatement" for f in before["findings"])


def test_the_proofread_page_opens_for_editors_and_lists_the_lexicon_api(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    login(client, "kaili-editor")
    page = client.get("/proofread")
    assert page.status_code == 200 and "领导人名录" in page.text
    assert '"canManage": false' in page.text
    presets = client.get(
        "/api/v1/proofread/entries",
        params={"org": "522601", "presets": "true"},
        headers=auth["kaili-editor"],
    ).json()
    assert {"term": "西藏流亡政府", "correct": "达赖集团"}.items() <= next(
        e for e in presets if e["term"] == "西藏流亡政府"
    ).items()
