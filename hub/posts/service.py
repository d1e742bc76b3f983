"""Posts: compose, version, review, approve (creating deliveries), schedule, withdraw, correct."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from connectors.base import PreparesImages, Problem, Rendition
from hub.accounts.models import Account, AccountStatus, Platform
from hub.auditlog.service import audit
from hub.clocks.models import Clock, ClockState
from hub.clocks.service import has_clock, link_post, retime_for_post, start_for_post
from hub.config import get_settings
from hub.delivery import channels
from hub.delivery import service as engine
from hub.delivery.models import Delivery, DeliveryStatus
from hub.delivery.rules import push_refusal, valid_ip
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.media.service import library_for
from hub.notify import service as notices
from hub.orgs import service as orgs
from hub.orgs.models import Org, OrgLevel
from hub.platforms import builtin_channel, label
from hub.posts import chains, rules
from hub.posts.models import (
    Approval,
    ApprovalKind,
    Post,
    PostCreate,
    PostStatus,
    PostUpdate,
    PostVersion,
    ReviewChain,
    TargetGroup,
    Urgency,
)
from hub.proofread import rules as proofread_rules
from hub.proofread import service as proofread
from hub.users.models import Role, User
from hub.users.rules import Action, may, sees
from hub.users.who import Who

log = logging.getLogger(__name__)


def _audit(session: Session, who: Who, action: str, post: Post, summary: str) -> None:
    audit(session, who, action, "post", post.id, org_id=post.org_id, summary=summary)


def _pk(row: Post | Org) -> int:
    assert row.id is not None
    return row.id


def _require(who: Who, action: Action, org: Org) -> None:
    if not may(who.actor, action, org.path):
        raise Forbidden(
            "您的角色（%(role)s）在%(org)s没有 %(action)s 权限",
            role=who.user.role.value,
            action=action.value,
            org=org.name,
        )


# -- loading --------------------------------------------------------------------------------------


def get(*, session: Session, post_id: int, who: Who, action: Action = Action.post_read) -> Post:
    """The post, when the caller may see it: 404 outside their reach (as if it did not exist;
    a reviewer of an org named to co-sign it sees it too), 403 without ``action`` on its org.
    Workflow actions check their own right next, and only then the post's state."""
    post = session.get(Post, post_id)
    if post is None or not visible(session, who, post):
        raise NotFound("稿件 %(post_id)s 不存在", post_id=post_id)
    org = orgs.get(session=session, org_id=post.org_id)
    if action is not Action.post_read or not _is_cosigner(session, who, post):
        _require(who, action, org)
    return post


def visible(session: Session, who: Who, post: Post) -> bool:
    """Is the post within the caller's reach, or are they asked to co-sign it?"""
    org = orgs.get(session=session, org_id=post.org_id)
    return sees(who.actor, org.path) or _is_cosigner(session, who, post)


def version_of(session: Session, post: Post, version: int | None = None) -> PostVersion:
    return session.exec(
        select(PostVersion).where(
            PostVersion.post_id == post.id, PostVersion.version == (version or post.current_version)
        )
    ).one()


# -- targets --------------------------------------------------------------------------------------


def _check_accounts(session: Session, who: Who, account_ids: list[int]) -> list[Account]:
    accounts: list[Account] = []
    for account_id in dict.fromkeys(account_ids):
        account = session.get(Account, account_id)
        if account is None:
            raise Invalid(
                "账号 %(account_id)s 不存在",
                field="target_account_ids",
                account_id=account_id,
            )
        org = orgs.get(session=session, org_id=account.org_id)
        if not may(who.actor, Action.post_write, org.path):
            raise Forbidden(
                "账号 %(account_id)s（%(org)s · %(account)s）不在您的范围内",
                account_id=account_id,
                org=org.name,
                account=account.name,
            )
        accounts.append(account)
    return accounts


def resolve_groups(
    session: Session, groups: list[dict[str, Any]], scope_path: str
) -> list[Account]:
    """Accounts named by groups, within ``scope_path`` (resolved at approval time)."""
    found: dict[int, Account] = {}
    for raw in groups:
        group = TargetGroup.model_validate(raw)
        query = select(Account).join(Org, col(Account.org_id) == col(Org.id))
        query = query.where(col(Org.path).startswith(scope_path), Account.status != "closed")
        if group.platform:
            query = query.where(Account.platform == Platform(group.platform))
        if group.under:
            anchor = orgs.get_by_code(session=session, code=group.under)
            query = query.where(col(Org.path).startswith(anchor.path))
        if group.level:
            query = query.where(Org.level == OrgLevel(group.level))
        if group.org:
            query = query.where(Org.code == group.org)
        for account in session.exec(query).all():
            found[account.id] = account  # type: ignore[index]
    return list(found.values())


