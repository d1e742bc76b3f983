"""Policy presets (政策预设): the rules the matrix audit and the compliance clocks apply, as data.

A preset is a TOML file in this folder (``guizhou-2013.toml``, ``national-2019.toml``) or in an
administrator's directory. :func:`load_policy` reads one or more presets, merges them in order,
applies threshold overrides and returns a validated, immutable :class:`Policy`. Anything wrong
raises :class:`PolicyError` with a message naming the preset (or ``overrides``) and the field.

Merge semantics (documented for administrators in ``docs/policies.md``):

- Presets are applied left to right: list the general preset first and the local one last
  (``["national-2019", "guizhou-2013"]``), so local rules win where both define one.
- Keyed tables -- ``[coverage.*]``, ``[spokesperson.*]``, ``[findings.*]``, ``[clocks.*]``,
  ``[recurring.*]`` -- merge by key: a key only in one preset is kept; a key defined again by a
  later preset is *replaced as a whole* (never field-by-field), so each rule reads the same as
  in the one file it comes from.
- The ``[audit]`` table merges field by field, later presets winning.
- ``[preset]`` metadata is kept per preset, in order, in :attr:`Policy.presets`.
- Overrides are applied last, to the merged result: ``{"inactive_days": 10}`` (an alias from
  :data:`OVERRIDE_ALIASES`) or a dotted path into the merged document
  (``{"findings.duplicate_account.deduction": 5}``). An override may only change a rule that a
  loaded preset defines.

This module reads files; the rules that use a :class:`Policy` (``hub.clocks.rules``,
``hub.audit.rules``) are pure.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.platforms import Platform, with_flag

__all__ = [
    "OVERRIDE_ALIASES",
    "AuditSettings",
    "ClockRule",
    "ClockUnit",
    "CoverageRule",
    "DuplicateRule",
    "FindingCode",
    "FindingRule",
    "FindingRules",
    "InactiveRule",
    "Level",
    "Period",
    "Platform",
    "Policy",
    "PolicyError",
    "PresetInfo",
    "RecurringRule",
    "ScopedRule",
    "SpokespersonRule",
    "available_presets",
    "load_policy",
    "parse_policy",
]

Level = Literal["province", "prefecture", "new_area", "county", "department"]
"""Org levels; the same values as ``hub.orgs.models.OrgLevel``."""

# Platforms: the connector registry's keys (hub.platforms.Platform validates them).

ClockUnit = Literal["hours", "same_day", "days", "working_days", "months"]
Period = Literal["month", "quarter", "year"]

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ALL_LEVELS: tuple[Level, ...] = ("province", "prefecture", "new_area", "county", "department")


class FindingCode(StrEnum):
    """Stable audit finding codes: APIs, exports and comparisons key on them."""

    missing = "missing"
    opened_late = "opened_late"
    inactive = "inactive"
    no_interaction = "no_interaction"
    cases_overdue = "cases_overdue"
    duplicate_account = "duplicate_account"
    credentials_expired = "credentials_expired"
    spokesperson_missing = "spokesperson_missing"
    spokesperson_not_filed = "spokesperson_not_filed"
    assistant_missing = "assistant_missing"
    serious_misstatement = "serious_misstatement"  # 严重表述错误 found by inspectors


class PolicyError(ValueError):
    """A preset is unknown, unreadable or invalid, or an override does not apply."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PresetInfo(_Model):
    """``[preset]``: where the rules come from. Not used by any rule; shown to people."""

    name: str = ""  # filled in by the loader from the file name
    title_zh: str = ""
    title_en: str = ""
    issued_on: date | None = None
    basis: str = ""


class AuditSettings(_Model):
    """``[audit]``: scoring and which platforms the audit looks at."""

    full_marks: int = Field(default=100, ge=1)
    pass_mark: int = Field(default=60, ge=0)
    platforms: tuple[Platform, ...] = Field(default_factory=lambda: with_flag("audited"))


