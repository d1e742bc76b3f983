"""Who is told what (pure): notification kinds and channels, the reviewers a submitted post waits
for, the Chinese texts, and the two group-robot formats (企业微信 markdown; 钉钉 markdown with
its optional signature).

Nothing here touches the database; :mod:`hub.notify.service` loads the facts and calls these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from hub.errors import Reason
from hub.posts.levels import Level, entitled
from hub.users.models import Role
from hub.users.rules import Action, Actor, may


def N_(message: str) -> str:
    """Marks a message for the catalog (``make i18n``); pages translate it when they show it."""
    return message


class Kind(StrEnum):
    review_waiting = "review_waiting"  # a post was submitted: to those who may review it now
    post_approved = "post_approved"  # to the author
    post_rejected = "post_rejected"  # to the author
    copy_problem = "copy_problem"  # a copy failed or was parked: to the author
    token_expiring = "token_expiring"  # an account's authorisation ends within 7 days
    deadline_due = "deadline_due"  # a clock (or a case's clock) reached a reminder threshold


class Channel(StrEnum):
    in_app = "in_app"
    email = "email"
    robot = "robot"  # a 企业微信 / 钉钉 group robot


class Flavor(StrEnum):
    wecom = "wecom"  # 企业微信群机器人
    dingtalk = "dingtalk"  # 钉钉群机器人


KIND_LABELS: dict[Kind, str] = {
    Kind.review_waiting: N_("待我审核的稿件"),
    Kind.post_approved: N_("我的稿件审核通过"),
    Kind.post_rejected: N_("我的稿件被退回"),
    Kind.copy_problem: N_("稿件发布失败或暂停"),
    Kind.token_expiring: N_("账号授权即将过期"),
    Kind.deadline_due: N_("时限与办件到期提醒"),
}
CHANNEL_LABELS: dict[Channel, str] = {
    Channel.in_app: N_("站内"),
    Channel.email: N_("邮件"),
    Channel.robot: N_("群机器人"),
}
FLAVOR_LABELS: dict[Flavor, str] = {
    Flavor.wecom: N_("企业微信群机器人"),
    Flavor.dingtalk: N_("钉钉群机器人"),
}

# Without a choice of one's own: every kind in the list; e-mail and robots only when chosen.
DEFAULTS: dict[Channel, bool] = {Channel.in_app: True, Channel.email: False, Channel.robot: False}

TOKEN_WARNING = timedelta(days=7)


def wants(choices: Mapping[tuple[str, str], bool], kind: Kind, channel: Channel) -> bool:
    """The user's choice for ``kind`` on ``channel`` (``choices``: their stored rows), else the default."""
    return choices.get((kind.value, channel.value), DEFAULTS[channel])


# -- recipients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A candidate recipient: an active user as the rule sees them."""

    actor: Actor

    @property
    def user_id(self) -> int:
        return self.actor.user_id


def reviewers(
    people: Iterable[Person],
    *,
    org_path: str,
    author_id: int,
    level: Level | None = None,
    decided: Iterable[int] = (),
    any_level: Sequence[Level] = (),
) -> list[int]:
    """Who may decide a post of the org at ``org_path`` now: the review right over that org
    (users.rules.may), not the author (four eyes), not someone who already approved a level of this
    version; with a chain, only those entitled to the ``level`` it waits at (or, on the emergency
    ``one`` path, to any of ``any_level``)."""
    done = set(decided)
    out: list[int] = []
    for person in people:
        actor = person.actor
        if actor.user_id == author_id or actor.user_id in done:
            continue
        if not may(actor, Action.post_review, org_path):
            continue
        role = actor.role.value
        if any_level:
            if not any(entitled(lv, user_id=actor.user_id, role=role) for lv in any_level):
                continue
        elif level is not None and not entitled(level, user_id=actor.user_id, role=role):
            continue
        out.append(actor.user_id)
    return sorted(set(out))


def account_keepers(people: Iterable[Person], *, org_path: str) -> list[int]:
    """Who looks after an org's accounts: editors and admins whose rights reach the org (they
    re-authorise, account.bind)."""
    return sorted(
        {
            p.user_id
            for p in people
            if p.actor.role in (Role.editor, Role.admin)
            and may(p.actor, Action.account_bind, org_path)
        }
    )


