"""The audit log as people read it: Chinese action names and summaries.

Entries are stored as they were written (never rewritten: the log is evidence); some older
writers put English into the summary ("v3 → 2 deliveries", "summary post 6 (in_review)",
"「标题」(routine)"). :func:`readable_summary` says those in Chinese when a page shows them.
Pure functions, no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

ACTION_ZH: dict[str, str] = {
    "post.create": "新建稿件",
    "post.update": "修改稿件",
    "post.submit": "提交审核",
    "post.approve": "批准",
    "post.reject": "驳回",
    "post.cosign": "会签",
    "post.withdraw": "撤回",
    "post.correct": "更正",
    "delivery.retry": "重试投递",
    "delivery.cancel": "取消投递",
    "delivery.mark-published": "标记为已发布",
    "live.create": "新建直播",
    "live.start": "开始直播",
    "live.end": "结束直播",
    "live.poll_interval": "调整刷新间隔",
    "live.entry.approve": "批准直播条目",
    "live.entry.delete": "删除直播条目",
    "user.create": "新建用户",
    "user.enable": "启用用户",
    "user.disable": "停用用户",
    "user.update": "修改用户",
    "user.password_reset": "重置密码",
    "user.password_change": "修改密码",
    "user.sign_out_everywhere": "在所有设备上退出",
    "user.login": "登录",
    "user.login_failed": "登录失败",
    "account.create": "新增账号",
    "account.update": "修改账号",
    "account.bind": "授权账号",
    "account.test": "测试连接",
    "account.healed": "账号恢复",
    "account.needs_reauth": "账号需重新授权",
    "auth.forbidden": "越权访问被拒绝",
    "org.import": "导入机构",
    "org.update": "修改机构",
    "matrix_audit.save": "保存矩阵检查",
    "media.upload": "上传图片",
    "clock.start": "启动时限",
    "clock.stop": "停止时限",
    "clock.cancel": "取消时限",
    "partner.create": "新增合作网站",
    "partner.delete": "停止合作网站",
    "spokesperson.appoint": "任命发言人",
    "spokesperson.update": "修改发言人",
}

URGENCY_ZH = {"routine": "常规", "hot_topic": "热点", "emergency": "突发"}
ROLE_ZH = {"admin": "管理员", "supervisor": "督查", "editor": "编辑", "reviewer": "审核"}
STATUS_ZH = {
    "draft": "草稿",
    "in_review": "待审核",
    "cosigning": "会签中",
    "approved": "已批准",
    "scheduled": "已定时",
    "published": "已发布",
    "rejected": "已驳回",
}


def action_label(action: str) -> str:
    return ACTION_ZH.get(action, "")


def _when(text: str, tz: ZoneInfo) -> str:
    try:
        return datetime.fromisoformat(text).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


Rewrite = Callable[[re.Match[str], ZoneInfo], str]

PATTERNS: list[tuple[re.Pattern[str], Rewrite]] = [
    (re.compile(r"v(\d+)"), lambda m, tz: f"第 {m[1]} 版"),
    (
        re.compile(r"v(\d+); approval withdrawn by the edit"),
        lambda m, tz: f"第 {m[1]} 版；修改后原批准失效",
    ),
    (
        re.compile(r"v(\d+) → (\d+) deliveries(?:, scheduled (\S+))?"),
        lambda m, tz: (
            f"第 {m[1]} 版 → {m[2]} 条投递"
            + (f"，定时 {_when(m[3], tz)}（北京时间）" if m[3] else "")
        ),
    ),
    (
        re.compile(
            r"v(\d+) pre-approved by live session (\d+) 「(.*)」 \(key events (.*) → (.*)\)"
        ),
        lambda m, tz: f"第 {m[1]} 版由微直播 #{m[2]}「{m[3]}」预先批准（关键条目 {m[4]} → {m[5]}）",
    ),
    (
        re.compile(r"summary post (\d+) \((\w+)\)"),
        lambda m, tz: f"生成总结稿件 #{m[1]}（{STATUS_ZH.get(m[2], m[2])}）",
    ),
    (re.compile(r"no summary post"), lambda m, tz: "未生成总结稿件"),
    (
        re.compile(r"(「.*」) ?\((routine|hot_topic|emergency)\)"),
        lambda m, tz: f"{m[1]}（{URGENCY_ZH[m[2]]}）",
    ),
    (re.compile(r"(.*) \((\d+) copies\)", re.S), lambda m, tz: f"{m[1]}（{m[2]} 份已发布）"),
    (re.compile(r"delivery (\d+)"), lambda m, tz: f"投递 #{m[1]}"),
    (re.compile(r"(\d+)s"), lambda m, tz: f"{m[1]} 秒"),
    (
        re.compile(r"(\S+) \((admin|supervisor|editor|reviewer)\)(?: @ (.+))?"),
        lambda m, tz: f"{m[1]}（{ROLE_ZH[m[2]]}）" + (f"，{m[3]}" if m[3] else ""),
    ),
]


def readable_summary(summary: str, tz: ZoneInfo) -> str:
    """``summary`` in Chinese when it is one of the known English forms, else as stored."""
    for pattern, rewrite in PATTERNS:
        match = pattern.fullmatch(summary)
        if match:
            return rewrite(match, tz)
    return summary