class ScopedRule(_Model):
    """Which orgs a rule applies to. Empty ``levels`` means every level."""

    levels: tuple[Level, ...] = ()
    parent_levels: tuple[Level, ...] = ()
    """Only orgs whose parent has one of these levels (``["province"]``: provincial departments)."""
    livelihood_only: bool = False
    """Only livelihood-related (与民生相关) departments."""
    press_office_only: bool = False
    """Only the provincial press office (省政府新闻办公室)."""
    title_zh: str = ""
    title_en: str = ""
    section: str = ""
    """Where the rule comes from, e.g. ``§9``."""

    def applies_to(
        self, level: str, *, parent_level: str | None, livelihood: bool, press_office: bool
    ) -> bool:
        if self.levels and level not in self.levels:
            return False
        if self.parent_levels and parent_level not in self.parent_levels:
            return False
        if self.livelihood_only and not livelihood:
            return False
        return not (self.press_office_only and not press_office)


class CoverageRule(ScopedRule):
    """``[coverage.<key>]``: orgs in scope must have accounts on these platforms.

    ``match = "all"``: one account on *each* platform; ``"any"``: at least one account on any of
    them. ``deadline``: the account must exist by the end of that day (before it, the rule is not
    yet checked; an account opened after it is ``opened_late``). ``in_force_from``: the rule is
    not checked before that date. Neither set: always checked.
    """

    platforms: tuple[Platform, ...] = Field(min_length=1)
    match: Literal["all", "any"] = "all"
    deadline: date | None = None
    in_force_from: date | None = None

    def in_force(self, as_of: date) -> bool:
        return all(d is None or as_of >= d for d in (self.deadline, self.in_force_from))


class SpokespersonRule(ScopedRule):
    """``[spokesperson.<key>]``: orgs in scope must have a spokesperson (新闻发言人) from
    ``deadline`` (not checked before it)."""

    deadline: date | None = None

    def in_force(self, as_of: date) -> bool:
        return self.deadline is None or as_of >= self.deadline


class FindingRule(_Model):
    """``[findings.<code>]``: declaring it turns the check on. ``veto`` (一票否决) fails the
    account/org outright; otherwise ``deduction`` points come off ``full_marks``."""

    veto: bool = False
    deduction: int = Field(default=0, ge=0)


class InactiveRule(FindingRule):
    days: int = Field(ge=1)
    """Fails when the last update is ``days`` or more days before the audit date."""


class DuplicateRule(FindingRule):
    max_per_platform: int = Field(default=1, ge=1)


class FindingRules(_Model):
    """``[findings]``: one optional table per :class:`FindingCode`; an absent table = not checked."""

    missing: FindingRule | None = None
    opened_late: FindingRule | None = None
    inactive: InactiveRule | None = None
    no_interaction: FindingRule | None = None
    cases_overdue: FindingRule | None = None
    duplicate_account: DuplicateRule | None = None
    credentials_expired: FindingRule | None = None
    spokesperson_missing: FindingRule | None = None
    spokesperson_not_filed: FindingRule | None = None
    assistant_missing: FindingRule | None = None
    serious_misstatement: FindingRule | None = None

    def get(self, code: FindingCode) -> FindingRule | None:
        rule: FindingRule | None = getattr(self, code.value)
        return rule


class ClockRule(_Model):
    """``[clocks.<kind>]``: a time limit started by an event.

    ``hours``: wall-clock hours; ``same_day``: 23:59:59 local on the start day; ``days``:
    calendar days, end of day; ``working_days``: end of the N-th working day after the start day;
    ``months``: same day N months later (clamped to month end), end of day.
    """

    kind: str = ""  # filled in from the table key
    unit: ClockUnit
    amount: int = Field(default=1, ge=1)
    title_zh: str = ""
    title_en: str = ""
    section: str = ""


