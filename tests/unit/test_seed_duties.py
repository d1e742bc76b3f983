"""The seed's remaining duties as rows of guizhou-2013: online interviews (§6), the annual
spokesperson evaluation (§4), annual training (§20) and each spokesperson's assistant (§1)."""

from __future__ import annotations

from datetime import date

import pytest

from hub.audit.rules import OrgFacts, SpokespersonFacts, evaluate
from hub.policies import FindingCode, PolicyError, load_policy, parse_policy

POLICY = load_policy(["guizhou-2013"])
PROVINCE = OrgFacts("520000", "贵州省", "province")
EDU = OrgFacts("GZ-EDU", "省教育厅", "department", "520000", livelihood=True)
FIN = OrgFacts("GZ-FIN", "省财政厅", "department", "520000")
PRESS = OrgFacts("GZ-PRESS", "省政府新闻办公室", "department", "520000", press_office=True)
CITY_DEPT = OrgFacts("520100-edu", "贵阳市教育局", "department", "520100", livelihood=True)
CITY = OrgFacts("520100", "贵阳市", "prefecture", "520000")
COUNTY = OrgFacts("522601", "凯里市", "county", "520100")


def binds(key: str, org: OrgFacts, parent: OrgFacts | None) -> bool:
    rule = POLICY.recurring[key]
    return rule.applies_to(
        org.level,
        parent_level=parent.level if parent else None,
        livelihood=org.livelihood,
        press_office=org.press_office,
    )


def test_livelihood_provincial_departments_hold_an_online_interview_every_year() -> None:
    rule = POLICY.recurring["online_interview"]
    assert (rule.section, rule.period, rule.min_count, rule.subject) == ("§6", "year", 1, "org")
    assert binds("online_interview", EDU, PROVINCE)
    assert not binds("online_interview", FIN, PROVINCE)  # not livelihood-related
    assert not binds("online_interview", CITY_DEPT, CITY)  # a city's department
    assert not binds("online_interview", CITY, PROVINCE)


def test_the_press_office_evaluates_the_spokespersons_every_year() -> None:
    rule = POLICY.recurring["spokesperson_evaluation"]
    assert (rule.section, rule.period, rule.subject) == ("§4", "year", "press_office")
    assert binds("spokesperson_evaluation", PRESS, PROVINCE)
    assert not binds("spokesperson_evaluation", EDU, PROVINCE)


def test_every_government_and_department_trains_every_year() -> None:
    rule = POLICY.recurring["training"]
    assert (rule.section, rule.period, rule.min_count) == ("§20", "year", 1)
    for org, parent in ((PROVINCE, None), (CITY, PROVINCE), (COUNTY, CITY), (FIN, PROVINCE)):
        assert binds("training", org, parent)


def audit(*spokes: SpokespersonFacts) -> dict[str, list[str]]:
    result = evaluate(POLICY, [PROVINCE, CITY, COUNTY, EDU], [], list(spokes), date(2014, 6, 30))
    found: dict[str, list[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.org_code, []).append(finding.code.value)
    return found


def test_an_org_that_must_have_a_spokesperson_needs_an_assistant_too() -> None:
    found = audit(
        SpokespersonFacts("520100", "张三", has_assistant=False),
        SpokespersonFacts("GZ-EDU", "李四", has_assistant=True),
    )
    assert "assistant_missing" in found["520100"]
    assert "assistant_missing" not in found.get("GZ-EDU", [])
    result = evaluate(
        POLICY,
        [PROVINCE, CITY],
        [],
        [SpokespersonFacts("520100", "张三", has_assistant=False)],
        date(2014, 6, 30),
    )
    [finding] = [f for f in result.findings if f.code is FindingCode.assistant_missing]
    assert (finding.text_zh, finding.deduction, finding.veto) == ("未配备新闻发言人助理", 5, False)
    county = audit(SpokespersonFacts("522601", "王五", has_assistant=False))
    assert "assistant_missing" not in county.get("522601", [])  # no spokesperson rule for counties
    before = evaluate(
        POLICY,
        [PROVINCE, CITY],
        [],
        [SpokespersonFacts("520100", "张三", has_assistant=False)],
        date(2013, 12, 1),
    )
    assert before.findings == ()  # §1's deadline is the end of 2013


def test_the_assistant_finding_needs_a_spokesperson_rule() -> None:
    with pytest.raises(PolicyError, match="assistant_missing"):
        parse_policy([("local", {"findings": {"assistant_missing": {"deduction": 5}}})])