def _validate_groups(session: Session, groups: list[TargetGroup]) -> list[dict[str, Any]]:
    out = []
    for group in groups:
        if group.platform and group.platform not in Platform.all():
            raise Invalid("目标分组中有未知平台 %(platform)r", platform=group.platform)
        if group.level and group.level not in {lv.value for lv in OrgLevel}:
            raise Invalid("目标分组中有未知级别 %(level)r", level=group.level)
        for code in (group.under, group.org):
            if code:
                orgs.resolve_code(session=session, code=code)
        out.append(group.model_dump(exclude_none=True))
    return out


def _wechat_modes(session: Session, who: Who, modes: Mapping[int, str]) -> dict[str, str]:
    """The editor's WeChat choice per account, checked: only WeChat accounts within reach.
    Stored as ``{"<account id>": "push"}``; "publish" is the default and is not stored."""
    out: dict[str, str] = {}
    for account in _check_accounts(session, who, list(modes)):
        if not account.platform.info.push_quota:  # pushes to followers (WeChat's 群发)
            raise Invalid(
                "账号「%(account)s」不是微信公众号，不能选择群发",
                field="wechat_modes",
                account=account.name,
            )
        if modes[account.id] == "push":  # type: ignore[index]
            out[str(account.id)] = "push"
    return out


def push_refusals(
    *, session: Session, post: Post, accounts: list[Account], now: datetime
) -> list[str]:
    """Why the post's pushes (群发) cannot go out, one line per account (empty: they can).

    The quota is that of the day or month the post goes out in (its schedule, or now).
    """
    pushing = [a for a in accounts if post.wechat_modes.get(str(a.id)) == "push"]
    if not pushing:
        return []
    at = post.scheduled_at if post.scheduled_at and post.scheduled_at > now else now
    quotas = engine.push_quotas(session=session, accounts=pushing, at=at)
    refusals = []
    for account in pushing:
        refusal = push_refusal(account.name, quotas[account.id])  # type: ignore[index]
        if refusal:
            refusals.append(refusal)
    return refusals


def _images(paths: list[str]) -> list[dict[str, str]]:
    media = Path(get_settings().media_dir).resolve()
    images = []
    for path in paths:
        target = (media / path).resolve()
        if not target.is_relative_to(media) or not target.is_file():
            raise Invalid("图片 %(path)r 尚未上传", field="images", path=path)
        images.append({"path": path})
    return images


def _cosign_orgs(session: Session, codes: list[str]) -> list[int]:
    return [orgs.resolve_code(session=session, code=c).id for c in codes]  # type: ignore[misc]


# -- compose --------------------------------------------------------------------------------------


