"""The public interaction inbox against the Weibo and WeChat sandboxes over real HTTP.

Weibo comments are read by the ingestion pass; WeChat followers' messages are POSTed (signed) by
the sandbox to the hub served on loopback. Replies go back to the platforms as plain text.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox, user_message_xml
from connectors.sandbox.weibo import WeiboSandbox
from connectors.wechat import sign
from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.clocks.models import Clock
from hub.config import get_settings
from hub.db import engine_for
from hub.inbox.models import Case
from hub.web.app import create_app
from tests.factories import credentials_key

DAY = 24 * 3600
CALLBACK_TOKEN = "inbox-cb-token"


@dataclass
class Platforms:
    weibo: WeiboSandbox
    wechat: WechatSandbox
    url: str
    weibo_account: int
    weibo_uid: str
    wechat_account: int
    appid: str


def _account(url: str, platform: Platform, name: str, credentials: dict[str, str]) -> int:
    with Session(engine_for(url)) as session:
        account = create_account(
            session=session,
            data=AccountCreate(
                org_code="522601",
                platform=platform,
                name=name,
                handle=credentials.get("uid", ""),
                interaction_channel=True,
                credentials=credentials,
            ),
            credentials_key=credentials_key(),
        )
        session.commit()
        assert account.id is not None
        return account.id


@pytest.fixture
def platforms(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Platforms]:
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo, wechat = WeiboSandbox(), WechatSandbox()
    servers: list[RunningServer] = [serve(weibo), serve(wechat)]
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", servers[0].base_url)
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", servers[1].base_url)
    get_settings.cache_clear()
    hub = serve(create_app())
    servers.append(hub)
    token, uid = weibo.mint_token()
    weibo_account = _account(
        url, Platform("weibo"), "凯里发布", {"access_token": token, "uid": uid}
    )
    appid, secret = f"wx{secrets.token_hex(8)}", secrets.token_hex(16)
    wechat.add_app(appid, secret)
    wechat_account = _account(
        url,
        Platform("wechat"),
        "凯里发布公众号",
        {"app_id": appid, "app_secret": secret, "callback_token": CALLBACK_TOKEN},
    )
    wechat.set_callback(appid, f"{hub.base_url}/callbacks/wechat/{wechat_account}", CALLBACK_TOKEN)
    try:
        yield Platforms(weibo, wechat, url, weibo_account, uid, wechat_account, appid)
    finally:
        wechat.close()
        for server in reversed(servers):
            server.stop()
        get_settings.cache_clear()


def _ingest(client: TestClient, auth: dict[str, dict[str, str]]) -> int:
    answer = client.post("/api/v1/cases/ingest", headers=auth["admin"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["accounts_failed"] == 0, answer.json()
    return int(answer.json()["new_cases"])


def _cases(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, object]]:
    answer = client.get("/api/v1/cases", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _login(client: TestClient, username: str) -> None:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_comments_and_messages_become_cases_once(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(
        platforms.weibo_uid, "凯里市发布高温预警 http://127.0.0.1/x"
    )
    platforms.weibo.add_comment(status.id, "请问今年高考期间限行吗？", screen_name="张三丰")
    platforms.weibo.add_comment(status.id, "投诉：小区夜间施工扰民", screen_name="reader42")
    assert _ingest(client, auth) == 2
    assert _ingest(client, auth) == 0  # since_id: nothing new; nothing twice

    first = platforms.wechat.send_user_message(platforms.appid, "oUser1", "社保卡在哪里补办？")
    image = platforms.wechat.send_user_message(
        platforms.appid, "oUser1", msg_type="image", pic_url="http://mmbiz.qpic.cn/x.jpg"
    )
    platforms.wechat.send_user_message(
        platforms.appid, "oUser2", msg_type="event", event="subscribe"
    )
    assert first["status_code"] == image["status_code"] == 200
    assert first["body"] == "success"

    cases = _cases(client, auth["kaili-editor"])
    assert len(cases) == 4
    weibo_cases = [c for c in cases if c["channel"] == "weibo_comment"]
    assert {c["author_handle"] for c in weibo_cases} == {"张三丰", "reader42"}
    assert all(c["post_url"] and c["answer_due_at"] for c in weibo_cases)
    wechat_cases = [c for c in cases if c["channel"] == "wechat_message"]
    assert len({c["thread_id"] for c in wechat_cases}) == 1  # one author, one thread
    assert {c["msg_type"] for c in wechat_cases} == {"text", "image"}

    platforms.weibo.add_comment(status.id, "谢谢！", screen_name="张三丰")
    assert _ingest(client, auth) == 1
    assert _ingest(client, auth) == 0
    # WeChat retries a delivery it got no answer for: the same MsgId twice is still one case.
    xml = user_message_xml(
        to_user="gh_x",
        openid="oUser3",
        create_time=int(time.time()),
        msg_type="text",
        content="<b>医保</b>转移怎么办？",
        msg_id=987654321,
    )
    stamp, nonce = str(int(time.time())), "n0nce"
    params = {"signature": sign(CALLBACK_TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce}
    for _ in range(2):
        answer = client.post(
            f"/callbacks/wechat/{platforms.wechat_account}", params=params, content=xml
        )
        assert answer.status_code == 200 and answer.text == "success"
    forged = client.post(
        f"/callbacks/wechat/{platforms.wechat_account}",
        params={**params, "signature": "0" * 40},
        content=xml,
    )
    assert forged.status_code == 403
    assert len(_cases(client, auth["kaili-editor"])) == 6
    # Editors elsewhere see none of them; supervisors read all.
    assert _cases(client, auth["huangping-editor"]) == []
    assert len(_cases(client, auth["supervisor"])) == 6


def test_replies_reach_the_platform_as_plain_text_under_the_right_comment(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市防汛通知 http://127.0.0.1/y")
    one = platforms.weibo.add_comment(status.id, "第一条评论", screen_name="张三丰")
    two = platforms.weibo.add_comment(status.id, "请问哪里可以领沙袋？", screen_name="李四")
    _ingest(client, auth)
    target = next(c for c in _cases(client, auth["kaili-editor"]) if c["author_handle"] == "李四")
    answer = client.post(
        f"/api/v1/cases/{target['id']}/replies",
        headers=auth["kaili-editor"],
        json={"text": "<script>alert(1)</script>您好，<b>各社区</b>服务站均可领取。"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "sent"
    replies = platforms.weibo.replies_to(two.id)
    assert [r.text for r in replies] == ["您好，各社区服务站均可领取。"]
    assert platforms.weibo.replies_to(one.id) == []
    detail = client.get(f"/api/v1/cases/{target['id']}", headers=auth["kaili-editor"]).json()
    assert detail["status"] == "replied" and detail["overdue"] is False
    assert [e["kind"] for e in detail["events"]][-1] == "reply"

    platforms.wechat.send_user_message(platforms.appid, "oUser9", "公积金怎么提取？")
    wechat_case = next(
        c for c in _cases(client, auth["kaili-editor"]) if c["channel"] == "wechat_message"
    )
    assert wechat_case["reply_window_open"] is True
    answer = client.post(
        f"/api/v1/cases/{wechat_case['id']}/replies",
        headers=auth["kaili-editor"],
        json={"text": "<img src=x onerror=alert(1)>请登录<a href='http://x'>公积金网厅</a>办理"},
    )
    assert answer.json()["status"] == "sent", answer.text
    sent = platforms.wechat.custom_messages(platforms.appid, "oUser9")
    assert [m["content"] for m in sent] == ["请登录公积金网厅办理"]


def test_wechat_reply_outside_48_hours_is_refused_with_an_explanation(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    platforms.wechat.send_user_message(
        platforms.appid, "oOld", "路灯坏了一周了", created_at=time.time() - 49 * 3600
    )
    case = _cases(client, auth["kaili-editor"])[0]
    assert case["reply_window_open"] is False
    answer = client.post(
        f"/api/v1/cases/{case['id']}/replies",
        headers=auth["kaili-editor"],
        json={"text": "已通知路灯所维修"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["status"] == "refused"
    assert "48小时" in body["error"] and "请通过其他方式答复" in body["error"]
    assert platforms.wechat.custom_messages(platforms.appid) == []
    detail = client.get(f"/api/v1/cases/{case['id']}", headers=auth["kaili-editor"]).json()
    assert detail["needs_other_channel"] is True and detail["status"] != "replied"
    _login(client, "kaili-editor")
    page = client.get(f"/inbox/cases/{case['id']}")
    assert page.status_code == 200 and "请通过其他方式答复" in page.text


def test_transfer_keeps_history_and_clock(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    platforms.wechat.send_user_message(platforms.appid, "oT", "黄平县的旅游补贴怎么申请？")
    case = _cases(client, auth["kaili-editor"])[0]
    client.post(
        f"/api/v1/cases/{case['id']}/notes",
        headers=auth["kaili-editor"],
        json={"text": "属黄平县事项"},
    )
    moved = client.post(
        f"/api/v1/cases/{case['id']}/transfer",
        headers=auth["kaili-editor"],
        json={"org_code": "522622", "reason": "属黄平县文旅局职责"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["org_code"] == "522622"
    # The new org sees it with its whole history and the same deadline; the old one no longer.
    seen = client.get(f"/api/v1/cases/{case['id']}", headers=auth["huangping-editor"]).json()
    kinds = [e["kind"] for e in seen["events"]]
    assert kinds == ["created", "note", "transfer"]
    assert seen["events"][-1]["detail"] == "属黄平县文旅局职责"
    assert seen["events"][-1]["from_org"] and seen["events"][-1]["to_org"]
    assert seen["answer_due_at"] == case["answer_due_at"]
    assert (
        client.get(f"/api/v1/cases/{case['id']}", headers=auth["kaili-editor"]).status_code == 404
    )
    with Session(engine_for(platforms.url)) as session:
        row = session.get(Case, case["id"])
        assert row is not None and row.answer_clock_id is not None
        clock = session.get(Clock, row.answer_clock_id)
        assert clock is not None and clock.state.value == "running"
        assert clock.org_id == row.org_id


def test_overdue_case_on_the_dashboard_and_in_the_audit(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市招聘公告 http://127.0.0.1/z")
    platforms.weibo.advance(-20 * DAY)  # a comment made 20 days ago, never answered
    platforms.weibo.add_comment(status.id, "报名截止日期是哪天？", screen_name="王五")
    platforms.weibo.advance(20 * DAY)
    _ingest(client, auth)
    overdue = _cases(client, auth["supervisor"], overdue="true")
    assert [c["text"] for c in overdue] == ["报名截止日期是哪天？"]
    assert overdue[0]["overdue"] is True

    audit = client.get(
        "/api/v1/audits/matrix",
        headers=auth["supervisor"],
        params={"as_of": date.today().isoformat()},
    )
    assert audit.status_code == 200, audit.text
    findings = [f for f in audit.json()["findings"] if f["code"] == "cases_overdue"]
    assert len(findings) == 1
    assert str(platforms.weibo_account) in str(findings[0]) or findings[0]

    _login(client, "supervisor")
    page = client.get("/inbox/overdue")
    assert page.status_code == 200 and "报名截止日期是哪天？" in page.text
    assert "报名截止日期是哪天" in client.get("/clocks").text  # the clock dashboard too


def test_answered_question_on_the_hall_masks_the_author(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市停水通知 http://127.0.0.1/w")
    platforms.weibo.add_comment(status.id, "几点恢复供水？", screen_name="张三丰")
    _ingest(client, auth)
    case = _cases(client, auth["kaili-editor"])[0]
    answer = client.post(
        f"/api/v1/cases/{case['id']}/replies",
        headers=auth["kaili-editor"],
        json={"text": "预计今晚18时恢复。", "publish_on_hall": True},
    )
    assert answer.json()["status"] == "sent"
    page = client.get("/hall/answers")
    assert page.status_code == 200
    assert "张**" in page.text and "张三丰" not in page.text
    assert "预计今晚18时恢复。" in page.text


def test_an_operator_ingests_and_lists_overdue_cases_from_the_command_line(
    platforms: Platforms,
) -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市招聘公告 http://127.0.0.1/z")
    platforms.weibo.advance(-20 * DAY)  # asked 20 days ago, never answered
    platforms.weibo.add_comment(status.id, "报名截止日期是哪天？", screen_name="王五")
    platforms.weibo.advance(20 * DAY)
    platforms.weibo.add_comment(status.id, "今天还能报名吗？", screen_name="赵六")

    runner = CliRunner()
    ingested = runner.invoke(app, ["inbox", "ingest"])
    assert ingested.exit_code == 0, ingested.output
    assert "2 new cases" in ingested.output
    overdue = runner.invoke(app, ["inbox", "list", "--overdue"])
    assert overdue.exit_code == 0, overdue.output
    assert "报名截止日期是哪天？" in overdue.output and "(overdue)" in overdue.output
    assert "今天还能报名吗" not in overdue.output and "1 case(s)" in overdue.output
    kaili = runner.invoke(app, ["inbox", "list", "--org", "522601", "--status", "new"])
    assert kaili.exit_code == 0 and "2 case(s)" in kaili.output
    assert "522601" in kaili.output
    elsewhere = runner.invoke(app, ["inbox", "list", "--org", "520102"])
    assert "0 case(s)" in elsewhere.output
    refused = runner.invoke(app, ["inbox", "list", "--status", "open"])
    assert refused.exit_code == 1 and "unknown status 'open'" in refused.output


def test_a_reply_carries_the_repliers_ip_to_weibo_as_rip(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    status = platforms.weibo.create_post(platforms.weibo_uid, "凯里市停水通知 http://127.0.0.1/z")
    one = platforms.weibo.add_comment(status.id, "几点恢复供水？", screen_name="王五")
    two = platforms.weibo.add_comment(status.id, "哪里可以取水？", screen_name="赵六")
    _ingest(client, auth)
    cases = {c["author_handle"]: c for c in _cases(client, auth["kaili-editor"])}
    with TestClient(create_app(), client=("211.156.0.9", 50444)) as public_desk:
        answer = public_desk.post(
            f"/api/v1/cases/{cases['王五']['id']}/replies",
            headers=auth["kaili-editor"],
            json={"text": "预计下午六点恢复。"},
        )
    assert answer.json()["status"] == "sent", answer.text
    assert [r.rip for r in platforms.weibo.replies_to(one.id)] == ["211.156.0.9"]
    # the usual test client sits at a documentation address: the unit's egress IP goes instead
    answer = client.post(
        f"/api/v1/cases/{cases['赵六']['id']}/replies",
        headers=auth["kaili-editor"],
        json={"text": "各社区服务站设有取水点。"},
    )
    assert answer.json()["status"] == "sent", answer.text
    assert [r.rip for r in platforms.weibo.replies_to(two.id)] == [
        get_settings().weibo_fallback_rip
    ]


def test_without_comment_permission_ingestion_skips_the_account_until_an_admin_re_tests(
    platforms: Platforms, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    weibo = platforms.weibo
    status = weibo.create_post(platforms.weibo_uid, "凯里市交通管制通知 http://127.0.0.1/t")
    comment = weibo.add_comment(status.id, "请问绕行路线？", screen_name="孙七")
    weibo.config.comments_permission = False  # Weibo 10014 on comments/to_me and comments/reply

    assert _ingest(client, auth) == 0
    assert _ingest(client, auth) == 0  # skipped: no second call, no retry loop
    assert weibo.calls("comments_to_me") == 1
    path = f"/api/v1/accounts/{platforms.weibo_account}"
    shown = client.get(path, headers=auth["admin"]).json()
    assert shown["status"] == "active"  # posting still works: only the capability is off
    assert "评论" in shown["capabilities_off"]["comments"]
    _login(client, "admin")
    page = client.get("/accounts").text
    assert "评论接口不可用" in page

    weibo.config.comments_permission = True  # the app got the permission on open.weibo.com
    assert _ingest(client, auth) == 0  # still skipped until someone re-tests
    assert weibo.calls("comments_to_me") == 1
    tested = client.post(f"{path}/test", headers=auth["admin"]).json()
    assert tested["ok"] is True and tested["capabilities_off"] == {}
    assert _ingest(client, auth) == 1
    [case] = _cases(client, auth["kaili-editor"])
    assert case["author_handle"] == "孙七" and comment.text in str(case)
