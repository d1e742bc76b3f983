"""The matrix audit over the database: facts aggregated in SQL, judged by ``rules.evaluate``.

Three queries feed the pure engine, whatever the size of the matrix:

1. orgs with their parent's code (one self-join);
2. accounts that existed by the audit date with ``max(posted_at)`` of their activity up to the
   end of that day (``GROUP BY account_id`` over ``account_activity``, served by the index
   ``(account_id, posted_at)``);
3. per org, the spokesperson appointment in force and the latest change (``GROUP BY org_id``).

Saved runs keep the whole result as JSON, so two runs can be compared with ``rules.compare``
long after the data changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from connectors.base import MetricField
from hub.accounts.models import Account, AccountStatus
from hub.audit.models import AccountActivity, AuditRun, Spokesperson, SpokespersonRole
from hub.audit.rules import (
    N_,
    AccountFacts,
    AccountVerdict,
    AuditResult,
    Comparison,
    Finding,
    OrgFacts,
    OrgVerdict,
    Requirement,
    Rollup,
    SpokespersonFacts,
    compare,
    evaluate,
)
from hub.config import Settings
from hub.errors import Invalid, NotFound
from hub.orgs.models import Org
from hub.policies import FindingCode, Policy, PolicyError, load_policy

Progress = Callable[[str], None]

FINDING_ZH = {
    FindingCode.missing: N_("未开通账号"),
    FindingCode.opened_late: N_("开通逾期"),
    FindingCode.inactive: N_("长期未更新"),
    FindingCode.no_interaction: N_("无互动渠道"),
    FindingCode.cases_overdue: N_("留言逾期未回复"),
    FindingCode.duplicate_account: N_("重复开设账号"),
    FindingCode.credentials_expired: N_("授权过期"),
    FindingCode.spokesperson_missing: N_("未配备新闻发言人"),
    FindingCode.spokesperson_not_filed: N_("发言人变更未备案"),
    FindingCode.assistant_missing: N_("未配备新闻助理"),
    FindingCode.serious_misstatement: N_("严重表述错误"),
}
LEVEL_ZH = {
    "province": "省",
    "prefecture": "市（州）",
    "new_area": "新区",
    "county": "县（市、区）",
    "department": "部门",
}


def parse_as_of(value: str | None, *, today: date) -> date:
    """``YYYY-MM-DD`` (empty: today) or a clear 422."""
    if value is None or not value.strip():
        return today
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(
            "检查基准日（as_of）应为 2014-06-30 这样的日期，而不是 %(value)r",
            field="as_of",
            value=value,
        ) from None


def resolve_policy(names: str | None, settings: Settings) -> Policy:
    """Presets by name, comma-separated, applied left to right (default: ``GOVHUB_POLICY``)."""
    chosen = [n.strip() for n in (names or "").split(",") if n.strip()] or settings.policies
    try:
        return load_policy(chosen)
    except PolicyError as exc:
        raise Invalid("规则配置有误：%(exc)s", field="policy", exc=exc) from None


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after ``day`` in ``tz``, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


# --- Facts from SQL --------------------------------------------------------------------------


def org_facts(*, session: Session) -> list[OrgFacts]:
    parent = aliased(Org)
    rows = session.execute(
        sa_select(
            col(Org.code),
            col(Org.name),
            col(Org.level),
            col(parent.code),
            col(Org.livelihood),
            col(Org.press_office),
        ).outerjoin(parent, col(Org.parent_id) == col(parent.id))
    ).all()
    return [
        OrgFacts(
            code=code,
            name=name,
            level=str(level),
            parent_code=parent_code,
            livelihood=livelihood,
            press_office=press_office,
        )
        for code, name, level, parent_code, livelihood, press_office in rows
    ]


def account_facts(
    *,
    session: Session,
    as_of: date,
    tz: ZoneInfo,
    platforms: Iterable[str],
    today: date,
) -> list[AccountFacts]:
    """Accounts on ``platforms`` opened by ``as_of``, with their last activity up to its end.

    The status is today's: for a past date an account now waiting for re-authorisation is
    judged as active (when its token expired is still known from ``token_expires_at``).
    """
    cutoff = end_of_day(as_of, tz)
    last = (
        select(
            col(AccountActivity.account_id).label("account_id"),
            func.max(AccountActivity.posted_at).label("last_at"),
        )
        .where(col(AccountActivity.posted_at) < cutoff)
        .group_by(col(AccountActivity.account_id))
        .subquery()
    )
    from hub.delivery.models import Delivery, DeliveryStatus

    # What the hub itself published counts at once: an account that published minutes ago is
    # active, whether or not ingestion has fetched its timeline since.
    delivered = (
        sa_select(
            col(Delivery.account_id).label("account_id"),
            func.max(Delivery.published_at).label("last_at"),
        )
        .where(
            col(Delivery.status) == DeliveryStatus.published,
            col(Delivery.published_at) < cutoff,
        )
        .group_by(col(Delivery.account_id))
        .subquery()
    )
    query = (
        sa_select(
            col(Account.id),
            col(Org.code),
            col(Account.platform),
            col(Account.opened_on),
            col(Account.closed_on),
            col(Account.status),
            col(Account.interaction_channel),
            col(Account.token_expires_at),
            col(Account.last_activity_at),
            last.c.last_at,
            col(Account.name),
            delivered.c.last_at,
        )
        .join(Org, col(Account.org_id) == col(Org.id))
        .outerjoin(last, last.c.account_id == col(Account.id))
        .outerjoin(delivered, delivered.c.account_id == col(Account.id))
        .where(
            col(Account.platform).in_(list(platforms)),
            or_(col(Account.opened_on).is_(None), col(Account.opened_on) <= as_of),
        )
    )
    from hub.inbox.service import overdue_case_counts

    overdue_cases = overdue_case_counts(session=session, cutoff=cutoff)
    from hub.proofread.service import misstatement_counts

    misstatements = misstatement_counts(session=session, as_of=as_of)
    facts: list[AccountFacts] = []
    for row in session.execute(query).all():
        (account_id, org_code, platform, opened, closed, status, channel, expires) = row[:8]
        recorded, aggregated, name, published = row[8], row[9], row[10], row[11]
        aggregated, published = _aware(aggregated), _aware(published)
        candidates = [aggregated, published, recorded if recorded and recorded < cutoff else None]
        last_at = max((c for c in candidates if c is not None), default=None)
        if as_of < today and status is AccountStatus.needs_reauth:
            status = AccountStatus.active
        facts.append(
            AccountFacts(
                id=account_id,
                org_code=org_code,
                platform=str(platform),
                opened_on=opened,
                status=str(status),
                interaction_channel=channel,
                last_activity_at=last_at,
                token_expires_at=expires,
                closed_on=closed,
                unanswered_overdue_cases=overdue_cases.get(account_id, 0),
                name=name,
                serious_misstatements=misstatements.get(account_id, 0),
            )
        )
    return facts


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's datetime: SQLite hands back its text (UTC), PostgreSQL an aware value."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def spokesperson_facts(*, session: Session, as_of: date) -> list[SpokespersonFacts]:
    """Per org: the spokesperson in office at the end of ``as_of`` and the latest change."""
    is_spokesperson = col(Spokesperson.role) == SpokespersonRole.spokesperson
    latest = (
        select(
            col(Spokesperson.org_id).label("org_id"),
            func.max(Spokesperson.appointed_on).label("changed_on"),
        )
        .where(is_spokesperson, col(Spokesperson.appointed_on) <= as_of)
        .group_by(col(Spokesperson.org_id))
        .subquery()
    )
    rows = session.exec(
        select(Spokesperson, Org.code)
        .join(
            latest,
            and_(
                col(Spokesperson.org_id) == latest.c.org_id,
                col(Spokesperson.appointed_on) == latest.c.changed_on,
            ),
        )
        .join(Org, col(Org.id) == col(Spokesperson.org_id))
        .where(is_spokesperson)
        .order_by(col(Spokesperson.id))
    ).all()
    by_org: dict[str, Spokesperson] = {}
    for person, code in rows:
        by_org[code] = person  # the later row of two on the same day wins
    assistants = {
        code
        for code in session.exec(
            select(Org.code)
            .join(Spokesperson, col(Spokesperson.org_id) == col(Org.id))
            .where(
                col(Spokesperson.role) == SpokespersonRole.assistant,
                col(Spokesperson.appointed_on) <= as_of,
                or_(col(Spokesperson.ended_on).is_(None), col(Spokesperson.ended_on) > as_of),
            )
        ).all()
    }
    facts = []
    for code, person in by_org.items():
        in_office = person.ended_on is None or person.ended_on > as_of
        facts.append(
            SpokespersonFacts(
                org_code=code,
                current_name=person.name if in_office else None,
                changed_on=person.appointed_on,
                filed_on=person.filed_on if person.filed_on and person.filed_on <= as_of else None,
                published_on=(
                    person.published_on
                    if person.published_on and person.published_on <= as_of
                    else None
                ),
                has_assistant=code in assistants,
            )
        )
    return facts


# --- Running an audit ------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixAudit:
    """An audit result with the facts people need beside it (names, dates, last activity)."""

    result: AuditResult
    orgs: dict[str, OrgFacts]
    accounts: dict[int, AccountFacts]
    generated_at: datetime
    # Reach (传播数据) beside the verdicts, never in them: what each account's copies gained in
    # ``reach_since``..``as_of`` (hub.reach), under the counts ``reach_fields`` declare.
    reach: dict[int, dict[str, int]] = field(default_factory=dict)
    reach_fields: tuple[MetricField, ...] = ()
    reach_since: date | None = None

    def org_reach(self, account_ids: Iterable[int]) -> dict[str, int]:
        """The reach of an org: its accounts' counts summed."""
        out: dict[str, int] = {}
        for account_id in account_ids:
            for key, value in self.reach.get(account_id, {}).items():
                out[key] = out.get(key, 0) + value
        return out


