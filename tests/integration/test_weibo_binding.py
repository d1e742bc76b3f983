"""Binding a Weibo account by OAuth against the Weibo sandbox over real HTTP, and "test connection".

The browser is played by a TestClient (the hub) and httpx (Weibo's consent page, which the
sandbox approves at once): authorize -> Weibo -> callback -> the account has a working token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import Session, select

from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig
from hub.accounts.models import Account, AccountCreate, AccountStatus, Platform
from hub.accounts.oauth import (
    BindState,
    binding_connector,
    redirect_uri,
    sign_state,
    state_salt,
)
from hub.accounts.service import create as create_account
from hub.accounts.service import credentials_of
from hub.auditlog.models import AuditEntry
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import channels
from hub.delivery.models import Delivery, DeliveryStatus
from hub.posts.models import Post, PostStatus, PostVersion
from hub.users.models import User
from hub.web.app import create_app
from tests.factories import credentials_key, token_for

PUBLIC = "http://hall.test"


@pytest.fixture
def weibo(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WeiboSandbox, RunningServer]]:
    sandbox = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test",)))
    server = serve(sandbox)
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", server.base_url)
    monkeypatch.setenv("GOVHUB_PUBLIC_BASE_URL", PUBLIC)
    get_settings.cache_clear()
    yield sandbox, server
    server.stop()
    get_settings.cache_clear()


@pytest.fixture
def browser(weibo: tuple[WeiboSandbox, RunningServer]) -> Iterator[TestClient]:
    """A TestClient built after the sandbox settings are in place."""
    with TestClient(create_app(), client=("203.0.113.8", 50001)) as client:
        yield client


def _weibo_account(database_url: str, org_code: str = "522601") -> int:
    """A Weibo account whose token the platform no longer accepts (needs re-authorisation)."""
    with Session(engine_for(database_url)) as session:
        account = create_account(
            session=session,
            data=AccountCreate(
                org_code=org_code,
                platform=Platform("weibo"),
                name="凯里发布",
                credentials={"access_token": "2.00revoked-long-ago"},
            ),
            credentials_key=credentials_key(),
        )
        account.status = AccountStatus.needs_reauth
        session.commit()
        assert account.id is not None
        return account.id


def _parked_delivery(database_url: str, account_id: int) -> int:
    with Session(engine_for(database_url)) as session:
        author = session.exec(select(User).where(User.username == "kaili-editor")).one()
        post = Post(
            org_id=author.org_id,
            author_id=author.id,  # type: ignore[arg-type]
            title="凯里市防汛通知",
            status=PostStatus.publishing,
            approved_version=1,
        )
        session.add(post)
        session.flush()
        session.add(
            PostVersion(
                post_id=post.id,  # type: ignore[arg-type]
                version=1,
                title=post.title,
                body="请做好防汛准备。",
                content_hash="1" * 64,
                author_id=author.id,  # type: ignore[arg-type]
            )
        )
        delivery = Delivery(
            post_id=post.id,  # type: ignore[arg-type]
            version=1,
            account_id=account_id,
            status=DeliveryStatus.parked,
            error="微博授权已过期",
        )
        session.add(delivery)
        session.commit()
        assert delivery.id is not None
        return delivery.id


def _log_in(browser: TestClient, username: str) -> None:
    page = browser.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    answer = browser.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": match.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def _to_weibo_and_back(browser: TestClient, account_id: int) -> httpx.Response:
    """authorize -> the sandbox's consent page (approves at once) -> the hub's callback."""
    start = browser.get(f"/accounts/{account_id}/weibo/authorize", follow_redirects=False)
    assert start.status_code == 303, start.text
    consent = httpx.get(start.headers["location"], follow_redirects=False)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC}/oauth/weibo/callback"
    return browser.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_oauth_round_trip_binds_a_working_token_and_resumes_parked_deliveries(
    browser: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    account_id = _weibo_account(url)
    parked = _parked_delivery(url, account_id)
    bearer = token_for("kaili-editor", url)
    before = browser.post(f"/api/v1/accounts/{account_id}/test", headers=bearer).json()
    assert before["ok"] is False
    assert before["error"] == "AuthExpired"
    assert before["message"]

    _log_in(browser, "kaili-editor")
    done = _to_weibo_and_back(browser, account_id)
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    home = browser.get("/")
    assert "已授权绑定" in home.text
    assert "已恢复发送 1 条" in home.text

    with Session(engine_for(url)) as session:
        account = session.get(Account, account_id)
        assert account is not None
        assert account.status is AccountStatus.active
        assert account.token_expires_at is not None
        assert account.token_expires_at > datetime.now(UTC) + timedelta(days=29)
        credentials = credentials_of(account, credentials_key())
        assert credentials["access_token"] != "2.00revoked-long-ago"
        assert credentials["uid"]
        assert channels.connector_for("weibo").recent(channels.connector_account(account)) == []
        delivery = session.get(Delivery, parked)
        assert delivery is not None and delivery.status is DeliveryStatus.queued
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "account.bind")).all()
        assert entry.object_id == str(account_id)
        assert "2.00" not in entry.summary  # the token is never written to the audit log

    after = browser.post(f"/api/v1/accounts/{account_id}/test", headers=bearer).json()
    assert after["ok"] is True
    assert after["recent_posts"] == 0


def test_a_forged_or_expired_state_is_refused(browser: TestClient, guizhou: dict[str, str]) -> None:
    account_id = _weibo_account(guizhou["GOVHUB_DATABASE_URL"])
    payload = {"a": account_id, "u": 1, "n": ""}
    forged = URLSafeTimedSerializer("not-our-secret", salt=state_salt("weibo")).dumps(payload)

    class TenMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 601

    expired = URLSafeTimedSerializer(
        get_settings().secret_key, salt=state_salt("weibo"), signer=TenMinutesAgo
    ).dumps(payload)
    for state in (forged, expired, "garbage", ""):
        answer = browser.get("/oauth/weibo/callback", params={"code": "abc", "state": state})
        assert answer.status_code == 400
        assert "授权链接无效或已过期" in answer.text
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        account = session.get(Account, account_id)
        assert account is not None and account.status is AccountStatus.needs_reauth


def test_a_state_started_in_another_browser_is_refused(
    browser: TestClient, weibo: tuple[WeiboSandbox, RunningServer], guizhou: dict[str, str]
) -> None:
    account_id = _weibo_account(guizhou["GOVHUB_DATABASE_URL"])
    _log_in(browser, "kaili-editor")
    start = browser.get(f"/accounts/{account_id}/weibo/authorize", follow_redirects=False)
    consent = httpx.get(start.headers["location"], follow_redirects=False)
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    with TestClient(create_app()) as other:
        answer = other.get(
            "/oauth/weibo/callback", params={"code": query["code"][0], "state": query["state"][0]}
        )
    assert answer.status_code == 400
    assert "本浏览器" in answer.text


def test_binding_needs_a_browser_login_and_the_account_bind_right_on_that_org(
    browser: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    account_id = _weibo_account(url)
    path = f"/accounts/{account_id}/weibo/authorize"
    anonymous = browser.get(path, follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")
    # another county: 404, as if the account did not exist; in reach without the bind right: 403
    for username, status in (("huangping-editor", 404), ("kaili-reviewer", 403)):
        with TestClient(create_app()) as other:
            _log_in(other, username)
            refused = other.get(path, follow_redirects=False)
            assert refused.status_code == status
        test = browser.post(f"/api/v1/accounts/{account_id}/test", headers=token_for(username, url))
        assert test.status_code == status
    _log_in(browser, "qdn-editor")
    allowed = browser.get(path, follow_redirects=False)
    assert allowed.status_code == 303  # the prefecture acts on its counties
    assert allowed.headers["location"].startswith(get_settings().weibo_api_base + "/oauth2/")


def test_binding_cannot_be_started_with_a_bearer_token(
    browser: TestClient, guizhou: dict[str, str]
) -> None:
    """A bearer-started flow carried no browser nonce; anyone holding its callback URL bound it."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    account_id = _weibo_account(url)
    answer = browser.get(
        f"/accounts/{account_id}/weibo/authorize",
        headers=token_for("kaili-editor", url),
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "只能在浏览器中发起" in answer.text


def test_a_callback_without_the_starting_browser_session_binds_nothing(
    browser: TestClient, guizhou: dict[str, str]
) -> None:
    """A state with no nonce (as bearer-started flows had), or a callback opened by a browser that
    holds the nonce but is no longer logged in as the user who started it, is refused."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    account_id = _weibo_account(url)
    with Session(engine_for(url)) as session:
        editor = session.exec(select(User).where(User.username == "kaili-editor")).one()
    settings = get_settings()
    bare = sign_state(settings, BindState(account_id, editor.id or 0, ""), "weibo")
    consent = httpx.get(
        binding_connector(settings, "weibo").authorize_url(redirect_uri(settings, "weibo"), bare),
        follow_redirects=False,
    )
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    with TestClient(create_app()) as stranger:
        answer = stranger.get(
            "/oauth/weibo/callback", params={"code": query["code"][0], "state": query["state"][0]}
        )
    assert answer.status_code == 400
    assert "本浏览器" in answer.text

    # the right browser, but it logged out before Weibo sent it back
    _log_in(browser, "kaili-editor")
    start = browser.get(f"/accounts/{account_id}/weibo/authorize", follow_redirects=False)
    consent = httpx.get(start.headers["location"], follow_redirects=False)
    back = urlsplit(consent.headers["location"])
    home = browser.get("/")
    match = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert match is not None
    nonce_cookie = browser.cookies.get("govhub_session")
    browser.post("/logout", data={"csrf": match.group(1)}, follow_redirects=False)
    browser.cookies.set("govhub_session", nonce_cookie or "")  # the nonce, but a dead session
    late = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert late.status_code == 403
    assert "未登录" in late.text
    with Session(engine_for(url)) as session:
        account = session.get(Account, account_id)
        assert account is not None and account.status is AccountStatus.needs_reauth
