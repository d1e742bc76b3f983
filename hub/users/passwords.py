"""The password rule (pure): long enough, varied enough, not the username, not a common one.

Messages are Chinese: they are shown to the person choosing the password (HTTP 422, the account
page, ``govhub users create``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from hub.errors import Reason

MIN_LENGTH = 10
MIN_CLASSES = 3  # of: lower-case, upper-case, digits, anything else


RULE = Reason(  # in the catalog (make i18n); a value of the problems below, translated with them
    "密码至少10个字符，且包含大写字母、小写字母、数字、符号中的至少三类，不能包含用户名，不能是常见密码"
)

_TRAILING = re.compile(r"[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list (hub/users/common-passwords.txt), lower-cased."""
    text = resources.files("hub.users").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def character_classes(password: str) -> int:
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable for ``username`` (in Chinese), or None when it is."""
    if len(password) < MIN_LENGTH:
        return Reason("密码太短：至少需要%(n)s个字符。%(rule)s。", n=MIN_LENGTH, rule=RULE)
    if character_classes(password) < MIN_CLASSES:
        return Reason(
            "密码太简单：需包含大写字母、小写字母、数字、符号中的至少%(n)s类。%(rule)s。",
            n=MIN_CLASSES,
            rule=RULE,
        )
    name = username.strip().lower()
    if name and name in password.lower():
        return Reason("密码不能包含用户名。%(rule)s。", rule=RULE)
    lowered = password.lower()
    stem = _TRAILING.sub("", lowered)
    common = common_passwords()
    if lowered in common or stem in common:
        return Reason("密码过于常见，容易被猜中，请换一个。%(rule)s。", rule=RULE)
    return None
