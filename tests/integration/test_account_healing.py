"""Configuration faults park, and heal (issue 13): against the Weibo and WeChat sandboxes over HTTP.

A delivery stopped by the account's setup on the platform (Weibo 21321 unaudited app, 20031
captcha; WeChat 40164 IP not whitelisted) is parked and the account flagged with what to do;
when the account's connection test passes again (an admin's ``POST /accounts/{id}/test``, or
beat's re-check with back-off) the parked deliveries resume and each copy goes out exactly once.
The engine's publish/poll functions are the worker's task bodies, run here in-process.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlmodel import Session, select

from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import Fault, WeiboSandbox, WeiboSandboxConfig
from hub.accounts.health import recheck_due
from hub.accounts.models import Account, AccountCreate, AccountStatus, Platform
from hub.accounts.service import create as create_account
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.models import Delivery, DeliveryStatus
from hub.delivery.pacing import get_pacer
from hub.live import service as live_service
from hub.sqltypes import utcnow
from hub.web.app import create_app
from tests.factories import credentials_key, token_for

APPROVER_IP = "211.156.0.1"  # a public address: sent to Weibo as rip
PUBLIC = "http://hall.test"


@pytest.fixture
def platforms(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WeiboSandbox, WechatSandbox]]:
    weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test",)))
    wechat = WechatSandbox()
    wechat.configure(publish_delay=0.0)
    servers: list[RunningServer] = [serve(weibo), serve(wechat)]
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", servers[0].base_url)
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", servers[1].base_url)
    get_settings.cache_clear()
    yield weibo, wechat
    for server in servers:
        server.stop()
    wechat.close()
    get_settings.cache_clear()


@pytest.fixture
def reviewer_at(platforms: object) -> Iterator[TestClient]:
    """The reviewer's browser, at a public IP address."""
    with TestClient(create_app(), client=(APPROVER_IP, 50123)) as client:
        yield client


def cover_image(media_dir: Path) -> str:
    media_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    PILImage.new("RGB", (900, 500), (180, 30, 30)).save(buffer, "JPEG", quality=90)
    (media_dir / "cover.jpg").write_bytes(buffer.getvalue())
    return "cover.jpg"


def _account(url: str, platform: Platform, credentials: dict[str, str]) -> int:
    with Session(engine_for(url)) as session:
        account = create_account(
            session=session,
            data=AccountCreate(
                org_code="522601", platform=platform, name="凯里发布", credentials=credentials
            ),
            credentials_key=credentials_key(),
        )
        session.commit()
        assert account.id is not None
        return account.id


def _approved_post(client: TestClient, url: str, account_id: int) -> int:
    """Draft, submit and approve a post for ``account_id``; returns its delivery id."""
    editor, reviewer = token_for("kaili-editor", url), token_for("kaili-reviewer", url)
    cover = cover_image(Path(get_settings().media_dir))  # WeChat articles need a cover
    body = {
        "title": "凯里市防汛通知",
        "body": "请做好防汛准备。",
        "target_account_ids": [account_id],
        "images": [cover],
    }
    post = client.post("/api/v1/posts", json=body, headers=editor).json()
    assert client.post(f"/api/v1/posts/{post['id']}/submit", headers=editor).status_code == 200
    approved = client.post(f"/api/v1/posts/{post['id']}/approve", headers=reviewer)
    assert approved.status_code == 200, approved.text
    with Session(engine_for(url)) as session:
        delivery = session.exec(select(Delivery).where(Delivery.post_id == post["id"])).one()
        assert delivery.id is not None
        return delivery.id


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


def _run(delivery_id: int) -> str:
    """What a worker does with one ``delivery.publish`` task."""
    with Session(engine_for(get_settings().database_url)) as session:
        return engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer())


def _run_to_the_end(delivery_id: int) -> str:
    """Publish, then look as the poll task would until the platform has finished (WeChat's
    publication is asynchronous; the sandboxes here finish it at once)."""
    outcome = _run(delivery_id)
    deadline = time.monotonic() + 20
    while outcome == "pending":
        assert time.monotonic() < deadline, "the publication never finished"
        with Session(engine_for(get_settings().database_url)) as session:
            outcome = engine.poll(session=session, delivery_id=delivery_id)
    return outcome


def _row(url: str, model: Any, row_id: int) -> Any:
    with Session(engine_for(url), expire_on_commit=False) as session:
        return session.get(model, row_id)


