"""The one rule: may this user do this action on this org? Table-driven over every role."""

from __future__ import annotations

import pytest

from hub.users.models import Role
from hub.users.rules import Action, Actor, may, scope_path

PROVINCE = "/520000/"
PRESS_OFFICE = "/520000/520000-xwb/"
QDN = "/520000/522600/"
KAILI = "/520000/522600/522601/"
HUANGPING = "/520000/522600/522622/"
GUIYANG = "/520000/520100/"

A = Action
# (role, actor org, action, target org, allowed)
CASES: list[tuple[Role, str, Action, str | None, bool]] = [
    # admin: everything inside its subtree, nothing outside
    (Role.admin, PROVINCE, A.account_manage, KAILI, True),
    (Role.admin, PROVINCE, A.user_manage, GUIYANG, True),
    (Role.admin, QDN, A.account_manage, KAILI, True),
    (Role.admin, QDN, A.account_manage, GUIYANG, False),
    (Role.admin, PROVINCE, A.post_review, KAILI, True),
    # supervisor: reads the whole matrix whatever its own org, writes nothing editorial
    (Role.supervisor, "/520000/520000-bgt/", A.account_read, KAILI, True),
    (Role.supervisor, "/520000/520000-bgt/", A.post_read, GUIYANG, True),
    (Role.supervisor, "/520000/520000-bgt/", A.audit_log_read, None, True),
    (Role.supervisor, "/520000/520000-bgt/", A.matrix_audit, None, True),
    (Role.supervisor, "/520000/520000-bgt/", A.post_write, PROVINCE, False),
    (Role.supervisor, "/520000/520000-bgt/", A.post_review, KAILI, False),
    (Role.supervisor, "/520000/520000-bgt/", A.account_manage, KAILI, False),
    (Role.supervisor, "/520000/520000-bgt/", A.delivery_manage, KAILI, False),
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
    assert may(Actor(user_id=1, role=role, org_path=actor_org), action, target) is allowed


def test_every_role_is_covered() -> None:
    assert {case[0] for case in CASES} == set(Role)


def test_a_sibling_with_a_shared_code_prefix_is_not_in_scope() -> None:
    # 5226 is a prefix of 522601's code but the paths end with '/', so 52260 is not under 5226.
    actor = Actor(user_id=1, role=Role.editor, org_path="/520000/5226/")
    assert not may(actor, Action.post_write, "/520000/522600/")


def test_scope_path() -> None:
    supervisor = Actor(user_id=1, role=Role.supervisor, org_path="/520000/520000-bgt/")
    editor = Actor(user_id=2, role=Role.editor, org_path=KAILI)
    assert scope_path(supervisor, Action.account_read) == "/"
    assert scope_path(editor, Action.account_read) == KAILI
