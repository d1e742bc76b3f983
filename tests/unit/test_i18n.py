"""Every interface message of the editor's pages has an English translation in the catalog."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from hub.web import i18n

ROOT = Path(__file__).resolve().parents[2]
EDITOR_TEMPLATES = {
    "partials/base.html",
    "partials/labels.html",
    "partials/review_chain.html",
    *(
        f"pages/{name}.html"
        for name in [
            "accounts",
            "audit_log",
            "orgs",
            "posts",
            "media",
            "board",
            "calendar",
            "clocks",
            "compose",
            "deliveries",
            "error",
            "home",
            "inbox",
            "inbox_case",
            "inbox_overdue",
            "inbox_stats",
            "live_console",
            "live_list",
            "live_new",
            "login",
            "review",
            "review_list",
            "users",
            "notifications",
        ]
    ),
}


def messages() -> set[str]:
    found: set[str] = set()
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "templates"),
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None},
    ):
        if filename in EDITOR_TEMPLATES:
            found.add(message if isinstance(message, str) else message[0])
    return found | set(i18n.JS_MESSAGES)


def test_every_message_has_an_english_translation() -> None:
    english = i18n.translations("en")
    untranslated = sorted(m for m in messages() if english.gettext(m) == m)
    assert untranslated == []


def test_chinese_is_the_default_and_needs_no_catalog() -> None:
    assert i18n.normalise(None) is None
    assert i18n.normalise("zh-CN") == "zh_CN"
    assert i18n.normalise("en-GB") == "en"
    assert i18n.normalise("fr") is None
    assert i18n.translations("zh_CN").gettext("工作台") == "工作台"
