"""Pure rules of review levels (三审三校) and of live key-event approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.live import rules as live
from hub.posts import levels
from hub.posts.levels import Decision, Level
from hub.posts.models import EmergencyPath, Urgency

CHAIN = [Level("初审", "reviewer"), Level("复审", "admin"), Level("终审", user_ids=(7,))]


def refusal(current: int, user_id: int, role: str = "reviewer", **extra: object) -> str | None:
    return levels.level_refusal(
        CHAIN,
        current,
        user_id=user_id,
        role=role,
        author_id=extra.pop("author_id", 1),  # type: ignore[arg-type]
        decisions=extra.pop("decisions", []),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_each_level_is_decided_by_its_role_or_its_named_users() -> None:
    assert refusal(1, 2) is None
    assert refusal(1, 3, role="admin") is None  # admins review too
    assert "管理员" in (refusal(2, 2) or "")
    assert refusal(2, 3, role="admin") is None
    assert "指定的审核人" in (refusal(3, 3, role="admin") or "")
    assert refusal(3, 7) is None


def test_the_author_approves_no_level_and_nobody_approves_two() -> None:
    assert "作者" in (refusal(1, 1) or "")
    assert "作者" in (refusal(3, 7, author_id=7) or "")
    said = refusal(2, 3, role="admin", decisions=[Decision(1, 3)])
    assert said is not None and "初审" in said and "另一人" in said


def test_an_approval_moves_the_post_up_until_the_last_level_releases_it() -> None:
    routine = Urgency.routine
    assert levels.first_level(3, routine, EmergencyPath.last) == 1
    assert levels.after_approval(1, 3, routine, EmergencyPath.last) == 2
    assert levels.after_approval(2, 3, routine, EmergencyPath.last) == 3
    assert levels.after_approval(3, 3, routine, EmergencyPath.last) == 0
    assert levels.after_approval(1, 1, routine, EmergencyPath.full) == 0


def test_emergency_fast_paths() -> None:
    urgent = Urgency.emergency
    assert levels.first_level(3, urgent, EmergencyPath.last) == 3
    assert levels.first_level(3, urgent, EmergencyPath.one) == 1
    assert levels.after_approval(1, 3, urgent, EmergencyPath.one) == 0
    assert levels.first_level(3, urgent, EmergencyPath.full) == 1
    assert levels.after_approval(1, 3, urgent, EmergencyPath.full) == 2
    assert refusal(1, 7, role="editor", any_level=True) is None  # named at 终审: enough
    assert refusal(1, 9, role="editor", any_level=True) is not None
    steps = levels.steps(CHAIN, 3, [], fast=EmergencyPath.last)
    assert [s.state for s in steps] == ["skipped", "skipped", "waiting"]


def test_a_chain_must_be_complete_and_unambiguous() -> None:
    assert levels.chain_problem(CHAIN) is None
    assert levels.chain_problem([]) is not None
    assert levels.chain_problem([Level("a", "reviewer")] * 4) is not None
    assert "名称" in (levels.chain_problem([Level(" ", "reviewer")]) or "")
    assert "同时" in (levels.chain_problem([Level("初审", "reviewer", (3,))]) or "")
    assert "须指定" in (levels.chain_problem([Level("初审")]) or "")
    assert "reviewer 或 admin" in (levels.chain_problem([Level("初审", "editor")]) or "")


def test_steps_show_who_decided_and_where_the_post_waits() -> None:
    steps = levels.steps(CHAIN, 2, [Decision(1, 5)])
    assert [(s.state, s.user_id) for s in steps] == [
        ("approved", 5),
        ("waiting", None),
        ("pending", None),
    ]
    rejected = levels.steps(CHAIN, None, [Decision(1, 5)], rejected_at=2)
    assert [s.state for s in rejected] == ["approved", "rejected", "pending"]


def test_a_live_key_event_needs_an_approver_or_a_plan_approved_before_the_start() -> None:
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    state = {"key_event": True, "deleted": False, "key_approved": False, "started_at": start}
    assert live.key_state(**state, plan_approved_at=None) == live.KEY_PENDING
    before = start - timedelta(minutes=5)
    assert live.key_state(**state, plan_approved_at=before) == live.KEY_PLAN
    after = start + timedelta(minutes=5)
    assert live.key_state(**state, plan_approved_at=after) == live.KEY_PENDING
    assert live.key_state(**{**state, "key_approved": True}, plan_approved_at=None) == "approved"
    assert live.key_state(**{**state, "key_event": False}, plan_approved_at=None) == ""


def test_only_a_named_approver_who_did_not_write_it_releases_a_key_event() -> None:
    assert live.key_approval_refusal(user_id=2, approver_ids=[2], author_id=1, key_by=1) is None
    assert "作者" in (
        live.key_approval_refusal(user_id=1, approver_ids=[1, 2], author_id=1, key_by=1) or ""
    )
    marked = live.key_approval_refusal(user_id=2, approver_ids=[2], author_id=1, key_by=2)
    assert marked is not None  # who made it a key event is its author too
    assert live.key_approval_refusal(user_id=3, approver_ids=[2], author_id=1, key_by=1)
    assert live.approvers_problem(1, [1]) is not None and live.approvers_problem(1, [2]) is None
