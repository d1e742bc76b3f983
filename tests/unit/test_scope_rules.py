"""The one rule: may this user do this action on this org? Table-driven over every role.

Every role's reach is its org subtree; a supervisor's reads reach the government its org belongs
to (its org, or for a department the government above it), never the whole matrix by role alone.
"""

from __future__ import annotations

import pytest

from hub.users.models import Role
from hub.users.rules import (
    Access,
    Action,
    Actor,
    access,
    is_root_path,
    may,
    may_assign,
    reach_root,
    scope_path,
    sees,
)

PROVINCE = "/520000/"
PRESS_OFFICE = "/520000/520000-xwb/"
QDN = "/520000/522600/"
KAILI = "/520000/522600/522601/"
HUANGPING = "/520000/522600/522622/"
GUIYANG = "/520000/520100/"
BGT = "/520000/520000-bgt/"  # 省政府办公厅: a department of the province
QDN_OFFICE = "/520000/522600/522600-bgt/"  # a department of 黔东南州

# the government each org above belongs to (a department: the government above it)
GOVERNMENT = {BGT: PROVINCE, PRESS_OFFICE: PROVINCE, QDN_OFFICE: QDN}


def actor_at(role: Role, org: str) -> Actor:
    """The actor as users.service.actor_of builds it."""
    return Actor(
        user_id=1, role=role, org_path=org, reach=reach_root(role, org, GOVERNMENT.get(org, org))
    )


A = Action
# (role, actor org, action, target org, allowed)
CASES: list[tuple[Role, str, Action, str | None, bool]] = [
    # admin: everything inside its subtree, nothing outside
    (Role.admin, PROVINCE, A.account_manage, KAILI, True),
    (Role.admin, PROVINCE, A.user_manage, GUIYANG, True),
    (Role.admin, QDN, A.account_manage, KAILI, True),
    (Role.admin, QDN, A.account_manage, GUIYANG, False),
    (Role.admin, PROVINCE, A.post_review, KAILI, True),
    (Role.admin, QDN, A.audit_log_read, KAILI, True),
    (Role.admin, QDN, A.audit_log_read, PROVINCE, False),
    (Role.admin, QDN, A.post_read, PRESS_OFFICE, False),
    # supervisor at 省政府办公厅: its reads reach the province (the government of its office)
    (Role.supervisor, BGT, A.account_read, KAILI, True),
    (Role.supervisor, BGT, A.post_read, GUIYANG, True),
    (Role.supervisor, BGT, A.post_read, PRESS_OFFICE, True),
    (Role.supervisor, BGT, A.audit_log_read, None, True),
    (Role.supervisor, BGT, A.audit_log_read, KAILI, True),
    (Role.supervisor, BGT, A.matrix_audit, PROVINCE, True),
    (Role.supervisor, BGT, A.post_write, PROVINCE, False),
    (Role.supervisor, BGT, A.post_review, KAILI, False),
    (Role.supervisor, BGT, A.account_manage, KAILI, False),
    (Role.supervisor, BGT, A.delivery_manage, KAILI, False),
    (Role.supervisor, BGT, A.clock_manage, BGT, True),  # its writes stay in its own org
    (Role.supervisor, BGT, A.clock_manage, KAILI, False),
    # supervisor at 黔东南州: 黔东南州 only, never the province or another prefecture
    (Role.supervisor, QDN, A.post_read, KAILI, True),
    (Role.supervisor, QDN, A.case_read, HUANGPING, True),
    (Role.supervisor, QDN, A.post_read, PRESS_OFFICE, False),
    (Role.supervisor, QDN, A.post_read, PROVINCE, False),
    (Role.supervisor, QDN, A.account_read, GUIYANG, False),
    (Role.supervisor, QDN, A.case_read, GUIYANG, False),
    (Role.supervisor, QDN, A.audit_log_read, PROVINCE, False),
    (Role.supervisor, QDN, A.matrix_audit, PROVINCE, False),
    # supervisor in a department of 黔东南州: reads 黔东南州 (its government), not the province
    (Role.supervisor, QDN_OFFICE, A.post_read, KAILI, True),
    (Role.supervisor, QDN_OFFICE, A.post_read, GUIYANG, False),
    # editor: its org and below
    (Role.editor, KAILI, A.post_write, KAILI, True),
    (Role.editor, KAILI, A.account_read, KAILI, True),
    (Role.editor, KAILI, A.account_read, HUANGPING, False),
    (Role.editor, KAILI, A.post_write, QDN, False),
    (Role.editor, QDN, A.post_write, KAILI, True),
    (Role.editor, QDN, A.account_read, HUANGPING, True),
    (Role.editor, QDN, A.post_write, GUIYANG, False),
    (Role.editor, KAILI, A.post_review, KAILI, False),
    (Role.editor, KAILI, A.account_manage, KAILI, False),
    (Role.editor, KAILI, A.audit_log_read, None, False),
    (Role.editor, KAILI, A.user_manage, KAILI, False),
    (Role.editor, PRESS_OFFICE, A.post_write, KAILI, False),
    # reviewer: reviews and co-signs in scope, never writes posts
    (Role.reviewer, KAILI, A.post_review, KAILI, True),
    (Role.reviewer, KAILI, A.post_cosign, KAILI, True),
    (Role.reviewer, KAILI, A.post_review, HUANGPING, False),
    (Role.reviewer, KAILI, A.post_write, KAILI, False),
    (Role.reviewer, KAILI, A.delivery_manage, KAILI, False),
    (Role.reviewer, KAILI, A.audit_log_read, None, False),
]