def create(*, session: Session, who: Who, data: PostCreate, now: datetime) -> Post:
    org = (
        orgs.resolve_code(session=session, code=data.org_code)
        if data.org_code
        else orgs.get(session=session, org_id=who.user.org_id)
    )
    _require(who, Action.post_write, org)
    _check_accounts(session, who, data.target_account_ids)
    _check_schedule(data.scheduled_at, now)
    event_at = _event_time(data, now)
    clock = _open_clock(session, who, data.clock_id) if data.clock_id is not None else None
    post = Post(
        org_id=org.id,  # type: ignore[arg-type]
        author_id=who.id,
        title=data.title.strip(),
        urgency=data.urgency,
        scheduled_at=data.scheduled_at,
        target_account_ids=list(dict.fromkeys(data.target_account_ids)),
        target_groups=_validate_groups(session, data.target_groups),
        cosign_org_ids=_cosign_orgs(session, data.cosign_org_codes),
        wechat_modes=_wechat_modes(session, who, data.wechat_modes),
        wechat_comments=data.wechat_comments or org.wechat_comments or "closed",
        event_at=event_at,
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    session.flush()
    _add_version(
        session,
        post,
        who,
        version=1,
        title=data.title.strip(),
        body=data.body,
        summary=data.summary,
        images=_images(data.images),
        overrides=data.overrides,
        now=now,
    )
    _audit(session, who, "post.create", post, f"「{post.title}」({post.urgency.value})")
    if clock is not None:
        link_post(session=session, clock=clock, post_id=_pk(post))
    elif post.urgency in (Urgency.emergency, Urgency.hot_topic):
        _start_clock(session, post, event_at or now)
    return post


def _event_time(data: PostCreate, now: datetime) -> datetime | None:
    """When the emergency or hot topic happened: its clock runs from it (default: now)."""
    urgent = data.urgency in (Urgency.emergency, Urgency.hot_topic)
    if data.event_at is None:
        return now if urgent and data.clock_id is None else None
    if data.clock_id is not None:
        raise Invalid("关联已有时限时不填事件发生时间（时限已从其起点计算）", field="event_at")
    return _check_event_at(data.event_at, urgent=urgent, now=now)


def _check_event_at(when: datetime, *, urgent: bool, now: datetime) -> datetime:
    if not urgent:
        raise Invalid("只有突发事件和热点回应稿件需要填写事件发生时间", field="event_at")
    if when.tzinfo is None:
        raise Invalid("事件发生时间需要带时区，例如 2026-12-01T09:00:00+08:00", field="event_at")
    if when > now + timedelta(minutes=1):
        raise Invalid("事件发生时间不能晚于现在", field="event_at")
    return when


def _clock_after_edit(
    session: Session, post: Post, event_at: datetime | None, now: datetime
) -> None:
    """An edit made the post urgent, or corrected when the event happened: a post that became
    urgent without a clock starts one (from ``event_at``, default now); a corrected event time
    moves the start of the post's own running clock."""
    urgent = post.urgency in (Urgency.emergency, Urgency.hot_topic)
    if event_at is not None:
        post.event_at = _check_event_at(event_at, urgent=urgent, now=now)
    if not urgent:
        return
    if not has_clock(session=session, post_id=_pk(post)):
        post.event_at = post.event_at or now
        _start_clock(session, post, post.event_at)
    elif event_at is not None:
        retime_for_post(
            session=session, post_id=_pk(post), urgency=post.urgency.value, started_at=event_at
        )


def _open_clock(session: Session, who: Who, clock_id: int) -> Clock:
    """A running clock within the caller's reach, for a post to stop when it is published."""
    clock = session.get(Clock, clock_id)
    org = session.get(Org, clock.org_id) if clock is not None else None
    if clock is None or org is None or not sees(who.actor, org.path):
        raise NotFound("时限 %(clock_id)s 不存在", clock_id=clock_id)
    if not may(who.actor, Action.post_write, org.path):
        raise Forbidden(
            "时限 %(clock_id)s 属于%(org)s，您不能为它发稿", clock_id=clock_id, org=org.name
        )
    if clock.state is not ClockState.running:
        raise Conflict(
            "时限 %(clock_id)s 已结束（%(state)s），不能再关联稿件",
            clock_id=clock_id,
            state=clock.state.value,
        )
    return clock


def _start_clock(session: Session, post: Post, started_at: datetime) -> None:
    start_for_post(
        session=session,
        post_id=post.id,  # type: ignore[arg-type]
        org_id=post.org_id,
        urgency=post.urgency.value,
        title=post.title,
        started_at=started_at,
    )


def _check_schedule(when: datetime | None, now: datetime) -> None:
    if when is None:
        return
    if when.tzinfo is None:
        raise Invalid("定时发布时间须带时区，例如 2026-12-01T09:00:00+08:00", field="scheduled_at")
    if when < now - timedelta(minutes=1):
        raise Invalid("定时发布时间已经过去", field="scheduled_at")


def _add_version(
    session: Session,
    post: Post,
    who: Who,
    *,
    version: int,
    title: str,
    body: str,
    summary: str,
    images: list[dict[str, str]],
    overrides: dict[str, str],
    now: datetime,
    correction_note: str = "",
) -> PostVersion:
    row = PostVersion(
        post_id=post.id,  # type: ignore[arg-type]
        version=version,
        title=title,
        body=body,
        summary=summary,
        images=images,
        link=channels.post_link(post.id),  # type: ignore[arg-type]
        overrides=overrides,
        correction_note=correction_note,
        content_hash=rules.content_hash(
            title=title,
            body=body,
            summary=summary,
            images=[i["path"] for i in images],
            overrides=overrides,
        ),
        author_id=who.id,
        created_at=now,
    )
    session.add(row)
    post.current_version = version
    post.title = title
    return row


def update_post(*, session: Session, who: Who, post: Post, data: PostUpdate, now: datetime) -> Post:
    _require(who, Action.post_write, orgs.get(session=session, org_id=post.org_id))
    current = version_of(session, post)
    new_status = rules.next_status(rules.Move.edit, post.status)
    title = data.title.strip() if data.title is not None else current.title
    body = data.body if data.body is not None else current.body
    summary = data.summary if data.summary is not None else current.summary
    images = _images(data.images) if data.images is not None else current.images
    overrides = data.overrides if data.overrides is not None else current.overrides
    changed_content = (
        rules.content_hash(
            title=title,
            body=body,
            summary=summary,
            images=[i["path"] for i in images],
            overrides=overrides,
        )
        != current.content_hash
    )
    if data.target_account_ids is not None:
        _check_accounts(session, who, data.target_account_ids)
        post.target_account_ids = list(dict.fromkeys(data.target_account_ids))
    if data.target_groups is not None:
        post.target_groups = _validate_groups(session, data.target_groups)
    if data.cosign_org_codes is not None:
        post.cosign_org_ids = _cosign_orgs(session, data.cosign_org_codes)
    if data.wechat_modes is not None:
        post.wechat_modes = _wechat_modes(session, who, data.wechat_modes)
    if data.wechat_comments is not None:
        post.wechat_comments = data.wechat_comments
    if data.urgency is not None:
        post.urgency = data.urgency
    if data.urgency is not None or data.event_at is not None:
        _clock_after_edit(session, post, data.event_at, now)
    if data.clear_schedule:
        post.scheduled_at = None
    elif data.scheduled_at is not None:
        _check_schedule(data.scheduled_at, now)
        post.scheduled_at = data.scheduled_at
    if changed_content:
        _add_version(
            session,
            post,
            who,
            version=post.current_version + 1,
            title=title,
            body=body,
            summary=summary,
            images=images,
            overrides=overrides,
            now=now,
        )
    was_approved = post.status in (PostStatus.approved, PostStatus.scheduled)
    if was_approved:
        # editing after approval invalidates it: nothing of the old version goes out
        _cancel_unsent(session, post, now)
        post.approved_version = None
    post.status = new_status
    post.updated_at = now
    session.add(post)
    _audit(
        session,
        who,
        "post.update",
        post,
        f"v{post.current_version}" + ("; approval withdrawn by the edit" if was_approved else ""),
    )
    return post


def _cancel_unsent(session: Session, post: Post, now: datetime) -> None:
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.post_id) == post.id,
            col(Delivery.status).in_([DeliveryStatus.queued, DeliveryStatus.parked]),
        )
        .values(status=DeliveryStatus.cancelled, updated_at=now)
    )


