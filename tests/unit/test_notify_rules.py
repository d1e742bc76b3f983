"""The notification rules: who reviews what (reach, four eyes, a chain's level), who keeps an
account, the Chinese texts, the two robot formats and 钉钉's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from hub.notify import rules
from hub.posts.levels import Level
from hub.users.models import Role
from hub.users.rules import Actor

KAILI = "/520000/522600/522601/"


def person(user_id: int, role: Role, path: str, reach: str = "") -> rules.Person:
    return rules.Person(Actor(user_id=user_id, role=role, org_path=path, reach=reach))


PEOPLE = [
    person(1, Role.editor, KAILI),  # the author
    person(2, Role.reviewer, KAILI),
    person(3, Role.reviewer, "/520000/522600/522622/"),  # another county
    person(4, Role.admin, "/520000/"),  # the province's admin reaches down
    person(5, Role.supervisor, "/520000/520000-bgt/", reach="/520000/"),  # reads only
    person(6, Role.reviewer, "/520000/522600/"),  # the prefecture's reviewer
    person(7, Role.editor, KAILI),
]


def test_reviewers_are_those_whose_right_reaches_the_org_but_not_the_author() -> None:
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=1) == [2, 4, 6]
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=2) == [4, 6]  # four eyes
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=1, decided=[2]) == [4, 6]


def test_a_chain_level_narrows_the_reviewers() -> None:
    admins = Level(name="终审", role="admin")
    named = Level(name="终审", user_ids=(6,))
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=1, level=admins) == [4]
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=1, level=named) == [6]
    fast = [Level(name="初审", user_ids=(2,)), named]
    assert rules.reviewers(PEOPLE, org_path=KAILI, author_id=1, any_level=fast) == [2, 6]


def test_account_keepers_are_editors_and_admins_reaching_the_org() -> None:
    assert rules.account_keepers(PEOPLE, org_path=KAILI) == [1, 4, 7]


def test_token_warning_window_is_seven_days() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert rules.token_expiring(now + timedelta(days=6, hours=23), now)
    assert not rules.token_expiring(now + timedelta(days=8), now)
    assert not rules.token_expiring(now - timedelta(minutes=1), now)  # already ended
    assert not rules.token_expiring(None, now)


def test_preferences_default_to_the_list_only() -> None:
    kind = rules.Kind.post_rejected
    assert rules.wants({}, kind, rules.Channel.in_app)
    assert not rules.wants({}, kind, rules.Channel.email)
    assert rules.wants({("post_rejected", "email"): True}, kind, rules.Channel.email)
    assert not rules.wants({("post_rejected", "in_app"): False}, kind, rules.Channel.in_app)


def test_texts_are_chinese_and_carry_the_facts() -> None:
    m = rules.review_waiting("防汛通知", "凯里市", "张三", "初审", 9)
    assert (m.title, m.link) == ("待审核（初审）：「防汛通知」", "/posts/9")
    assert "凯里市 · 张三 提交了稿件「防汛通知」" in m.body
    assert rules.post_rejected("防汛通知", "李四", "", 9).body.endswith("理由：（未填写）")
    assert (
        rules.post_approved("防汛通知", "李四", "初审", False, 9).title
        == "初审已通过：「防汛通知」"
    )
    parked = rules.copy_problem("防汛通知", "微博", "凯里发布", True, "授权过期", 9)
    assert parked.title == "已暂停（账号待处理）：「防汛通知」→ 微博「凯里发布」"
    due = rules.deadline_due("突发事件", "山洪", "凯里市", "overdue", "2026-11-20 12:00")
    assert due.title == "【已逾期】山洪" and "截止 2026-11-20 12:00" in due.body
    assert due.link == "/clocks"
    case = rules.deadline_due("留言答复", "网友留言", "凯里市", "80", "2026-11-27 23:59", 12)
    assert case.link == "/inbox/cases/12" and case.title == "【时限已用去80%】网友留言"


def test_robot_payloads() -> None:
    m = rules.review_waiting("防汛通知", "凯里市", "张三", "", 9)
    wecom = rules.robot_payload(rules.Flavor.wecom, m, "https://hub.gov.test/")
    assert wecom["msgtype"] == "markdown"
    assert "[查看详情](https://hub.gov.test/posts/9)" in wecom["markdown"]["content"]
    ding = rules.robot_payload(rules.Flavor.dingtalk, m, "https://hub.gov.test")
    assert ding["markdown"]["title"] == "待审核：「防汛通知」"
    assert ding["markdown"]["text"].startswith("### 待审核：「防汛通知」")


def test_dingtalk_signature_follows_the_documented_recipe() -> None:
    secret, stamp = "SEC000example", 1700000000000
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert rules.dingtalk_sign(secret, stamp) == expected
    url = rules.signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", secret, stamp)
    query = parse_qs(urlsplit(url).query)
    assert query == {"access_token": ["x"], "timestamp": [str(stamp)], "sign": [expected]}
    assert "%2B" in url or "+" not in expected  # '+' of base64 is URL-encoded
    assert rules.dingtalk_sign(secret, stamp + 1) != expected


def test_robot_targets_are_checked() -> None:
    assert rules.robot_refusal("slack", "https://x") is not None
    assert rules.robot_refusal("wecom", "ftp://x") == "机器人地址须以 https:// 开头"
    assert rules.robot_refusal("dingtalk", "https://oapi.dingtalk.com/robot/send") is None
