"""Review levels (三审三校) as pure rules: where a post stands in its org's chain, who may
decide the level it waits at, and where an approval moves it.

An org's chain has 1-3 levels (初审 / 复审 / 终审), each held by a role (``reviewer``: any
reviewer or admin of the post's reach; ``admin``: admins only) or by named users. A post in review
waits at one level; an approval there moves it to the next, and the approval of the last level
releases it (the one-approval path of :mod:`hub.posts.service`). Nobody approves a level of a post
they wrote, and nobody approves two levels of the same version: each level is another pair of eyes.

Emergency posts take the org's fast path (:class:`EmergencyPath`): ``last`` — only the last
level decides; ``one`` — one approval by anyone entitled to any level; ``full`` — the whole
chain. An org without a chain keeps one approval by any reviewer of its reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.errors import Reason
from hub.posts.models import EmergencyPath, Urgency

MAX_LEVELS = 3
ROLES = ("reviewer", "admin")


@dataclass(frozen=True)
class Level:
    name: str
    role: str | None = None  # "reviewer" | "admin"; None when the level names users
    user_ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, raw: dict[str, object]) -> Level:
        ids = raw.get("user_ids") or []
        role = raw.get("role")
        return cls(
            name=str(raw.get("name", "")),
            role=str(role) if role else None,
            user_ids=tuple(int(i) for i in ids),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class Decision:
    """A recorded approval at a level (of the current version)."""

    level: int
    user_id: int


def chain_problem(levels: Sequence[Level]) -> str | None:
    """Why a chain cannot be saved, in words for the administrator; None when it can."""
    if not 1 <= len(levels) <= MAX_LEVELS:
        return Reason("审核链须有 1 至 %(n)s 级", n=MAX_LEVELS)
    names = [level.name.strip() for level in levels]
    if any(not name for name in names):
        return Reason("每一级都要有名称（如初审、复审、终审）")
    if len(set(names)) != len(names):
        return Reason("各级名称不能重复")
    for level in levels:
        if level.role and level.user_ids:
            return Reason("「%(level)s」只能指定角色或指定人员，不能同时指定", level=level.name)
        if not level.role and not level.user_ids:
            return Reason(
                "「%(level)s」须指定角色（reviewer / admin）或至少一名人员", level=level.name
            )
        if level.role and level.role not in ROLES:
            return Reason("「%(level)s」的角色只能是 reviewer 或 admin", level=level.name)
    return None


def first_level(count: int, urgency: Urgency, emergency: EmergencyPath) -> int:
    """The level a post waits at when it is submitted."""
    if urgency is Urgency.emergency and emergency is EmergencyPath.last:
        return count
    return 1


def is_fast_path(urgency: Urgency, emergency: EmergencyPath) -> bool:
    return urgency is Urgency.emergency and emergency is not EmergencyPath.full


def after_approval(current: int, count: int, urgency: Urgency, emergency: EmergencyPath) -> int:
    """The level the post waits at next; 0 when this approval was the last one (release)."""
    if urgency is Urgency.emergency and emergency is EmergencyPath.one:
        return 0
    return 0 if current >= count else current + 1


def entitled(level: Level, *, user_id: int, role: str) -> bool:
    """May this user decide ``level`` (before the four-eyes checks)?"""
    if level.user_ids:
        return user_id in level.user_ids
    if level.role == "admin":
        return role == "admin"
    return role in ROLES


def level_refusal(
    levels: Sequence[Level],
    current: int,
    *,
    user_id: int,
    role: str,
    author_id: int,
    decisions: Iterable[Decision],
    any_level: bool = False,
) -> str | None:
    """Why this user may not approve the post at ``current`` (1-based); None when they may.

    ``any_level``: the emergency ``one`` path, where being entitled to any level is enough.
    """
    if user_id == author_id:
        return Reason("您是该稿件的作者，不能审核任何一级（四眼原则）")
    earlier = [d for d in decisions if d.user_id == user_id]
    if earlier:
        names = "、".join(
            levels[d.level - 1].name if 0 < d.level <= len(levels) else str(d.level)
            for d in earlier
        )
        return Reason("您已审核过该稿件的「%(names)s」，下一级须由另一人审核", names=names)
    index = min(max(current, 1), len(levels))
    level = levels[index - 1]
    if any_level:
        if any(entitled(lv, user_id=user_id, role=role) for lv in levels):
            return None
        return Reason("紧急稿件须由审核链中任一级的审核人批准")
    if not entitled(level, user_id=user_id, role=role):
        if level.user_ids:
            return Reason("该稿件正在「%(level)s」，须由该级指定的审核人审核", level=level.name)
        return Reason(
            "该稿件正在「%(level)s」，须由%(role)s审核",
            level=level.name,
            role=Reason("管理员") if level.role == "admin" else Reason("审核员"),
        )
    return None


@dataclass(frozen=True)
class Step:
    level: int
    name: str
    state: str  # approved | rejected | waiting | pending | skipped
    user_id: int | None = None


def steps(
    levels: Sequence[Level],
    current: int | None,
    approvals: Sequence[Decision],
    *,
    rejected_at: int | None = None,
    released: bool = False,
    fast: EmergencyPath | None = None,
) -> list[Step]:
    """Each level's state for display: approved (by whom), waiting (the post is there), pending
    (later), skipped (the emergency fast path went past it), rejected."""
    done = {d.level: d.user_id for d in approvals}
    out = []
    for number, level in enumerate(levels, 1):
        if number in done:
            out.append(Step(number, level.name, "approved", done[number]))
        elif rejected_at == number:
            out.append(Step(number, level.name, "rejected"))
        elif fast is not None and (released or (current is not None and number < current)):
            out.append(Step(number, level.name, "skipped"))
        elif current == number and not released:
            out.append(Step(number, level.name, "waiting"))
        else:
            out.append(Step(number, level.name, "pending"))
    return out
