from __future__ import annotations

import pytest

from hub.cli.demo import DEMO_PASSWORD
from hub.users.passwords import common_passwords, password_problem


@pytest.mark.parametrize(
    ("password", "username", "reason"),
    [
        ("12345678", "kaili-editor", "密码太短"),
        ("kaili-editor", "kaili-editor", "密码太简单"),  # the username itself
        ("abcdefghijk", "x", "密码太简单"),  # one class
        ("abcdefgh12", "x", "密码太简单"),  # two classes
        ("Kaili-Editor-9", "kaili-editor", "不能包含用户名"),  # any case
        ("P@ssw0rd2026", "x", "过于常见"),  # a common stem with digits added
        ("Qwerty123456!", "x", "过于常见"),
        ("Woaini1314!!", "x", "过于常见"),
        ("1qaz2wsx3edc", "x", "太简单"),
    ],
)
def test_weak_passwords_get_a_chinese_reason(password: str, username: str, reason: str) -> None:
    problem = password_problem(password, username)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "password", ["Miao-Village-2027", "xi jiang 1000 households", "凯里Kaili#2027", DEMO_PASSWORD]
)
def test_good_passwords_pass(password: str) -> None:
    for username in ("admin", "supervisor", "editor", "reviewer", "qdn-editor", "kaili-editor"):
        assert password_problem(password, username) is None


def test_the_bundled_list_is_loaded_lower_cased() -> None:
    common = common_passwords()
    assert {"123456", "password", "woaini1314", "p@ssw0rd"} <= common
    assert all(p == p.lower() and not p.startswith("#") for p in common)
