"""Proofreading rules against the real lexicon entries the presets ship (one test per category,
with their exceptions), the leaders registry and the org table's names."""

from __future__ import annotations

import pytest

from hub.proofread.presets import preset_entries
from hub.proofread.rules import (
    Category,
    Hit,
    Leader,
    LexiconError,
    Severity,
    compile_lexicon,
    make_entry,
    merge_entries,
    missing_acknowledgements,
    parse_csv,
    refusal,
)

ENTRIES = preset_entries(("national-2019", "guizhou-2013"))
LEXICON = compile_lexicon(ENTRIES)


def found(text: str) -> list[tuple[str, str, str]]:
    return [(h.category.value, h.text, h.suggestion) for h in LEXICON.check(text)]


def test_serious_misstatements_block_with_their_correct_form() -> None:
    hits = LEXICON.check("会上，台湾政府代表与北朝鲜官员的说法被驳斥。")
    assert [(h.text, h.suggestion, h.severity) for h in hits] == [
        ("台湾政府", "台湾当局", Severity.block),
        ("北朝鲜", "朝鲜", Severity.block),
    ]
    assert hits[0].start == 3 and hits[0].end == 7  # the span, for the inline mark
    assert found("自治区成立于1958年，即今天的广西壮族自治区。") == []
    assert found("广西自治区") == [("serious", "广西自治区", "广西壮族自治区")]


def test_serious_exceptions_and_context() -> None:
    # 「农业部门」 is a department of agriculture, not the abolished ministry
    assert found("各级农业部门要做好春耕农业部署。") == []
    assert found("农业部发布通知") == [("serious", "农业部", "农业农村部")]
    assert found("原农业部于2018年撤销") == []
    # history before 1949 and the quoted so-called name are allowed
    assert found("中华民国时期的档案") == []
    assert found("所谓“中华民国”的说法") == []
    assert found("中华民国") == [("serious", "中华民国", "台湾当局")]
    assert found("所谓“西藏流亡政府”") == []


def test_provincial_preset_adds_its_own_entries() -> None:
    assert found("黔东南自治州召开会议") == [("serious", "黔东南自治州", "黔东南苗族侗族自治州")]
    assert found("黔东南苗族侗族自治州和黔东南州") == []
    national_only = compile_lexicon(preset_entries(("national-2019",)))
    assert national_only.check("黔东南自治州") == []


def test_sensitive_words_and_their_quoted_form() -> None:
    assert found("为残废人提供服务") == [("sensitive", "残废人", "残疾人")]
    hits = LEXICON.check("坚决反对“台独”分裂活动，台独势力")
    assert [(h.text, h.start) for h in hits] == [("台独", 13)]  # the quoted one is not a hit
    assert hits[0].severity is Severity.warn


def test_typos_with_the_right_form_and_exceptions() -> None:
    assert found("按装空调，既使下雨也要针贬时弊") == [
        ("typo", "按装", "安装"),
        ("typo", "既使", "即使"),
        ("typo", "针贬", "针砭"),
    ]
    assert found("按装修标准验收，既使用了新技术又节约了成本") == []
    assert found("截止目前，再接再励") == [
        ("typo", "截止目前", "截至目前"),
        ("typo", "再接再励", "再接再厉"),
    ]


def test_absolute_terms_warn_except_in_fixed_phrases() -> None:
    hits = LEXICON.check("全省第一，打造最佳营商环境")
    assert [(h.text, h.severity) for h in hits] == [
        ("全省第一", Severity.warn),
        ("最佳", Severity.warn),
    ]
    assert found("第一时间赶到现场，驻村第一书记，第一季度") == []
    assert found("贵安新区是国家级新区") == []
    assert found("国家级示范") == [("wording", "国家级", "")]
    assert found("乡村长效机制") == []
    assert found("村长表示") == [("wording", "村长", "村委会主任")]


LEADERS = [  # 演示数据: fictitious names
    Leader("甄立新", "省委书记", 1, "贵州省"),
    Leader("贾明远", "省长", 2, "贵州省"),
    Leader("汪示范", "副省长", 5, "贵州省"),
    Leader("王强", "秘书长", 9, "贵州省"),
]
LEADER_LEXICON = compile_lexicon(ENTRIES, LEADERS)


def leader_hits(text: str) -> list[tuple[str, str, Severity]]:
    return [
        (h.text, h.suggestion, h.severity)
        for h in LEADER_LEXICON.check(text)
        if h.category is Category.leader
    ]


def test_leader_named_with_a_wrong_title() -> None:
    assert leader_hits("省委书记甄立新、省长贾明远出席会议，副省长汪示范主持。") == []
    assert leader_hits("书记甄立新讲话") == []
    assert leader_hits("副省长贾明远出席") == [("贾明远", "省长", Severity.block)]
    assert leader_hits("省长汪示范主持") == [("汪示范", "副省长", Severity.block)]
    assert leader_hits("贾明远副省长出席") == [("贾明远", "省长", Severity.block)]


