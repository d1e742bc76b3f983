"""Matrix coverage audit (矩阵检查): which orgs have, and use, the accounts policy requires.

Pure: the rules take pre-aggregated facts (one row per org, per account, per spokesperson: last
activity, count of overdue cases ...), never raw posts, so a SQL layer can feed them with a few
grouped queries. Everything is judged *as of* a date:

- accounts opened after ``as_of`` or closed on or before it do not exist for the audit; an
  account with no ``opened_on`` is assumed to exist;
- the caller passes facts as they were on ``as_of`` (last activity up to that day, the status
  then); a ``last_activity_at`` after ``as_of`` is ignored;
- a coverage rule is checked from its deadline (or ``in_force_from``) on.

Scoring (see ``docs/policies.md``): every finding has the policy's ``veto`` (一票否决) and
``deduction``. An account scores ``full_marks`` minus its findings' deductions and fails on a
veto or below ``pass_mark``; an org scores ``full_marks`` minus the deductions of its own
findings *and* its accounts' findings, and fails on any of those vetoes or below ``pass_mark``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from hub.clocks.rules import SHANGHAI, WorkingDayCalendar, due_at
from hub.platforms import LabelMap, audit_label
from hub.policies import ClockRule, FindingCode, FindingRule, Policy

# How the audit names one account of a platform: declared by the platform's connector.


def N_(message: str) -> str:
    """Mark a word for the catalog (``make i18n``); the pages translate it when they show it,
    the exports (XLSX, CSV) keep it Chinese."""
    return message


PLATFORM_ZH: Mapping[str, str] = LabelMap(audit_label)
PLATFORM_EN: Mapping[str, str] = LabelMap(lambda key: audit_label(key, "en"))
_CODE_ORDER = {code: index for index, code in enumerate(FindingCode)}
_GROUP_LEVELS = frozenset({"prefecture", "new_area"})


# --- Facts (input) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgFacts:
    """One org. ``level``: province | prefecture | new_area | county | department."""

    code: str
    name: str
    level: str
    parent_code: str | None = None
    livelihood: bool = False
    """Livelihood-related department (与民生相关)."""
    press_office: bool = False
    """The provincial press office (省政府新闻办公室)."""


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """One account, with its activity aggregated up to the audit date."""

    id: int
    org_code: str
    platform: str
    opened_on: date | None = None
    status: str = "active"  # active | needs_reauth | suspended | closed
    interaction_channel: bool = True
    last_activity_at: datetime | None = None
    token_expires_at: datetime | None = None
    closed_on: date | None = None
    unanswered_overdue_cases: int = 0
    name: str = ""
    serious_misstatements: int = 0  # inspectors' findings (hub.proofread) up to the audit date


@dataclass(frozen=True, slots=True)
class SpokespersonFacts:
    """An org's spokesperson (新闻发言人) on the audit date and the latest change."""

    org_code: str
    current_name: str | None
    changed_on: date | None = None
    filed_on: date | None = None
    """Filed with the provincial press office (备案)."""
    published_on: date | None = None
    """Announced to the public (向社会公布)."""
    has_assistant: bool | None = None
    """A spokesperson's assistant (新闻助理) in office on the audit date; None: not known (no
    ``assistant_missing`` check)."""


# --- Results (output) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    code: FindingCode
    org_code: str
    text_zh: str
    text_en: str
    veto: bool
    deduction: int
    platform: str | None = None
    account_id: int | None = None

    @property
    def key(self) -> tuple[str, str, str | None, int | None]:
        """Identity across audits (the text may change: 「已22天」 -> 「已30天」)."""
        return (self.code.value, self.org_code, self.platform, self.account_id)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One required org x platform pair (or org x any-of-platforms) in force on the audit date."""

    org_code: str
    platforms: tuple[str, ...]
    match: Literal["all", "any"]
    deadline: date | None
    rules: tuple[str, ...]
    account_ids: tuple[int, ...]

    @property
    def covered(self) -> bool:
        return bool(self.account_ids)


@dataclass(frozen=True, slots=True)
class AccountVerdict:
    account_id: int
    org_code: str
    platform: str
    score: int
    passed: bool
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class OrgVerdict:
    code: str
    name: str
    level: str
    group_code: str
    """The prefecture (or new area) the org is or is under; else the province."""
    audited: bool
    """Some rule applies to the org or it has accounts; unaudited orgs are left out of pass %."""
    score: int
    passed: bool
    findings: tuple[Finding, ...]
    """The org's own findings and those of its accounts."""
    requirements: tuple[Requirement, ...]
    account_ids: tuple[int, ...]


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True, slots=True)
class Rollup:
    code: str
    name: str
    orgs_audited: int
    orgs_passed: int
    accounts: int
    accounts_passed: int
    required: int
    covered: int

    @property
    def coverage_pct(self) -> float | None:
        """Required org x platform pairs that have an account, in % (one decimal)."""
        return _pct(self.covered, self.required)

    @property
    def org_pass_pct(self) -> float | None:
        return _pct(self.orgs_passed, self.orgs_audited)

    @property
    def account_pass_pct(self) -> float | None:
        return _pct(self.accounts_passed, self.accounts)


