"""Review chains (三审三校): an org's levels, stored and applied to its posts.

:mod:`hub.posts.levels` holds the rules; this module loads and saves an org's chain, records a
level's approval, and describes where a post stands for the API and the pages. An org without a
chain keeps the one-approval workflow (``post.review_level`` stays None).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from hub.errors import Forbidden, Invalid
from hub.orgs.models import Org
from hub.posts import levels as rules
from hub.posts.models import (
    Approval,
    ApprovalKind,
    EmergencyPath,
    Post,
    PostStatus,
    ReviewChain,
    ReviewChainIn,
    ReviewChainPublic,
    ReviewLevelPublic,
    ReviewPublic,
    ReviewStep,
)
from hub.users.models import Role, User
from hub.users.rules import Action, may
from hub.users.service import actor_of


def chain_of(session: Session, org_id: int) -> ReviewChain | None:
    return session.exec(select(ReviewChain).where(ReviewChain.org_id == org_id)).first()


def levels_of(chain: ReviewChain) -> list[rules.Level]:
    return [rules.Level.of(raw) for raw in chain.levels]


def to_public(session: Session, org: Org, chain: ReviewChain | None) -> ReviewChainPublic:
    if chain is None:
        return ReviewChainPublic(
            org_code=org.code,
            configured=False,
            levels=[ReviewLevelPublic(name="审核", role="reviewer")],
            emergency=EmergencyPath.last,
        )
    ids = {i for raw in chain.levels for i in raw.get("user_ids") or []}
    names = _names(session, ids)
    return ReviewChainPublic(
        org_code=org.code,
        configured=True,
        levels=[
            ReviewLevelPublic(
                name=level.name,
                role=level.role,
                user_ids=list(level.user_ids),
                users=[names.get(i, str(i)) for i in level.user_ids],
            )
            for level in levels_of(chain)
        ],
        emergency=chain.emergency,
    )


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(User).where(col(User.id).in_(list(ids)))).all()
    return {u.id: u.display_name or u.username for u in rows if u.id is not None}


def save(
    *, session: Session, org: Org, data: ReviewChainIn, by: User, now: datetime
) -> ReviewChain:
    """Replace the org's chain. Named users must be active reviewers or admins who may review the
    org's posts (a level nobody can decide would hold every post forever)."""
    levels = [
        rules.Level(name=lv.name.strip(), role=lv.role, user_ids=tuple(dict.fromkeys(lv.user_ids)))
        for lv in data.levels
    ]
    problem = rules.chain_problem(levels)
    if problem:
        raise Invalid(problem, field="levels")
    for level in levels:
        for user_id in level.user_ids:
            user = session.get(User, user_id)
            if user is None or not user.is_active:
                raise Invalid(
                    "「%(level)s」的人员 %(user_id)s 不存在或已停用",
                    field="levels",
                    level=level.name,
                    user_id=user_id,
                )
            if user.role not in (Role.reviewer, Role.admin) or not may(
                actor_of(session=session, user=user), Action.post_review, org.path
            ):
                raise Invalid(
                    "「%(level)s」的人员 %(username)s 不能审核%(org)s的稿件（须为其范围内的审核员或管理员）",
                    field="levels",
                    level=level.name,
                    username=user.username,
                    org=org.name,
                )
    chain = chain_of(session, org.id) or ReviewChain(org_id=org.id)  # type: ignore[arg-type]
    chain.levels = [
        {"name": lv.name, "role": lv.role, "user_ids": list(lv.user_ids)} for lv in levels
    ]
    chain.emergency = data.emergency
    chain.updated_by = by.id
    chain.updated_at = now
    session.add(chain)
    session.flush()
    return chain


def remove(*, session: Session, org: Org) -> bool:
    chain = chain_of(session, org.id)  # type: ignore[arg-type]
    if chain is None:
        return False
    session.delete(chain)
    return True


# -- a post in its chain --------------------------------------------------------------------------


def start(session: Session, post: Post) -> None:
    """On submission (and correction): the post waits at its chain's first level."""
    chain = chain_of(session, post.org_id)
    post.review_level = (
        rules.first_level(len(chain.levels), post.urgency, chain.emergency) if chain else None
    )