def test_an_unaudited_weibo_app_parks_the_post_and_an_admins_test_resumes_it_once(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
) -> None:
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    weibo.config.app_audited = False  # 21321 for everyone but its test accounts
    delivery_id = _approved_post(reviewer_at, url, account_id)

    assert _run(delivery_id) == "parked"
    parked = _row(url, Delivery, delivery_id)
    assert parked.status is DeliveryStatus.parked and parked.error_code == "21321"
    admin = token_for("admin", url)
    shown = reviewer_at.get(f"/api/v1/accounts/{account_id}", headers=admin).json()
    assert shown["status"] == "misconfigured" and shown["attention_code"] == "21321"
    assert "open.weibo.com" in shown["attention"] and "测试账号" in shown["attention"]
    with TestClient(create_app()) as browser:
        _log_in(browser, "admin")
        page = browser.get("/accounts").text
        assert "配置待处理" in page and "open.weibo.com" in page and "自动复测" in page
    assert weibo.posts(uid) == []

    still = reviewer_at.post(f"/api/v1/accounts/{account_id}/test", headers=admin).json()
    assert still["ok"] is False and still["status"] == "misconfigured"
    assert _row(url, Delivery, delivery_id).status is DeliveryStatus.parked

    weibo.config.test_uids = (uid,)  # the operator added the account as a tester
    healed = reviewer_at.post(f"/api/v1/accounts/{account_id}/test", headers=admin).json()
    assert healed["ok"] is True and healed["status"] == "active" and healed["resumed"] == 1
    account = _row(url, Account, account_id)
    assert account.status is AccountStatus.active and account.attention == ""

    assert _run(delivery_id) == "published"
    assert _run(delivery_id) == "skipped"  # a second copy of the task sends nothing
    [post] = weibo.posts(uid)
    assert post.rip == APPROVER_IP  # the approver's IP, as Weibo's rip
    assert _row(url, Delivery, delivery_id).remote_id == str(post.id)


def test_a_captcha_parks_and_beat_re_tests_with_back_off_until_the_post_goes_out_once(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    guizhou: dict[str, str],
) -> None:
    """20031 only blocks posting: the connection test passes while the captcha is pending, so
    each automatic re-test costs one refused send and the re-tests grow further apart."""
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    weibo.config.captcha_uids = (uid,)
    with TestClient(create_app(), client=("10.8.0.23", 50200)) as intranet:  # no public IP
        delivery_id = _approved_post(intranet, url, account_id)
    settings = get_settings()

    assert _run(delivery_id) == "parked"
    flagged = _row(url, Account, account_id)
    assert flagged.status is AccountStatus.misconfigured and "验证码" in flagged.attention
    first_check = flagged.next_check_at
    assert first_check is not None
    assert first_check - utcnow() <= timedelta(seconds=settings.account_recheck_seconds)

    with Session(engine_for(url)) as session:  # not due yet: nothing is tested
        assert recheck_due(session=session, settings=settings, now=utcnow()) == ([], [])

    gaps = []
    for _ in range(2):  # the captcha is still pending: heal, refused again, re-flagged
        due = _row(url, Account, account_id).next_check_at
        with Session(engine_for(url)) as session:
            resumed, _lines = recheck_due(session=session, settings=settings, now=due)
        assert resumed == [delivery_id]
        assert _run(delivery_id) == "parked"
        after = _row(url, Account, account_id)
        assert after.status is AccountStatus.misconfigured
        gaps.append(after.next_check_at - due)
    assert gaps[1] > gaps[0]  # backing off, not looping
    assert weibo.posts(uid) == [] and weibo.calls("share") == 3

    weibo.config.captcha_uids = ()  # the operator passed the captcha on weibo.com
    due = _row(url, Account, account_id).next_check_at
    with Session(engine_for(url)) as session:
        resumed, lines = recheck_due(session=session, settings=settings, now=due)
    assert resumed == [delivery_id] and lines == ["凯里发布: ok"]
    assert _run(delivery_id) == "published"
    assert _run(delivery_id) == "skipped"
    [post] = weibo.posts(uid)
    assert post.rip == settings.weibo_fallback_rip  # an intranet approver: the unit's egress IP
    account = _row(url, Account, account_id)
    assert account.status is AccountStatus.active and account.check_failures == 0


def test_a_wechat_ip_not_whitelisted_parks_names_the_ip_and_resumes_once_whitelisted(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
) -> None:
    _, wechat = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    app = wechat.add_app("wxhealing01", "secret-wxhealing01", ip_whitelist={"198.51.100.9"})
    account_id = _account(
        url, Platform("wechat"), {"app_id": "wxhealing01", "app_secret": "secret-wxhealing01"}
    )
    delivery_id = _approved_post(reviewer_at, url, account_id)

    assert _run(delivery_id) == "parked"
    assert _row(url, Delivery, delivery_id).error_code == "40164"
    admin = token_for("admin", url)
    shown = reviewer_at.get(f"/api/v1/accounts/{account_id}", headers=admin).json()
    assert shown["status"] == "misconfigured" and "127.0.0.1" in shown["attention"]
    assert "IP白名单" in shown["attention"]

    with wechat._lock:
        app.ip_whitelist = {"198.51.100.9", "127.0.0.1"}
    healed = reviewer_at.post(f"/api/v1/accounts/{account_id}/test", headers=admin).json()
    assert healed["ok"] is True and healed["resumed"] == 1

    assert _run_to_the_end(delivery_id) == "published"
    assert _run(delivery_id) == "skipped"
    assert len(wechat.state("wxhealing01")["publications"]) == 1