def run_audit(
    *,
    session: Session,
    policy: Policy,
    as_of: date,
    tz: ZoneInfo,
    now: datetime,
    progress: Progress | None = None,
    reach_days: int = 30,
) -> MatrixAudit:
    """``reach_days``: the reach columns cover this many days up to ``as_of``."""
    step = progress or (lambda _label: None)
    today = now.astimezone(tz).date()
    step("机构")
    orgs = org_facts(session=session)
    step("账号与最近更新")
    accounts = account_facts(
        session=session, as_of=as_of, tz=tz, platforms=policy.audit.platforms, today=today
    )
    step("新闻发言人")
    spokespersons = spokesperson_facts(session=session, as_of=as_of)
    step("评估")
    result = evaluate(policy, orgs, accounts, spokespersons, as_of, tz=tz)
    step("传播数据")
    from hub.reach.service import account_reach, metric_fields

    reach_since = as_of - timedelta(days=max(1, reach_days) - 1)
    reach = account_reach(
        session=session, account_ids=[a.id for a in accounts], since=reach_since, until=as_of
    )
    return MatrixAudit(
        result=result,
        orgs={o.code: o for o in orgs},
        accounts={a.id: a for a in accounts},
        generated_at=now,
        reach=reach,
        reach_fields=tuple(metric_fields(policy.audit.platforms)),
        reach_since=reach_since,
    )