# -- preview and submission ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelPreview:
    platform: str
    rendition: Rendition
    problems: list[Problem]
    hits: list[proofread_rules.Hit] = field(default_factory=list)  # proofreading (错敏字)


def proofread_texts(version: PostVersion) -> dict[str, str]:
    """What proofreading reads of a version: title, summary, body and each channel's own text
    (``overrides.<channel>.<field>``)."""
    texts = {"title": version.title, "summary": version.summary, "body": version.body}
    for key, value in sorted(version.overrides.items()):
        texts[f"overrides.{key}"] = value
    return texts


def proofread_post(
    session: Session, post: Post, version: PostVersion | None = None
) -> list[proofread_rules.Hit]:
    version = version or version_of(session, post)
    org = orgs.get(session=session, org_id=post.org_id)
    return proofread.check(session, org, proofread_texts(version))


def _hits_for(platform: str, hits: list[proofread_rules.Hit]) -> list[proofread_rules.Hit]:
    return [
        h for h in hits if not h.field.startswith("overrides.") or h.field.split(".")[1] == platform
    ]


def target_accounts(session: Session, post: Post) -> list[Account]:
    """The post's explicit targets plus its groups, resolved within the post's org subtree."""
    org = orgs.get(session=session, org_id=post.org_id)
    ids = list(dict.fromkeys(post.target_account_ids))
    found = {
        a.id: a for a in session.exec(select(Account).where(col(Account.id).in_(ids))).all()
    }  # one query, not one per target (a provincial post names hundreds of accounts)
    accounts: dict[int | None, Account] = {i: found[i] for i in ids if i in found}
    for account in resolve_groups(session, post.target_groups, org.path):
        accounts.setdefault(account.id, account)
    return list(accounts.values())