@dataclass(frozen=True, slots=True)
class AuditResult:
    as_of: date
    policy_name: str
    orgs: tuple[OrgVerdict, ...]
    accounts: tuple[AccountVerdict, ...]
    prefectures: tuple[Rollup, ...]
    province: Rollup
    findings: tuple[Finding, ...] = field(default=())

    def org(self, code: str) -> OrgVerdict:
        for verdict in self.orgs:
            if verdict.code == code:
                return verdict
        raise KeyError(code)

    def account(self, account_id: int) -> AccountVerdict:
        for verdict in self.accounts:
            if verdict.account_id == account_id:
                return verdict
        raise KeyError(account_id)


# --- Engine ----------------------------------------------------------------------------------


def account_exists(account: AccountFacts, as_of: date) -> bool:
    """Whether ``account`` existed on ``as_of``."""
    if account.opened_on is not None and account.opened_on > as_of:
        return False
    if account.closed_on is not None:
        return account.closed_on > as_of
    return account.status != "closed"


def _finding(
    code: FindingCode,
    rule: FindingRule,
    org_code: str,
    zh: str,
    en: str,
    *,
    platform: str | None = None,
    account_id: int | None = None,
) -> Finding:
    return Finding(code, org_code, zh, en, rule.veto, rule.deduction, platform, account_id)


def _sort_key(finding: Finding) -> tuple[str, int, str, int]:
    account = -1 if finding.account_id is None else finding.account_id
    return (finding.org_code, account, finding.platform or "", _CODE_ORDER[finding.code])


def _group_codes(orgs: dict[str, OrgFacts]) -> dict[str, str]:
    groups: dict[str, str] = {}
    for org in orgs.values():
        seen: set[str] = set()
        current = org
        while current.level not in _GROUP_LEVELS:
            parent = orgs.get(current.parent_code) if current.parent_code else None
            if parent is None:
                break
            if parent.code in seen:
                raise ValueError(f"org tree has a cycle through {parent.code}")
            seen.add(parent.code)
            current = parent
        groups[org.code] = current.code
    return groups


def _requirements(
    policy: Policy,
    org: OrgFacts,
    parent_level: str | None,
    accounts: Sequence[AccountFacts],
    as_of: date,
) -> list[Requirement]:
    wanted: dict[tuple[str, tuple[str, ...]], tuple[list[date], list[str]]] = {}
    order: list[str] = list(policy.audit.platforms)
    for key, rule in policy.coverage.items():
        if not rule.in_force(as_of) or not rule.applies_to(
            org.level,
            parent_level=parent_level,
            livelihood=org.livelihood,
            press_office=org.press_office,
        ):
            continue
        groups: list[tuple[str, ...]] = (
            [(p,) for p in rule.platforms] if rule.match == "all" else [tuple(rule.platforms)]
        )
        for group in groups:
            match = "all" if len(group) == 1 else "any"
            ordered = tuple(sorted(group, key=order.index))
            deadlines, keys = wanted.setdefault((match, ordered), ([], []))
            if rule.deadline is not None:
                deadlines.append(rule.deadline)
            keys.append(key)
    each = {group[0] for match, group in wanted if match == "all"}
    result = []
    for (match, platforms), (deadlines, keys) in wanted.items():
        if match == "any" and each.intersection(platforms):
            continue  # implied by a stricter one-per-platform requirement
        result.append(
            Requirement(
                org.code,
                platforms,
                "all" if match == "all" else "any",
                min(deadlines, default=None),
                tuple(keys),
                tuple(a.id for a in accounts if a.platform in platforms),
            )
        )
    return result


