"""Pure rules of the inbox: status transitions, routing, plain-text replies, masking handles,
WeChat's 48-hour window and the statistics. No I/O, no session, no clock (pass ``now``)."""

from __future__ import annotations

import html
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import nh3

from hub.inbox.models import CaseStatus, Category

WECHAT_WINDOW = timedelta(hours=48)
HIDDEN_CATEGORIES = frozenset({Category.spam, Category.abusive})


def N_(message: str) -> str:
    """Marks a word for the interface catalog (pages show it through ``_``); no I/O here."""
    return message


OTHER_CHANNEL_ZH = N_("请通过其他方式答复")

# status -> statuses it may move to (a transfer re-enters ``assigned``; closed may be reopened)
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.new: frozenset(
        {CaseStatus.assigned, CaseStatus.in_progress, CaseStatus.replied, CaseStatus.closed}
    ),
    CaseStatus.assigned: frozenset(
        {CaseStatus.assigned, CaseStatus.in_progress, CaseStatus.replied, CaseStatus.closed}
    ),
    CaseStatus.in_progress: frozenset({CaseStatus.assigned, CaseStatus.replied, CaseStatus.closed}),
    CaseStatus.replied: frozenset({CaseStatus.in_progress, CaseStatus.replied, CaseStatus.closed}),
    CaseStatus.closed: frozenset({CaseStatus.in_progress}),
}

STATUS_ZH = {
    CaseStatus.new: N_("新留言"),
    CaseStatus.assigned: N_("已分派"),
    CaseStatus.in_progress: N_("办理中"),
    CaseStatus.replied: N_("已答复"),
    CaseStatus.closed: N_("已办结"),
}
CATEGORY_ZH = {
    Category.untriaged: N_("未分类"),
    Category.question: N_("咨询"),
    Category.complaint: N_("投诉"),
    Category.suggestion: N_("建议"),
    Category.praise: N_("表扬"),
    Category.spam: N_("垃圾信息"),
    Category.abusive: N_("辱骂攻击"),
}


def can_move(current: CaseStatus, target: CaseStatus) -> bool:
    return target in TRANSITIONS[current]


def is_hidden(category: Category) -> bool:
    """Spam and abuse are kept (evidence) but hidden from the inbox and the statistics."""
    return category in HIDDEN_CATEGORIES


# -- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    rule_id: int
    account_id: int | None
    keywords: tuple[str, ...]
    org_id: int
    priority: int = 100


def split_keywords(raw: str | Iterable[str]) -> tuple[str, ...]:
    items = re.split(r"[,，、;；\s]+", raw) if isinstance(raw, str) else list(raw)
    return tuple(k.strip() for k in items if k and k.strip())


def route(routes: Sequence[Route], account_id: int | None, text: str) -> Route | None:
    """The first rule (by priority, then id) for this account (or any) whose keyword is in the
    text (a rule without keywords matches any text); ``None``: the account's own org."""
    for rule in sorted(routes, key=lambda r: (r.priority, r.rule_id)):
        if rule.account_id is not None and rule.account_id != account_id:
            continue
        if not rule.keywords or any(k in text for k in rule.keywords):
            return rule
    return None


# -- triage suggestion --------------------------------------------------------------------------

_SUGGEST: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (Category.complaint, ("投诉", "举报", "不作为", "乱收费", "反映", "扰民")),
    (Category.suggestion, ("建议", "希望", "能否", "可否")),
    (Category.praise, ("点赞", "感谢", "谢谢", "表扬", "辛苦了")),
    (Category.question, ("?", "？", "吗", "如何", "怎么", "哪里", "请问", "什么时候")),
)


def suggest_category(text: str) -> Category:
    """A first guess for the editor (never final): keyword families in a fixed order."""
    for category, words in _SUGGEST:
        if any(w in text for w in words):
            return category
    return Category.untriaged


# -- replies ------------------------------------------------------------------------------------


def plain_reply(text: str) -> str:
    """The reply as plain text: tags dropped (scripts and styles with their content), entities
    decoded, repeated until nothing tag-like is left; whitespace runs collapsed."""
    current = text
    for _ in range(5):
        cleaned = html.unescape(
            nh3.clean(current, tags=set(), clean_content_tags={"script", "style"})
        )
        if cleaned == current:
            break
        current = cleaned
    lines = [" ".join(line.split()) for line in current.replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line).strip()


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """WeChat customer-service messages: allowed within 48 h of the user's last message."""
    return last_inbound_at is not None and now - last_inbound_at <= WECHAT_WINDOW


def mask_handle(handle: str) -> str:
    """The author as shown publicly: ``张三丰`` -> ``张**``, ``abcdef`` -> ``ab***``."""
    handle = handle.strip()
    if not handle:
        return "网友"
    if handle[0].isascii():
        return handle[:2] + "***"
    return handle[0] + "*" * max(2, len(handle) - 1)


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseTimes:
    received_at: datetime
    first_response_at: datetime | None
    answer_due_at: datetime | None
    replied_at: datetime | None


@dataclass(frozen=True)
class Stats:
    cases: int
    replied: int
    overdue_open: int
    median_first_response_hours: float | None
    answered_within_limit_pct: float | None


def stats_of(cases: Sequence[CaseTimes], now: datetime) -> Stats:
    """Volume, median hours to the first response, and the share answered within the limit
    among cases whose outcome is known (answered, or past the deadline unanswered)."""
    waits = [
        (c.first_response_at - c.received_at).total_seconds() / 3600
        for c in cases
        if c.first_response_at is not None
    ]
    judged = within = overdue_open = 0
    for c in cases:
        if c.answer_due_at is None:
            continue
        if c.replied_at is not None:
            judged += 1
            within += c.replied_at <= c.answer_due_at
        elif now > c.answer_due_at:
            judged += 1
            overdue_open += 1
    return Stats(
        cases=len(cases),
        replied=sum(1 for c in cases if c.replied_at is not None),
        overdue_open=overdue_open,
        median_first_response_hours=round(statistics.median(waits), 1) if waits else None,
        answered_within_limit_pct=round(100 * within / judged, 1) if judged else None,
    )
