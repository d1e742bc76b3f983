"""Weibo-specific behaviour against the sandbox: the outcomes that must never duplicate a post."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image as PILImage

from connectors.base import Account, Content, Image, Pending, Published
from connectors.errors import (
    AccountBlocked,
    AuthExpired,
    CapabilityUnavailable,
    ConnectorError,
    Misconfigured,
    RateLimited,
    Rejected,
    Transient,
    Unconfirmed,
)
from connectors.weibo import WeiboConnector
from tests.contract.harness import sample_content
from tests.contract.harness_weibo import (
    ACTING_IP,
    APP_KEY,
    APP_SECRET,
    PUBLIC_BASE_URL,
    WeiboHarness,
)

IP = ACTING_IP

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def weibo_harness() -> Iterator[WeiboHarness]:
    harness = WeiboHarness()
    yield harness
    harness.stop()


@pytest.fixture
def h(weibo_harness: WeiboHarness) -> Iterator[WeiboHarness]:
    yield weibo_harness
    weibo_harness.clear_faults()
    weibo_harness.sandbox.reset(config=False)
    config = weibo_harness.sandbox.config
    config.posts_per_hour, config.rate_limit_code = 30, 10023
    config.error_code_as_string = config.errors_with_http_200 = False
    config.require_rip = config.app_audited = config.comments_permission = True
    config.test_uids = config.captcha_uids = ()


def control(h: WeiboHarness, path: str, payload: dict[str, object]) -> None:
    h.control.post(path, json=payload).raise_for_status()


def share_calls(h: WeiboHarness) -> int:
    return int(h.control.get("/calls").json().get("share", 0))


def test_20032_is_success_and_is_never_resent(h: WeiboHarness) -> None:
    account = h.new_account()
    rendition = h.connector.render(h.content())
    control(h, "/faults", {"endpoint": "share", "code": 20032, "accept": True})
    outcome = h.connector.publish(account, rendition, idempotency_key="k")
    assert isinstance(outcome, Pending)
    assert share_calls(h) == 1
    (stored,) = h.stored_ids(account)
    polled = h.connector.poll(account, outcome.ref)
    assert isinstance(polled, Published)
    assert polled.remote_id == stored
    assert polled.remote_url == f"https://weibo.com/{account.handle}/{stored}"
    assert share_calls(h) == 1


@pytest.mark.parametrize("code", [20017, 20019, 20111])
def test_duplicate_codes_are_unconfirmed_and_never_resent(h: WeiboHarness, code: int) -> None:
    account = h.new_account()
    rendition = h.connector.render(h.content())
    control(h, "/faults", {"endpoint": "share", "code": code})
    with pytest.raises(Unconfirmed) as raised:
        h.connector.publish(account, rendition, idempotency_key="k")
    assert raised.value.code == str(code)
    assert share_calls(h) == 1
    assert h.stored_ids(account) == []


def test_a_real_duplicate_is_found_in_the_timeline(h: WeiboHarness) -> None:
    account = h.new_account()
    rendition = h.connector.render(h.content())
    started = datetime.now(UTC)
    first = h.connector.publish(account, rendition, idempotency_key="k")
    assert isinstance(first, Published)
    with pytest.raises(Unconfirmed):
        h.connector.publish(account, rendition, idempotency_key="k")  # the sandbox says 20019
    found = h.connector.find_published(account, rendition, not_before=started)
    assert found is not None
    assert found.remote_id == first.remote_id
    assert h.stored_ids(account) == [first.remote_id]


def test_rate_limit_gives_the_reset_time_from_rate_limit_status(h: WeiboHarness) -> None:
    control(h, "/config", {"posts_per_hour": 2})
    account = h.new_account()
    for _ in range(2):
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as raised:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert raised.value.code == "10023"
    wait = raised.value.until - before
    assert timedelta(minutes=58) < wait <= timedelta(hours=1, seconds=5)
    assert len(h.stored_ids(account)) == 2
    status = h.connector.rate_limit_status(account)
    assert status.remaining_posts == 0


def test_rate_limit_falls_back_to_an_hour_when_the_status_call_fails(h: WeiboHarness) -> None:
    account = h.new_account()
    control(h, "/faults", {"endpoint": "share", "code": 10023})
    control(h, "/faults", {"endpoint": "rate_limit_status", "code": 10001})
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as raised:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert timedelta(minutes=59) < raised.value.until - before <= timedelta(hours=1, seconds=5)


def test_the_rate_limit_code_is_configurable(h: WeiboHarness) -> None:
    control(h, "/config", {"posts_per_hour": 1, "rate_limit_code": 20016})
    account = h.new_account()
    h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    with pytest.raises(Transient) as raised:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert raised.value.retry_after >= 600


def test_an_expired_token_is_auth_expired(h: WeiboHarness) -> None:
    minted = h.control.post("/tokens", json={"expires_in": 60}).json()
    account = Account(
        1, "weibo", minted["uid"], credentials={"access_token": minted["access_token"]}
    )
    h.connector.recent(account)  # valid for now
    control(h, "/clock", {"advance": 61})
    with pytest.raises(AuthExpired) as raised:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert raised.value.code == "21327"


def test_a_revoked_token_is_auth_expired(h: WeiboHarness) -> None:
    account = h.new_account()
    control(h, "/tokens/revoke", {"access_token": account.credentials["access_token"]})
    with pytest.raises(AuthExpired):
        h.connector.recent(account)


def test_a_dropped_connection_after_acceptance_leaves_exactly_one_post(h: WeiboHarness) -> None:
    account = h.new_account()
    rendition = h.connector.render(h.content())
    started = datetime.now(UTC)
    control(h, "/faults", {"endpoint": "share", "drop": True})
    with pytest.raises(Unconfirmed):
        h.connector.publish(account, rendition, idempotency_key="k")
    assert share_calls(h) == 1
    (stored,) = h.stored_ids(account)
    found = h.connector.find_published(account, rendition, not_before=started)
    assert found is not None and found.remote_id == stored


def test_a_read_timeout_after_sending_is_unconfirmed(h: WeiboHarness) -> None:
    impatient = WeiboConnector(
        h.client,
        api_base=h.server.base_url,
        public_base_url=PUBLIC_BASE_URL,
        timeout=httpx.Timeout(5.0, read=0.2),
    )
    account = h.new_account()
    control(h, "/latency", {"endpoint": "share", "ms": 600})
    with pytest.raises(Unconfirmed):
        impatient.publish(account, impatient.render(h.content()), idempotency_key="k")
    deadline = time.monotonic() + 5
    while not h.stored_ids(account):  # the sandbox finishes the call after the client gave up
        assert time.monotonic() < deadline, "the post never arrived"
    assert len(h.stored_ids(account)) == 1


def test_nothing_sent_is_transient() -> None:
    with httpx.Client() as client:
        closed = WeiboConnector(
            client, api_base="http://127.0.0.1:9", public_base_url=PUBLIC_BASE_URL
        )
        account = Account(1, "weibo", "1", credentials={"access_token": "t0ken-value"})
        with pytest.raises(Transient):
            closed.publish(account, closed.render(_content()), idempotency_key="k")


def _content() -> Content:
    return sample_content(PUBLIC_BASE_URL)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(20019, Unconfirmed), (21327, AuthExpired), (10023, RateLimited), (20012, Rejected)],
)
def test_error_codes_as_strings_with_http_200(
    h: WeiboHarness, code: int, expected: type[ConnectorError]
) -> None:
    control(h, "/config", {"error_code_as_string": True, "errors_with_http_200": True})
    account = h.new_account()
    control(h, "/faults", {"endpoint": "share", "code": code})
    raw = h.client.post(
        f"{h.server.base_url}/2/statuses/share.json",
        data={"status": "x", "access_token": account.credentials["access_token"]},
    )
    assert raw.status_code == 200 and raw.json()["error_code"] == str(code)
    control(h, "/faults", {"endpoint": "share", "code": code})
    with pytest.raises(expected):
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")


def test_withdraw_of_an_unknown_status_is_done(h: WeiboHarness) -> None:
    account = h.new_account()
    h.connector.withdraw(account, "4899999999999999")  # 20101: already gone


def test_timeline_includes_posts_made_on_the_platform(h: WeiboHarness) -> None:
    account = h.new_account()
    ours = h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert isinstance(ours, Published)
    direct = h.control.post(f"/users/{account.handle}/posts", json={"text": "现场直接发的微博"})
    direct_id = direct.json()["idstr"]
    listed = h.connector.recent(account)
    assert [p.remote_id for p in listed] == [direct_id, ours.remote_id]
    assert listed[0].text == "现场直接发的微博"
    assert listed[0].created_at.tzinfo is not None
    assert [p.remote_id for p in h.connector.recent(account, since=ours.remote_id)] == [direct_id]


def test_a_picture_is_sent_as_multipart(h: WeiboHarness, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 30), "red").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    account = h.new_account()
    content = h.content()
    rendition = h.connector.render(replace(content, images=(Image(str(path)),)))
    assert h.connector.check(rendition) == []
    h.connector.publish(account, rendition, idempotency_key="k")
    (post,) = h.sandbox.posts(account.handle)
    assert (post.pic_type, post.pic_bytes) == ("image/png", path.stat().st_size)


def test_an_oversized_picture_is_rejected_by_the_platform(h: WeiboHarness, tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * (5 * 1024 * 1024 + 10))
    account = h.new_account()
    rendition = h.connector.render(replace(h.content(), images=(Image(str(path)),)))
    assert [p.code for p in h.connector.check(rendition)] == ["weibo.image_too_large"]
    with pytest.raises(Rejected) as raised:
        h.connector.publish(account, rendition, idempotency_key="k")
    assert raised.value.code == "20006"


def test_the_sandbox_enforces_the_share_rules(h: WeiboHarness) -> None:
    account = h.new_account()
    token = account.credentials["access_token"]
    url = f"{h.server.base_url}/2/statuses/share.json"
    link = f"{PUBLIC_BASE_URL}/posts/1"
    cases = {
        "很长" * 71 + " " + link: 20012,
        f"#话题# {link}": 20021,
        "没有链接的微博": 10017,
        "别的网站 https://elsewhere.example/x": 10017,
        "": 20008,
    }
    for status, code in cases.items():
        answer = h.client.post(url, data={"status": status, "access_token": token, "rip": IP})
        assert answer.json()["error_code"] == code, status
    no_rip = h.client.post(url, data={"status": "x " + link, "access_token": token}).json()
    assert no_rip["error_code"] == 10016 and "rip" in no_rip["error"]
    bad_rip = {"status": "x " + link, "access_token": token, "rip": "not-an-ip"}
    assert h.client.post(url, data=bad_rip).json()["error_code"] == 10008
    assert h.client.post(url, data={"status": "x " + link}).json()["error_code"] == 10006
    answer = h.client.post(url, data={"status": "x " + link, "access_token": "nope"})
    assert answer.status_code == 401 and answer.json()["error_code"] == 21332
    assert h.stored_ids(account) == []


def test_oauth_authorize_and_exchange_round_trip(h: WeiboHarness) -> None:
    redirect_uri = "http://hall.test/accounts/weibo/callback"
    url = h.connector.authorize_url(redirect_uri, state="s-123")
    assert url.startswith(f"{h.server.base_url}/oauth2/authorize?client_id={APP_KEY}&")
    approved = h.client.get(url, follow_redirects=False)
    assert approved.status_code == 302
    location = urlsplit(approved.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    assert query["state"] == ["s-123"]
    token = h.connector.exchange_code(query["code"][0], redirect_uri)
    assert token.uid and token.expires_at > datetime.now(UTC) + timedelta(days=1)
    assert token.access_token not in repr(token)
    account = Account(
        2,
        "weibo",
        token.uid,
        credentials={"access_token": token.access_token},
        extra={"rip": ACTING_IP},
    )
    published = h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert isinstance(published, Published)
    with pytest.raises(Rejected) as reused:
        h.connector.exchange_code(query["code"][0], redirect_uri)
    assert reused.value.code == "21325"


def test_a_wrong_app_secret_is_misconfigured_and_never_shown(
    h: WeiboHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = WeiboConnector(
        h.client,
        api_base=h.server.base_url,
        public_base_url=PUBLIC_BASE_URL,
        app_key=APP_KEY,
        app_secret="wrong-secret-77aa",
    )
    code = parse_qs(
        urlsplit(
            h.client.get(wrong.authorize_url("http://hall.test/cb", "s")).headers["location"]
        ).query
    )["code"][0]
    with pytest.raises(Misconfigured) as raised:
        wrong.exchange_code(code, "http://hall.test/cb")
    assert "wrong-secret-77aa" not in str(raised.value) + repr(wrong) + caplog.text
    assert APP_SECRET not in repr(h.connector)


def test_a_token_echoed_by_the_platform_is_redacted(h: WeiboHarness) -> None:
    account = h.new_account()
    token = account.credentials["access_token"]
    message = f"invalid request /2/statuses/share.json?access_token={token}&x=1 token {token}"
    control(h, "/faults", {"endpoint": "share", "code": 21332, "message": message})
    with pytest.raises(AuthExpired) as raised:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert token not in str(raised.value)
    assert token not in (raised.value.platform_message or "")
    assert "access_token=***" in (raised.value.platform_message or "")


def test_chaos_with_reconciliation_publishes_each_post_exactly_once(h: WeiboHarness) -> None:
    """What the delivery engine does: retry Transient, look before re-sending when Unconfirmed."""
    control(h, "/chaos", {"transient_rate": 0.25, "drop_rate": 0.25, "seed": 7})
    account = h.new_account()
    renditions = [h.connector.render(h.content()) for _ in range(12)]
    for rendition in renditions:
        started = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(30):
            try:
                h.connector.publish(account, rendition, idempotency_key="k")
                break
            except Transient:
                continue
            except Unconfirmed:
                try:
                    if h.connector.find_published(account, rendition, not_before=started):
                        break
                except Transient:
                    continue
        else:
            pytest.fail("never published")
    control(h, "/chaos", {"transient_rate": 0, "drop_rate": 0})
    texts = [post.text for post in h.sandbox.posts(account.handle)]
    assert sorted(texts) == sorted(r.text for r in renditions)


def test_the_simulator_refuses_knobs_for_endpoints_it_does_not_have(h: WeiboHarness) -> None:
    # "statuses/share" is the API path; the simulator's endpoint names are "share" etc. A wrong
    # name used to be accepted and ignored, so a benchmark ran without the latency it asked for.
    with pytest.raises(ValueError, match="unknown endpoint"):
        h.sandbox.set_latency("statuses/share", 100)
    refused = h.control.post("/latency", json={"endpoint": "statuses/share", "ms": 100})
    assert refused.status_code == 400 and "unknown endpoint" in refused.json()["error"]
    assert h.control.post("/latency", json={"endpoint": "share", "ms": 0}).status_code == 200


# -- rip and the first-day codes (issue 13) --------------------------------------------------------


def test_share_and_reply_carry_the_acting_persons_ip_as_rip(h: WeiboHarness) -> None:
    account = h.new_account()
    published = h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert isinstance(published, Published)
    (post,) = h.control.get(f"/users/{account.handle}/posts").json()["posts"]
    assert post["rip"] == ACTING_IP
    comment = h.sandbox.add_comment(published.remote_id, "请问几点开始？")
    other = replace(account, extra={"uid": account.handle, "rip": "2001:db8::7"})
    h.connector.reply_comment(other, str(comment.id), published.remote_id, "上午九点。")
    (reply,) = h.sandbox.replies_to(comment.id)
    assert reply.rip == "2001:db8::7"


def test_a_share_without_rip_is_refused_and_names_the_fallback_setting(h: WeiboHarness) -> None:
    account = replace(h.new_account(), extra={})
    with pytest.raises(Misconfigured) as refused:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert refused.value.code == "10016"
    assert "GOVHUB_WEIBO_FALLBACK_RIP" in str(refused.value)
    assert h.stored_ids(account) == []
    # what is not an IP address is never sent as one
    garbage = replace(account, extra={"rip": "evil; DROP"})
    with pytest.raises(Misconfigured):
        h.connector.publish(garbage, h.connector.render(h.content()), idempotency_key="k")


def test_21321_an_unaudited_app_blocks_the_account_until_it_is_a_tester(h: WeiboHarness) -> None:
    account = h.new_account()
    control(h, "/config", {"app_audited": False})
    with pytest.raises(AccountBlocked) as blocked:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert blocked.value.code == "21321"
    assert "open.weibo.com" in str(blocked.value) and "测试账号" in str(blocked.value)
    with pytest.raises(AccountBlocked):  # the connection test sees it too
        h.connector.recent(account)
    control(h, "/config", {"test_uids": [account.handle]})
    assert h.connector.recent(account) == []
    published = h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert h.stored_ids(account) == [published.remote_id]  # type: ignore[union-attr]


def test_20031_a_captcha_blocks_posting_until_it_is_passed(h: WeiboHarness) -> None:
    account = h.new_account()
    control(h, "/config", {"captcha_uids": [account.handle]})
    with pytest.raises(AccountBlocked) as blocked:
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert blocked.value.code == "20031"
    assert "weibo.com" in str(blocked.value) and "验证码" in str(blocked.value)
    assert h.stored_ids(account) == []
    control(h, "/config", {"captcha_uids": []})
    assert isinstance(
        h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k"),
        Published,
    )


def test_10014_on_the_comment_apis_is_a_capability_not_a_failure(h: WeiboHarness) -> None:
    account = h.new_account()
    published = h.connector.publish(account, h.connector.render(h.content()), idempotency_key="k")
    assert isinstance(published, Published)
    comment = h.sandbox.add_comment(published.remote_id, "留言")
    control(h, "/config", {"comments_permission": False})
    with pytest.raises(CapabilityUnavailable) as denied:
        h.connector.comments_to_me(account)
    assert denied.value.capability == "comments" and denied.value.code == "10014"
    assert "评论" in str(denied.value) and "测试连接" in str(denied.value)
    with pytest.raises(CapabilityUnavailable):
        h.connector.reply_comment(account, str(comment.id), published.remote_id, "答复")
    assert h.sandbox.replies_to(comment.id) == []
    # posting is a different permission: it still works
    other = h.connector.render(replace(h.content(), title="另一条", body="另一条正文"))
    assert isinstance(h.connector.publish(account, other, idempotency_key="k2"), Published)


def test_10017_a_status_without_a_safe_domain_link_fails_with_the_reason(h: WeiboHarness) -> None:
    account = h.new_account()
    rendition = replace(h.connector.render(h.content()), text="没有发布厅链接的微博")
    with pytest.raises(Rejected) as refused:
        h.connector.publish(account, rendition, idempotency_key="k")
    assert refused.value.code == "10017" and not isinstance(refused.value, Misconfigured)
    assert "安全域名" in str(refused.value) and PUBLIC_BASE_URL in str(refused.value)
