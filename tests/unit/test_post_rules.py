"""The review workflow (先审后发) as editors meet it: which move is allowed from which state, what
each refusal says, and who may approve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.posts.models import PostStatus, Urgency
from hub.posts.rules import (
    STATE_WORDS,
    Move,
    Reviewer,
    TransitionError,
    approval_refusal,
    content_hash,
    due_release,
    next_status,
    settled_status,
    status_after_submit,
)
from hub.records.rules import POST_STATUS
from hub.web import i18n

# Written out state by state, from the product's description (README, "The path of a post"), not
# copied from hub/posts/rules.py: every state lists every move it allows and where it goes.
ALLOWED: dict[PostStatus, dict[Move, PostStatus]] = {
    PostStatus.draft: {Move.submit: PostStatus.in_review, Move.edit: PostStatus.draft},
    PostStatus.in_review: {
        Move.approve: PostStatus.approved,
        Move.reject: PostStatus.rejected,
        Move.edit: PostStatus.draft,
    },
    PostStatus.cosigning: {
        Move.cosign: PostStatus.cosigning,
        Move.approve: PostStatus.approved,
        Move.reject: PostStatus.rejected,
        Move.edit: PostStatus.draft,
    },
    PostStatus.approved: {
        Move.schedule: PostStatus.scheduled,
        Move.release: PostStatus.publishing,
        Move.edit: PostStatus.draft,
        Move.withdraw: PostStatus.withdrawn,
    },
    PostStatus.scheduled: {
        Move.release: PostStatus.publishing,
        Move.miss: PostStatus.missed,
        Move.edit: PostStatus.draft,
        Move.withdraw: PostStatus.withdrawn,
    },
    PostStatus.rejected: {Move.submit: PostStatus.in_review, Move.edit: PostStatus.draft},
    PostStatus.missed: {Move.submit: PostStatus.in_review, Move.edit: PostStatus.draft},
    PostStatus.publishing: {Move.settle: PostStatus.published, Move.withdraw: PostStatus.withdrawn},
    PostStatus.published: {
        Move.settle: PostStatus.published,
        Move.withdraw: PostStatus.withdrawn,
        Move.correct: PostStatus.in_review,
    },
    PostStatus.partly_failed: {
        Move.settle: PostStatus.partly_failed,
        Move.withdraw: PostStatus.withdrawn,
        Move.correct: PostStatus.in_review,
    },
    PostStatus.failed: {Move.settle: PostStatus.failed, Move.withdraw: PostStatus.withdrawn},
    PostStatus.withdrawn: {},
}

EVERY_MOVE = [(state, move) for state in PostStatus for move in Move]


def test_the_table_above_covers_every_state() -> None:
    assert set(ALLOWED) == set(PostStatus)


@pytest.mark.parametrize(("state", "move"), EVERY_MOVE, ids=lambda v: str(v))
def test_every_move_from_every_state(state: PostStatus, move: Move) -> None:
    expected = ALLOWED[state].get(move)
    if expected is not None:
        assert next_status(move, state) is expected
        return
    with pytest.raises(TransitionError) as refused:
        next_status(move, state)
    assert refused.value.status_code == 409
    assert refused.value.message.startswith(f"稿件状态为「{STATE_WORDS[state]}」，不能")


def test_a_refusal_says_the_move_and_the_state_in_words() -> None:
    with pytest.raises(TransitionError, match=r"^稿件状态为「部分失败」，不能修改$"):
        next_status(Move.edit, PostStatus.partly_failed)
    with pytest.raises(TransitionError, match=r"^稿件状态为「待审核」，不能发布$") as refused:
        next_status(Move.release, PostStatus.in_review)
    english = refused.value.translate(i18n.translations("en").gettext)
    assert english == "Cannot publish a post in the state “In review”"


def test_the_state_words_are_the_labels_the_records_show() -> None:
    assert {s.value: str(w) for s, w in STATE_WORDS.items()} == POST_STATUS


def test_nothing_goes_out_before_approval() -> None:
    before_approval = [
        PostStatus.draft,
        PostStatus.in_review,
        PostStatus.cosigning,
        PostStatus.rejected,
        PostStatus.missed,
    ]
    for state in before_approval:
        for move in (Move.release, Move.schedule):
            with pytest.raises(TransitionError):
                next_status(move, state)


def test_editing_an_approved_post_sends_it_back_to_draft() -> None:
    assert next_status(Move.edit, PostStatus.approved) is PostStatus.draft
    assert next_status(Move.edit, PostStatus.scheduled) is PostStatus.draft


def test_a_withdrawn_post_is_final() -> None:
    for move in Move:
        with pytest.raises(TransitionError):
            next_status(move, PostStatus.withdrawn)


def test_submitting_waits_for_co_signers_when_any_are_named() -> None:
    assert status_after_submit(cosign_pending=True) is PostStatus.cosigning
    assert status_after_submit(cosign_pending=False) is PostStatus.in_review


# -- who may approve -----------------------------------------------------------------------------

PROVINCE = "/520000/"
PREFECTURE = "/520000/522600/"
COUNTY = "/520000/522600/522601/"
SIBLING_COUNTY = "/520000/522600/522602/"
OTHER_PREFECTURE = "/520000/520100/"


def refusal(
    *,
    user_id: int = 2,
    org_path: str = COUNTY,
    is_reviewer: bool = True,
    author_id: int = 1,
    post_org_path: str = COUNTY,
    urgency: Urgency = Urgency.routine,
    cosign_pending: list[str] | None = None,
) -> str | None:
    return approval_refusal(
        reviewer=Reviewer(user_id=user_id, org_path=org_path, is_reviewer=is_reviewer),
        author_id=author_id,
        post_org_path=post_org_path,
        urgency=urgency,
        cosign_pending=cosign_pending or [],
    )


def test_a_reviewer_of_the_org_approves_a_routine_post() -> None:
    assert refusal() is None


def test_a_reviewer_above_the_org_approves_it_too() -> None:
    assert refusal(org_path=PREFECTURE) is None
    assert refusal(org_path=PROVINCE) is None


def test_the_author_never_approves_their_own_post() -> None:
    message = refusal(user_id=1, author_id=1)
    assert message is not None and "四眼原则" in message
    # even in an emergency, and even when they are a reviewer
    assert refusal(user_id=1, author_id=1, urgency=Urgency.emergency) == message


def test_the_four_eyes_refusal_comes_before_the_role_refusal() -> None:
    message = refusal(user_id=1, author_id=1, is_reviewer=False)
    assert message is not None and "四眼原则" in message


def test_only_reviewers_approve() -> None:
    assert refusal(is_reviewer=False) == "只有审核员可以批准稿件"
    assert refusal(is_reviewer=False, urgency=Urgency.emergency) == "只有审核员可以批准稿件"


def test_a_reviewer_outside_the_post_org_is_refused() -> None:
    for outside in (SIBLING_COUNTY, OTHER_PREFECTURE):
        assert refusal(org_path=outside) == "该稿件所属机构不在您的范围内"


def test_a_routine_post_waits_for_every_co_signer() -> None:
    message = refusal(cosign_pending=["522602", "522603"])
    assert message == "等待以下机构会签：522602, 522603"


@pytest.mark.parametrize("urgency", [Urgency.routine, Urgency.hot_topic])
def test_only_emergencies_take_the_fast_path(urgency: Urgency) -> None:
    assert refusal(urgency=urgency, cosign_pending=["522602"]) is not None


def test_an_emergency_is_approved_without_waiting_for_co_signers() -> None:
    assert refusal(urgency=Urgency.emergency, cosign_pending=["522602"]) is None


def test_an_emergency_is_approved_by_the_org_or_its_parent() -> None:
    assert refusal(urgency=Urgency.emergency, org_path=COUNTY) is None
    assert refusal(urgency=Urgency.emergency, org_path=PREFECTURE) is None


def test_an_emergency_is_refused_to_a_reviewer_of_another_branch() -> None:
    expected = "突发事件稿件须由作者所在机构或其上级机构的审核员批准"
    assert refusal(urgency=Urgency.emergency, org_path=SIBLING_COUNTY) == expected
    assert refusal(urgency=Urgency.emergency, org_path=OTHER_PREFECTURE) == expected


# -- what goes out, when, and how it ends ---------------------------------------------------------


def _hash(**changes: object) -> str:
    fields: dict[str, object] = {
        "title": "通知",
        "body": "正文",
        "summary": "",
        "images": ["a.jpg"],
        "overrides": {},
    }
    fields.update(changes)
    return content_hash(**fields)  # type: ignore[arg-type]


def test_approval_binds_to_the_exact_content() -> None:
    assert _hash() == _hash()
    for change in (
        {"title": "通知（更正）"},
        {"body": "正文。"},
        {"summary": "摘要"},
        {"images": ["b.jpg"]},
        {"overrides": {"wechat": "另一版本"}},
    ):
        assert _hash(**change) != _hash(), change


NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=30)


def test_a_scheduled_post_waits_until_its_time() -> None:
    later = NOW + timedelta(minutes=1)
    assert due_release(scheduled_at=later, now=NOW, missed_after=GRACE) == "wait"


def test_a_post_due_now_or_unscheduled_is_released() -> None:
    assert due_release(scheduled_at=NOW, now=NOW, missed_after=GRACE) == "release"
    assert due_release(scheduled_at=None, now=NOW, missed_after=GRACE) == "release"
    late = NOW - GRACE
    assert due_release(scheduled_at=late, now=NOW, missed_after=GRACE) == "release"


def test_a_post_found_too_late_is_missed_not_sent() -> None:
    late = NOW - GRACE - timedelta(seconds=1)
    assert due_release(scheduled_at=late, now=NOW, missed_after=GRACE) == "miss"


@pytest.mark.parametrize(
    ("deliveries", "status"),
    [
        (["published", "published"], PostStatus.published),
        (["published", "failed"], PostStatus.partly_failed),
        (["failed", "refused"], PostStatus.failed),
        (["published", "cancelled"], PostStatus.published),
        (["cancelled", "withdrawn"], PostStatus.failed),
        ([], PostStatus.published),
    ],
)
def test_a_post_settles_from_its_deliveries(deliveries: list[str], status: PostStatus) -> None:
    assert settled_status(deliveries) is status


@pytest.mark.parametrize("in_flight", ["queued", "sending", "pending", "unconfirmed"])
def test_a_post_is_publishing_while_any_copy_is_in_flight(in_flight: str) -> None:
    assert settled_status(["published", in_flight]) is None
