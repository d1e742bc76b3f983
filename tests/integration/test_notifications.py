"""Notifications end to end: each event tells the right people (and nobody else), preferences
are respected, a user reaches only their own list, and e-mail and the group robots arrive at
local servers (aiosmtpd; an HTTP server that records what it was sent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import WeiboSandbox
from hub.accounts.models import Account, Platform
from hub.clocks.notify import SmtpMailer
from hub.clocks.reminders import send_due_reminders
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery.models import Delivery, DeliveryStatus
from hub.notify import rules, service
from hub.notify.models import Notification
from hub.users.models import Role, User
from scheduler import tasks_notify as notify_tasks
from scheduler.app import BEAT_SCHEDULE
from tests.factories import make_user, token_for
from tests.integration.test_account_healing import (  # noqa: F401
    _account,
    _approved_post,
    _run,
    platforms,
    reviewer_at,
)
from tests.integration.test_editor_pages import login
from tests.integration.test_reminders import T0, Inbox, open_emergency, smtp  # noqa: F401
from tests.integration.test_review_levels import set_chain, submitted

pytestmark = pytest.mark.integration

Auth = dict[str, dict[str, str]]


@pytest.fixture
def hall(client: TestClient, auth: Auth) -> int:
    response = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def titles(client: TestClient, headers: dict[str, str]) -> list[str]:
    response = client.get("/api/v1/notifications", headers=headers)
    assert response.status_code == 200, response.text
    return [n["title"] for n in response.json()]


def test_a_submission_tells_the_orgs_reviewers_and_a_decision_tells_the_author(
    client: TestClient, auth: Auth, hall: int, guizhou: dict[str, str]
) -> None:
    post_id = submitted(client, auth["kaili-editor"], hall)
    waiting = titles(client, auth["kaili-reviewer"])
    assert waiting == ["待审核：「凯里市召开防汛工作会议」"]
    assert titles(client, auth["admin"]) == waiting  # the province admin may review it too
    for other in ("kaili-editor", "huangping-editor", "qdn-editor", "supervisor"):
        assert titles(client, auth[other]) == [], other

    rejected = client.post(
        f"/api/v1/posts/{post_id}/reject",
        json={"reason": "标题需核实"},
        headers=auth["kaili-reviewer"],
    )
    assert rejected.status_code == 200, rejected.text
    mine = client.get("/api/v1/notifications", headers=auth["kaili-editor"]).json()
    assert mine[0]["title"] == "被退回：「凯里市召开防汛工作会议」"
    assert "标题需核实" in mine[0]["body"] and mine[0]["link"] == f"/posts/{post_id}"

    post_id = submitted(client, auth["kaili-editor"], hall)
    approved = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert approved.status_code == 200, approved.text
    assert titles(client, auth["kaili-editor"])[0] == "已通过审核：「凯里市召开防汛工作会议」"
    assert titles(client, auth["huangping-editor"]) == []


def test_with_a_chain_only_those_entitled_to_the_waiting_level_are_told(
    client: TestClient, auth: Auth, hall: int, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    lead = make_user(url, "kaili-lead", Role.reviewer, "522601")
    lead_auth = token_for("kaili-lead", url)
    set_chain(client, auth["admin"], lead.id)  # type: ignore[arg-type]  初审: reviewers; 终审: lead
    post_id = submitted(client, auth["kaili-editor"], hall)
    first = "待审核（初审）：「凯里市召开防汛工作会议」"
    assert titles(client, auth["kaili-reviewer"]) == [first]
    assert titles(client, lead_auth) == [first]  # a reviewer, entitled to 初审 too
    ok = client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"])
    assert ok.status_code == 200, ok.text
    assert titles(client, lead_auth)[0] == "待审核（终审）：「凯里市召开防汛工作会议」"
    assert titles(client, auth["kaili-reviewer"]) == [first]  # not entitled to 终审
    assert titles(client, auth["kaili-editor"]) == ["初审已通过：「凯里市召开防汛工作会议」"]


def test_a_user_reaches_only_their_own_notifications(
    client: TestClient, auth: Auth, hall: int
) -> None:
    submitted(client, auth["kaili-editor"], hall)
    theirs = client.get("/api/v1/notifications", headers=auth["kaili-reviewer"]).json()[0]["id"]
    other = client.post(f"/api/v1/notifications/{theirs}/read", headers=auth["kaili-editor"])
    assert other.status_code == 404
    assert client.get(
        "/api/v1/notifications/unread-count", headers=auth["kaili-reviewer"]
    ).json() == {"unread": 1}
    done = client.post(f"/api/v1/notifications/{theirs}/read", headers=auth["kaili-reviewer"])
    assert done.status_code == 200 and done.json() == {"marked": 1, "unread": 0}
    assert (
        client.post("/api/v1/notifications/0/read", headers=auth["kaili-reviewer"]).status_code
        == 422
    )


def test_preferences_are_respected(client: TestClient, auth: Auth, hall: int) -> None:
    off = [{"kind": "review_waiting", "channel": "in_app", "enabled": False}]
    saved = client.put(
        "/api/v1/notifications/preferences", json=off, headers=auth["kaili-reviewer"]
    )
    assert saved.status_code == 200, saved.text
    row = next(p for p in saved.json() if p["kind"] == "review_waiting")
    assert (row["in_app"], row["email"], row["robot"]) == (False, False, False)
    bad = client.put(
        "/api/v1/notifications/preferences",
        json=[{"kind": "gossip", "channel": "in_app", "enabled": True}],
        headers=auth["kaili-reviewer"],
    )
    assert bad.status_code == 422 and "没有这种通知" in bad.text
    submitted(client, auth["kaili-editor"], hall)
    assert titles(client, auth["kaili-reviewer"]) == []
    assert len(titles(client, auth["admin"])) == 1  # the admin kept the default


def test_the_bell_the_page_and_the_account_choices(
    client: TestClient, auth: Auth, hall: int
) -> None:
    submitted(client, auth["kaili-editor"], hall)
    csrf = login(client, "kaili-reviewer")
    home = client.get("/")
    assert 'href="/notifications"' in home.text and "1 条未读" in home.text
    page = client.get("/notifications")
    assert "待审核：「凯里市召开防汛工作会议」" in page.text
    done = client.post("/notifications/read-all", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert "条未读" not in client.get("/notifications").text
    account = client.get("/account")
    assert "通知设置" in account.text and "待我审核的稿件" in account.text
    form = {"csrf": csrf, "post_rejected.email": "1", "robot_flavor": "wecom", "robot_url": ""}
    saved = client.post("/account/notifications", data=form, follow_redirects=False)
    assert saved.status_code == 303
    choices = client.get("/api/v1/notifications/preferences", headers=auth["kaili-reviewer"]).json()
    row = next(p for p in choices if p["kind"] == "post_rejected")
    assert (row["in_app"], row["email"]) == (False, True)  # unticked boxes are off
    refused = client.post(
        "/account/notifications",
        data={**form, "robot_url": "http://127.0.0.1:9/robot"},
        follow_redirects=True,
    )
    assert "内网" in refused.text


def test_a_failed_or_parked_copy_tells_the_author_once(
    client: TestClient, auth: Auth, hall: int, guizhou: dict[str, str]
) -> None:
    post_id = submitted(client, auth["kaili-editor"], hall)
    assert (
        client.post(f"/api/v1/posts/{post_id}/approve", headers=auth["kaili-reviewer"]).status_code
        == 200
    )
    engine = engine_for(guizhou["GOVHUB_DATABASE_URL"])
    with Session(engine) as session:
        delivery = session.exec(select(Delivery).where(Delivery.post_id == post_id)).one()
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery.id)
            .values(status=DeliveryStatus.failed, error="平台拒绝：内容重复")
        )
        session.commit()
        service.copy_settled(session, delivery.id)  # type: ignore[arg-type]
        service.copy_settled(session, delivery.id)  # type: ignore[arg-type]  the same outcome again
    mine = titles(client, auth["kaili-editor"])
    failed = [t for t in mine if t.startswith("发布失败")]
    assert failed == ["发布失败：「凯里市召开防汛工作会议」→ 发布厅「凯里发布厅」"]
    assert not [t for t in titles(client, auth["kaili-reviewer"]) if t.startswith("发布失败")]


def test_an_expiring_token_tells_who_may_reauthorise_once(
    client: TestClient, auth: Auth, hall: int, guizhou: dict[str, str]
) -> None:
    engine = engine_for(guizhou["GOVHUB_DATABASE_URL"])
    now = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    with Session(engine) as session:
        account = session.get(Account, hall)
        assert account is not None
        account.token_expires_at = now + timedelta(days=3)
        session.add(account)
        session.commit()
        assert service.remind_tokens(session, now=now - timedelta(days=5)) == 0  # not yet
        assert service.remind_tokens(session, now=now) > 0
        assert service.remind_tokens(session, now=now + timedelta(hours=1)) == 0  # once
    assert BEAT_SCHEDULE["notify.tokens"] == ("notify.tokens", timedelta(hours=1))
    expected = ["授权即将过期：发布厅「凯里发布厅」"]
    assert titles(client, auth["kaili-editor"]) == expected
    assert titles(client, auth["admin"]) == expected
    for other in ("huangping-editor", "kaili-reviewer", "supervisor"):
        assert titles(client, auth[other]) == [], other


def test_a_clock_reminder_tells_the_orgs_editors_and_supervisors(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    open_emergency(client, auth, T0, "凯里市山洪灾害")
    engine = engine_for(guizhou["GOVHUB_DATABASE_URL"])
    with Session(engine) as session:
        sent = send_due_reminders(
            session=session,
            now=T0 + timedelta(hours=1, minutes=35),
            mailer=None,
            webhook_poster=None,
        )
    assert [s.threshold for s in sent] == ["50"]
    title = "【时限已过半】凯里市山洪灾害"
    assert titles(client, auth["kaili-editor"]) == [title]
    assert titles(client, auth["supervisor"]) == [title]
    for other in ("huangping-editor", "qdn-editor", "kaili-reviewer"):
        assert titles(client, auth[other]) == [], other


# -- e-mail and robots ------------------------------------------------------------------------------


class Robot(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    answer: ClassVar[dict[str, Any]] = {"errcode": 0, "errmsg": "ok"}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, json.loads(body)))
        data = json.dumps(type(self).answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def robot(
    monkeypatch: pytest.MonkeyPatch, guizhou: dict[str, str]
) -> Iterator[tuple[str, type[Robot]]]:
    monkeypatch.setenv("GOVHUB_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    handler = type("RecordingRobot", (Robot,), {"received": [], "answer": {"errcode": 0}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        get_settings.cache_clear()


def _one_notification(client: TestClient, auth: Auth, hall: int, url: str, *, channel: str) -> int:
    choose = [{"kind": "review_waiting", "channel": channel, "enabled": True}]
    assert (
        client.put(
            "/api/v1/notifications/preferences", json=choose, headers=auth["kaili-reviewer"]
        ).status_code
        == 200
    )
    submitted(client, auth["kaili-editor"], hall)
    with Session(engine_for(url)) as session:
        reviewer = session.exec(select(User).where(User.username == "kaili-reviewer")).one()
        row = session.exec(select(Notification).where(Notification.user_id == reviewer.id)).one()
        return int(row.id)  # type: ignore[arg-type]


def test_email_reaches_a_local_smtp_server(
    client: TestClient,
    auth: Auth,
    hall: int,
    guizhou: dict[str, str],
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    inbox, port = smtp
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        reviewer = session.exec(select(User).where(User.username == "kaili-reviewer")).one()
        reviewer.email = "reviewer@gov.test"
        session.add(reviewer)
        session.commit()
    notification_id = _one_notification(client, auth, hall, url, channel="email")
    mailer = SmtpMailer("127.0.0.1", port, sender="govhub@gov.test")
    with Session(engine_for(url)) as session:
        assert service.send(session, notification_id, "email", mailer=mailer, wait_max=0.01)
    assert inbox.recipients() == ["reviewer@gov.test"]
    mail = inbox.received[0]
    assert mail["Subject"] == "【govhub】待审核：「凯里市召开防汛工作会议」"
    assert "http://hall.test/posts/" in mail.get_content()
    dead = SmtpMailer(
        "127.0.0.1", 9, sender="govhub@gov.test"
    )  # nobody listens: logged, not raised
    with Session(engine_for(url)) as session:
        assert service.send(session, notification_id, "email", mailer=dead, wait_max=0.01) is False


def test_wecom_and_signed_dingtalk_robots_receive_markdown(
    client: TestClient,
    auth: Auth,
    hall: int,
    guizhou: dict[str, str],
    robot: tuple[str, type[Robot]],
) -> None:
    base, handler = robot
    url = guizhou["GOVHUB_DATABASE_URL"]
    set_mine = client.put(
        "/api/v1/notifications/robot",
        json={"flavor": "wecom", "url": f"{base}/cgi-bin/webhook/send?key=abc"},
        headers=auth["kaili-reviewer"],
    )
    assert set_mine.status_code == 200, set_mine.text
    notification_id = _one_notification(client, auth, hall, url, channel="robot")
    assert notify_tasks.send(notification_id, "robot") is True  # the worker's task body
    path, body = handler.received[-1]
    assert path == "/cgi-bin/webhook/send?key=abc"
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("### 待审核：「凯里市召开防汛工作会议」")

    org_robot = client.put(
        "/api/v1/notifications/org-robot/522601",
        json={"flavor": "dingtalk", "url": f"{base}/robot/send?access_token=t", "secret": "SECabc"},
        headers=auth["admin"],
    )
    assert org_robot.status_code == 200 and org_robot.json()["signed"] is True
    outside = client.put(
        "/api/v1/notifications/org-robot/522601",
        json={"flavor": "dingtalk", "url": f"{base}/x"},
        headers=auth["huangping-editor"],
    )
    assert outside.status_code == 404
    editor = client.put(
        "/api/v1/notifications/org-robot/522601",
        json={"flavor": "dingtalk", "url": f"{base}/x"},
        headers=auth["kaili-editor"],
    )
    assert editor.status_code == 403  # inside the reach, without org.manage
    client.put(
        "/api/v1/notifications/robot",
        json={"flavor": "wecom", "url": ""},
        headers=auth["kaili-reviewer"],
    )
    with Session(engine_for(url)) as session:  # no robot of their own: the org's
        assert service.send(session, notification_id, "robot", wait_max=0.01)
        sealed = session.exec(select(service.NotifyWebhook)).one().secret_encrypted
    assert "SECabc" not in sealed
    path, body = handler.received[-1]
    query = parse_qs(urlsplit(path).query)
    stamp = int(query["timestamp"][0])
    assert query["sign"][0] == rules.dingtalk_sign("SECabc", stamp)
    assert body["markdown"]["title"] == "待审核：「凯里市召开防汛工作会议」"

    handler.answer = {"errcode": 310000, "errmsg": "sign not match"}
    before = len(handler.received)
    with Session(engine_for(url)) as session:
        assert service.send(session, notification_id, "robot", wait_max=0.01) is False
    assert len(handler.received) - before == 3  # retried, then logged


def test_a_copy_parked_by_the_worker_tells_its_author(
    platforms: tuple[WeiboSandbox, WechatSandbox],  # noqa: F811
    reviewer_at: TestClient,  # noqa: F811
    guizhou: dict[str, str],
) -> None:
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    weibo.config.app_audited = False  # 21321: the copy parks
    delivery_id = _approved_post(reviewer_at, url, account_id)
    assert _run(delivery_id) == "parked"
    mine = reviewer_at.get("/api/v1/notifications", headers=token_for("kaili-editor", url)).json()
    assert mine[0]["title"] == "已暂停（账号待处理）：「凯里市防汛通知」→ 微博「凯里发布」"
    assert mine[0]["kind"] == "copy_problem" and mine[0]["link"].startswith("/posts/")
    reviewer = token_for("kaili-reviewer", url)
    kinds = [n["kind"] for n in reviewer_at.get("/api/v1/notifications", headers=reviewer).json()]
    assert "copy_problem" not in kinds


def test_email_and_robot_are_queued_only_after_the_commit(
    client: TestClient,
    auth: Auth,
    hall: int,
    guizhou: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued: list[list[tuple[int, str]]] = []
    monkeypatch.setattr(service, "enqueue", lambda pending: queued.append(list(pending)) or 0)
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        reviewer = session.exec(select(User).where(User.username == "kaili-reviewer")).one()
        service.set_choice(session, reviewer, "post_rejected", "email", True)
        session.commit()
        message = rules.post_rejected("防汛通知", "李四", "重写", 1)
        service.notify(session, [reviewer.id], message)  # type: ignore[list-item]
        assert queued == []  # not before the commit
        session.rollback()
        session.commit()
        assert queued == []  # a rolled-back event sends nothing
        [written] = service.notify(session, [reviewer.id], message)  # type: ignore[list-item]
        session.commit()
    assert queued == [[(written, "email")]]


def test_an_admin_sets_tests_and_clears_the_orgs_robot_on_its_page(
    guizhou: dict[str, str], robot: tuple[str, type[Robot]]
) -> None:
    """机构管理 → 群机器人: the plain form (CSRF), reach before rights, every change audited."""
    from hub.auditlog.models import AuditEntry
    from hub.web.app import create_app

    base, handler = robot
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "qdn-admin", Role.admin, "522600")
    page_url = "/admin/orgs/522601/robot"
    with TestClient(create_app(), client=("203.0.113.10", 50003)) as browser:
        csrf = login(browser, "admin")
        orgs = browser.get("/admin/orgs?q=522601").text
        assert f'href="{page_url}"' in orgs  # linked from the org's row
        page = browser.get(page_url)
        assert page.status_code == 200 and "尚未设置群机器人" in page.text
        assert 'name="csrf"' in page.text
        no_csrf = browser.post(page_url, data={"flavor": "wecom", "url": f"{base}/x"})
        assert no_csrf.status_code == 400  # check_csrf: a form without the token
        saved = browser.post(
            page_url,
            data={"csrf": csrf, "flavor": "wecom", "url": f"{base}/cgi-bin/webhook/send?key=k1"},
        )
        assert "已保存群机器人" in saved.text and "企业微信群机器人" in saved.text
        assert f"{base}/cgi-bin/webhook/send" in saved.text
        bad = browser.post(page_url, data={"csrf": csrf, "flavor": "wecom", "url": "ftp://x"})
        assert bad.status_code == 200 and "机器人地址须以 https:// 开头" in bad.text
        tested = browser.post(page_url, data={"csrf": csrf, "action": "test"})
        assert "测试消息已送达" in tested.text
        path, body = handler.received[-1]
        assert path == "/cgi-bin/webhook/send?key=k1"
        assert "govhub 测试消息" in body["markdown"]["content"]
        handler.answer = {"errcode": 93000, "errmsg": "invalid webhook url"}
        failed = browser.post(page_url, data={"csrf": csrf, "action": "test"})
        assert "测试失败" in failed.text and "93000" in failed.text
        cleared = browser.post(page_url, data={"csrf": csrf, "action": "clear"})
        assert "已清除群机器人" in cleared.text and "尚未设置群机器人" in cleared.text
    with TestClient(create_app(), client=("203.0.113.11", 50004)) as browser:
        csrf = login(browser, "qdn-admin")  # an admin of 黔东南州: 凯里市 is inside, 贵阳市 not
        assert browser.get(page_url).status_code == 200
        assert browser.get("/admin/orgs/520100/robot").status_code == 404
        outside = browser.post(
            "/admin/orgs/520100/robot", data={"csrf": csrf, "flavor": "wecom", "url": f"{base}/x"}
        )
        assert outside.status_code == 404
    with TestClient(create_app(), client=("203.0.113.12", 50005)) as browser:
        csrf = login(browser, "kaili-editor")  # inside the reach, without org.manage
        assert browser.get(page_url).status_code == 403
        denied = browser.post(page_url, data={"csrf": csrf, "flavor": "wecom", "url": f"{base}/x"})
        assert denied.status_code == 403
    with Session(engine_for(url)) as session:
        assert session.exec(select(service.NotifyWebhook)).all() == []
        entries = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.action).startswith("org.robot"))
            .order_by(col(AuditEntry.id))
        ).all()
    assert [(e.action, e.actor_name, e.object_id) for e in entries] == [
        ("org.robot", "admin", "522601"),
        ("org.robot_test", "admin", "522601"),
        ("org.robot_test", "admin", "522601"),
        ("org.robot", "admin", "522601"),
    ]
    assert entries[0].summary == f"凯里市 群机器人设为企业微信：{base}/cgi-bin/webhook/send"
    assert entries[1].summary.endswith("测试成功") and "失败" in entries[2].summary
    assert entries[3].summary == "凯里市 群机器人已清除"