# --- JSON (API, saved runs, CLI) -------------------------------------------------------------


def _finding_dict(finding: Finding, orgs: dict[str, OrgFacts]) -> dict[str, Any]:
    org = orgs.get(finding.org_code)
    return {
        "code": finding.code.value,
        "title_zh": FINDING_ZH[finding.code],
        "org_code": finding.org_code,
        "org_name": org.name if org else "",
        "platform": finding.platform,
        "account_id": finding.account_id,
        "text_zh": finding.text_zh,
        "text_en": finding.text_en,
        "veto": finding.veto,
        "deduction": finding.deduction,
    }


def _rollup_dict(rollup: Rollup) -> dict[str, Any]:
    return {
        "code": rollup.code,
        "name": rollup.name,
        "orgs_audited": rollup.orgs_audited,
        "orgs_passed": rollup.orgs_passed,
        "accounts": rollup.accounts,
        "accounts_passed": rollup.accounts_passed,
        "required": rollup.required,
        "covered": rollup.covered,
        "coverage_pct": rollup.coverage_pct,
        "org_pass_pct": rollup.org_pass_pct,
        "account_pass_pct": rollup.account_pass_pct,
    }


def verdict_word(verdict: OrgVerdict | AccountVerdict) -> str:
    if isinstance(verdict, OrgVerdict) and not verdict.audited:
        return "not_audited"
    return "pass" if verdict.passed else "fail"


def summary_of(result: AuditResult) -> dict[str, Any]:
    counts = Counter(f.code.value for f in result.findings)
    return {
        "as_of": result.as_of.isoformat(),
        "policy": result.policy_name,
        "province": _rollup_dict(result.province),
        "findings": len(result.findings),
        "finding_counts": {code.value: counts.get(code.value, 0) for code in FindingCode},
    }


