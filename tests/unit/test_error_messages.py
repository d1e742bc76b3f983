"""Every domain error (hub.errors.HubError and its subclasses) and every ``Reason`` a rule function
hands back, built in hub/, takes its message as a literal the catalog extracts (``make i18n``: the
classes are extraction keywords), with its values as named parameters; every one is written in
Chinese (the editor's language: the source text, the msgid) and has an English translation."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from hub.errors import HubError, Invalid
from hub.users.passwords import password_problem
from hub.web import i18n

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u4e00-\u9fff]")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sr]")

# Messages handed over from elsewhere, not written at the raise. Most are a ``Reason`` from a rule
# function (checked where it is made, translated with its values); the ones marked "untranslated"
# are plain text: the platform connectors' own words, and ValueErrors of rules modules that do not
# return a Reason yet. Path -> how many such calls.
PASSED_THROUGH = {
    "hub/accounts/callbacks.py": 2,  # CallbackRefused from a connector (untranslated)
    "hub/accounts/service.py": 1,  # a connector's credential check (untranslated)
    "hub/hall/partners.py": 2,  # Misconfigured / Transient from a connector (untranslated)
    "hub/live/service.py": 3,  # live.rules, proofread.rules
    "hub/notify/service.py": 1,  # notify.rules.robot_refusal
    "hub/posts/chains.py": 2,  # posts.levels: chain_problem, level_refusal
    "hub/posts/service.py": 5,  # posts.rules, proofread.rules, delivery.rules; push_refusals
    "hub/proofread/service.py": 2,  # proofread.rules.refusal; LexiconError (untranslated)
    "hub/reach/api.py": 1,  # reach.rules.period's ValueError (untranslated)
    "hub/users/service.py": 2,  # users.passwords.password_problem
}


def error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    names = {cls.__name__ for cls in _subclasses(HubError)} | {"HubError", "Reason"}
    grown = True
    while grown:  # subclasses defined in modules not imported here
        grown = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in names
                    and any(_name(base) in names for base in node.bases)
                ):
                    names.add(node.name)
                    grown = True
    return names


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@lru_cache
def error_calls() -> list[tuple[str, int, ast.Call]]:
    found: list[tuple[str, int, ast.Call]] = []
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(ROOT.glob("hub/**/*.py"))}
    names = error_classes(trees)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in names and node.args:
                found.append((str(path.relative_to(ROOT)), node.lineno, node))
    return found


def _is_literal(arg: ast.expr) -> bool:
    return isinstance(arg, ast.Constant) and isinstance(arg.value, str)


def _is_reraise(call: ast.Call) -> bool:
    """``Invalid(exc.template, **exc.params)``: another error's message, still translatable."""
    arg = call.args[0]
    return (
        isinstance(arg, ast.Attribute)
        and arg.attr == "template"
        and any(k.arg is None and ast.unparse(k.value).endswith(".params") for k in call.keywords)
    )


def test_the_checker_sees_the_raise_sites() -> None:
    calls = list(error_calls())
    assert len(calls) > 200
    assert {"Invalid", "NotFound", "Forbidden", "Conflict", "TransitionError"} <= {
        _name(c.func) for _p, _l, c in calls
    }


def test_every_error_message_is_an_extractable_literal_with_its_values_apart() -> None:
    wrong: list[str] = []
    passed: dict[str, int] = {}
    for path, line, call in error_calls():
        arg = call.args[0]
        if _is_reraise(call):
            continue
        if not _is_literal(arg):
            passed[path] = passed.get(path, 0) + 1
            continue
        assert isinstance(arg, ast.Constant)
        wanted = set(PLACEHOLDER.findall(arg.value))
        given = {k.arg for k in call.keywords if k.arg not in (None, "field")}
        if wanted != given:
            wrong.append(f"{path}:{line}: placeholders {sorted(wanted)}, values {sorted(given)}")
    assert wrong == []
    assert passed == PASSED_THROUGH, "a message that is not a literal the catalog can extract"


# Literals that may stay without a Chinese character (literal -> why). Empty: a protocol term or
# a field name goes inside a Chinese sentence, e.g. "请先登录（POST /api/v1/auth/token）".
NOT_CHINESE: dict[str, str] = {}


def test_every_error_message_is_written_in_chinese() -> None:
    english: list[str] = []
    for path, line, call in error_calls():
        arg = call.args[0]
        if _is_literal(arg) and not HAN.search(arg.value) and arg.value not in NOT_CHINESE:
            english.append(f"{path}:{line}: {arg.value}")
    assert english == [], "an error message an editor would read in English"


def test_every_chinese_error_message_has_an_english_translation() -> None:
    po = i18n.CATALOG_DIR / "en" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    with po.open("rb") as handle:
        catalog = read_po(handle)
    untranslated: list[str] = []
    for path, line, call in error_calls():
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and HAN.search(arg.value):
            entry = catalog.get(arg.value)
            text = entry.string if entry is not None and not entry.fuzzy else ""
            if not text or not isinstance(text, str):
                untranslated.append(f"{path}:{line}: {arg.value}")
            elif not set(PLACEHOLDER.findall(text)) <= set(PLACEHOLDER.findall(arg.value)):
                untranslated.append(f"{path}:{line}: placeholders differ in {text!r}")
    assert untranslated == []


def test_a_reason_from_a_rule_function_is_translated_with_its_values() -> None:
    problem = password_problem("short", "kaili")
    assert problem is not None and problem.startswith("密码太短：至少需要10个字符。")
    error = Invalid(problem, field="password")
    assert error.message == problem
    english = error.translate(i18n.translations("en").gettext)
    assert english.startswith("The password is too short: it needs at least 10 characters. ")
    assert "A password has at least 10 characters" in english  # the rule, a Reason too


def test_the_error_keeps_chinese_and_the_boundary_translates() -> None:
    error = HubError("机构 %(code)s 不存在", field="code", code="nosuch")
    assert error.message == str(error) == "机构 nosuch 不存在"
    assert error.translate(i18n.translations("en").gettext) == "Organisation nosuch does not exist"
    assert error.translate(i18n.translations("zh_CN").gettext) == "机构 nosuch 不存在"