def token_expiring(expires_at: datetime | None, now: datetime) -> bool:
    """Does the authorisation end within the warning window (and not already ended)?"""
    return expires_at is not None and now < expires_at <= now + TOKEN_WARNING


# -- texts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    kind: Kind
    title: str
    body: str
    link: str = ""


def review_waiting(title: str, org: str, author: str, level: str, post_id: int) -> Message:
    where = f"（{level}）" if level else ""
    return Message(
        Kind.review_waiting,
        f"待审核{where}：「{title}」",
        f"{org} · {author} 提交了稿件「{title}」，等待您审核{where}。",
        f"/posts/{post_id}",
    )


def post_approved(title: str, reviewer: str, level: str, released: bool, post_id: int) -> Message:
    if released:
        head, body = "已通过审核", f"稿件「{title}」已由 {reviewer} 审核通过，开始发布。"
    else:
        head = f"{level}已通过"
        body = f"稿件「{title}」已由 {reviewer} 通过{level}，进入下一级审核。"
    return Message(Kind.post_approved, f"{head}：「{title}」", body, f"/posts/{post_id}")


def post_rejected(title: str, reviewer: str, reason: str, post_id: int) -> Message:
    return Message(
        Kind.post_rejected,
        f"被退回：「{title}」",
        f"稿件「{title}」被 {reviewer} 退回修改。理由：{reason or '（未填写）'}",
        f"/posts/{post_id}",
    )


def copy_problem(
    title: str, platform: str, account: str, parked: bool, error: str, post_id: int
) -> Message:
    state = "已暂停（账号待处理）" if parked else "发布失败"
    return Message(
        Kind.copy_problem,
        f"{state}：「{title}」→ {platform}「{account}」",
        f"稿件「{title}」发往{platform}账号「{account}」{state}。"
        + (f"原因：{error[:300]}" if error else ""),
        f"/posts/{post_id}",
    )


def token_expiring_message(platform: str, account: str, org: str, expires: str) -> Message:
    return Message(
        Kind.token_expiring,
        f"授权即将过期：{platform}「{account}」",
        f"{org}的{platform}账号「{account}」授权将于 {expires} 过期，过期后稿件无法发出，"
        "请及时重新授权。",
        "/accounts",
    )


DEADLINE_ZH = {"50": "时限已过半", "80": "时限已用去80%", "overdue": "已逾期"}


def deadline_due(
    kind_title: str, subject: str, org: str, threshold: str, due: str, case_id: int | None = None
) -> Message:
    """A clock's reminder; a case's clock (留言办理) links to the case, any other to /clocks."""
    state = DEADLINE_ZH.get(threshold, threshold)
    return Message(
        Kind.deadline_due,
        f"【{state}】{subject}",
        f"{org}的{kind_title}「{subject}」{state}，截止 {due}。",
        f"/inbox/cases/{case_id}" if case_id is not None else "/clocks",
    )


# -- group robots -----------------------------------------------------------------------------------


def markdown_text(message: Message, base_url: str) -> str:
    link = f"{base_url.rstrip('/')}{message.link}" if message.link else ""
    lines = [f"### {message.title}", "", message.body]
    if link:
        lines += ["", f"[查看详情]({link})"]
    return "\n".join(lines)


def robot_payload(flavor: Flavor, message: Message, base_url: str) -> dict[str, Any]:
    """The JSON body: 企业微信 ``markdown.content``; 钉钉 ``markdown.title`` + ``markdown.text``."""
    text = markdown_text(message, base_url)
    if flavor is Flavor.wecom:
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉 加签: base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), not yet URL-encoded."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with ``timestamp`` and the URL-encoded ``sign`` added (钉钉 加签)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("timestamp", "sign")]
    query += [("timestamp", str(timestamp_ms)), ("sign", dingtalk_sign(secret, timestamp_ms))]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote_plus)))


def robot_refusal(flavor: str, url: str) -> str | None:
    """Why this target cannot be saved (Chinese), or None."""
    if flavor not in Flavor.__members__:
        return Reason("请选择企业微信群机器人或钉钉群机器人")
    if not url.strip().lower().startswith(("https://", "http://")):
        return Reason("机器人地址须以 https:// 开头")
    if len(url) > 1000:
        return Reason("机器人地址过长")
    return None