def preview(*, session: Session, post: Post) -> list[ChannelPreview]:
    version = version_of(session, post)
    org = orgs.get(session=session, org_id=post.org_id)
    content = channels.content_of(
        post_id=post.id,  # type: ignore[arg-type]
        version=version,
        urgency=post.urgency.value,
        org_name=org.name,
        library=library_for(session, org, [img["path"] for img in version.images]),
    )
    targeted = {a.platform.value for a in target_accounts(session, post)}
    platforms = sorted(targeted | {builtin_channel().value})
    hits = proofread_post(session, post, version)
    out = []
    for platform in platforms:
        connector = channels.connector_for(platform)
        rendition = connector.render(content)
        out.append(
            ChannelPreview(
                platform, rendition, connector.check(rendition), _hits_for(platform, hits)
            )
        )
    return out


def submit(*, session: Session, who: Who, post: Post, now: datetime) -> Post:
    _require(who, Action.post_write, orgs.get(session=session, org_id=post.org_id))
    rules.next_status(rules.Move.submit, post.status)
    targets = target_accounts(session, post)
    if not targets:
        raise Invalid("请先选择至少一个发布账号，再提交审核")
    refusals = push_refusals(session=session, post=post, accounts=targets, now=now)
    if refusals:
        raise Invalid("；".join(refusals), field="wechat_modes")
    proofread_refusal = proofread_rules.refusal(proofread_post(session, post), "提交审核")
    if proofread_refusal:
        raise Invalid(proofread_refusal, field="body")
    previews = preview(session=session, post=post)
    blocking = [
        f"{label(p.platform)}：{problem.message}"
        for p in previews
        for problem in p.problems
        if problem.blocking
    ]
    if blocking:
        raise Invalid("提交审核前请先解决以下问题：%(problems)s", problems="；".join(blocking))
    _prepare_images(previews)
    pending = _cosign_pending(session, post)
    post.status = rules.status_after_submit(bool(pending) and post.urgency is not Urgency.emergency)
    chains.start(session, post)
    post.reason = ""
    post.updated_at = now
    session.add(post)
    _audit(session, who, "post.submit", post, f"v{post.current_version}")
    if post.status is PostStatus.in_review:  # co-signing first: told when it is done
        notices.post_submitted(session, post, author=who.user)
    return post


def _prepare_images(previews: list[ChannelPreview]) -> None:
    """The version's image variants (a converted cover thumb...) made now, once, so that the
    fan-out's copies read them instead of waiting for the first copy to convert
    (docs/delivery.md, "Image variants"). Best effort: the publication reports a bad picture."""
    for channel in previews:
        connector = channels.connector_for(channel.platform)
        if not isinstance(connector, PreparesImages):
            continue
        try:
            connector.prepare_images(channel.rendition)
        except Exception:  # never a reason to refuse the submission
            log.warning("image variants for %s not prepared", channel.platform, exc_info=True)


def _cosign_pending(session: Session, post: Post) -> list[str]:
    done = {
        a.org_id
        for a in session.exec(
            select(Approval).where(
                Approval.post_id == post.id,
                Approval.version == post.current_version,
                Approval.kind == ApprovalKind.cosign,
            )
        ).all()
    }
    return [
        orgs.get(session=session, org_id=org_id).name
        for org_id in post.cosign_org_ids
        if org_id not in done
    ]


def cosign(*, session: Session, who: Who, post: Post, now: datetime, comment: str = "") -> Post:
    mine = [
        org_id
        for org_id in post.cosign_org_ids
        if may(who.actor, Action.post_cosign, orgs.get(session=session, org_id=org_id).path)
    ]
    if not mine:
        raise Forbidden("您不是该稿件任何会签机构的审核员")
    if post.status is not PostStatus.cosigning:
        raise Conflict("稿件 %(post_id)s 不在等待会签状态", post_id=post.id)
    for org_id in mine:
        session.add(
            Approval(
                post_id=_pk(post),
                version=post.current_version,
                kind=ApprovalKind.cosign,
                org_id=org_id,
                reviewer_id=who.id,
                comment=comment,
                at=now,
            )
        )
    session.flush()
    if not _cosign_pending(session, post):
        post.status = PostStatus.in_review
    post.updated_at = now
    session.add(post)
    _audit(session, who, "post.cosign", post, f"v{post.current_version}")
    if post.status is PostStatus.in_review:
        notices.post_submitted(session, post, author=session.get(User, post.author_id) or who.user)
    return post


