"""The rule of docs/ui.md ("Controls that only a script gives meaning"), over every template: a
page shown before its script has run must not let a click do nothing or send a form nowhere.

A form handled by script has no ``action``; it must say ``method="post"`` so that a submission
before the script ran puts nothing in the address (a draft's text, an app secret). A
``type="button"`` control has meaning only through a script; it must be rendered
``disabled data-needs-script`` (the script's ``hub.wired`` enables it) or ``hidden`` (the script
shows it). The browser test ``test_action_buttons_wait_for_their_script`` checks the behaviour on
four pages; this keeps the next page to the rule."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TAG = re.compile(r"<(form|button)\b[^>]*>", re.S)


def tags(kind: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in TAG.finditer(path.read_text(encoding="utf-8")):
            if match.group(1) == kind:
                found.append((str(path.relative_to(TEMPLATES)), match.group(0)))
    return found


def test_forms_without_an_action_post() -> None:
    forms = tags("form")
    assert len(forms) > 40  # the scan reads the templates
    scripted = [(p, t) for p, t in forms if "action=" not in t]
    assert {p for p, _ in scripted} >= {"pages/compose.html", "pages/accounts.html"}
    wrong = [(p, t) for p, t in scripted if 'method="post"' not in t]
    assert wrong == [], "a form sent by script must say method=post"


def test_script_only_buttons_wait_for_their_script() -> None:
    buttons = [(p, t) for p, t in tags("button") if 'type="button"' in t]
    assert len(buttons) > 10
    wrong = [
        (p, t)
        for p, t in buttons
        if not ("disabled" in t and "data-needs-script" in t) and " hidden" not in t
    ]
    assert wrong == [], "render it disabled data-needs-script (or hidden) until its script runs"