@pytest.mark.parametrize(("role", "actor_org", "action", "target", "allowed"), CASES)
def test_may(role: Role, actor_org: str, action: Action, target: str | None, allowed: bool) -> None:
    assert may(actor_at(role, actor_org), action, target) is allowed


def test_every_role_is_covered() -> None:
    assert {case[0] for case in CASES} == set(Role)


def test_a_sibling_with_a_shared_code_prefix_is_not_in_scope() -> None:
    # 5226 is a prefix of 522601's code but the paths end with '/', so 52260 is not under 5226.
    actor = Actor(user_id=1, role=Role.editor, org_path="/520000/5226/")
    assert not may(actor, Action.post_write, "/520000/522600/")


def test_scope_path() -> None:
    assert scope_path(actor_at(Role.supervisor, BGT), Action.account_read) == PROVINCE
    assert scope_path(actor_at(Role.supervisor, BGT), Action.clock_manage) == BGT
    assert scope_path(actor_at(Role.supervisor, QDN), Action.account_read) == QDN
    assert scope_path(actor_at(Role.editor, KAILI), Action.account_read) == KAILI
    # an actor built without a reach (as before) reaches its own org only, never '/'
    bare = Actor(user_id=1, role=Role.supervisor, org_path=QDN)
    assert scope_path(bare, Action.post_read) == QDN


def test_no_role_reads_beyond_its_government_by_role_alone() -> None:
    for role in Role:
        for org in (KAILI, QDN, QDN_OFFICE):  # everything in 黔东南州 stays in 黔东南州
            reach = actor_at(role, org).read_path
            assert reach.startswith(QDN) and not is_root_path(reach), (role, org)


# (creator role, creator org, new role, new org, allowed): creating or changing a user
ASSIGN: list[tuple[Role, str, Role, str, bool]] = [
    (Role.admin, PROVINCE, Role.supervisor, BGT, True),  # the demo's supervisor
    (Role.admin, PROVINCE, Role.admin, QDN, True),
    (Role.admin, PROVINCE, Role.editor, KAILI, True),
    (Role.admin, QDN, Role.supervisor, QDN, True),  # reads 黔东南州: no wider than the admin
    (Role.admin, QDN, Role.admin, KAILI, True),
    (Role.admin, QDN, Role.admin, QDN, True),
    (Role.admin, QDN, Role.reviewer, HUANGPING, True),
    (Role.admin, QDN, Role.supervisor, QDN_OFFICE, True),  # reads 黔东南州
    (Role.admin, QDN, Role.supervisor, PROVINCE, False),
    (Role.admin, QDN, Role.supervisor, BGT, False),  # would read the province
    (Role.admin, QDN, Role.editor, GUIYANG, False),
    (Role.admin, QDN, Role.admin, PROVINCE, False),
    (Role.admin, KAILI, Role.editor, HUANGPING, False),
    (Role.admin, QDN_OFFICE, Role.editor, QDN_OFFICE, True),
    (Role.admin, QDN_OFFICE, Role.supervisor, QDN_OFFICE, False),  # would read all 黔东南州
    (Role.admin, BGT, Role.supervisor, BGT, False),  # would read the province
    (Role.supervisor, BGT, Role.editor, KAILI, False),
    (Role.supervisor, QDN, Role.supervisor, QDN, False),
    (Role.editor, QDN, Role.editor, KAILI, False),
    (Role.reviewer, KAILI, Role.reviewer, KAILI, False),
]


@pytest.mark.parametrize(("creator", "creator_org", "role", "org", "allowed"), ASSIGN)
def test_may_assign(creator: Role, creator_org: str, role: Role, org: str, allowed: bool) -> None:
    government = GOVERNMENT.get(org, org)
    assert may_assign(actor_at(creator, creator_org), role, org, government) is allowed


def test_every_role_is_assigned_and_creates_in_the_table() -> None:
    assert {case[0] for case in ASSIGN} == set(Role)
    assert {case[2] for case in ASSIGN} == set(Role)


@pytest.mark.parametrize(
    ("role", "org", "action", "target", "expected"),
    [
        (Role.editor, HUANGPING, Action.post_write, KAILI, Access.hidden),  # 404
        (Role.reviewer, KAILI, Action.post_write, KAILI, Access.forbidden),  # 403
        (Role.editor, KAILI, Action.post_write, KAILI, Access.allowed),
        (Role.supervisor, QDN, Action.post_read, PRESS_OFFICE, Access.hidden),
        (Role.supervisor, BGT, Action.post_write, KAILI, Access.forbidden),
        (Role.supervisor, BGT, Action.clock_manage, KAILI, Access.forbidden),
        (Role.editor, QDN, Action.post_write, KAILI, Access.allowed),
    ],
)
def test_access_hides_what_is_outside_the_reach(
    role: Role, org: str, action: Action, target: str, expected: Access
) -> None:
    actor = actor_at(role, org)
    assert access(actor, action, target) is expected
    assert sees(actor, target) is (expected is not Access.hidden)


def test_root_paths() -> None:
    assert is_root_path("/") and is_root_path(PROVINCE)
    assert not is_root_path(QDN) and not is_root_path(BGT)
