"""WeChat rules without I/O: callback signature and event, quota, rendering and limits, errors."""

from __future__ import annotations

import io
import logging
import random
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
from PIL import Image as PILImage

from connectors.base import Content, Image, Pending, Published
from connectors.errors import Misconfigured, QuotaExhausted, RateLimited, Rejected, Transient
from connectors.tokens import MemoryTokenStore
from connectors.wechat import (
    EventError,
    RedactAccessTokens,
    WechatConnector,
    check_signature,
    error_for,
    mass_send_quota,
    next_midnight,
    parse_publish_event,
    publish_outcome,
    sanitize,
    sign,
    thumb_file,
)
from tests.images import png_declaring

SHANGHAI = timedelta(hours=8)


def connector() -> WechatConnector:
    return WechatConnector(
        httpx.Client(),
        api_base="http://wechat.invalid",
        public_base_url="http://hall.test",
        token_store=MemoryTokenStore(),
        author_default="新闻办",
    )


def content(**kw: object) -> Content:
    defaults: dict[str, object] = {
        "post_id": 1,
        "version": 1,
        "title": "关于防汛工作的通知",
        "body": "各区县：\n\n请做好防汛准备。",
        "images": (Image(path="/tmp/cover.jpg", url="http://hall.test/media/cover.jpg"),),
        "link": "/posts/1",
    }
    defaults.update(kw)
    return Content(**defaults)  # type: ignore[arg-type]


