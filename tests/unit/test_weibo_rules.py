"""Weibo's counting and shortening rules, and the status the connector renders from them."""

from __future__ import annotations

import httpx
import pytest

from connectors.base import Content
from connectors.weibo import WeiboConnector
from connectors.weibo_rules import (
    ELLIPSIS,
    find_hashtags,
    fit_status,
    neutralise_hashtags,
    shorten,
    status_fingerprint,
    weibo_length,
    weibo_units,
)

LINK = "https://fabu.guizhou.gov.cn/posts/12345"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我司CEO！", 5),
        (" Test", 3),
        ("【转基因", 4),
        ("", 0),
        ("a", 1),
        ("ab", 1),
        ("abc", 2),
        ("贵州", 2),
    ],
)
def test_weibo_length_matches_the_platform_examples(text: str, expected: int) -> None:
    assert weibo_length(text) == expected


def test_a_url_counts_twenty_units_whatever_its_length() -> None:
    assert weibo_units("http://t.cn/abc") == 20
    assert weibo_units("http://example.com/" + "x" * 100) == 20
    assert weibo_length("http://example.com/a") == 10
    assert weibo_length("详情 https://example.com/a") == 13  # 4 + 1 + 20 units


def test_https_urls_can_be_counted_literally_for_the_worst_case() -> None:
    url = "https://example.com/" + "x" * 40
    assert weibo_units(url) == 20
    assert weibo_units(url, https_as_url=False) == len(url)
    assert weibo_units("http://a.cn/" + "x" * 40, https_as_url=False) == 20


def test_a_url_longer_than_140_bytes_counts_character_by_character() -> None:
    url = "http://example.com/" + "x" * 130
    assert weibo_units(url) == len(url)


def test_hashtags_outside_urls_are_found_and_neutralised() -> None:
    text = "关注#两会#进展 https://a.cn/p#top 更多#"
    assert find_hashtags(text) == ["#两会#"]
    neutral = neutralise_hashtags(text)
    assert find_hashtags(neutral) == []
    assert "https://a.cn/p#top" in neutral
    assert "＃两会＃" in neutral


def test_shorten_prefers_a_sentence_boundary() -> None:
    text = "第一句话写在这里。第二句话也写在这里。第三句话非常非常长，一直写下去没有结束" * 3
    short = shorten(text, 50)
    assert weibo_units(short) <= 50
    assert short.endswith("。")


def test_shorten_cuts_latin_text_at_a_word_boundary_with_an_ellipsis() -> None:
    text = "Provincial government executive meeting discusses flood prevention measures today"
    short = shorten(text, 40)
    assert short.endswith(ELLIPSIS)
    assert weibo_units(short) <= 40
    assert text.startswith(short[:-1].rstrip())
    assert short[:-1].split()[-1] in text.split()


def test_shorten_never_cuts_inside_a_url() -> None:
    text = "请看通知全文 http://example.com/a/very/long/path/to/the/notice 以及后续说明" * 2
    for budget in range(10, 80):
        short = shorten(text, budget)
        assert weibo_units(short) <= budget
        for piece in short.split():
            if piece.startswith("http"):
                assert piece in text.split()


def test_shorten_leaves_short_text_alone() -> None:
    assert shorten("  很短  ", 100) == "很短"


def test_fit_status_keeps_the_link_and_the_margin() -> None:
    fitted = fit_status("通知" * 2000, lambda text: f"{text} {LINK}".strip())
    assert fitted.shortened
    assert fitted.text.endswith(LINK)
    assert weibo_length(fitted.text) <= 138
    assert weibo_length(fitted.text, https_as_url=False) <= 140


def test_status_fingerprint_ignores_urls_and_whitespace() -> None:
    ours = f"【标题】正文内容 {LINK}"
    theirs = "【标题】正文内容  http://t.cn/A6abcd"
    assert status_fingerprint(ours) == status_fingerprint(theirs)
    assert status_fingerprint(ours) != status_fingerprint("【标题】别的内容 " + LINK)


# -- the connector's rendering (pure: no HTTP) --------------------------------------------------


@pytest.fixture
def weibo() -> WeiboConnector:
    return WeiboConnector(
        httpx.Client(),
        api_base="http://weibo.invalid",
        public_base_url="https://fabu.guizhou.gov.cn",
    )


