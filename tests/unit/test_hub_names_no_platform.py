"""``hub/`` names no platform: what a platform is lives in its connector (docs/adding-a-platform.md).

What counts as naming one:

- in ``.py`` files under ``hub/``: a string literal that *is* a platform key (``"weibo"``,
  ``"wechat"``, ``"hall"``, ``"webhook"``; not a longer string that contains one), and an
  attribute ``Platform.<key>``;
- in templates under ``templates/pages`` and ``templates/partials``: a quoted key inside a Jinja
  tag (``{{ ... }}``, ``{% ... %}``) or an HTML ``value="<key>"``.

Not counted: Alembic migrations (history), the demo fixtures (``hub/accounts/demo.py``,
``hub/inbox/demo.py``: the demo's Weibo comment), data
files (CSV, TOML presets, catalogs), docstrings and comments (never an exact key), and the
channel templates (``templates/channels``, which belong to their connectors).

``STILL_NAMED`` lists what issue 15 has not yet moved into the connectors, per file, with the
reason; the test fails when a file names platforms more often than listed (a new dependency) and
also when it names them less often (shrink the list, so it only ever gets shorter).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = frozenset({"weibo", "wechat", "hall", "webhook"})
EXCLUDED = {"hub/accounts/demo.py", "hub/inbox/demo.py"}  # demo fixtures: the demo's own accounts

STILL_NAMED: dict[str, tuple[int, str]] = {
    "hub/live/service.py": (4, "live streams: Weibo fan-out, WeChat and hall summaries"),
    "hub/clocks/reminders.py": (1, '"webhook" here is the reminder channel, not the platform'),
}


def _python_names(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = 0
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and node.value in KEYS) or (
            isinstance(node, ast.Attribute)
            and node.attr in KEYS
            and isinstance(node.value, ast.Name)
            and node.value.id == "Platform"
        ):
            found += 1
    return found


_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_ALTERNATIVES = "|".join(sorted(KEYS))
_QUOTED_KEY = re.compile(rf"""['"]({_ALTERNATIVES})['"]""")
_VALUE_ATTR = re.compile(rf"""\bvalue=['"]({_ALTERNATIVES})['"]""")


def _template_names(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    in_tags = sum(len(_QUOTED_KEY.findall(tag)) for tag in _JINJA.findall(text))
    return in_tags + len(_VALUE_ATTR.findall(_JINJA.sub("", text)))


def _census() -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in sorted((ROOT / "hub").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "migrations" in path.parts or rel in EXCLUDED:
            continue
        if n := _python_names(path):
            counts[rel] = n
    for folder in ("templates/pages", "templates/partials"):
        for path in sorted((ROOT / folder).rglob("*.html")):
            if n := _template_names(path):
                counts[path.relative_to(ROOT).as_posix()] = n
    return counts


def test_hub_code_and_pages_name_no_platform() -> None:
    counts = _census()
    allowed = {path: n for path, (n, _why) in STILL_NAMED.items()}
    new = {p: n for p, n in counts.items() if n > allowed.get(p, 0)}
    assert not new, (
        f"platform names in hub/ or the page templates: {new}. Ask the connector instead "
        "(hub.platforms, PlatformInfo, a capability Protocol): docs/adding-a-platform.md"
    )
    shrunk = {p: counts.get(p, 0) for p, n in allowed.items() if counts.get(p, 0) < n}
    assert not shrunk, f"fewer platform names than STILL_NAMED lists: lower it to {shrunk}"


def test_the_census_sees_a_platform_name(tmp_path: Path) -> None:
    """The rule itself: what it counts and what it lets through."""
    code = tmp_path / "x.py"
    code.write_text(
        '"""Posts to weibo and wechat."""\n'
        'a = "weibo"\n'
        "b = Platform.hall\n"
        'c = "weibo_comment"\n'
        "# webhook\n",
        encoding="utf-8",
    )
    assert _python_names(code) == 2
    page = tmp_path / "p.html"
    page.write_text(
        '<body class="hall">{% if p == \'wechat\' %}<option value="webhook">{% endif %}微博</body>',
        encoding="utf-8",
    )
    assert _template_names(page) == 2