def _coverage_findings(
    policy: Policy, requirement: Requirement, accounts: dict[int, AccountFacts]
) -> list[Finding]:
    findings = policy.findings
    org_code = requirement.org_code
    if not requirement.covered:
        if findings.missing is None:
            return []
        if requirement.match == "all":
            platform = requirement.platforms[0]
            zh = f"未开通{PLATFORM_ZH.get(platform, platform)}"
            en = f"No {PLATFORM_EN.get(platform, platform)}"
        else:
            names = "或".join(PLATFORM_ZH.get(p, p) for p in requirement.platforms)
            platform = "|".join(requirement.platforms)
            zh = f"未开通政务新媒体账号（{names}）"
            en = f"No account on any of: {', '.join(requirement.platforms)}"
        return [
            _finding(FindingCode.missing, findings.missing, org_code, zh, en, platform=platform)
        ]
    if findings.opened_late is None or requirement.deadline is None:
        return []
    covering = [accounts[i] for i in requirement.account_ids]
    if any(a.opened_on is None for a in covering):
        return []  # an account of unknown age may have been in time
    first = min(covering, key=lambda a: (a.opened_on or date.min, a.id))
    assert first.opened_on is not None
    if first.opened_on <= requirement.deadline:
        return []
    deadline, opened = requirement.deadline.isoformat(), first.opened_on.isoformat()
    return [
        _finding(
            FindingCode.opened_late,
            findings.opened_late,
            org_code,
            f"开通晚于规定期限（{deadline}），实际{opened}",
            f"Opened after the deadline ({deadline}), on {opened}",
            platform=first.platform,
            account_id=first.id,
        )
    ]


def _account_findings(
    policy: Policy, account: AccountFacts, as_of: date, tz: ZoneInfo
) -> list[Finding]:
    rules = policy.findings
    found: list[Finding] = []

    def add(code: FindingCode, rule: FindingRule, zh: str, en: str) -> None:
        found.append(
            _finding(
                code,
                rule,
                account.org_code,
                zh,
                en,
                platform=account.platform,
                account_id=account.id,
            )
        )

    if rules.inactive is not None:
        last = account.last_activity_at
        last_day = last.astimezone(tz).date() if last is not None else None
        if last_day is not None and last_day > as_of:
            last_day = None  # activity after the audit date says nothing about before it
        if last_day is not None:
            idle = (as_of - last_day).days
            if idle >= rules.inactive.days:
                add(
                    FindingCode.inactive,
                    rules.inactive,
                    f"已{idle}天未更新",
                    f"No update for {idle} days",
                )
        elif account.opened_on is None:
            add(FindingCode.inactive, rules.inactive, "无更新记录", "No update on record")
        else:
            idle = (as_of - account.opened_on).days
            if idle >= rules.inactive.days:
                add(
                    FindingCode.inactive,
                    rules.inactive,
                    f"开通{idle}天未更新",
                    f"No update in the {idle} days since it opened",
                )
    if rules.no_interaction is not None and not account.interaction_channel:
        add(
            FindingCode.no_interaction,
            rules.no_interaction,
            "无有效互动渠道",
            "No effective interaction channel",
        )
    if rules.cases_overdue is not None and account.unanswered_overdue_cases > 0:
        count = account.unanswered_overdue_cases
        add(
            FindingCode.cases_overdue,
            rules.cases_overdue,
            f"有{count}条群众留言逾期未回复",
            f"{count} public messages unanswered past their deadline",
        )
    if rules.serious_misstatement is not None and account.serious_misstatements > 0:
        count = account.serious_misstatements
        add(
            FindingCode.serious_misstatement,
            rules.serious_misstatement,
            f"检查发现{count}处严重表述错误",
            f"{count} serious misstatements found by inspectors",
        )
    if rules.credentials_expired is not None:
        expires = account.token_expires_at
        expired = expires is not None and expires.astimezone(tz).date() <= as_of
        if account.status == "needs_reauth" or expired:
            add(
                FindingCode.credentials_expired,
                rules.credentials_expired,
                "授权已过期",
                "Authorisation expired",
            )
    return found


