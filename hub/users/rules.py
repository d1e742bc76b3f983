"""Who may do what, where: the one rule every route, page and command calls.

Reach is an org subtree, for every role: a user acts on their own org and everything below it.
A supervisor (督查) sits in a government's office (办公厅, 新闻办 ...) and supervises that
government: its *reads* reach the government its org belongs to (the org itself when it is a
province, prefecture, county or new area; for a department, the nearest government above it),
so a supervisor at 省政府办公厅 reads the province and one at 黔东南州 reads 黔东南州 only. Its few
writes (clocks) stay in its own org. Nobody reads the whole matrix by role alone.

Callers answer 404 when the target is outside the caller's reach (``sees`` is false: its
existence must not leak) and 403 when it is visible but the role lacks the right; see
:func:`access`. docs/security.md ("Reach and tenancy") describes the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.users.models import Role


class Action(StrEnum):
    org_read = "org.read"
    org_manage = "org.manage"
    account_read = "account.read"
    account_manage = "account.manage"
    account_bind = "account.bind"  # re-authorise (OAuth), test connection
    user_manage = "user.manage"
    audit_log_read = "audit_log.read"
    post_read = "post.read"
    post_write = "post.write"
    post_review = "post.review"
    post_cosign = "post.cosign"
    delivery_manage = "delivery.manage"
    live_run = "live.run"
    matrix_audit = "matrix.audit"
    spokesperson_manage = "spokesperson.manage"  # 新闻发言人: appointments, filing
    clock_read = "clock.read"
    clock_manage = "clock.manage"
    case_handle = "case.handle"
    case_read = "case.read"  # the public interaction inbox (supervisors: the whole matrix)


READS = frozenset(
    {
        Action.org_read,
        Action.account_read,
        Action.post_read,
        Action.clock_read,
        Action.audit_log_read,
        Action.matrix_audit,
        Action.case_read,
    }
)

# What each role may do inside its reach (supervisors: their reads reach their government).
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.admin: frozenset(Action),
    Role.supervisor: READS | {Action.clock_manage},
    Role.editor: frozenset(
        {
            Action.org_read,
            Action.account_read,
            Action.account_bind,
            Action.post_read,
            Action.post_write,
            Action.delivery_manage,
            Action.live_run,
            Action.clock_read,
            Action.clock_manage,
            Action.case_handle,
            Action.case_read,
            Action.spokesperson_manage,
        }
    ),
    Role.reviewer: frozenset(
        {
            Action.org_read,
            Action.account_read,
            Action.post_read,
            Action.post_review,
            Action.post_cosign,
            Action.clock_read,
            Action.case_handle,
            Action.case_read,
        }
    ),
}


class Access(StrEnum):
    """What a caller gets for an action on one object: do it, 403, or 404 (it cannot see it)."""

    allowed = "allowed"
    forbidden = "forbidden"
    hidden = "hidden"


def reach_root(role: Role, org_path: str, government_path: str) -> str:
    """The path prefix a user of ``role`` at ``org_path`` reads.

    ``government_path`` is the path of the government the org belongs to: the org itself unless
    it is a department, else its nearest ancestor that is not one. Supervisors read that
    government's subtree; every other role reads its own org's subtree.
    """
    if role is Role.supervisor and in_scope(government_path, org_path):
        return government_path
    return org_path


@dataclass(frozen=True)
class Actor:
    """The acting user as the rule needs it: role, the path of their org and their read reach.

    ``reach`` is :func:`reach_root` of the user (empty: the org itself).
    """

    user_id: int
    role: Role
    org_path: str
    reach: str = ""

    @property
    def read_path(self) -> str:
        return self.reach or self.org_path


def in_scope(actor_org_path: str, target_org_path: str) -> bool:
    """True when the target org is the actor's org or below it (paths end with '/')."""
    return target_org_path.startswith(actor_org_path)


def is_root_path(path: str) -> bool:
    """'/' or the path of an org without a parent ('/520000/'): a reach over a whole matrix."""
    return path.strip("/").count("/") == 0


def scope_path(actor: Actor, action: Action) -> str:
    """The path prefix of every org on which ``actor`` may do ``action``."""
    return actor.read_path if action in READS else actor.org_path


def may(actor: Actor, action: Action, target_org_path: str | None = None) -> bool:
    """May ``actor`` do ``action`` on the org at ``target_org_path`` (None: no particular org)?"""
    if action not in ROLE_ACTIONS[actor.role]:
        return False
    if target_org_path is None:
        return True
    return in_scope(scope_path(actor, action), target_org_path)


def sees(actor: Actor, target_org_path: str) -> bool:
    """Is the org within the actor's reach at all (else: answer 404, not 403)?"""
    return in_scope(actor.read_path, target_org_path)


def access(actor: Actor, action: Action, target_org_path: str) -> Access:
    """Permission before state: hidden (404) outside the reach, forbidden (403) without the right."""
    if not sees(actor, target_org_path):
        return Access.hidden
    return Access.allowed if may(actor, action, target_org_path) else Access.forbidden


def may_assign(creator: Actor, role: Role, org_path: str, government_path: str) -> bool:
    """May ``creator`` give a user ``role`` at the org ``org_path`` (creating or changing one)?

    Only with ``user.manage`` on that org (its own subtree), and only when the new user's reach
    (:func:`reach_root`) stays inside the creator's and the role's rights are a subset of the
    creator's: no role can mint a wider one (an admin of 黔东南州 may create a supervisor of
    黔东南州, never one of the province; an admin of a department may not create a supervisor
    there, whose reads would reach the whole government above the department).
    """
    if not may(creator, Action.user_manage, org_path):
        return False
    if not ROLE_ACTIONS[role] <= ROLE_ACTIONS[creator.role]:
        return False
    return in_scope(creator.org_path, reach_root(role, org_path, government_path))