class RecurringRule(ScopedRule):
    """``[recurring.<key>]``: at least ``min_count`` records every period, due at period end.

    ``subject``: ``org`` (every org in scope), ``press_office`` (the orgs flagged as press
    office) or ``spokesperson`` (each spokesperson of an org in scope).
    """

    period: Period
    subject: Literal["org", "press_office", "spokesperson"] = "org"
    min_count: int = Field(default=1, ge=1)


class Policy(_Model):
    """The merged, validated rules. Treat as read-only (the model is frozen)."""

    presets: tuple[PresetInfo, ...] = ()
    audit: AuditSettings = AuditSettings()
    coverage: dict[str, CoverageRule] = {}
    spokesperson: dict[str, SpokespersonRule] = {}
    findings: FindingRules = FindingRules()
    clocks: dict[str, ClockRule] = {}
    recurring: dict[str, RecurringRule] = {}

    @field_validator("coverage", "spokesperson", "clocks", "recurring")
    @classmethod
    def _keys_are_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _KEY.match(key):
                raise ValueError(f"invalid key {key!r}: use lower-case letters, digits, - and _")
        return value

    @property
    def name(self) -> str:
        return "+".join(p.name for p in self.presets)

    def clock(self, kind: str) -> ClockRule:
        try:
            return self.clocks[kind]
        except KeyError:
            raise PolicyError(
                f"policy {self.name or '(empty)'}: no clock {kind!r}; defined: "
                f"{', '.join(sorted(self.clocks)) or 'none'}"
            ) from None


OVERRIDE_ALIASES: dict[str, str] = {
    "inactive_days": "findings.inactive.days",
    "pass_mark": "audit.pass_mark",
    "full_marks": "audit.full_marks",
    "max_accounts_per_platform": "findings.duplicate_account.max_per_platform",
}
"""Short names for the thresholds administrators change most ("update every 10 days")."""

_FIELD_MERGED_SECTIONS = ("audit",)