def _duration_text(rule: ClockRule) -> tuple[str, str]:
    n = rule.amount
    return {
        "hours": (f"{n}小时", f"{n} hours"),
        "same_day": ("当日", "the same day"),
        "days": (f"{n}天", f"{n} days"),
        "working_days": (f"{n}个工作日", f"{n} working days"),
        "months": (f"{n}个月", f"{n} month" + ("s" if n > 1 else "")),
    }[rule.unit]


def _spokesperson_findings(
    policy: Policy,
    org: OrgFacts,
    parent_level: str | None,
    facts: SpokespersonFacts | None,
    as_of: date,
    tz: ZoneInfo,
    calendar: WorkingDayCalendar,
) -> tuple[bool, list[Finding]]:
    """(a spokesperson rule applies, findings)."""
    rules = policy.findings
    applies = any(
        rule.in_force(as_of)
        and rule.applies_to(
            org.level,
            parent_level=parent_level,
            livelihood=org.livelihood,
            press_office=org.press_office,
        )
        for rule in policy.spokesperson.values()
    )
    found: list[Finding] = []
    has_one = facts is not None and bool(facts.current_name)
    if applies and rules.spokesperson_missing is not None and not has_one:
        found.append(
            _finding(
                FindingCode.spokesperson_missing,
                rules.spokesperson_missing,
                org.code,
                "未配备新闻发言人",
                "No spokesperson",
            )
        )
    assistant = rules.assistant_missing
    if applies and assistant is not None and facts is not None and facts.has_assistant is False:
        found.append(
            _finding(
                FindingCode.assistant_missing,
                assistant,
                org.code,
                "未配备新闻发言人助理",
                "No spokesperson's assistant",
            )
        )
    not_filed = rules.spokesperson_not_filed
    if not_filed is not None and facts is not None and facts.changed_on is not None:
        clock = policy.clock("spokesperson_change")
        if facts.changed_on <= as_of:
            started = datetime.combine(facts.changed_on, time(0), tzinfo=tz)
            due = due_at(clock, started, tz=tz, calendar=calendar).due_at.date()
            if as_of > due:
                in_time = [d is not None and d <= due for d in (facts.filed_on, facts.published_on)]
                if not all(in_time):
                    zh, en = _duration_text(clock)
                    found.append(
                        _finding(
                            FindingCode.spokesperson_not_filed,
                            not_filed,
                            org.code,
                            f"新闻发言人变更未在{zh}内公开并备案",
                            f"Spokesperson change not published and filed within {en}",
                        )
                    )
    return applies, found


def _score(policy: Policy, findings: Iterable[Finding]) -> tuple[int, bool]:
    findings = list(findings)
    score = max(0, policy.audit.full_marks - sum(f.deduction for f in findings))
    passed = not any(f.veto for f in findings) and score >= policy.audit.pass_mark
    return score, passed