def test_leader_name_one_character_off() -> None:
    assert leader_hits("省长贾明元出席会议") == [("贾明元", "贾明远", Severity.block)]
    assert leader_hits("副省长汪示范出席") == []
    # no title next to it: an ordinary word, not a leader
    assert leader_hits("贾明元出席会议") == []
    # two-character names are too short to judge: 王刚 is another person
    assert leader_hits("秘书长王刚出席") == []


def test_leaders_out_of_protocol_order_in_one_sentence() -> None:
    hits = leader_hits("贾明远、甄立新、汪示范出席。")
    assert hits == [("贾明远、甄立新、汪示范", "甄立新、贾明远、汪示范", Severity.warn)]
    assert leader_hits("甄立新、贾明远、汪示范出席。") == []
    assert leader_hits("汪示范到会。甄立新讲话。") == []  # separate sentences


ORGS = ["贵州省人民政府新闻办公室", "贵州省发展和改革委员会", "贵州省财政厅", "贵州省教育厅"]
ORG_LEXICON = compile_lexicon([], [], ORGS)


def org_hits(text: str) -> list[tuple[str, str]]:
    return [(h.text, h.suggestion) for h in ORG_LEXICON.check(text)]


def test_org_names_near_misses() -> None:
    assert org_hits("贵州省人民政府新闻办公室发布") == []
    assert org_hits("贵州省政府新闻办发布") == []  # the regular short form
    assert org_hits("贵州省人民政府新闻办发布") == [
        ("贵州省人民政府新闻办", "贵州省人民政府新闻办公室")
    ]
    assert org_hits("贵州省政府新闻办公室发布") == [
        ("贵州省政府新闻办公室", "贵州省人民政府新闻办公室")
    ]
    assert org_hits("贵州省发展与改革委员会") == [
        ("贵州省发展与改革委员会", "贵州省发展和改革委员会")
    ]
    # short names differ by one character from each other: never judged
    assert org_hits("贵州省财政厅和贵州省教育厅、贵州省卫生厅") == []
    assert org_hits("贵州省人民政府办公会议") == []


def test_overlapping_hits_keep_the_longest_and_a_lexicon_merges_scopes() -> None:
    entries = merge_entries(
        ENTRIES,
        [
            [(make_entry(category="wording", term="最佳", severity="warn"), False)],
            [(make_entry(category="typo", term="帐户", correct="账户", severity="block"), True)],
        ],
    )
    lexicon = compile_lexicon(entries)
    assert [(h.text, h.suggestion) for h in lexicon.check("最佳帐户")] == [("帐户", "账户")]
    assert [h.text for h in LEXICON.check("台湾立法院")] == ["台湾立法院"]


def test_refusal_and_acknowledgements_name_each_hit() -> None:
    hits = LEXICON.check("农业部称全省第一")
    message = refusal(hits)
    assert "「农业部」" in message and "农业农村部" in message and "全省第一" not in message
    assert [h.text for h in missing_acknowledgements(hits, [])] == ["全省第一"]
    assert missing_acknowledgements(hits, ["全省第一"]) == []
    assert refusal([h for h in hits if h.severity is Severity.warn]) == ""
    assert isinstance(hits[0], Hit)


def test_bad_lexicon_rows_are_refused_in_chinese() -> None:
    with pytest.raises(LexiconError, match="例外「农业」应包含词条「农业部」"):
        make_entry(category="serious", term="农业部", exceptions=["农业"])
    with pytest.raises(LexiconError, match="级别应为 block 或 warn"):
        make_entry(category="typo", term="按装", severity="error")
    with pytest.raises(LexiconError, match=r"x\.csv: 表头应为"):
        parse_csv("x.csv", "词,改\n按装,安装\n", Category.typo)
    with pytest.raises(LexiconError, match="领导人名录"):
        make_entry(category="leader", term="某某")


def test_every_preset_file_parses_and_every_category_has_entries() -> None:
    categories = {e.category for e in ENTRIES}
    assert categories == {Category.serious, Category.sensitive, Category.typo, Category.wording}
    assert len(ENTRIES) > 80


def test_a_serious_misstatement_finding_is_a_veto_under_national_2019_only() -> None:
    from datetime import date

    from hub.audit.rules import AccountFacts, OrgFacts, evaluate
    from hub.policies import load_policy

    as_of = date(2026, 11, 20)
    county = [OrgFacts("522601", "凯里市", "county")]
    facts = AccountFacts(1, "522601", "weibo", date(2020, 1, 1), serious_misstatements=1)
    national = evaluate(load_policy(["national-2019"]), county, [facts], [], as_of)
    found = [
        (f.code, f.text_zh, f.veto) for f in national.findings if f.code == "serious_misstatement"
    ]
    assert found == [("serious_misstatement", "检查发现1处严重表述错误", True)]
    assert national.account(1).passed is False
    guizhou = evaluate(load_policy(["guizhou-2013"]), county, [facts], [], as_of)
    assert all(f.code != "serious_misstatement" for f in guizhou.findings)