def audit_to_dict(audit: MatrixAudit) -> dict[str, Any]:
    """The audit as the JSON API, saved runs and ``govhub audit --format json`` give it."""
    result, orgs, accounts = audit.result, audit.orgs, audit.accounts
    return {
        "as_of": result.as_of.isoformat(),
        "policy": result.policy_name,
        "generated_at": audit.generated_at.isoformat(),
        "summary": summary_of(result),
        "province": _rollup_dict(result.province),
        "prefectures": [_rollup_dict(r) for r in result.prefectures],
        "orgs": [
            {
                "code": v.code,
                "name": v.name,
                "level": v.level,
                "group_code": v.group_code,
                "audited": v.audited,
                "verdict": verdict_word(v),
                "score": v.score,
                "passed": v.passed,
                "account_ids": list(v.account_ids),
                "requirements": [
                    {
                        "platforms": list(r.platforms),
                        "match": r.match,
                        "deadline": r.deadline.isoformat() if r.deadline else None,
                        "rules": list(r.rules),
                        "account_ids": list(r.account_ids),
                        "covered": r.covered,
                    }
                    for r in v.requirements
                ],
                "findings": [_finding_dict(f, orgs) for f in v.findings],
            }
            for v in result.orgs
        ],
        "accounts": [
            {
                "id": v.account_id,
                "org_code": v.org_code,
                "platform": v.platform,
                "name": accounts[v.account_id].name if v.account_id in accounts else "",
                "opened_on": _iso(accounts[v.account_id].opened_on)
                if v.account_id in accounts
                else None,
                "last_activity_at": _iso(accounts[v.account_id].last_activity_at)
                if v.account_id in accounts
                else None,
                "verdict": verdict_word(v),
                "score": v.score,
                "passed": v.passed,
                "findings": [_finding_dict(f, orgs) for f in v.findings],
            }
            for v in result.accounts
        ],
        "findings": [_finding_dict(f, orgs) for f in result.findings],
        "reach": {
            "since": _iso(audit.reach_since),
            "until": result.as_of.isoformat(),
            "fields": [{"key": f.key, "label": f.label_zh} for f in audit.reach_fields],
            "note": "reach is reported beside the verdicts and never changes them",
            "accounts": {
                str(v.account_id): audit.reach.get(v.account_id, {}) for v in result.accounts
            },
            "orgs": {v.code: audit.org_reach(v.account_ids) for v in result.orgs},
        },
    }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _finding_from(data: dict[str, Any]) -> Finding:
    return Finding(
        code=FindingCode(data["code"]),
        org_code=data["org_code"],
        text_zh=data["text_zh"],
        text_en=data["text_en"],
        veto=bool(data["veto"]),
        deduction=int(data["deduction"]),
        platform=data.get("platform"),
        account_id=data.get("account_id"),
    )


def _rollup_from(data: dict[str, Any]) -> Rollup:
    return Rollup(
        code=data["code"],
        name=data["name"],
        orgs_audited=data["orgs_audited"],
        orgs_passed=data["orgs_passed"],
        accounts=data["accounts"],
        accounts_passed=data["accounts_passed"],
        required=data["required"],
        covered=data["covered"],
    )


def result_from_dict(data: dict[str, Any]) -> AuditResult:
    """Rebuild the engine's result from :func:`audit_to_dict` output (saved runs)."""
    orgs = tuple(
        OrgVerdict(
            code=o["code"],
            name=o["name"],
            level=o["level"],
            group_code=o["group_code"],
            audited=o["audited"],
            score=o["score"],
            passed=o["passed"],
            findings=tuple(_finding_from(f) for f in o["findings"]),
            requirements=tuple(
                Requirement(
                    org_code=o["code"],
                    platforms=tuple(r["platforms"]),
                    match=r["match"],
                    deadline=date.fromisoformat(r["deadline"]) if r["deadline"] else None,
                    rules=tuple(r["rules"]),
                    account_ids=tuple(r["account_ids"]),
                )
                for r in o["requirements"]
            ),
            account_ids=tuple(o["account_ids"]),
        )
        for o in data["orgs"]
    )
    accounts = tuple(
        AccountVerdict(
            account_id=a["id"],
            org_code=a["org_code"],
            platform=a["platform"],
            score=a["score"],
            passed=a["passed"],
            findings=tuple(_finding_from(f) for f in a["findings"]),
        )
        for a in data["accounts"]
    )
    return AuditResult(
        as_of=date.fromisoformat(data["as_of"]),
        policy_name=data["policy"],
        orgs=orgs,
        accounts=accounts,
        prefectures=tuple(_rollup_from(r) for r in data["prefectures"]),
        province=_rollup_from(data["province"]),
        findings=tuple(_finding_from(f) for f in data["findings"]),
    )


