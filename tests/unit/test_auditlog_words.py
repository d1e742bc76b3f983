"""The audit log's English summaries read in Chinese on the page (stored entries never change)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from hub.auditlog.words import action_label, readable_summary

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("「防汛通知」(routine)", "「防汛通知」（常规）"),
        ("「突发」(emergency)", "「突发」（突发）"),
        ("summary post 6 (in_review)", "生成总结稿件 #6（待审核）"),
        ("no summary post", "未生成总结稿件"),
        (
            "v1 pre-approved by live session 3 「发布会」 (key events #2, #5 → 凯里发布)",
            "第 1 版由微直播 #3「发布会」预先批准（关键条目 #2, #5 → 凯里发布）",
        ),
        ("v3", "第 3 版"),
        ("v2; approval withdrawn by the edit", "第 2 版；修改后原批准失效"),
        ("v2 → 3 deliveries", "第 2 版 → 3 条投递"),
        (
            "v2 → 3 deliveries, scheduled 2026-03-01T02:00:00+00:00",
            "第 2 版 → 3 条投递，定时 2026-03-01 10:00（北京时间）",
        ),
        ("内容有误 (2 copies)", "内容有误（2 份已发布）"),
        ("delivery 17", "投递 #17"),
        ("kaili (editor) @ 凯里市", "kaili（编辑），凯里市"),
        ("通过：连接正常", "通过：连接正常"),  # already Chinese: as stored
        ("something else (routine) entirely", "something else (routine) entirely"),
    ],
)
def test_known_english_summaries_read_in_chinese(stored: str, shown: str) -> None:
    assert readable_summary(stored, TZ) == shown


def test_actions_have_chinese_names_and_unknown_ones_none() -> None:
    assert action_label("post.submit") == "提交审核"
    assert action_label("no.such") == ""
