"""The review workflow as one pure transition table, plus who may move a post along it.

先审后发: nothing leaves before a reviewer who is not the author has approved the exact version
that goes out. Co-signing orgs (会签) confirm first; emergency posts take a fast path (one approval
by a reviewer of the author's org or its parent).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hub.errors import Conflict, Reason
from hub.posts.models import PostStatus, Urgency


class Move(StrEnum):
    submit = "submit"
    cosign = "cosign"
    approve = "approve"
    reject = "reject"
    schedule = "schedule"
    release = "release"  # deliveries start going out
    settle = "settle"  # every delivery has an outcome
    miss = "miss"
    edit = "edit"
    withdraw = "withdraw"
    correct = "correct"


# (move, from) -> to. ``settle`` and ``approve`` have computed targets (see next_status).
TRANSITIONS: dict[tuple[Move, PostStatus], PostStatus] = {
    (Move.submit, PostStatus.draft): PostStatus.in_review,
    (Move.submit, PostStatus.rejected): PostStatus.in_review,
    (Move.submit, PostStatus.missed): PostStatus.in_review,
    # stays until every co-signer has confirmed
    (Move.cosign, PostStatus.cosigning): PostStatus.cosigning,
    (Move.approve, PostStatus.in_review): PostStatus.approved,
    (Move.approve, PostStatus.cosigning): PostStatus.approved,
    (Move.reject, PostStatus.in_review): PostStatus.rejected,
    (Move.reject, PostStatus.cosigning): PostStatus.rejected,
    (Move.schedule, PostStatus.approved): PostStatus.scheduled,
    (Move.release, PostStatus.approved): PostStatus.publishing,
    (Move.release, PostStatus.scheduled): PostStatus.publishing,
    (Move.miss, PostStatus.scheduled): PostStatus.missed,
    (Move.settle, PostStatus.publishing): PostStatus.published,
    (Move.settle, PostStatus.published): PostStatus.published,
    (Move.settle, PostStatus.partly_failed): PostStatus.partly_failed,
    (Move.settle, PostStatus.failed): PostStatus.failed,
    (Move.edit, PostStatus.draft): PostStatus.draft,
    (Move.edit, PostStatus.rejected): PostStatus.draft,
    (Move.edit, PostStatus.missed): PostStatus.draft,
    (Move.edit, PostStatus.in_review): PostStatus.draft,
    (Move.edit, PostStatus.cosigning): PostStatus.draft,
    (Move.edit, PostStatus.approved): PostStatus.draft,  # editing after approval invalidates it
    (Move.edit, PostStatus.scheduled): PostStatus.draft,
    (Move.withdraw, PostStatus.published): PostStatus.withdrawn,
    (Move.withdraw, PostStatus.partly_failed): PostStatus.withdrawn,
    (Move.withdraw, PostStatus.failed): PostStatus.withdrawn,
    (Move.withdraw, PostStatus.publishing): PostStatus.withdrawn,
    (Move.withdraw, PostStatus.scheduled): PostStatus.withdrawn,
    (Move.withdraw, PostStatus.approved): PostStatus.withdrawn,
    # a corrected version is reviewed again
    (Move.correct, PostStatus.published): PostStatus.in_review,
    (Move.correct, PostStatus.partly_failed): PostStatus.in_review,
}

MOVE_WORDS = {  # a Reason each: translated inside the message
    Move.submit: Reason("送审"),
    Move.cosign: Reason("会签"),
    Move.approve: Reason("批准"),
    Move.reject: Reason("退回"),
    Move.schedule: Reason("安排定时发布"),
    Move.release: Reason("发布"),
    Move.settle: Reason("结束发布"),
    Move.miss: Reason("标记为错过发布时间"),
    Move.edit: Reason("修改"),
    Move.withdraw: Reason("撤回"),
    Move.correct: Reason("更正"),
}

STATE_WORDS = {  # the labels of hub.records.rules.POST_STATUS, as a Reason each
    PostStatus.draft: Reason("草稿"),
    PostStatus.in_review: Reason("待审核"),
    PostStatus.cosigning: Reason("会签中"),
    PostStatus.approved: Reason("已批准"),
    PostStatus.scheduled: Reason("已定时"),
    PostStatus.publishing: Reason("发布中"),
    PostStatus.published: Reason("已发布"),
    PostStatus.partly_failed: Reason("部分失败"),
    PostStatus.failed: Reason("失败"),
    PostStatus.rejected: Reason("已驳回"),
    PostStatus.missed: Reason("错过发布时间"),
    PostStatus.withdrawn: Reason("已撤回"),
}


class TransitionError(Conflict):
    """The move is not allowed from this state (HTTP 409); the message says why in words."""


def next_status(move: Move, current: PostStatus) -> PostStatus:
    try:
        return TRANSITIONS[(move, current)]
    except KeyError:
        raise TransitionError(
            "稿件状态为「%(state)s」，不能%(move)s",
            move=MOVE_WORDS[move],
            state=STATE_WORDS[current],
        ) from None


def status_after_submit(cosign_pending: bool) -> PostStatus:
    return PostStatus.cosigning if cosign_pending else PostStatus.in_review


@dataclass(frozen=True)
class Reviewer:
    user_id: int
    org_path: str
    is_reviewer: bool  # role reviewer or admin


def approval_refusal(
    *,
    reviewer: Reviewer,
    author_id: int,
    post_org_path: str,
    urgency: Urgency,
    cosign_pending: list[str],
) -> str | None:
    """Why ``reviewer`` may not approve, or None when they may (four eyes, scope, co-signing)."""
    if reviewer.user_id == author_id:
        return Reason("您是该稿件的作者，须由另一名审核人批准（四眼原则）")
    if not reviewer.is_reviewer:
        return Reason("只有审核员可以批准稿件")
    if urgency is Urgency.emergency:
        parent_path = post_org_path.rstrip("/").rsplit("/", 1)[0] + "/"
        if not (post_org_path.startswith(reviewer.org_path) or reviewer.org_path == parent_path):
            return Reason("突发事件稿件须由作者所在机构或其上级机构的审核员批准")
        return None
    if not post_org_path.startswith(reviewer.org_path):
        return Reason("该稿件所属机构不在您的范围内")
    if cosign_pending:
        return Reason("等待以下机构会签：%(orgs)s", orgs=", ".join(cosign_pending))
    return None


def content_hash(
    *, title: str, body: str, summary: str, images: list[str], overrides: dict[str, str]
) -> str:
    """A stable hash of what would go out: approval binds to it."""
    payload = json.dumps(
        {"t": title, "b": body, "s": summary, "i": images, "o": overrides},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def due_release(*, scheduled_at: datetime | None, now: datetime, missed_after: timedelta) -> str:
    """'wait', 'release' or 'miss' for a scheduled post at ``now``."""
    if scheduled_at is None or scheduled_at <= now:
        if scheduled_at is not None and now - scheduled_at > missed_after:
            return "miss"
        return "release"
    return "wait"


IN_FLIGHT = frozenset({"queued", "sending", "pending", "unconfirmed"})
"""Delivery statuses that keep a post ``publishing``."""


def settled_status(delivery_statuses: list[str]) -> PostStatus | None:
    """The post's status from its deliveries', or None while any is still in flight."""
    if any(s in IN_FLIGHT for s in delivery_statuses):
        return None
    live = [s for s in delivery_statuses if s not in ("cancelled", "withdrawn")]
    if not live:
        return PostStatus.failed if delivery_statuses else PostStatus.published
    ok = sum(1 for s in live if s == "published")
    if ok == len(live):
        return PostStatus.published
    return PostStatus.partly_failed if ok else PostStatus.failed