def evaluate(
    policy: Policy,
    orgs: Iterable[OrgFacts],
    accounts: Iterable[AccountFacts],
    spokespersons: Iterable[SpokespersonFacts],
    as_of: date,
    *,
    tz: ZoneInfo = SHANGHAI,
    calendar: WorkingDayCalendar | None = None,
) -> AuditResult:
    """Audit the matrix as of the end of ``as_of`` (local days in ``tz``).

    ``calendar`` is only used if the policy's spokesperson-change clock counts working days.
    Raises ``ValueError`` for inconsistent facts (duplicate org codes, an account of an unknown
    org, a cycle in the org tree).
    """
    calendar = calendar or WorkingDayCalendar()
    org_map: dict[str, OrgFacts] = {}
    for org in orgs:
        if org.code in org_map:
            raise ValueError(f"duplicate org code {org.code}")
        org_map[org.code] = org
    platforms = set(policy.audit.platforms)
    counted: dict[int, AccountFacts] = {}
    by_org: dict[str, list[AccountFacts]] = defaultdict(list)
    for account in accounts:
        if account.org_code not in org_map:
            raise ValueError(f"account {account.id} belongs to unknown org {account.org_code}")
        if account.platform in platforms and account_exists(account, as_of):
            counted[account.id] = account
            by_org[account.org_code].append(account)
    spokes = {facts.org_code: facts for facts in spokespersons}
    groups = _group_codes(org_map)

    account_findings: dict[int, list[Finding]] = defaultdict(list)
    for account in counted.values():
        account_findings[account.id].extend(_account_findings(policy, account, as_of, tz))

    org_verdicts: list[OrgVerdict] = []
    for org in sorted(org_map.values(), key=lambda o: o.code):
        parent = org_map.get(org.parent_code) if org.parent_code else None
        parent_level = parent.level if parent else None
        own = sorted(by_org.get(org.code, []), key=lambda a: (a.platform, a.id))
        requirements = _requirements(policy, org, parent_level, own, as_of)
        org_findings: list[Finding] = []
        for requirement in requirements:
            for finding in _coverage_findings(policy, requirement, counted):
                if finding.account_id is not None:
                    account_findings[finding.account_id].append(finding)
                else:
                    org_findings.append(finding)
        duplicate = policy.findings.duplicate_account
        if duplicate is not None:
            per_platform: dict[str, int] = defaultdict(int)
            for account in own:
                per_platform[account.platform] += 1
            for platform, count in sorted(per_platform.items()):
                if count > duplicate.max_per_platform:
                    org_findings.append(
                        _finding(
                            FindingCode.duplicate_account,
                            duplicate,
                            org.code,
                            f"同一平台有{count}个账号（{PLATFORM_ZH.get(platform, platform)}）",
                            f"{count} accounts on one platform ({platform})",
                            platform=platform,
                        )
                    )
        spoke_applies, spoke_findings = _spokesperson_findings(
            policy, org, parent_level, spokes.get(org.code), as_of, tz, calendar
        )
        org_findings.extend(spoke_findings)
        all_findings = org_findings + [f for a in own for f in account_findings[a.id]]
        all_findings.sort(key=_sort_key)
        score, passed = _score(policy, all_findings)
        org_verdicts.append(
            OrgVerdict(
                code=org.code,
                name=org.name,
                level=org.level,
                group_code=groups[org.code],
                audited=bool(requirements or own or spoke_applies),
                score=score,
                passed=passed,
                findings=tuple(all_findings),
                requirements=tuple(requirements),
                account_ids=tuple(a.id for a in own),
            )
        )

    account_verdicts = []
    for account in sorted(counted.values(), key=lambda a: a.id):
        mine = sorted(account_findings[account.id], key=_sort_key)
        score, passed = _score(policy, mine)
        account_verdicts.append(
            AccountVerdict(
                account.id, account.org_code, account.platform, score, passed, tuple(mine)
            )
        )

    return AuditResult(
        as_of=as_of,
        policy_name=policy.name,
        orgs=tuple(org_verdicts),
        accounts=tuple(account_verdicts),
        prefectures=_prefecture_rollups(org_map, org_verdicts, account_verdicts),
        province=_rollup(_province(org_map), org_verdicts, account_verdicts),
        findings=tuple(f for verdict in org_verdicts for f in verdict.findings),
    )


def _province(orgs: dict[str, OrgFacts]) -> OrgFacts:
    provinces = [o for o in orgs.values() if o.level == "province"]
    if len(provinces) == 1:
        return provinces[0]
    return OrgFacts(code="", name="", level="province")


def _rollup(
    head: OrgFacts, orgs: Sequence[OrgVerdict], accounts: Sequence[AccountVerdict]
) -> Rollup:
    codes = {o.code for o in orgs}
    audited = [o for o in orgs if o.audited]
    mine = [a for a in accounts if a.org_code in codes]
    requirements = [r for o in orgs for r in o.requirements]
    return Rollup(
        code=head.code,
        name=head.name,
        orgs_audited=len(audited),
        orgs_passed=sum(o.passed for o in audited),
        accounts=len(mine),
        accounts_passed=sum(a.passed for a in mine),
        required=len(requirements),
        covered=sum(r.covered for r in requirements),
    )


def _prefecture_rollups(
    orgs: dict[str, OrgFacts], verdicts: Sequence[OrgVerdict], accounts: Sequence[AccountVerdict]
) -> tuple[Rollup, ...]:
    members: dict[str, list[OrgVerdict]] = defaultdict(list)
    for verdict in verdicts:
        members[verdict.group_code].append(verdict)
    return tuple(
        _rollup(orgs[code], members[code], accounts)
        for code in sorted(members)
        if orgs[code].level in _GROUP_LEVELS
    )