class _Elements(HTMLParser):
    """Collects every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def elements(fragment: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Elements()
    parser.feed(fragment)
    return parser.tags


# -- callback signature and event ------------------------------------------------------------


def test_signature_is_sha1_of_sorted_token_timestamp_nonce() -> None:
    # sha1("".join(sorted(["tok", "1700000000", "abc"]))) = sha1("1700000000abctok")
    import hashlib

    expected = hashlib.sha1(b"1700000000abctok").hexdigest()
    assert sign("tok", "1700000000", "abc") == expected
    assert check_signature("tok", "1700000000", "abc", expected)
    assert check_signature("tok", "1700000000", "abc", expected.upper())


@pytest.mark.parametrize(
    ("token", "timestamp", "nonce"),
    [("other", "1700000000", "abc"), ("tok", "1700000001", "abc"), ("tok", "1700000000", "abd")],
)
def test_signature_rejects_any_changed_part(token: str, timestamp: str, nonce: str) -> None:
    assert not check_signature(token, timestamp, nonce, sign("tok", "1700000000", "abc"))


def test_signature_with_no_configured_token_is_refused() -> None:
    assert not check_signature("", "1", "2", sign("", "1", "2"))


EVENT = b"""<xml>
<ToUserName><![CDATA[gh_4d00ed8d6399]]></ToUserName>
<FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName>
<CreateTime>1481013459</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[PUBLISHJOBFINISH]]></Event>
<PublishEventInfo>
<publish_id>2247503051</publish_id>
<publish_status>0</publish_status>
<article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy-G1FOI]]></article_id>
<article_detail>
<count>1</count>
<item>
<idx>1</idx>
<article_url><![CDATA[http://mp.weixin.qq.com/s/abc]]></article_url>
</item>
</article_detail>
</PublishEventInfo>
</xml>"""


def test_publish_event_is_parsed_and_agrees_with_poll() -> None:
    event = parse_publish_event(EVENT)
    assert event.publish_id == "2247503051"
    assert event.publish_status == 0
    assert event.article_id == "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy-G1FOI"
    assert event.article_urls == ("http://mp.weixin.qq.com/s/abc",)
    assert event.to_user == "gh_4d00ed8d6399"
    assert event.outcome() == Published(
        remote_id="b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy-G1FOI",
        remote_url="http://mp.weixin.qq.com/s/abc",
    )
    assert event.outcome() == publish_outcome(
        0,
        ref="2247503051",
        article_id=event.article_id,
        article_urls=["http://mp.weixin.qq.com/s/abc"],
    )


def test_failed_publish_event_names_the_failing_article() -> None:
    xml = (
        b"<xml><Event>PUBLISHJOBFINISH</Event><PublishEventInfo>"
        b"<publish_id>7</publish_id><publish_status>4</publish_status>"
        b"<fail_idx>2</fail_idx></PublishEventInfo></xml>"
    )
    event = parse_publish_event(xml)
    assert event.fail_idx == (2,)
    with pytest.raises(Rejected) as caught:
        event.outcome()
    assert "审核不通过" in caught.value.reason
    assert "第2篇" in caught.value.reason


@pytest.mark.parametrize(
    "xml",
    [
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><Event>&lol2;</Event></xml>',
        # external entity
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Event>&xxe;</Event></xml>",
        b"<xml><Event>subscribe</Event></xml>",
        b"not xml",
        b"<xml><Event>PUBLISHJOBFINISH</Event><PublishEventInfo></PublishEventInfo></xml>",
    ],
)
def test_bad_or_hostile_event_bodies_are_refused(xml: bytes) -> None:
    with pytest.raises(EventError):
        parse_publish_event(xml)


def test_publishing_status_stays_pending_with_the_same_ref() -> None:
    assert publish_outcome(1, ref="9:draft") == Pending(ref="9:draft")


@pytest.mark.parametrize(
    ("status", "words"), [(2, "原创"), (3, "发布失败"), (5, "删除"), (6, "封禁")]
)
def test_failed_statuses_are_rejections(status: int, words: str) -> None:
    with pytest.raises(Rejected) as caught:
        publish_outcome(status, ref="1")
    assert words in caught.value.reason


# -- mass-send quota -------------------------------------------------------------------------


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - SHANGHAI


def test_subscription_account_sends_once_per_beijing_day() -> None:
    now = beijing(2024, 5, 10, 9, 0)
    assert mass_send_quota("subscription", [], now) == 1
    assert mass_send_quota("subscription", [beijing(2024, 5, 10, 0, 30)], now) == 0
    # 23:30 Beijing the day before is a different day, though it is the same UTC day as now
    assert mass_send_quota("subscription", [beijing(2024, 5, 9, 23, 30)], now) == 1


def test_service_account_sends_four_times_per_calendar_month() -> None:
    now = beijing(2024, 5, 31, 23, 0)
    may = [beijing(2024, 5, d, 10, 0) for d in (1, 8, 15)]
    assert mass_send_quota("service", may, now) == 1
    assert mass_send_quota("service", [*may, beijing(2024, 5, 22, 10, 0)], now) == 0
    # 1 June 00:30 Beijing: a new month
    assert mass_send_quota("service", [*may, beijing(2024, 5, 22)], beijing(2024, 6, 1, 0, 30)) == 4


# -- rendering, sanitising, limits -----------------------------------------------------------


HOSTILE = (
    "正文<script>alert(1)</script>\n\n"
    "<img src=x onerror=alert(1)>\n\n"
    "[点我](javascript:alert(1)) <a href='http://x' onclick='steal()'>链接</a>\n\n"
    '<p style="color:red" onmouseover="x()">段落</p>'
)


def test_scripts_and_event_handlers_never_survive_rendering() -> None:
    html = connector().render(content(body=HOSTILE)).html
    tags = elements(html)
    assert "<script" not in html.lower()
    assert all(tag != "script" for tag, _ in tags)
    assert all(not name.startswith("on") for _, attrs in tags for name, _ in attrs)
    assert "javascript:" not in " ".join(v or "" for _, attrs in tags for _, v in attrs)


def test_sanitize_keeps_only_the_allow_list() -> None:
    dirty = (
        '<section style="x"><p onclick="x()">hi <script>bad()</script><b>b</b></p>'
        '<img src="http://a/b.png" onerror="x()" alt="a" width="9">'
        '<a href="javascript:x()">j</a><a href="https://ok">ok</a><iframe src="x"></iframe></section>'
    )
    assert sanitize(dirty) == (
        '<section><p>hi <b>b</b></p><img src="http://a/b.png" alt="a">'
        '<a>j</a><a href="https://ok">ok</a></section>'
    )


def test_render_is_faithful_and_check_reports_overlong_fields_in_chinese() -> None:
    rendition = connector().render(
        content(title="标" * 40, author="作" * 17, summary="摘" * 129, body="正文")
    )
    assert rendition.title == "标" * 40  # never truncated
    problems = {p.code: p.message for p in connector().check(rendition)}
    assert problems == {
        "wechat.title_too_long": "微信标题超过32字（当前40字），请缩短",
        "wechat.author_too_long": "微信作者超过16字（当前17字），请缩短",
        "wechat.digest_too_long": "微信摘要超过128字（当前129字），请缩短",
    }


def test_limits_at_their_maximum_are_accepted() -> None:
    rendition = connector().render(content(title="标" * 32, author="作" * 16, summary="摘" * 128))
    assert connector().check(rendition) == []


def test_missing_cover_and_too_long_content_are_reported() -> None:
    rendition = connector().render(content(images=(), body="字" * 20_000))
    codes = {p.code for p in connector().check(rendition)}
    assert codes == {"wechat.missing_cover", "wechat.content_too_long"}


def test_the_orgs_default_cover_stands_in_only_when_the_post_has_no_image() -> None:
    fallback = Image(path="/m/uploads/cover.jpg", url="http://hall.test/media/uploads/cover.jpg")
    without = connector().render(content(images=(), fallback_cover=fallback))
    assert without.cover == fallback
    assert "wechat.missing_cover" not in {p.code for p in connector().check(without)}
    own = connector().render(content(fallback_cover=fallback))
    assert own.cover is not None and own.cover != fallback
    assert WechatConnector.limits.needs_cover


def test_digest_is_the_summary_or_the_first_54_characters() -> None:
    body = "第一段" + "很长的正文" * 20
    assert connector().render(content(summary="摘要")).digest == "摘要"
    digest = connector().render(content(body=body)).digest
    assert len(digest) == 54
    assert digest.startswith("第一段很长的正文")


def test_correction_note_is_visible_and_link_is_the_hall_page() -> None:
    rendition = connector().render(content(correction_note="第二段数字有误，已更正。"))
    assert "更正说明" in rendition.html
    assert "第二段数字有误，已更正。" in rendition.html
    assert rendition.link == "http://hall.test/posts/1"
    assert rendition.author == "新闻办"


def test_post_images_not_in_the_body_are_appended() -> None:
    images = (
        Image(path="/tmp/a.jpg", url="http://hall.test/media/a.jpg", alt="甲"),
        Image(path="/tmp/b.jpg", url="http://hall.test/media/b.jpg", alt="乙"),
    )
    body = "看图：![乙](http://hall.test/media/b.jpg)"
    html = connector().render(content(images=images, body=body)).html
    assert html.count("http://hall.test/media/b.jpg") == 1
    assert '<img src="http://hall.test/media/a.jpg" alt="甲">' in html


# -- images ----------------------------------------------------------------------------------


def noisy_png(width: int, height: int) -> bytes:
    rng = random.Random(7)
    image = PILImage.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_big_png_cover_becomes_a_jpeg_thumb_within_64kb() -> None:
    png = noisy_png(320, 320)
    assert len(png) > 300_000
    thumb = thumb_file(png, 64 * 1024)
    assert thumb.content_type == "image/jpeg"
    assert thumb.data[:3] == b"\xff\xd8\xff"
    assert len(thumb.data) <= 64 * 1024


def test_small_jpeg_cover_is_uploaded_unchanged() -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 40), (200, 10, 10)).save(buffer, "JPEG")
    assert thumb_file(buffer.getvalue(), 64 * 1024).data == buffer.getvalue()


def test_unreadable_image_is_rejected_for_the_editor() -> None:
    with pytest.raises(Rejected):
        thumb_file(b"not an image", 64 * 1024)


def test_a_large_jpeg_cover_is_decoded_at_a_fraction_of_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """6000 x 6000 is allowed (36 million pixels), but a 64 KB thumb must not decode it whole."""
    buffer = io.BytesIO()
    PILImage.linear_gradient("L").resize((6000, 6000)).save(buffer, "JPEG", quality=50)
    decoded: list[tuple[int, int]] = []
    real_load = PILImage.Image.load

    def load(image: PILImage.Image):  # type: ignore[no-untyped-def]
        decoded.append(image.size)
        return real_load(image)

    monkeypatch.setattr(PILImage.Image, "load", load)
    thumb = thumb_file(buffer.getvalue(), 64 * 1024)
    assert thumb.data[:3] == b"\xff\xd8\xff" and len(thumb.data) <= 64 * 1024
    assert decoded and max(w * h for w, h in decoded) <= 1500 * 1500  # 1/4 scale at most


def test_a_cover_declaring_too_many_pixels_is_rejected_before_decoding() -> None:
    with pytest.raises(Rejected, match="像素"):
        thumb_file(png_declaring(20000, 20000), 64 * 1024)


# -- error classes ---------------------------------------------------------------------------


def test_daily_quota_parks_until_beijing_midnight() -> None:
    now = datetime(2024, 5, 10, 17, 0, tzinfo=UTC)  # 01:00 on 11 May in Beijing
    error = error_for(45009, "reach max api daily quota limit", now=now)
    assert isinstance(error, QuotaExhausted)
    assert error.until == datetime(2024, 5, 11, 16, 0, tzinfo=UTC)  # 12 May 00:00 Beijing
    assert next_midnight(now) == error.until


def test_error_classes() -> None:
    now = datetime(2024, 5, 10, tzinfo=UTC)
    assert isinstance(error_for(-1, "system error"), Transient)
    minute = error_for(45011, "api minute-quota reach limit", now=now)
    assert isinstance(minute, RateLimited)
    assert not isinstance(minute, QuotaExhausted)
    assert minute.until == now + timedelta(seconds=60)
    for code in (48001, 48004, 40013):
        assert isinstance(error_for(code, "x"), Misconfigured)
    other = error_for(45003, "title size out of limit")
    assert type(other) is Rejected
    assert other.code == "45003"
    assert "title size out of limit" in other.reason


def test_ip_whitelist_error_tells_the_operator_which_ip() -> None:
    error = error_for(40164, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist")
    assert isinstance(error, Misconfigured)
    assert "203.0.113.9" in error.message
    assert "IP白名单" in error.message


def test_access_tokens_are_redacted_from_log_records() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("POST", "http://x/a?access_token=SECRET&b=1"),
        None,
    )
    RedactAccessTokens().filter(record)
    assert "SECRET" not in record.getMessage()
    assert "access_token=***" in record.getMessage()


def test_app_secrets_are_redacted_from_log_records() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "GET %s", ("http://x/t?appid=wx1&secret=S3CRET",), None
    )
    RedactAccessTokens().filter(record)
    assert "S3CRET" not in record.getMessage()
    assert "appid=wx1" in record.getMessage()


def test_connector_repr_has_no_secrets() -> None:
    assert repr(connector()) == "WechatConnector(api_base='http://wechat.invalid')"