def _decisions(session: Session, post: Post, kind: ApprovalKind) -> list[Approval]:
    return list(
        session.exec(
            select(Approval)
            .where(
                Approval.post_id == post.id,
                Approval.version == post.current_version,
                Approval.kind == kind,
                col(Approval.level).is_not(None),
            )
            .order_by(col(Approval.id))
        ).all()
    )


def check_level(session: Session, *, user: User, post: Post) -> ReviewChain | None:
    """403 when the user may not approve the level the post waits at; the chain (None: none)."""
    chain = chain_of(session, post.org_id)
    if chain is None:
        return None
    if post.review_level is None:  # submitted before the org had a chain: it starts now
        post.review_level = rules.first_level(len(chain.levels), post.urgency, chain.emergency)
    levels = levels_of(chain)
    refusal = rules.level_refusal(
        levels,
        post.review_level,
        user_id=user.id,  # type: ignore[arg-type]
        role=user.role.value,
        author_id=post.author_id,
        decisions=[
            rules.Decision(a.level or 0, a.reviewer_id)
            for a in _decisions(session, post, ApprovalKind.approve)
        ],
        any_level=post.urgency.value == "emergency" and chain.emergency is EmergencyPath.one,
    )
    if refusal:
        raise Forbidden(refusal)
    return chain


def advance(post: Post, chain: ReviewChain) -> bool:
    """After an approval at ``post.review_level``: move to the next level; True when that was the
    last one (the post is released)."""
    current = post.review_level or 1
    following = rules.after_approval(current, len(chain.levels), post.urgency, chain.emergency)
    if following:
        post.review_level = following
        return False
    return True


def waiting_levels(session: Session, posts: list[Post]) -> dict[int, str]:
    """Post id -> the name of the level it waits at (posts in a chain only), for queues."""
    org_ids = {p.org_id for p in posts if p.review_level is not None}
    if not org_ids:
        return {}
    found = session.exec(select(ReviewChain).where(col(ReviewChain.org_id).in_(org_ids))).all()
    by_org = {c.org_id: levels_of(c) for c in found}
    out: dict[int, str] = {}
    for post in posts:
        levels = by_org.get(post.org_id)
        if levels and post.review_level is not None and post.id is not None:
            out[post.id] = levels[min(post.review_level, len(levels)) - 1].name
    return out


def releases_next(session: Session, post: Post) -> bool:
    """Would an approval now release the post (no chain, or it waits at its last level)?"""
    chain = chain_of(session, post.org_id)
    if chain is None or post.review_level is None:
        return True
    current = post.review_level
    return not rules.after_approval(current, len(chain.levels), post.urgency, chain.emergency)


def describe(session: Session, post: Post) -> ReviewPublic | None:
    """Where the post stands in its chain (None for an org without one, or before submission)."""
    chain = chain_of(session, post.org_id)
    if chain is None:
        return None
    levels = levels_of(chain)
    approvals = _decisions(session, post, ApprovalKind.approve)
    rejections = _decisions(session, post, ApprovalKind.reject)
    if post.review_level is None and not approvals and not rejections:
        return None
    released = post.approved_version == post.current_version
    fast = (
        chain.emergency
        if rules.is_fast_path(post.urgency, chain.emergency)
        and (released or post.status in (PostStatus.in_review, PostStatus.cosigning))
        else None
    )
    rejected_at = (
        rejections[-1].level if post.status is PostStatus.rejected and rejections else None
    )
    steps = rules.steps(
        levels,
        post.review_level if post.status in (PostStatus.in_review, PostStatus.cosigning) else None,
        [rules.Decision(a.level or 0, a.reviewer_id) for a in approvals],
        rejected_at=rejected_at,
        released=released,
        fast=fast,
    )
    by_level = {a.level: a for a in approvals}
    if rejected_at is not None:
        by_level[rejected_at] = rejections[-1]
    names = _names(session, {a.reviewer_id for a in by_level.values()})
    out = []
    for step in steps:
        decision = by_level.get(step.level) if step.state in ("approved", "rejected") else None
        out.append(
            ReviewStep(
                level=step.level,
                name=step.name,
                state=step.state,
                decided_by=names.get(decision.reviewer_id, "") if decision else "",
                decided_at=decision.at if decision else None,
                comment=decision.comment if decision else "",
            )
        )
    return ReviewPublic(
        current_level=post.review_level
        if post.status in (PostStatus.in_review, PostStatus.cosigning)
        else None,
        fast_path=fast is not None,
        steps=out,
    )
