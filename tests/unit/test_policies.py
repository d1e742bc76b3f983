"""Policy presets: loading, merging, overrides and error messages (hub.policies)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.policies import PolicyError, available_presets, load_policy, parse_policy


def test_builtin_presets_are_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert {"guizhou-2013", "national-2019"} <= set(available_presets())
    assert load_policy(["guizhou-2013"]).name == "guizhou-2013"


def test_guizhou_2013_contents() -> None:
    policy = load_policy(["guizhou-2013"])
    clocks = {kind: (c.unit, c.amount) for kind, c in policy.clocks.items()}
    assert clocks == {
        "emergency": ("hours", 3),
        "hot_topic": ("same_day", 1),
        "disclosure": ("working_days", 5),
        "interpretation": ("working_days", 10),
        "spokesperson_change": ("months", 1),
        "case_first_response": ("working_days", 1),
        "case_answer": ("working_days", 5),
    }
    assert policy.clocks["disclosure"].kind == "disclosure"
    deadlines = {key: (r.levels, r.deadline) for key, r in policy.coverage.items()}
    assert deadlines == {
        "prefecture-governments": (("prefecture", "new_area"), date(2014, 3, 31)),
        "livelihood-departments": (("department",), date(2014, 3, 31)),
        "county-governments": (("county",), date(2014, 6, 30)),
    }
    assert policy.coverage["livelihood-departments"].livelihood_only
    assert {r.period for r in policy.recurring.values()} == {"month", "quarter", "year"}
    assert policy.recurring["press_conference"].press_office_only
    assert policy.findings.inactive is None  # the 2019 indicators bring that check
    assert policy.presets[0].issued_on == date(2013, 12, 10)


def test_national_2019_contents() -> None:
    policy = load_policy(["national-2019"])
    findings = policy.findings
    assert findings.inactive is not None and findings.inactive.days == 14
    assert findings.inactive.veto and findings.no_interaction and findings.no_interaction.veto
    assert findings.duplicate_account is not None and findings.duplicate_account.deduction > 0
    assert findings.duplicate_account.max_per_platform == 1
    assert (policy.audit.full_marks, policy.audit.pass_mark) == (100, 60)
    [rule] = policy.coverage.values()
    assert set(rule.levels) == {"province", "prefecture", "new_area", "county", "department"}
    assert rule.match == "any"


def test_later_presets_add_rules_and_replace_same_key_rules() -> None:
    local_last = load_policy(["national-2019", "guizhou-2013"])
    assert local_last.name == "national-2019+guizhou-2013"
    assert local_last.clocks["emergency"].amount == 3  # Guizhou's 3 hours win
    assert local_last.clocks["disclosure"].amount == 5
    assert "interpretation" in local_last.clocks  # only Guizhou has it: added
    assert set(local_last.coverage) == {
        "county-and-above",
        "prefecture-governments",
        "livelihood-departments",
        "county-governments",
    }
    assert local_last.findings.inactive is not None  # from national
    assert local_last.findings.spokesperson_missing is not None  # from guizhou

    national_last = load_policy(["guizhou-2013", "national-2019"])
    assert national_last.clocks["emergency"].amount == 5
    assert national_last.clocks["disclosure"].amount == 20


def test_same_key_is_replaced_whole_not_field_by_field() -> None:
    base = {"clocks": {"x": {"unit": "working_days", "amount": 5, "title_en": "X"}}}
    local = {"clocks": {"x": {"unit": "hours", "amount": 2}}}
    policy = parse_policy([("base", base), ("local", local)])
    assert policy.clocks["x"].title_en == ""  # not inherited from base


def test_audit_table_merges_field_by_field() -> None:
    policy = parse_policy(
        [("a", {"audit": {"pass_mark": 70}}), ("b", {"audit": {"full_marks": 90}})]
    )
    assert (policy.audit.pass_mark, policy.audit.full_marks) == (70, 90)


def test_override_inactive_days() -> None:
    policy = load_policy(["national-2019"], {"inactive_days": 10})
    assert policy.findings.inactive is not None
    assert policy.findings.inactive.days == 10
    assert policy.findings.inactive.veto  # the rest of the rule is kept


def test_override_by_dotted_path() -> None:
    policy = load_policy(
        ["national-2019", "guizhou-2013"],
        {"findings.duplicate_account.deduction": 25, "clocks.case_answer.amount": 3},
    )
    assert policy.findings.duplicate_account is not None
    assert policy.findings.duplicate_account.deduction == 25
    assert policy.clocks["case_answer"].amount == 3


def test_override_of_a_check_no_preset_enables_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"findings\.inactive is not defined"):
        load_policy(["guizhou-2013"], {"inactive_days": 10})


def test_override_with_invalid_value_names_the_field() -> None:
    with pytest.raises(PolicyError) as error:
        load_policy(["national-2019"], {"inactive_days": 0})
    assert "overrides" in str(error.value)
    assert "findings.inactive.days" in str(error.value)


def test_unknown_override_name() -> None:
    with pytest.raises(PolicyError, match=r"inactive_dayz.*unknown threshold"):
        load_policy(["national-2019"], {"inactive_dayz": 10})


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(
        PolicyError, match=r"'hunan-2015': unknown preset; available: .*guizhou-2013"
    ):
        load_policy(["hunan-2015"])


def test_preset_names_cannot_escape_the_folder() -> None:
    with pytest.raises(PolicyError, match="invalid name"):
        load_policy(["../config"])


def test_a_single_string_is_refused() -> None:
    with pytest.raises(PolicyError, match="list of preset names"):
        load_policy("guizhou-2013")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[clocks.x]\nunit = "fortnights"\n', "clocks.x.unit"),
        ('[clocks.x]\nunit = "hours"\namount = 0\n', "clocks.x.amount"),
        ("[findings.zombie]\nveto = true\n", "findings.zombie"),
        ("[findings.inactive]\nveto = true\n", "findings.inactive.days"),
        ('[coverage.c]\nlevels = ["city"]\nplatforms = ["weibo"]\n', "coverage.c.levels.0"),
        ('[coverage.c]\nplatforms = ["weibo"]\ndeadline = "end of March"\n', "coverage.c.deadline"),
        ("[preset]\ntitle_zh = 3\n", "preset.title_zh"),
        ("[budget]\nyuan = 3\n", "budget"),
    ],
)
def test_malformed_preset_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    write(tmp_path, "local", text)
    with pytest.raises(PolicyError) as error:
        load_policy(["national-2019", "local"], directories=[tmp_path])
    message = str(error.value)
    assert message.startswith("local.toml: ")
    assert f": {field}: " in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "broken", "[clocks.x\n")
    with pytest.raises(PolicyError, match=r"preset broken \(broken\.toml\): not valid TOML"):
        load_policy(["broken"], directories=[tmp_path])


def test_a_local_directory_can_add_and_replace_presets(tmp_path: Path) -> None:
    write(
        tmp_path,
        "county-10-days",
        '[preset]\ntitle_en = "Update every 10 days"\n[findings.inactive]\nveto = true\ndays = 10\n',
    )
    policy = load_policy(["national-2019", "county-10-days"], directories=[tmp_path])
    assert policy.findings.inactive is not None and policy.findings.inactive.days == 10
    assert "county-10-days" in available_presets([tmp_path])

    write(tmp_path, "national-2019", "[audit]\npass_mark = 80\n")
    assert load_policy(["national-2019"], directories=[tmp_path]).audit.pass_mark == 80


def test_inconsistent_merged_policy_is_refused() -> None:
    coverage_only = {"coverage": {"c": {"platforms": ["weibo"], "levels": ["county"]}}}
    with pytest.raises(PolicyError, match=r"\[findings\.missing\] is not"):
        parse_policy([("partial", coverage_only)])
    not_audited = {
        "coverage": {"c": {"platforms": ["hall"]}},
        "findings": {"missing": {"veto": True}},
    }
    with pytest.raises(PolicyError, match=r"coverage\.c\.platforms: hall not in audit\.platforms"):
        parse_policy([("hall", not_audited)])


def test_missing_clock_is_a_clear_error() -> None:
    with pytest.raises(PolicyError, match="no clock 'interpretation'"):
        load_policy(["national-2019"]).clock("interpretation")