def approve(
    *,
    session: Session,
    who: Who,
    post: Post,
    now: datetime,
    comment: str = "",
    acknowledge: Mapping[str, str] | None = None,
) -> tuple[Post, list[int]]:
    """Approve the current version at the level it waits at (an org's review chain); the last
    level's approval — or the only one, without a chain — creates its deliveries. Returns ids to
    enqueue after commit.

    Proofreading at every level: a ``block`` hit refuses; each ``warn`` hit needs a reason in
    ``acknowledge`` (hit text -> reason), recorded with the approval."""
    org = orgs.get(session=session, org_id=post.org_id)
    _require(who, Action.post_review, org)  # permission before state
    rules.next_status(rules.Move.approve, post.status)
    _check_reviewer(session, who, post, org)
    chain = chains.check_level(session, user=who.user, post=post)
    _check_proofreading(session, who, post, org, now, acknowledge)
    if chain is not None:
        level = post.review_level
        if not chains.advance(post, chain):
            _record_approval(session, who, post, org, comment, now, level=level)
            post.updated_at = now
            session.add(post)
            _audit(session, who, "post.approve_level", post, _level_summary(chain, level))
            notices.post_decided(
                session, post, reviewer=who.user, approved=True, released=False,
                level=_level_name(chain, level),
            )  # fmt: skip
            notices.post_submitted(
                session, post, author=session.get(User, post.author_id) or who.user
            )
            return post, []
        return _release(session, who, post, org, comment, now, level=level)
    return _release(session, who, post, org, comment, now, level=None)


def _level_name(chain: ReviewChain, level: int | None) -> str:
    names = [str(raw.get("name", "")) for raw in chain.levels]
    return names[level - 1] if level and 0 < level <= len(names) else str(level)


def _level_summary(chain: ReviewChain, level: int | None) -> str:
    return f"「{_level_name(chain, level)}」通过"


def _check_reviewer(session: Session, who: Who, post: Post, org: Org) -> None:
    """Four eyes, scope and co-signing (the rule every approval passes, with or without a chain)."""
    refusal = rules.approval_refusal(
        reviewer=rules.Reviewer(
            user_id=who.id,
            org_path=who.actor.org_path,
            is_reviewer=who.user.role in (Role.reviewer, Role.admin),
        ),
        author_id=post.author_id,
        post_org_path=org.path,
        urgency=post.urgency,
        cosign_pending=[] if post.urgency is Urgency.emergency else _cosign_pending(session, post),
    )
    if refusal:
        raise Forbidden(refusal)


def _check_proofreading(
    session: Session,
    who: Who,
    post: Post,
    org: Org,
    now: datetime,
    acknowledge: Mapping[str, str] | None,
) -> None:
    """A ``block`` hit refuses the approval; every ``warn`` hit needs the reviewer's reason."""
    hits = proofread_post(session, post)
    proofread_refusal = proofread_rules.refusal(hits, "批准")
    if proofread_refusal:
        raise Invalid(proofread_refusal, field="body")
    acknowledged = proofread.acknowledge(
        session=session,
        hits=hits,
        given=acknowledge or {},
        post_id=_pk(post),
        version=post.current_version,
        org_id=_pk(org),
        reviewer_id=who.id,
        now=now,
    )
    if acknowledged:
        _audit(
            session,
            who,
            "proofread.acknowledge",
            post,
            "；".join(f"「{a.text}」：{a.reason}" for a in acknowledged),
        )


def _record_approval(
    session: Session,
    who: Who,
    post: Post,
    org: Org,
    comment: str,
    now: datetime,
    *,
    level: int | None,
) -> None:
    session.add(
        Approval(
            post_id=_pk(post),
            version=post.current_version,
            kind=ApprovalKind.approve,
            org_id=_pk(org),
            reviewer_id=who.id,
            comment=comment,
            at=now,
            client_ip=valid_ip(who.client_ip),  # Weibo's rip: on whose behalf it goes out
            level=level,
        )
    )