# --- Comparing two audits --------------------------------------------------------------------


class Change(StrEnum):
    improved = "improved"
    regressed = "regressed"
    unchanged = "unchanged"


@dataclass(frozen=True, slots=True)
class OrgChange:
    code: str
    name: str
    old_score: int
    new_score: int
    old_passed: bool
    new_passed: bool
    change: Change


@dataclass(frozen=True, slots=True)
class FindingChange:
    """``improved``: the finding is gone; ``regressed``: it is new; ``unchanged``: still there
    (``finding`` is then the newer one, whose text may differ)."""

    finding: Finding
    change: Change


@dataclass(frozen=True, slots=True)
class Comparison:
    old_as_of: date
    new_as_of: date
    orgs: tuple[OrgChange, ...]
    findings: tuple[FindingChange, ...]
    orgs_added: tuple[str, ...]
    orgs_removed: tuple[str, ...]


def _org_change(old: OrgVerdict, new: OrgVerdict) -> Change:
    old_rank = (old.passed, old.score, -len(old.findings))
    new_rank = (new.passed, new.score, -len(new.findings))
    if new_rank > old_rank:
        return Change.improved
    if new_rank < old_rank:
        return Change.regressed
    return Change.unchanged


def compare(old: AuditResult, new: AuditResult) -> Comparison:
    """What changed between two audits, per org (pass/fail, then score, then number of
    findings) and per finding (by :attr:`Finding.key`)."""
    old_orgs = {o.code: o for o in old.orgs if o.audited}
    new_orgs = {o.code: o for o in new.orgs if o.audited}
    org_changes = tuple(
        OrgChange(
            code,
            new_orgs[code].name,
            old_orgs[code].score,
            new_orgs[code].score,
            old_orgs[code].passed,
            new_orgs[code].passed,
            _org_change(old_orgs[code], new_orgs[code]),
        )
        for code in sorted(old_orgs.keys() & new_orgs.keys())
    )
    old_findings = {f.key: f for f in old.findings}
    new_findings = {f.key: f for f in new.findings}
    changes = [
        FindingChange(f, Change.unchanged if key in old_findings else Change.regressed)
        for key, f in new_findings.items()
    ]
    changes += [
        FindingChange(f, Change.improved)
        for key, f in old_findings.items()
        if key not in new_findings
    ]
    changes.sort(key=lambda c: _sort_key(c.finding))
    return Comparison(
        old_as_of=old.as_of,
        new_as_of=new.as_of,
        orgs=org_changes,
        findings=tuple(changes),
        orgs_added=tuple(sorted(new_orgs.keys() - old_orgs.keys())),
        orgs_removed=tuple(sorted(old_orgs.keys() - new_orgs.keys())),
    )


# --- Spokesperson filing status (新闻发言人变更备案) ------------------------------------------


@dataclass(frozen=True, slots=True)
class SpokespersonFiling:
    """Where the latest spokesperson change stands against ``clocks.spokesperson_change``.

    ``status``: ``filed`` (published and filed in time), ``filed_late``, ``pending`` (not yet
    done, still in time), ``overdue``, or ``no_rule`` (the policy has no such clock).
    """

    status: Literal["filed", "filed_late", "pending", "overdue", "no_rule"]
    due_on: date | None


def spokesperson_filing(
    policy: Policy,
    changed_on: date,
    filed_on: date | None,
    published_on: date | None,
    as_of: date,
    *,
    tz: ZoneInfo = SHANGHAI,
    calendar: WorkingDayCalendar | None = None,
) -> SpokespersonFiling:
    """The filing status of a change made on ``changed_on``, judged at the end of ``as_of``
    (the same deadline the ``spokesperson_not_filed`` finding uses)."""
    if "spokesperson_change" not in policy.clocks:
        return SpokespersonFiling("no_rule", None)
    clock = policy.clock("spokesperson_change")
    started = datetime.combine(changed_on, time(0), tzinfo=tz)
    due = due_at(clock, started, tz=tz, calendar=calendar or WorkingDayCalendar()).due_at.date()
    done = [d for d in (filed_on, published_on) if d is not None and d <= as_of]
    if len(done) == 2:
        return SpokespersonFiling("filed" if max(done) <= due else "filed_late", due)
    return SpokespersonFiling("pending" if as_of <= due else "overdue", due)
