"""Matrix coverage audit (hub.audit.rules) on a small Guizhou scenario."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.audit.rules import (
    AccountFacts,
    AuditResult,
    Change,
    OrgFacts,
    SpokespersonFacts,
    compare,
    evaluate,
)
from hub.policies import Policy, load_policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
JUNE_30 = date(2014, 6, 30)
SEPT_30 = date(2014, 9, 30)

ORGS = [
    OrgFacts("520000", "贵州省", "province"),
    OrgFacts("520100", "贵阳市", "prefecture", "520000"),
    OrgFacts("520102", "南明区", "county", "520100"),
    OrgFacts("520103", "云岩区", "county", "520100"),
    OrgFacts("520900", "贵安新区", "new_area", "520000"),
    OrgFacts("522600", "黔东南苗族侗族自治州", "prefecture", "520000"),
    OrgFacts("522601", "凯里市", "county", "522600"),
    OrgFacts("GZ-EDU", "省教育厅", "department", "520000", livelihood=True),
    OrgFacts("GZ-FIN", "省财政厅", "department", "520000"),
    OrgFacts("GZ-PRESS", "省政府新闻办公室", "department", "520000", press_office=True),
]


def account(id: int, org: str, platform: str, opened: date, **facts: object) -> AccountFacts:
    return AccountFacts(id=id, org_code=org, platform=platform, opened_on=opened, **facts)  # type: ignore[arg-type]


ACCOUNTS = [
    account(1, "520100", "weibo", date(2013, 11, 1)),
    account(2, "520100", "wechat", date(2014, 3, 1)),
    account(3, "520102", "weibo", date(2014, 5, 1)),
    account(4, "520102", "wechat", date(2014, 8, 1)),  # after the county deadline (06-30)
    account(5, "520103", "weibo", date(2014, 6, 1)),
    account(6, "522600", "weibo", date(2013, 12, 1)),
    account(7, "522600", "weibo", date(2014, 1, 10)),  # a second Weibo account
    account(8, "522600", "wechat", date(2014, 2, 1), status="needs_reauth"),
    account(9, "522601", "weibo", date(2014, 4, 1)),
    account(10, "522601", "wechat", date(2014, 4, 1), interaction_channel=False),
    account(11, "520900", "weibo", date(2014, 4, 15)),  # after the new area's deadline (03-31)
    account(12, "520900", "wechat", date(2014, 2, 1)),
    account(13, "GZ-EDU", "weibo", date(2013, 10, 1)),
    account(14, "GZ-EDU", "wechat", date(2013, 10, 1)),
    account(15, "GZ-FIN", "weibo", date(2013, 10, 1)),
    account(16, "520000", "weibo", date(2012, 5, 1)),
    account(17, "GZ-PRESS", "weibo", date(2012, 5, 1)),
    account(18, "GZ-PRESS", "wechat", date(2013, 5, 1)),
    account(19, "520103", "wechat", date(2014, 1, 1), status="closed", closed_on=date(2014, 5, 1)),
    account(20, "520102", "hall", date(2014, 1, 1)),  # not a platform the audit looks at
]

SPOKESPERSONS = [
    SpokespersonFacts("520100", "张三"),
    SpokespersonFacts("522600", "李四"),
    SpokespersonFacts("GZ-PRESS", "王五"),
    # changed 10 April: due 10 May; published in time, filed 20 May (late)
    SpokespersonFacts(
        "GZ-FIN",
        "赵六",
        changed_on=date(2014, 4, 10),
        filed_on=date(2014, 5, 20),
        published_on=date(2014, 4, 20),
    ),
    SpokespersonFacts("GZ-EDU", None),
]


def facts_as_of(day: date, silent: dict[int, int]) -> list[AccountFacts]:
    """Accounts as the SQL layer would pass them: last activity up to ``day``; every account
    posted the day before except those in ``silent`` (id -> days since the last post)."""
    result = []
    for facts in ACCOUNTS:
        idle = silent.get(facts.id, 1)
        last = datetime.combine(day - timedelta(days=idle), time(10, 0), tzinfo=SHANGHAI)
        result.append(replace(facts, last_activity_at=last))
    return result


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(["national-2019", "guizhou-2013"])


@pytest.fixture(scope="module")
def june(policy: Policy) -> AuditResult:
    return evaluate(policy, ORGS, facts_as_of(JUNE_30, {5: 20}), SPOKESPERSONS, JUNE_30)


@pytest.fixture(scope="module")
def september(policy: Policy) -> AuditResult:
    accounts = facts_as_of(SEPT_30, {2: 20})  # Guiyang's WeChat went quiet; Yunyan's resumed
    accounts = [replace(a, interaction_channel=True) if a.id == 10 else a for a in accounts]
    return evaluate(policy, ORGS, accounts, SPOKESPERSONS, SEPT_30)


def summary(result: AuditResult) -> set[tuple[str, str, str | None, int | None, str]]:
    return {(f.code, f.org_code, f.platform, f.account_id, f.text_zh) for f in result.findings}


def test_findings_as_of_the_county_deadline(june: AuditResult) -> None:
    assert summary(june) == {
        ("missing", "520102", "wechat", None, "未开通微信公众号"),
        ("missing", "520103", "wechat", None, "未开通微信公众号"),
        ("inactive", "520103", "weibo", 5, "已20天未更新"),
        ("opened_late", "520900", "weibo", 11, "开通晚于规定期限（2014-03-31），实际2014-04-15"),
        ("duplicate_account", "522600", "weibo", None, "同一平台有2个账号（政务微博）"),
        ("credentials_expired", "522600", "wechat", 8, "授权已过期"),
        ("no_interaction", "522601", "wechat", 10, "无有效互动渠道"),
        ("spokesperson_missing", "GZ-EDU", None, None, "未配备新闻发言人"),
        ("spokesperson_not_filed", "GZ-FIN", None, None, "新闻发言人变更未在1个月内公开并备案"),
    }
    english = {f.code.value: f.text_en for f in june.findings}
    assert english["missing"] == "No WeChat official account"
    assert english["inactive"] == "No update for 20 days"


def test_findings_later(september: AuditResult) -> None:
    assert summary(september) == {
        ("inactive", "520100", "wechat", 2, "已20天未更新"),
        ("opened_late", "520102", "wechat", 4, "开通晚于规定期限（2014-06-30），实际2014-08-01"),
        ("missing", "520103", "wechat", None, "未开通微信公众号"),
        ("opened_late", "520900", "weibo", 11, "开通晚于规定期限（2014-03-31），实际2014-04-15"),
        ("duplicate_account", "522600", "weibo", None, "同一平台有2个账号（政务微博）"),
        ("credentials_expired", "522600", "wechat", 8, "授权已过期"),
        ("spokesperson_missing", "GZ-EDU", None, None, "未配备新闻发言人"),
        ("spokesperson_not_filed", "GZ-FIN", None, None, "新闻发言人变更未在1个月内公开并备案"),
    }


def test_before_the_county_deadline_counties_are_not_yet_required(policy: Policy) -> None:
    result = evaluate(
        policy, ORGS, facts_as_of(date(2014, 6, 29), {}), SPOKESPERSONS, date(2014, 6, 29)
    )
    nanming = result.org("520102")
    assert [(r.platforms, r.match) for r in nanming.requirements] == [(("weibo", "wechat"), "any")]
    assert nanming.passed


def test_verdicts_and_scores(june: AuditResult) -> None:
    verdicts = {o.code: (o.passed, o.score) for o in june.orgs}
    assert verdicts == {
        "520000": (True, 100),
        "520100": (True, 100),
        "520102": (False, 100),  # single veto: missing WeChat
        "520103": (False, 100),
        "520900": (True, 90),  # opened late: -10
        "522600": (True, 85),  # duplicate -10, credentials -5
        "522601": (False, 100),  # no interaction channel: single veto
        "GZ-EDU": (False, 100),
        "GZ-FIN": (True, 90),
        "GZ-PRESS": (True, 100),
    }
    accounts = {a.account_id: (a.passed, a.score) for a in june.accounts}
    assert set(accounts) == set(range(1, 19)) - {4}  # 4 opened later, 19 closed, 20 a hall page
    assert accounts[5] == (False, 100)
    assert accounts[10] == (False, 100)
    assert accounts[8] == (True, 95)
    assert accounts[11] == (True, 90)
    assert sum(passed for passed, _ in accounts.values()) == 15


def test_roll_ups(june: AuditResult) -> None:
    by_code = {r.code: r for r in june.prefectures}
    assert list(by_code) == ["520100", "520900", "522600"]
    guiyang = by_code["520100"]
    assert (guiyang.required, guiyang.covered, guiyang.coverage_pct) == (6, 4, 66.7)
    assert (guiyang.orgs_audited, guiyang.orgs_passed, guiyang.org_pass_pct) == (3, 1, 33.3)
    qiandongnan = by_code["522600"]
    assert (qiandongnan.coverage_pct, qiandongnan.org_pass_pct) == (100.0, 50.0)
    assert (qiandongnan.accounts, qiandongnan.accounts_passed) == (5, 4)

    province = june.province
    assert province.code == "520000"
    # required pairs: province 1 (any), 3 prefecture-level x 2, 3 counties x 2, GZ-EDU 2,
    # GZ-FIN 1 (any), GZ-PRESS 1 (any) = 17; uncovered: Nanming and Yunyan WeChat
    assert (province.required, province.covered, province.coverage_pct) == (17, 15, 88.2)
    assert (province.orgs_audited, province.orgs_passed, province.org_pass_pct) == (10, 6, 60.0)
    assert (province.accounts, province.accounts_passed, province.account_pass_pct) == (
        17,
        15,
        88.2,
    )
    assert june.org("GZ-EDU").group_code == "520000"
    assert june.org("520102").group_code == "520100"


def test_compare(june: AuditResult, september: AuditResult) -> None:
    comparison = compare(june, september)
    changes = {c.code: c.change for c in comparison.orgs}
    assert changes == {
        "520000": Change.unchanged,
        "520100": Change.regressed,  # its WeChat went quiet
        "520102": Change.improved,  # opened WeChat (late): passes with 90
        "520103": Change.improved,  # still fails, one finding fewer
        "520900": Change.unchanged,
        "522600": Change.unchanged,
        "522601": Change.improved,
        "GZ-EDU": Change.unchanged,
        "GZ-FIN": Change.unchanged,
        "GZ-PRESS": Change.unchanged,
    }
    findings = {(c.finding.code, c.finding.org_code, c.change) for c in comparison.findings}
    assert ("missing", "520102", Change.improved) in findings
    assert ("opened_late", "520102", Change.regressed) in findings
    assert ("inactive", "520103", Change.improved) in findings
    assert ("inactive", "520100", Change.regressed) in findings
    assert ("duplicate_account", "522600", Change.unchanged) in findings
    assert len(comparison.findings) == 11
    assert comparison.orgs_added == comparison.orgs_removed == ()


# --- Single rules -----------------------------------------------------------------------------

COUNTY = [OrgFacts("520102", "南明区", "county")]


def county_audit(
    policy: Policy, accounts: list[AccountFacts], as_of: date = JUNE_30
) -> AuditResult:
    return evaluate(policy, COUNTY, accounts, [], as_of)


def active(id: int, platform: str, idle_days: int = 1, **facts: object) -> AccountFacts:
    last = datetime.combine(JUNE_30 - timedelta(days=idle_days), time(9), tzinfo=SHANGHAI)
    return AccountFacts(id, "520102", platform, date(2013, 1, 1), last_activity_at=last, **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(("idle", "flagged"), [(13, False), (14, True)])
def test_no_update_for_14_days_fails_outright(idle: int, flagged: bool) -> None:
    result = county_audit(load_policy(["national-2019"]), [active(1, "weibo", idle)])
    assert [f.code for f in result.findings] == (["inactive"] if flagged else [])
    assert result.account(1).passed is not flagged


def test_override_update_every_10_days() -> None:
    accounts = [active(1, "weibo", 12)]
    assert county_audit(load_policy(["national-2019"]), accounts).findings == ()
    strict = county_audit(load_policy(["national-2019"], {"inactive_days": 10}), accounts)
    assert [(f.code, f.text_zh, f.veto) for f in strict.findings] == [
        ("inactive", "已12天未更新", True)
    ]


def test_never_updated_counts_from_opening() -> None:
    policy = load_policy(["national-2019"])
    fresh = AccountFacts(1, "520102", "weibo", JUNE_30 - timedelta(days=5))
    assert county_audit(policy, [fresh]).findings == ()
    old = AccountFacts(1, "520102", "weibo", JUNE_30 - timedelta(days=30))
    assert [f.text_zh for f in county_audit(policy, [old]).findings] == ["开通30天未更新"]


def test_as_of_ignores_later_accounts_and_later_activity() -> None:
    policy = load_policy(["national-2019"])
    later = AccountFacts(
        1,
        "520102",
        "weibo",
        date(2014, 7, 1),
        last_activity_at=datetime(2014, 7, 2, 9, tzinfo=SHANGHAI),
    )
    result = county_audit(policy, [later])
    assert [f.code for f in result.findings] == ["missing"]
    assert result.accounts == ()
    posted_later = AccountFacts(
        1,
        "520102",
        "weibo",
        date(2014, 5, 1),
        last_activity_at=datetime(2014, 7, 2, 9, tzinfo=SHANGHAI),
    )
    assert [f.text_zh for f in county_audit(policy, [posted_later]).findings] == ["开通60天未更新"]


def test_deductions_below_pass_mark_fail_without_a_veto() -> None:
    policy = load_policy(["national-2019"], {"findings.duplicate_account.deduction": 25})
    accounts = [active(1, "weibo"), active(2, "weibo"), active(3, "wechat"), active(4, "wechat")]
    county = county_audit(policy, accounts).org("520102")
    assert [f.code for f in county.findings] == ["duplicate_account", "duplicate_account"]
    assert not any(f.veto for f in county.findings)
    assert (county.score, county.passed) == (50, False)
    two = county_audit(policy, accounts[:3]).org("520102")
    assert (two.score, two.passed) == (75, True)


def test_score_never_goes_below_zero() -> None:
    policy = load_policy(["national-2019"], {"findings.credentials_expired.deduction": 70})
    accounts = [
        active(1, "weibo", status="needs_reauth"),
        active(2, "wechat", token_expires_at=datetime(2014, 6, 30, 8, tzinfo=SHANGHAI)),
    ]
    county = county_audit(policy, accounts).org("520102")
    assert (county.score, county.passed) == (0, False)


def test_unanswered_overdue_cases_deduct() -> None:
    result = county_audit(
        load_policy(["national-2019"]), [active(1, "weibo", unanswered_overdue_cases=3)]
    )
    [finding] = result.findings
    assert (finding.code, finding.text_zh, finding.deduction) == (
        "cases_overdue",
        "有3条群众留言逾期未回复",
        5,
    )


def test_guizhou_alone_checks_coverage_and_spokespersons_only() -> None:
    result = county_audit(load_policy(["guizhou-2013"]), [active(1, "weibo", 40, status="x")])
    assert [(f.code, f.platform) for f in result.findings] == [("missing", "wechat")]


def test_national_alone_accepts_either_platform() -> None:
    policy = load_policy(["national-2019"])
    assert county_audit(policy, [active(1, "wechat")]).org("520102").passed
    [missing] = county_audit(policy, []).org("520102").findings
    assert missing.text_zh == "未开通政务新媒体账号（政务微博或微信公众号）"


def test_spokesperson_change_within_a_month_is_not_yet_a_finding() -> None:
    policy = load_policy(["guizhou-2013"])
    orgs = [
        OrgFacts("520000", "贵州省", "province"),
        OrgFacts("GZ-FIN", "省财政厅", "department", "520000"),
    ]
    change = SpokespersonFacts("GZ-FIN", "赵六", changed_on=date(2014, 6, 1))
    assert evaluate(policy, orgs, [], [change], date(2014, 7, 1)).findings == ()
    late = evaluate(policy, orgs, [], [change], date(2014, 7, 2))
    assert [f.code for f in late.findings] == ["spokesperson_not_filed"]
    done = replace(change, filed_on=date(2014, 6, 20), published_on=date(2014, 7, 1))
    assert evaluate(policy, orgs, [], [done], date(2014, 9, 1)).findings == ()


def test_spokesperson_rule_starts_at_its_deadline() -> None:
    policy = load_policy(["guizhou-2013"])
    orgs = [
        OrgFacts("520000", "贵州省", "province"),
        OrgFacts("GZ-FIN", "省财政厅", "department", "520000"),
    ]
    assert evaluate(policy, orgs, [], [], date(2013, 12, 30)).findings == ()
    [finding] = evaluate(policy, orgs, [], [], date(2013, 12, 31)).findings
    assert finding.code == "spokesperson_missing"


def test_inconsistent_facts_are_refused() -> None:
    policy = load_policy(["national-2019"])
    with pytest.raises(ValueError, match="unknown org"):
        evaluate(policy, COUNTY, [AccountFacts(1, "999999", "weibo")], [], JUNE_30)
    with pytest.raises(ValueError, match="duplicate org code"):
        evaluate(policy, COUNTY + COUNTY[:1], [], [], JUNE_30)