def _release(
    session: Session,
    who: Who,
    post: Post,
    org: Org,
    comment: str,
    now: datetime,
    *,
    level: int | None,
) -> tuple[Post, list[int]]:
    """The final approval: record it and create the deliveries (now, or at the schedule)."""
    accounts = [a for a in target_accounts(session, post) if a.status is not AccountStatus.closed]
    if not accounts:
        raise Invalid("稿件已没有目标账号")
    _record_approval(session, who, post, org, comment, now, level=level)
    post.approved_version = post.current_version
    post.review_level = None
    hall = _org_hall_account(session, post.org_id)
    ids = channels.costliest_first((a.id, a.platform.value) for a in accounts if a.id is not None)
    if hall is not None and hall not in ids:
        ids.append(hall)
    future = post.scheduled_at is not None and post.scheduled_at > now
    lease = None if future else now + engine.enqueue_lease()
    deliveries = engine.create_deliveries(
        session=session,
        post_id=post.id,  # type: ignore[arg-type]
        version=post.current_version,
        account_ids=ids,
        not_before=post.scheduled_at if future else None,
        modes={int(k): v for k, v in post.wechat_modes.items()},
        lease_until=lease,  # leased as inserted: no second statement over a thousand rows
    )
    if future:
        post.status = PostStatus.scheduled
        to_enqueue: list[int] = []
    else:
        post.status = PostStatus.publishing
        post.released_at = now
        to_enqueue = [
            d.id for d in deliveries if d.id is not None and d.status is DeliveryStatus.queued
        ]
        existed = {d.id for d in deliveries if d.lease_until != lease}
        engine.mark_enqueued(
            session=session, delivery_ids=[i for i in to_enqueue if i in existed], now=now
        )
    post.updated_at = now
    session.add(post)
    _audit(
        session,
        who,
        "post.approve",
        post,
        f"v{post.current_version} → {len(deliveries)} deliveries"
        + (f", scheduled {post.scheduled_at.isoformat()}" if future and post.scheduled_at else ""),
    )
    notices.post_decided(session, post, reviewer=who.user, approved=True)
    return post, to_enqueue


def _org_hall_account(session: Session, org_id: int) -> int | None:
    """Every approved post also goes to its org's release-hall account, when it has one."""
    account = session.exec(
        select(Account).where(
            Account.org_id == org_id,
            Account.platform == builtin_channel(),
            Account.status == AccountStatus.active,
        )
    ).first()
    return account.id if account else None


def reject(*, session: Session, who: Who, post: Post, reason: str, now: datetime) -> Post:
    org = orgs.get(session=session, org_id=post.org_id)
    if not (may(who.actor, Action.post_review, org.path) or _is_cosigner(session, who, post)):
        raise Forbidden("只有稿件所属机构或会签机构的审核员可以退回稿件")
    post.status = rules.next_status(rules.Move.reject, post.status)
    session.add(
        Approval(
            post_id=_pk(post),
            version=post.current_version,
            kind=ApprovalKind.reject,
            org_id=_pk(org),
            reviewer_id=who.id,
            comment=reason,
            at=now,
            level=post.review_level,
        )
    )
    post.review_level = None
    post.reason = reason
    post.updated_at = now
    session.add(post)
    _audit(session, who, "post.reject", post, reason)
    notices.post_decided(session, post, reviewer=who.user, approved=False, reason=reason)
    return post


def _is_cosigner(session: Session, who: Who, post: Post) -> bool:
    return any(
        may(who.actor, Action.post_cosign, orgs.get(session=session, org_id=o).path)
        for o in post.cosign_org_ids
    )


def withdraw(*, session: Session, who: Who, post: Post, reason: str, now: datetime) -> list[int]:
    """Coordinated retraction. Returns published delivery ids to withdraw after commit."""
    _require(who, Action.delivery_manage, orgs.get(session=session, org_id=post.org_id))
    post.status = rules.next_status(rules.Move.withdraw, post.status)
    _cancel_unsent(session, post, now)
    published = session.exec(
        select(Delivery.id).where(
            Delivery.post_id == post.id, Delivery.status == DeliveryStatus.published
        )
    ).all()
    post.reason = reason
    post.updated_at = now
    session.add(post)
    _audit(session, who, "post.withdraw", post, f"{reason} ({len(published)} copies)")
    return [i for i in published if i is not None]


def correct(
    *,
    session: Session,
    who: Who,
    post: Post,
    note: str,
    title: str | None,
    body: str | None,
    summary: str | None,
    now: datetime,
) -> Post:
    """A correction: a new version with a visible note, reviewed again before it goes out."""
    _require(who, Action.post_write, orgs.get(session=session, org_id=post.org_id))
    post.status = rules.next_status(rules.Move.correct, post.status)
    current = version_of(session, post)
    _add_version(
        session,
        post,
        who,
        version=post.current_version + 1,
        title=(title or current.title).strip(),
        body=body or current.body,
        summary=summary if summary is not None else current.summary,
        images=current.images,
        overrides=current.overrides,
        now=now,
        correction_note=note,
    )
    chains.start(session, post)
    post.updated_at = now
    session.add(post)
    _audit(session, who, "post.correct", post, note)
    if post.status is PostStatus.in_review:
        notices.post_submitted(session, post, author=who.user)
    return post


