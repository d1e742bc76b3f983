"""Who may do what, where: the one rule every route, page and command calls.

Scope is an org subtree: a user acts on their own org and everything below it. A supervisor
reads everything in the matrix and writes nothing editorial.
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

# What each role may do inside its scope. Supervisors' reads are matrix-wide (see may()).
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


@dataclass(frozen=True)
class Actor:
    """The acting user as the rule needs it: role and the path of their org."""

    user_id: int
    role: Role
    org_path: str


def in_scope(actor_org_path: str, target_org_path: str) -> bool:
    """True when the target org is the actor's org or below it (paths end with '/')."""
    return target_org_path.startswith(actor_org_path)


def may(actor: Actor, action: Action, target_org_path: str | None = None) -> bool:
    """May ``actor`` do ``action`` on the org at ``target_org_path`` (None: no particular org)?"""
    if action not in ROLE_ACTIONS[actor.role]:
        return False
    if actor.role is Role.supervisor and action in READS:
        return True
    if target_org_path is None:
        return True
    return in_scope(actor.org_path, target_org_path)


def scope_path(actor: Actor, action: Action) -> str:
    """The path prefix of every org on which ``actor`` may do ``action`` ('/' = the whole matrix)."""
    if actor.role is Role.supervisor and action in READS:
        return "/"
    return actor.org_path