def content(**changes: object) -> Content:
    fields: dict[str, object] = {
        "post_id": 12345,
        "version": 1,
        "title": "省政府常务会议召开",
        "body": "会议研究了防汛工作。",
        "link": LINK,
    }
    fields.update(changes)
    return Content(**fields)  # type: ignore[arg-type]


def test_a_2000_character_chinese_post_becomes_a_valid_status(weibo: WeiboConnector) -> None:
    sentence = "省政府召开常务会议，研究部署防汛抗旱和#安全生产#工作，要求各地压实责任。"
    body = "\n\n".join([sentence * 4] * 14)
    assert len(body) >= 2000
    rendition = weibo.render(content(body=f"## 会议要点\n\n{body}"))
    status = rendition.text
    assert weibo_length(status) <= 138
    assert weibo_length(status, https_as_url=False) <= 140
    assert status.endswith(" " + LINK)
    assert find_hashtags(status) == []
    assert status.startswith("【省政府常务会议召开】")
    assert rendition.meta["shortened"] == "1"
    assert weibo.check(rendition) == []


def test_markdown_is_stripped_to_plain_text(weibo: WeiboConnector) -> None:
    rendition = weibo.render(
        content(body="**重要**通知：请看[公告](http://other.example/x)。\n\n- 第一条\n- 第二条")
    )
    assert rendition.text == f"【省政府常务会议召开】重要通知：请看公告。第一条第二条 {LINK}"


def test_summary_is_used_when_present(weibo: WeiboConnector) -> None:
    rendition = weibo.render(content(summary="摘要在此。", body="正文" * 500))
    assert rendition.text == f"摘要在此。 {LINK}"


def test_override_is_respected_and_the_link_appended(weibo: WeiboConnector) -> None:
    rendition = weibo.render(content(overrides={"weibo.text": "编辑自己写的#微博#"}))
    assert rendition.text == f"编辑自己写的＃微博＃ {LINK}"
    already_linked = weibo.render(content(overrides={"weibo.text": f"看这里 {LINK} 谢谢"}))
    assert already_linked.text == f"看这里 {LINK} 谢谢"


def test_a_title_too_long_for_the_status_runs_into_the_lead(weibo: WeiboConnector) -> None:
    rendition = weibo.render(content(title="很长的标题" * 40, body="正文第一句。"))
    assert weibo_length(rendition.text) <= 138
    assert rendition.text.endswith(LINK)
    assert rendition.text.startswith("【很长的标题")


def test_the_first_image_becomes_the_pic(weibo: WeiboConnector) -> None:
    from connectors.base import Image

    images = (Image(path="/a.jpg"), Image(path="/b.jpg"))
    assert weibo.render(content(images=images)).images == images[:1]


def test_check_explains_problems_in_chinese(weibo: WeiboConnector, tmp_path: object) -> None:
    from connectors.base import Rendition

    rendition = Rendition(platform="weibo", text="很长" * 80 + " #话题# 没有链接", link=LINK)
    problems = {p.code: p for p in weibo.check(rendition)}
    assert set(problems) == {"weibo.too_long", "weibo.missing_link", "weibo.hashtag"}
    assert problems["weibo.too_long"].message == "微博正文超过140字（当前168字），请删减或使用摘要"
    assert "#话题#" in problems["weibo.hashtag"].message


def test_check_requires_the_link_under_the_public_hall(weibo: WeiboConnector) -> None:
    from connectors.base import Rendition

    other = "https://elsewhere.example/p/1"
    problems = weibo.check(Rendition(platform="weibo", text=f"正文 {other}", link=other))
    assert [p.code for p in problems] == ["weibo.missing_link"]


def test_check_flags_image_size_and_type(weibo: WeiboConnector, tmp_path: object) -> None:
    from pathlib import Path

    from connectors.base import Image, Rendition

    directory = Path(str(tmp_path))
    big = directory / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024 + 1))
    bmp = directory / "pic.bmp"
    bmp.write_bytes(b"BM" + b"\0" * 100)
    text = f"正文 {LINK}"
    for path, code in ((big, "weibo.image_too_large"), (bmp, "weibo.image_type")):
        rendition = Rendition(platform="weibo", text=text, link=LINK, images=(Image(str(path)),))
        assert [p.code for p in weibo.check(rendition)] == [code]