# -- scheduling -----------------------------------------------------------------------------------


def release_due(*, session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Claim scheduled posts whose time has come (conditional update: one claimer wins).

    Returns (delivery ids to enqueue, ids of posts marked missed).
    """
    due = session.exec(
        select(Post).where(
            Post.status == PostStatus.scheduled,
            col(Post.scheduled_at) <= now,
        )
    ).all()
    to_enqueue: list[int] = []
    missed: list[int] = []
    for post in due:
        verdict = rules.due_release(
            scheduled_at=post.scheduled_at,
            now=now,
            missed_after=timedelta(minutes=get_settings().missed_window_minutes),
        )
        target = PostStatus.missed if verdict == "miss" else PostStatus.publishing
        claimed = session.execute(
            update(Post)
            .where(col(Post.id) == post.id, col(Post.status) == PostStatus.scheduled)
            .values(status=target, updated_at=now, released_at=now)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        if target is PostStatus.missed:
            _cancel_unsent(session, post, now)
            missed.append(post.id)  # type: ignore[arg-type]
            continue
        queued = session.exec(
            select(Delivery.id, Account.platform)
            .join(Account, col(Account.id) == col(Delivery.account_id))
            .where(
                Delivery.post_id == post.id,
                Delivery.version == post.approved_version,
                Delivery.status == DeliveryStatus.queued,
            )
            .order_by(col(Delivery.id))
        ).all()
        to_enqueue += channels.costliest_first((i, str(p)) for i, p in queued if i is not None)
    engine.mark_enqueued(session=session, delivery_ids=to_enqueue, now=now)
    return to_enqueue, missed


# -- manual delivery actions -----------------------------------------------------------------------


def delivery_action(
    *,
    session: Session,
    who: Who,
    delivery_id: int,
    action: str,
    now: datetime,
    remote_url: str = "",
) -> tuple[Delivery, list[int]]:
    from hub.delivery.rules import manual_refusal

    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("投递 %(delivery_id)s 不存在", delivery_id=delivery_id)
    post = get(session=session, post_id=delivery.post_id, who=who, action=Action.delivery_manage)
    refusal = manual_refusal(action, delivery.status)
    if refusal:
        raise Conflict(refusal)
    enqueue: list[int] = []
    if (
        action == "retry"
        and delivery.status is DeliveryStatus.unconfirmed
        and delivery.next_attempt_at is not None
    ):
        raise Conflict(
            "该投递仍在核对平台是否已发出（最长%(wechat_reconcile_grace_minutes)s分钟）：核对结束前不能重试，以免重复发布",
            wechat_reconcile_grace_minutes=get_settings().wechat_reconcile_grace_minutes,
        )
    if action == "retry":
        account = session.get(Account, delivery.account_id)
        if account is not None and account.status is not AccountStatus.active:
            raise Conflict(
                "账号「%(account)s」状态为 %(status)s，请先处理",
                account=account.name,
                status=account.status.value,
            )
        delivery.status = DeliveryStatus.queued
        delivery.next_attempt_at = None
        delivery.error = ""
        enqueue = [delivery_id]
        engine.mark_enqueued(session=session, delivery_ids=enqueue, now=now)
        if post.status in (PostStatus.failed, PostStatus.partly_failed, PostStatus.published):
            post.status = PostStatus.publishing
    elif action == "cancel":
        delivery.status = DeliveryStatus.cancelled
    elif action == "mark_published":
        if not remote_url.startswith(("http://", "https://")):
            raise Invalid("链接（remote_url）应为稿件在平台上的网址（http…）")
        delivery.status = DeliveryStatus.published
        delivery.remote_url = remote_url
        delivery.published_at = now
        delivery.error = ""
    delivery.updated_at = now
    session.add(delivery)
    session.add(post)
    session.flush()
    engine.settle_post(session, post.id, now)  # type: ignore[arg-type]
    _audit(session, who, f"delivery.{action}", post, f"delivery {delivery_id}")
    return delivery, enqueue