# --- Saved runs and comparisons --------------------------------------------------------------


def save_run(*, session: Session, audit: MatrixAudit, created_by: str, note: str = "") -> AuditRun:
    data = audit_to_dict(audit)
    run = AuditRun(
        as_of=audit.result.as_of,
        policy=audit.result.policy_name,
        created_at=audit.generated_at,
        created_by=created_by,
        note=note,
        summary=data["summary"],
        result=data,
    )
    session.add(run)
    session.flush()
    return run


def list_runs(*, session: Session, limit: int = 100) -> list[AuditRun]:
    query = select(AuditRun).order_by(col(AuditRun.created_at).desc(), col(AuditRun.id).desc())
    return list(session.exec(query.limit(limit)).all())


def get_run(*, session: Session, run_id: int) -> AuditRun:
    run = session.get(AuditRun, run_id)
    if run is None:
        raise NotFound("已保存的检查 %(run_id)s 不存在", run_id=run_id)
    return run


def comparison_to_dict(
    comparison: Comparison, old: AuditRun | None = None, new: AuditRun | None = None
) -> dict[str, Any]:
    orgs = Counter(c.change.value for c in comparison.orgs)
    findings = Counter(c.change.value for c in comparison.findings)
    names = {c.code: c.name for c in comparison.orgs}
    old_province = old.summary.get("province", {}) if old else {}
    new_province = new.summary.get("province", {}) if new else {}
    return {
        "from": {"id": old.id, "as_of": old.as_of.isoformat()} if old else None,
        "to": {"id": new.id, "as_of": new.as_of.isoformat()} if new else None,
        "old_as_of": comparison.old_as_of.isoformat(),
        "new_as_of": comparison.new_as_of.isoformat(),
        "coverage_pct": {
            "from": old_province.get("coverage_pct"),
            "to": new_province.get("coverage_pct"),
        },
        "org_pass_pct": {
            "from": old_province.get("org_pass_pct"),
            "to": new_province.get("org_pass_pct"),
        },
        "orgs_summary": {k: orgs.get(k, 0) for k in ("improved", "regressed", "unchanged")},
        "findings_summary": {k: findings.get(k, 0) for k in ("improved", "regressed", "unchanged")},
        "orgs": [
            {
                "code": c.code,
                "name": c.name,
                "old_score": c.old_score,
                "new_score": c.new_score,
                "old_passed": c.old_passed,
                "new_passed": c.new_passed,
                "change": c.change.value,
            }
            for c in comparison.orgs
        ],
        "findings": [
            {
                "change": c.change.value,
                "code": c.finding.code.value,
                "title_zh": FINDING_ZH[c.finding.code],
                "org_code": c.finding.org_code,
                "org_name": names.get(c.finding.org_code, ""),
                "platform": c.finding.platform,
                "account_id": c.finding.account_id,
                "text_zh": c.finding.text_zh,
                "text_en": c.finding.text_en,
            }
            for c in comparison.findings
        ],
        "orgs_added": list(comparison.orgs_added),
        "orgs_removed": list(comparison.orgs_removed),
    }


def compare_runs(*, session: Session, from_id: int, to_id: int) -> dict[str, Any]:
    old, new = get_run(session=session, run_id=from_id), get_run(session=session, run_id=to_id)
    comparison = compare(result_from_dict(old.result), result_from_dict(new.result))
    return comparison_to_dict(comparison, old, new)


def latest_trend(*, session: Session) -> dict[str, Any] | None:
    """The comparison of the last two saved runs (older -> newer), if there are two."""
    runs = list_runs(session=session, limit=2)
    if len(runs) < 2:
        return None
    new, old = runs
    return compare_runs(session=session, from_id=old.id or 0, to_id=new.id or 0)


def recent_activity(
    *, session: Session, account_ids: list[int], per_account: int = 5
) -> dict[int, list[AccountActivity]]:
    """The latest posts of a few accounts (drill-down)."""
    found: dict[int, list[AccountActivity]] = {}
    for account_id in account_ids:
        rows = session.exec(
            select(AccountActivity)
            .where(AccountActivity.account_id == account_id)
            .order_by(col(AccountActivity.posted_at).desc())
            .limit(per_account)
        ).all()
        found[account_id] = list(rows)
    return found