def _format_errors(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        if loc[:1] == ["presets"] and len(loc) > 1:  # the file's [preset] table
            loc = ["preset", *loc[2:]]
        where = ".".join(str(part) for part in loc) or "(top level)"
        lines.append(f"{source}: {where}: {item['msg']}")
    return "\n".join(lines)


def _validate(source: str, document: Mapping[str, Any]) -> Policy:
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(_format_errors(source, error)) from None


def _normalise(name: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a file's ``[preset]`` table into ``presets = [...]`` and fill each clock's ``kind``
    from its table key."""
    result = copy.deepcopy(dict(document))
    if "presets" in result:
        raise PolicyError(f"{name}.toml: presets: unknown section (did you mean [preset]?)")
    preset = result.pop("preset", {})
    result["presets"] = [{**preset, "name": name} if isinstance(preset, Mapping) else preset]
    clocks = result.get("clocks")
    if isinstance(clocks, Mapping):
        result["clocks"] = {
            key: ({**value, "kind": key} if isinstance(value, Mapping) else value)
            for key, value in clocks.items()
        }
    return result


def _merge(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"presets": []}
    for document in documents:
        for section, value in document.items():
            if section == "presets":
                merged["presets"].extend(value)
            else:  # keyed sections: same key replaced whole; [audit]: field by field
                merged.setdefault(section, {}).update(value)
    return merged


def _apply_overrides(merged: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        path = OVERRIDE_ALIASES.get(key, key)
        parts = path.split(".")
        if len(parts) < 2:
            raise PolicyError(
                f"overrides: {key!r}: unknown threshold; use one of "
                f"{', '.join(sorted(OVERRIDE_ALIASES))} or a dotted path such as "
                "'findings.inactive.days'"
            )
        node: Any = merged
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None and depth == 0 and part in _FIELD_MERGED_SECTIONS:
                child = node[part] = {}
            if not isinstance(child, dict):
                shown = ".".join(parts[: depth + 1])
                raise PolicyError(
                    f"overrides: {key!r}: {shown} is not defined by the loaded presets, "
                    "so there is nothing to override"
                )
            node = child
        node[parts[-1]] = value


def parse_policy(
    documents: Sequence[tuple[str, Mapping[str, Any]]],
    overrides: Mapping[str, Any] | None = None,
) -> Policy:
    """Validate, merge and override already-parsed preset documents ``(name, data)``."""
    if not documents:
        raise PolicyError("no policy preset given")
    normalised = [_normalise(name, document) for name, document in documents]
    for (name, _), document in zip(documents, normalised, strict=True):
        _validate(f"{name}.toml", document)
    merged = _merge(normalised)
    _apply_overrides(merged, overrides or {})
    source = f"overrides {dict(overrides)!r}" if overrides else "merged presets"
    policy = _validate(source, merged)
    _check_consistency(policy)
    return policy


def _check_consistency(policy: Policy) -> None:
    problems = []
    findings = policy.findings
    if policy.coverage and findings.missing is None:
        problems.append("coverage rules are defined but [findings.missing] is not")
    if policy.spokesperson and findings.spokesperson_missing is None:
        problems.append("spokesperson rules are defined but [findings.spokesperson_missing] is not")
    if findings.assistant_missing is not None and not policy.spokesperson:
        problems.append("[findings.assistant_missing] needs a [spokesperson.*] rule")
    if findings.spokesperson_not_filed is not None and "spokesperson_change" not in policy.clocks:
        problems.append("[findings.spokesperson_not_filed] needs [clocks.spokesperson_change]")
    audited = set(policy.audit.platforms)
    for key, rule in policy.coverage.items():
        outside = [p for p in rule.platforms if p not in audited]
        if outside:
            problems.append(
                f"coverage.{key}.platforms: {', '.join(outside)} not in audit.platforms"
            )
    if policy.audit.pass_mark > policy.audit.full_marks:
        problems.append("audit.pass_mark is above audit.full_marks")
    if problems:
        raise PolicyError("; ".join(f"policy {policy.name}: {p}" for p in problems))


def _builtin_dir() -> Any:
    return resources.files(__name__)


def _read_preset(name: str, directories: Sequence[Path]) -> dict[str, Any]:
    if not _PRESET_NAME.match(name):
        raise PolicyError(f"preset {name!r}: invalid name (lower-case letters, digits, - . _)")
    filename = f"{name}.toml"
    for directory in directories:
        candidate = Path(directory) / filename
        if candidate.is_file():
            return _parse_toml(name, candidate.read_text(encoding="utf-8"))
    builtin = _builtin_dir().joinpath(filename)
    if builtin.is_file():
        return _parse_toml(name, builtin.read_text(encoding="utf-8"))
    known = ", ".join(available_presets(directories)) or "none"
    raise PolicyError(f"preset {name!r}: unknown preset; available: {known}")


def _parse_toml(name: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"preset {name} ({name}.toml): not valid TOML: {error}") from None


def available_presets(directories: Iterable[Path] = ()) -> list[str]:
    """Names of the built-in presets and of those in ``directories``."""
    names = {
        entry.name.removesuffix(".toml")
        for entry in _builtin_dir().iterdir()
        if entry.name.endswith(".toml")
    }
    for directory in directories:
        if Path(directory).is_dir():
            names.update(path.stem for path in Path(directory).glob("*.toml"))
    return sorted(names)


def load_policy(
    names: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    directories: Sequence[Path] = (),
) -> Policy:
    """Load presets ``names`` in order (later ones add rules or replace same-key rules), then
    apply ``overrides``. ``directories`` are searched before the built-in presets, so a
    province can ship its own file or replace a built-in one."""
    if isinstance(names, str):
        raise PolicyError("load_policy takes a list of preset names, not a single string")
    documents = [(name, _read_preset(name, directories)) for name in names]
    return parse_policy(documents, overrides)