def test_a_copy_whose_outcome_was_unknown_when_it_parked_looks_before_it_sends_again(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
) -> None:
    """The answer to share.json is lost (the post did land), then the account is blocked while
    the engine looks: the resumed delivery finds its post instead of sending a second one."""
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    delivery_id = _approved_post(reviewer_at, url, account_id)
    weibo.add_fault(Fault(endpoint="share", drop=True))  # performed, answer lost

    assert _run(delivery_id) == "unconfirmed"
    assert len(weibo.posts(uid)) == 1
    weibo.config.app_audited = False  # the look (user_timeline) is refused: 21321
    later = utcnow() + timedelta(seconds=30)
    with Session(engine_for(url)) as session:
        looked = engine.publish(
            session=session, delivery_id=delivery_id, pacer=get_pacer(), now=later
        )
    assert looked == "parked"
    assert _row(url, Account, account_id).status is AccountStatus.misconfigured

    weibo.config.app_audited = True
    admin = token_for("admin", url)
    healed = reviewer_at.post(f"/api/v1/accounts/{account_id}/test", headers=admin).json()
    assert healed["ok"] is True and healed["resumed"] == 1
    assert _row(url, Delivery, delivery_id).status is DeliveryStatus.unconfirmed  # look first
    with Session(engine_for(url)) as session:  # a second heal finds nothing left to resume
        assert engine.resume_parked(session=session, account_id=account_id, now=utcnow()) == []

    assert _run(delivery_id) == "published"
    assert len(weibo.posts(uid)) == 1 and weibo.calls("share") == 1
    [post] = weibo.posts(uid)
    assert _row(url, Delivery, delivery_id).remote_id == str(post.id)


def test_a_live_key_event_goes_to_weibo_with_the_console_users_ip(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    guizhou: dict[str, str],
) -> None:
    """Beat sends key events with no person at hand: the rip is the console user who wrote it."""
    weibo, _ = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    account_id = _account(url, Platform("weibo"), {"access_token": token, "uid": uid})
    editor = token_for("kaili-editor", url)
    with TestClient(create_app(), client=("221.13.64.5", 50777)) as console:
        live = console.post(
            "/api/v1/live-sessions",
            json={
                "title": "凯里市防汛发布会",
                "org_code": "522601",
                "target_account_ids": [account_id],
                "plan": "发布防汛应急响应的要点",
            },
            headers=editor,
        ).json()
        base = f"/api/v1/live-sessions/{live['id']}"
        reviewer = token_for("kaili-reviewer", url)  # the plan covers the session's key events
        assert console.post(f"{base}/plan/approve", headers=reviewer).status_code == 200
        assert console.post(f"{base}/start", headers=editor).status_code == 200
        entry = {"text": "全市启动防汛四级应急响应。", "key_event": True}
        assert console.post(f"{base}/entries", json=entry, headers=editor).status_code == 201
    with Session(engine_for(url)) as session:
        [delivery_id] = live_service.fanout(session=session, now=utcnow())
        session.commit()
    assert _run(delivery_id) == "published"
    [post] = weibo.posts(uid)
    assert "防汛四级应急响应" in post.text and post.rip == "221.13.64.5"


def test_a_wrong_wechat_app_secret_parks_the_copy_until_the_admin_fixes_the_credentials(
    platforms: tuple[WeiboSandbox, WechatSandbox],
    reviewer_at: TestClient,
    guizhou: dict[str, str],
) -> None:
    """A mistyped AppSecret is the account's setup, not the content: the copy waits (parked, the
    account flagged with what to do) instead of failing, and goes out once the secret is right."""
    _, wechat = platforms
    url = guizhou["GOVHUB_DATABASE_URL"]
    wechat.add_app("wxsecret01", "secret-wxsecret01")
    account_id = _account(
        url, Platform("wechat"), {"app_id": "wxsecret01", "app_secret": "secret-mistyped"}
    )
    delivery_id = _approved_post(reviewer_at, url, account_id)

    assert _run(delivery_id) == "parked"
    assert _row(url, Delivery, delivery_id).error_code == "40125"
    admin = token_for("admin", url)
    shown = reviewer_at.get(f"/api/v1/accounts/{account_id}", headers=admin).json()
    assert shown["status"] == "misconfigured" and "AppSecret" in shown["attention"]

    fixed = reviewer_at.patch(
        f"/api/v1/accounts/{account_id}",
        json={"credentials": {"app_id": "wxsecret01", "app_secret": "secret-wxsecret01"}},
        headers=admin,
    )
    assert fixed.status_code == 200, fixed.text
    healed = reviewer_at.post(f"/api/v1/accounts/{account_id}/test", headers=admin).json()
    assert healed["ok"] is True and healed["resumed"] == 1

    assert _run_to_the_end(delivery_id) == "published"
    assert len(wechat.state("wxsecret01")["publications"]) == 1
