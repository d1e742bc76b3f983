"""Live sessions: create, start, end; write, edit, delete, pin and approve entries; fan out.

Every change appends to ``live_events`` in the same transaction and returns the broadcast
messages; the caller publishes them after commit (``hub.live.web``). Sequence numbers and event
ids are taken from counters on the session row, incremented with an UPDATE that holds the row's
lock until commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from hub.accounts.models import Account, AccountStatus, Platform
from hub.auditlog.service import audit, record
from hub.config import get_settings
from hub.delivery import channels
from hub.delivery import service as engine
from hub.delivery.models import Delivery, DeliveryStatus
from hub.delivery.rules import valid_ip
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.live import rules
from hub.live.broadcast import Message
from hub.live.models import (
    EntryCreate,
    EntryRevision,
    EntryUpdate,
    EventType,
    LiveEntry,
    LiveEvent,
    LiveFanout,
    LiveSession,
    LiveSessionCreate,
    LiveSessionPublic,
    LiveStatus,
)
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.posts import rules as post_rules
from hub.posts import service as posts
from hub.posts.models import Approval, ApprovalKind, Post, PostCreate, PostStatus, PostVersion
from hub.proofread import rules as proofread_rules
from hub.proofread import service as proofread
from hub.users.models import User
from hub.users.rules import Action, may, sees
from hub.users.service import actor_of
from hub.users.who import Who


def _pk(row: LiveSession | LiveEntry | Org | User | Account | Post) -> int:
    assert row.id is not None
    return row.id


def public_url(live: LiveSession) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/live/{live.slug}"


def to_public(live: LiveSession) -> LiveSessionPublic:
    return LiveSessionPublic(
        id=_pk(live),
        slug=live.slug,
        title=live.title,
        meeting_kind=live.meeting_kind,
        status=live.status,
        org_id=live.org_id,
        starts_at=live.starts_at,
        started_at=live.started_at,
        ended_at=live.ended_at,
        target_account_ids=live.target_account_ids,
        editor_ids=live.editor_ids,
        approval_required=live.approval_required,
        approver_ids=live.approver_ids,
        plan=live.plan,
        plan_approved_by=live.plan_approved_by,
        plan_approved_at=live.plan_approved_at,
        poll_interval_seconds=live.poll_interval_seconds,
        last_seq=live.last_seq,
        last_event_id=live.last_event_id,
        summary_post_id=live.summary_post_id,
        public_url=public_url(live),
    )


def _audit(session: Session, who: Who, action: str, live: LiveSession, summary: str) -> None:
    audit(session, who, action, "live_session", live.id, org_id=live.org_id, summary=summary)


# -- loading and permissions ----------------------------------------------------------------------


def get(*, session: Session, live_id: int) -> LiveSession:
    live = session.get(LiveSession, live_id)
    if live is None:
        raise NotFound("微直播 %(live_id)s 不存在", live_id=live_id)
    return live


def get_by_slug(*, session: Session, slug: str) -> LiveSession:
    live = session.exec(select(LiveSession).where(LiveSession.slug == slug)).first()
    if live is None:
        raise NotFound("微直播 %(slug)r 不存在", slug=slug)
    return live


def require_visible(session: Session, who: Who, live: LiveSession) -> Org:
    """404 unless the session's org is within the caller's reach (its existence must not leak)."""
    org = orgs.get(session=session, org_id=live.org_id)
    if not sees(who.actor, org.path):
        raise NotFound("微直播 %(live_id)s 不存在", live_id=live.id)
    return org


def require_run(session: Session, who: Who, live: LiveSession) -> Org:
    """Action.live_run on the session's org (the one rule: users.rules.may): 404 outside the
    caller's reach, 403 without the right, before anything looks at the session's state."""
    org = require_visible(session, who, live)
    if not may(who.actor, Action.live_run, org.path):
        raise Forbidden(
            "您的角色（%(role)s）在%(org)s没有 %(live_run)s 权限",
            role=who.user.role.value,
            live_run=Action.live_run.value,
            org=org.name,
        )
    return org


def is_chief(session: Session, who: Who, live: LiveSession) -> bool:
    """The session's chief editor (总编): its creator, or a reviewer of its org."""
    if who.id == live.created_by:
        return True
    org = orgs.get(session=session, org_id=live.org_id)
    return may(who.actor, Action.post_review, org.path)


def may_view_console(session: Session, who: Who, live: LiveSession) -> bool:
    org = orgs.get(session=session, org_id=live.org_id)
    return (
        may(who.actor, Action.live_run, org.path)
        or is_chief(session, who, live)
        or (who.id in live.approver_ids and sees(who.actor, org.path))
    )


# -- sessions -------------------------------------------------------------------------------------


def _check_targets(session: Session, org: Org, account_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(account_ids))
    for account_id in ids:
        account = session.get(Account, account_id)
        if account is None:
            raise Invalid(
                "目标账号 %(account_id)s 不存在", field="target_account_ids", account_id=account_id
            )
        owner = orgs.get(session=session, org_id=account.org_id)
        if not owner.path.startswith(org.path):
            raise Invalid(
                "目标账号「%(account)s」不属于%(org)s或其下级机构",
                field="target_account_ids",
                account=account.name,
                org=org.name,
            )
    return ids


def create_session(
    *, session: Session, who: Who, data: LiveSessionCreate, now: datetime
) -> LiveSession:
    try:
        org = (
            orgs.get_by_code(session=session, code=data.org_code)
            if data.org_code
            else orgs.get(session=session, org_id=who.user.org_id)
        )
    except NotFound:
        raise Invalid(
            "没有代码为 %(org_code)s 的机构", field="org_code", org_code=data.org_code
        ) from None
    if not may(who.actor, Action.live_run, org.path):
        raise Forbidden("您不能为%(org)s开设直播（须为本机构或上级机构的编辑）", org=org.name)
    if data.starts_at is not None and data.starts_at.tzinfo is None:
        raise Invalid("开始时间须带时区，例如 2026-12-01T09:00:00+08:00", field="starts_at")
    for user_id in data.editor_ids:
        if session.get(User, user_id) is None:
            raise Invalid("编辑 %(user_id)s 不存在", field="editor_ids", user_id=user_id)
    approvers = _check_approvers(session, org, who.id, data.approver_ids)
    live = LiveSession(
        slug=f"{now.astimezone(get_settings().tz):%Y%m%d}-{secrets.token_urlsafe(6)}".lower(),
        title=data.title.strip(),
        meeting_kind=data.meeting_kind,
        org_id=_pk(org),
        created_by=who.id,
        editor_ids=list(dict.fromkeys([who.id, *data.editor_ids])),
        target_account_ids=_check_targets(session, org, data.target_account_ids),
        starts_at=data.starts_at,
        approval_required=data.approval_required,
        approver_ids=approvers,
        plan=data.plan.strip(),
        poll_interval_seconds=data.poll_interval_seconds,
        created_at=now,
    )
    session.add(live)
    session.flush()
    _audit(session, who, "live.create", live, f"「{live.title}」")
    return live


def _check_approvers(
    session: Session, org: Org, creator_id: int, approver_ids: Sequence[int]
) -> list[int]:
    """The session's key-event approvers: existing, active users who run live sessions or review
    posts for the session's org; never its creator (a key event needs a second person)."""
    ids = list(dict.fromkeys(approver_ids))
    problem = rules.approvers_problem(creator_id, ids)
    if problem:
        raise Invalid(problem, field="approver_ids")
    for user_id in ids:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise Invalid(
                "审核人 %(user_id)s 不存在或已停用", field="approver_ids", user_id=user_id
            )
        actor = actor_of(session=session, user=user)
        if not (may(actor, Action.live_run, org.path) or may(actor, Action.post_review, org.path)):
            raise Invalid(
                "%(username)s 不能审核%(org)s的直播要点（须能运行直播或审核稿件）",
                field="approver_ids",
                username=user.username,
                org=org.name,
            )
    return ids


def configure(
    *,
    session: Session,
    who: Who,
    live: LiveSession,
    approver_ids: Sequence[int] | None,
    plan: str | None,
) -> None:
    """Change the approvers or the plan. A changed plan loses its approval, and a plan cannot
    change once the session has started (what was approved is what covers the session)."""
    org = require_run(session, who, live)
    if approver_ids is not None:
        live.approver_ids = _check_approvers(session, org, live.created_by, approver_ids)
        _audit(session, who, "live.approvers", live, ",".join(map(str, live.approver_ids)))
    if plan is not None and plan.strip() != live.plan:
        if live.status is not LiveStatus.scheduled:
            raise Conflict("直播已开始，预先审定的方案不能再修改")
        live.plan = plan.strip()
        live.plan_approved_by = None
        live.plan_approved_at = None
        _audit(session, who, "live.plan", live, live.plan[:200])
    session.add(live)


def approve_plan(*, session: Session, who: Who, live: LiveSession, now: datetime) -> None:
    """A reviewer of the session's org (not its creator) approves the plan before the start:
    key events of the session then go out without a per-event approval."""
    org = require_visible(session, who, live)
    if not may(who.actor, Action.post_review, org.path):
        raise Forbidden("只有本机构的审核人可以审定直播方案")
    if who.id == live.created_by:
        raise Forbidden("直播的创建人不能审定自己的方案（须由另一名审核人审定）")
    if live.status is not LiveStatus.scheduled:
        raise Conflict("直播已开始：方案须在开始前审定，之后的要点逐条审核")
    if not live.plan:
        raise Invalid("方案为空：请先写明本场直播预计发布的要点或范围", field="plan")
    live.plan_approved_by = who.id
    live.plan_approved_at = now
    session.add(live)
    _audit(session, who, "live.plan.approve", live, live.plan[:200])


def may_approve_plan(session: Session, who: Who, live: LiveSession) -> bool:
    """Would :func:`approve_plan` accept this user now (for the console's button)?"""
    org = orgs.get(session=session, org_id=live.org_id)
    return (
        may(who.actor, Action.post_review, org.path)
        and who.id != live.created_by
        and live.status is LiveStatus.scheduled
        and bool(live.plan)
        and live.plan_approved_at is None
    )


def plan_approver_name(session: Session, live: LiveSession) -> str:
    if live.plan_approved_by is None:
        return ""
    return _names(session, {live.plan_approved_by}).get(live.plan_approved_by, "")


def key_state(live: LiveSession, entry: LiveEntry) -> str:
    return rules.key_state(
        key_event=entry.key_event,
        deleted=entry.deleted,
        key_approved=entry.key_approved_by is not None,
        plan_approved_at=live.plan_approved_at,
        started_at=live.started_at,
    )


def pending_key_events(*, session: Session, live: LiveSession) -> list[dict[str, Any]]:
    """Key events waiting for an approver before they may reach social media (the console)."""
    rows = [
        e
        for e in visible_entries(session=session, live=live)
        if key_state(live, e) == rules.KEY_PENDING
    ]
    names = _names(session, {e.author_id for e in rows})
    return [
        {**entry_data(e, names.get(e.author_id, "")), "key_state": rules.KEY_PENDING} for e in rows
    ]


def approve_key_event(
    *, session: Session, who: Who, live: LiveSession, seq: int, now: datetime
) -> tuple[LiveEntry, list[Message]]:
    """One click in the console: an approver (never the key event's author) releases it to
    social media; the next fan-out sends it."""
    require_visible(session, who, live)
    entry = _entry(session, live, seq)
    refusal = rules.key_approval_refusal(
        user_id=who.id,
        approver_ids=live.approver_ids,
        author_id=entry.author_id,
        key_by=entry.key_by,
    )
    if refusal:
        raise Forbidden(refusal)
    if not entry.key_event or entry.deleted:
        raise Conflict("第%(seq)s条不是要点（或已删除），无需审核", seq=seq)
    if entry.key_approved_by is not None:
        raise Conflict("第%(seq)s条要点已经审核通过", seq=seq)
    if not entry.approved:
        raise Conflict("第%(seq)s条尚未由总编通过，读者还看不到它", seq=seq)
    entry.key_approved_by = who.id
    entry.key_approved_at = now
    entry.client_ip = valid_ip(who.client_ip) or entry.client_ip  # the approver releases it
    session.add(entry)
    _audit(session, who, "live.key.approve", live, f"#{seq}")
    return entry, [_key_notice(live, entry)]


def _key_notice(live: LiveSession, entry: LiveEntry) -> Message:
    """A console-only nudge: the list of key events waiting for approval changed."""
    return {
        "session": live.id,
        "id": None,
        "type": "pending",
        "data": {"seq": entry.seq, "key_state": key_state(live, entry)},
        "console": True,
    }


def _take(session: Session, live: LiveSession, counter: str) -> int:
    """Increment a counter on the session row (its lock is held until commit) and return it."""
    column = getattr(LiveSession, counter)
    session.execute(
        update(LiveSession).where(col(LiveSession.id) == live.id).values({counter: column + 1})
    )
    value = session.exec(select(column).where(LiveSession.id == live.id)).one()
    setattr(live, counter, value)
    return int(value)


def _event(
    session: Session,
    live: LiveSession,
    kind: EventType,
    data: dict[str, Any],
    now: datetime,
    seq: int | None = None,
) -> Message:
    event_id = _take(session, live, "last_event_id")
    session.add(
        LiveEvent(
            session_id=_pk(live),
            event_id=event_id,
            type=kind,
            seq=seq,
            payload=data,
            created_at=now,
        )
    )
    return {"session": live.id, "id": event_id, "type": kind.value, "data": data}


def _status_data(live: LiveSession) -> dict[str, Any]:
    return {"status": live.status.value, "poll_interval": live.poll_interval_seconds}


def start(*, session: Session, who: Who, live: LiveSession, now: datetime) -> list[Message]:
    require_run(session, who, live)
    live.status = rules.next_status("start", live.status)
    live.started_at = now
    session.add(live)
    _audit(session, who, "live.start", live, "")
    return [_event(session, live, EventType.status, _status_data(live), now)]


def end(
    *, session: Session, who: Who, live: LiveSession, now: datetime
) -> tuple[list[Message], Post | None]:
    """End the session: a final status event, and the summary post (WeChat, hall) in review."""
    require_run(session, who, live)
    live.status = rules.next_status("end", live.status)
    live.ended_at = now
    session.add(live)
    summary = _summary_post(session, who, live, now)
    live.summary_post_id = summary.id if summary is not None else None
    _audit(
        session,
        who,
        "live.end",
        live,
        f"summary post {summary.id} ({summary.status.value})" if summary else "no summary post",
    )
    return [_event(session, live, EventType.status, _status_data(live), now)], summary


def _summary_post(session: Session, who: Who, live: LiveSession, now: datetime) -> Post | None:
    entries = visible_entries(session=session, live=live)
    key_points = [e.text for e in entries if e.key_event and not e.deleted]
    images = [path for e in entries if not e.deleted for path in e.images][:1]
    targets = [
        a.id
        for a in _accounts(session, live.target_account_ids)
        if a.platform in (Platform("wechat"), Platform("hall")) and a.id is not None
    ]
    org = orgs.get(session=session, org_id=live.org_id)
    if not may(who.actor, Action.post_write, org.path):
        return None
    post = posts.create(
        session=session,
        who=who,
        data=PostCreate(
            title=f"{live.title}（图文直播回顾）"[:200],
            body=rules.summary_body(key_points=key_points, archive_link=public_url(live)),
            summary=(key_points[0] if key_points else live.title)[:2000],
            images=images,
            target_account_ids=targets,
            org_code=org.code,
        ),
        now=now,
    )
    try:
        posts.submit(session=session, who=who, post=post, now=now)
    except (Invalid, Conflict) as exc:  # e.g. WeChat wants a cover: the editor finishes it
        post.reason = f"直播结束时未能提交审核：{exc.message}"
        session.add(post)
    return post


def set_poll_interval(
    *, session: Session, who: Who, live: LiveSession, seconds: int, now: datetime
) -> list[Message]:
    require_run(session, who, live)
    live.poll_interval_seconds = seconds
    session.add(live)
    _audit(session, who, "live.poll_interval", live, f"{seconds}s")
    return [_event(session, live, EventType.status, _status_data(live), now)]


# -- entries --------------------------------------------------------------------------------------


def _accounts(session: Session, ids: Sequence[int]) -> list[Account]:
    if not ids:
        return []
    return list(session.exec(select(Account).where(col(Account.id).in_(list(ids)))).all())


def _names(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.exec(select(User).where(col(User.id).in_(list(user_ids)))).all()
    return {_pk(u): u.display_name or u.username for u in rows}


def entry_data(entry: LiveEntry, author: str) -> dict[str, Any]:
    tz = get_settings().tz
    return {
        "seq": entry.seq,
        "text": "" if entry.deleted else entry.text,
        "images": [] if entry.deleted else [image_url(p) for p in entry.images],
        "key_event": entry.key_event,
        "pinned": entry.pinned,
        "author": author,
        "created_at": entry.created_at.isoformat(),
        "time": entry.created_at.astimezone(tz).strftime("%H:%M"),
        "edited_at": entry.edited_at.isoformat() if entry.edited_at else None,
        "edited_time": entry.edited_at.astimezone(tz).strftime("%H:%M") if entry.edited_at else "",
        "correction_note": entry.correction_note,
        "deleted": entry.deleted,
        "approved": entry.approved,
    }


def entry_public(*, session: Session, entry: LiveEntry) -> dict[str, Any]:
    return entry_data(entry, _names(session, {entry.author_id}).get(entry.author_id, ""))


def image_url(path: str) -> str:
    return f"/media/{path}"


def _entry(session: Session, live: LiveSession, seq: int) -> LiveEntry:
    entry = session.exec(
        select(LiveEntry).where(LiveEntry.session_id == live.id, LiveEntry.seq == seq)
    ).first()
    if entry is None:
        raise NotFound("微直播 %(live_id)s 没有第%(seq)s条", seq=seq, live_id=live.id)
    return entry


def _check_images(paths: Sequence[str]) -> list[str]:
    from pathlib import Path

    media = Path(get_settings().media_dir).resolve()
    for path in paths:
        target = (media / path).resolve()
        if not target.is_relative_to(media) or not target.is_file():
            raise Invalid("图片 %(path)r 尚未上传", field="images", path=path)
    return list(paths)


def _require_writable(live: LiveSession) -> None:
    if not rules.accepts_entries(live.status):
        raise Conflict(
            "微直播当前状态为「%(status)s」，条目不能再修改", status=rules.STATUS_WORDS[live.status]
        )


def proofread_entry(session: Session, org: Org, text: str) -> list[dict[str, Any]]:
    """Before an entry goes out: ``block`` hits refuse it (422 naming each), ``warn`` hits are
    returned for the console (never sent to readers)."""
    hits = proofread.check(session, org, {"text": text})
    refusal = proofread_rules.refusal(hits, "发布")
    if refusal:
        raise Invalid(refusal, field="text")
    return [proofread.hit_public(h) for h in proofread_rules.warnings(hits)]


def add_entry(
    *, session: Session, who: Who, live: LiveSession, data: EntryCreate, now: datetime
) -> tuple[LiveEntry, list[Message]]:
    org = require_run(session, who, live)
    _require_writable(live)
    warnings = proofread_entry(session, org, data.text.strip())
    approved = not live.approval_required or is_chief(session, who, live)
    entry = LiveEntry(
        session_id=_pk(live),
        seq=_take(session, live, "last_seq"),
        text=data.text.strip(),
        images=_check_images(data.images),
        key_event=data.key_event,
        pinned=data.pinned,
        author_id=who.id,
        created_at=now,
        approved=approved,
        client_ip=valid_ip(who.client_ip),
        key_by=who.id if data.key_event else None,
    )
    if not entry.text:
        raise Invalid("内容不能为空", field="text")
    session.add(entry)
    session.flush()
    author = who.user.display_name or who.user.username
    checked: list[Message] = []
    if warnings:  # consoles only: the warnings of what was just written
        notice = {"seq": entry.seq, "hits": warnings}
        checked = [
            {"session": live.id, "id": None, "type": "proofread", "data": notice, "console": True}
        ]
    if not approved:
        notice = {"seq": entry.seq, "author": author, "text": entry.text}
        return entry, [
            {"session": live.id, "id": None, "type": "pending", "data": notice, "console": True},
            *checked,
        ]
    data_out = entry_data(entry, author)
    messages = [_event(session, live, EventType.entry, data_out, now, seq=entry.seq)]
    if key_state(live, entry) == rules.KEY_PENDING:
        messages.append(_key_notice(live, entry))
    return entry, [*messages, *checked]


def approve_entry(
    *, session: Session, who: Who, live: LiveSession, seq: int, now: datetime
) -> tuple[LiveEntry, list[Message]]:
    require_visible(session, who, live)
    if not is_chief(session, who, live):
        raise Forbidden("只有本场直播的总编（创建人或审核人）可以审核通过")
    _require_writable(live)
    entry = _entry(session, live, seq)
    if entry.approved:
        raise Conflict("第%(seq)s条已经审核通过", seq=seq)
    entry.approved = True
    entry.client_ip = valid_ip(who.client_ip) or entry.client_ip  # the approver releases it
    session.add(entry)
    _audit(session, who, "live.entry.approve", live, f"#{seq}")
    author = _names(session, {entry.author_id}).get(entry.author_id, "")
    messages = [_event(session, live, EventType.entry, entry_data(entry, author), now, seq=seq)]
    if key_state(live, entry) == rules.KEY_PENDING:
        messages.append(_key_notice(live, entry))
    return entry, messages


def _revise(session: Session, who: Who, entry: LiveEntry, now: datetime) -> None:
    session.add(
        EntryRevision(
            entry_id=entry.id,  # type: ignore[arg-type]
            text=entry.text,
            images=list(entry.images),
            key_event=entry.key_event,
            correction_note=entry.correction_note,
            changed_by=who.id,
            changed_at=now,
        )
    )


def update_entry(
    *, session: Session, who: Who, live: LiveSession, seq: int, data: EntryUpdate, now: datetime
) -> tuple[LiveEntry, list[Message]]:
    """An edit of the text is a correction (shown as 「已更正 HH:MM」); pinning is not."""
    org = require_run(session, who, live)
    _require_writable(live)
    entry = _entry(session, live, seq)
    if entry.deleted:
        raise Conflict("第%(seq)s条已删除，不能再修改", seq=seq)
    kind = EventType.pin
    text_changed = data.text is not None and data.text.strip() != entry.text
    if data.text is not None and text_changed:
        proofread_entry(session, org, data.text.strip())
    if text_changed or (data.key_event is not None and data.key_event != entry.key_event):
        if text_changed and entry.approved and not data.correction_note.strip():
            raise Invalid("请说明更正了什么（更正说明）", field="correction_note")
        _revise(session, who, entry, now)
        if data.text is not None:
            entry.text = data.text.strip()
        if data.key_event is not None:
            if data.key_event and not entry.key_event:  # who makes it a key event sends it
                entry.client_ip = valid_ip(who.client_ip) or entry.client_ip
                entry.key_by = who.id
            entry.key_event = data.key_event
        if text_changed or not entry.key_event:
            # what an approver released is the text they saw: a change needs approving again
            entry.key_approved_by = None
            entry.key_approved_at = None
        if text_changed and entry.approved:
            entry.edited_at = now
            entry.correction_note = data.correction_note.strip()
        kind = EventType.update
    if data.pinned is not None:
        entry.pinned = data.pinned
    session.add(entry)
    session.flush()
    author = _names(session, {entry.author_id}).get(entry.author_id, "")
    if not entry.approved:
        return entry, []
    _audit(session, who, f"live.entry.{kind.value}", live, f"#{seq} {data.correction_note}")
    messages = [_event(session, live, kind, entry_data(entry, author), now, seq=seq)]
    if kind is EventType.update and entry.key_event:
        messages.append(_key_notice(live, entry))
    return entry, messages


def delete_entry(
    *, session: Session, who: Who, live: LiveSession, seq: int, note: str, now: datetime
) -> tuple[LiveEntry, list[Message]]:
    """A deletion keeps the row and its history; readers see 「已删除」 and the note."""
    require_run(session, who, live)
    _require_writable(live)
    entry = _entry(session, live, seq)
    if entry.deleted:
        raise Conflict("第%(seq)s条已经删除", seq=seq)
    _revise(session, who, entry, now)
    entry.deleted = True
    entry.edited_at = now
    entry.correction_note = note.strip()
    session.add(entry)
    session.flush()
    _audit(session, who, "live.entry.delete", live, f"#{seq} {note}")
    if not entry.approved:
        return entry, []
    author = _names(session, {entry.author_id}).get(entry.author_id, "")
    return entry, [_event(session, live, EventType.delete, entry_data(entry, author), now, seq=seq)]


def visible_entries(
    *, session: Session, live: LiveSession, after: int = 0, include_pending: bool = False
) -> list[LiveEntry]:
    query = select(LiveEntry).where(LiveEntry.session_id == live.id, LiveEntry.seq > after)
    if not include_pending:
        query = query.where(col(LiveEntry.approved).is_(True))
    return list(session.exec(query.order_by(col(LiveEntry.seq))).all())


def entries_data(
    *, session: Session, live: LiveSession, after: int = 0, include_pending: bool = False
) -> list[dict[str, Any]]:
    rows = visible_entries(session=session, live=live, after=after, include_pending=include_pending)
    names = _names(session, {e.author_id for e in rows})
    return [entry_data(e, names.get(e.author_id, "")) for e in rows]


def revisions(*, session: Session, live: LiveSession) -> dict[int, list[EntryRevision]]:
    rows = session.exec(
        select(EntryRevision, LiveEntry.seq)
        .join(LiveEntry, col(LiveEntry.id) == col(EntryRevision.entry_id))
        .where(LiveEntry.session_id == live.id)
        .order_by(col(EntryRevision.id))
    ).all()
    out: dict[int, list[EntryRevision]] = {}
    for revision, seq in rows:
        out.setdefault(seq, []).append(revision)
    return out


def events_between(
    *, session: Session, live_id: int, after: int, upto: int | None
) -> list[Message]:
    """Events ``after < id <= upto`` in order, as broadcast messages (replay, gap filling)."""
    query = select(LiveEvent).where(LiveEvent.session_id == live_id, LiveEvent.event_id > after)
    if upto is not None:
        query = query.where(LiveEvent.event_id <= upto)
    rows = session.exec(query.order_by(col(LiveEvent.event_id))).all()
    return [
        {"session": live_id, "id": r.event_id, "type": r.type.value, "data": r.payload}
        for r in rows
    ]


def event_heads(*, session: Session, live_ids: Sequence[int]) -> dict[int, int]:
    """The last event id of each session in ``live_ids``, in one query (the broadcaster's poll)."""
    rows = session.exec(
        select(LiveSession.id, LiveSession.last_event_id).where(col(LiveSession.id).in_(live_ids))
    ).all()
    return {int(live_id): int(head) for live_id, head in rows if live_id is not None}


# -- fan-out of key events to Weibo ---------------------------------------------------------------


def _recent_sends(session: Session, account_id: int, now: datetime) -> list[datetime]:
    """When the account was last sent to: deliveries of any post created in the last hour."""
    rows = session.exec(
        select(Delivery.created_at).where(
            Delivery.account_id == account_id,
            col(Delivery.created_at) > now - rules.WINDOW,
            col(Delivery.status).not_in([DeliveryStatus.cancelled]),
        )
    ).all()
    return list(rows)


def fanout(*, session: Session, now: datetime) -> list[int]:
    """Send pending key events of live sessions to their Weibo accounts; delivery ids to enqueue.

    Per account, :func:`hub.live.rules.fanout_decision` says whether to send now (every pending
    key event, merged when several) or wait. Only key events a second person released go out:
    approved by one of the session's approvers, or covered by the plan a reviewer approved before
    the start. The post is created approved, with the approval recorded as theirs.
    """
    per_hour = channels.connector_for("weibo").limits.posts_per_hour or 30
    to_enqueue: list[int] = []
    sessions = session.exec(
        select(LiveSession).where(col(LiveSession.status).in_([LiveStatus.live, LiveStatus.ended]))
    ).all()
    for live in sessions:
        if live.status is LiveStatus.ended and (
            live.ended_at is None or live.ended_at < now - timedelta(hours=1)
        ):
            continue
        weibo = [
            a
            for a in _accounts(session, live.target_account_ids)
            if a.platform == "weibo" and a.status is AccountStatus.active
        ]
        if not weibo:
            continue
        keys = [
            e
            for e in visible_entries(session=session, live=live)
            if key_state(live, e) in (rules.KEY_APPROVED, rules.KEY_PLAN)
        ]
        for account in weibo:
            done = set(
                session.exec(
                    select(LiveFanout.seq).where(
                        LiveFanout.session_id == live.id, LiveFanout.account_id == account.id
                    )
                ).all()
            )
            pending = [
                rules.Pending(e.seq, e.created_at, e.text) for e in keys if e.seq not in done
            ]
            decision = rules.fanout_decision(
                recent_sends=_recent_sends(session, _pk(account), now),
                pending=pending,
                now=now,
                per_hour=per_hour,
            )
            if isinstance(decision, rules.Send):
                chosen = [p for p in pending if p.seq in decision.seqs]
                # Weibo's rip: the console user who released the latest of these key events
                ips = [e.client_ip for e in keys if e.seq in decision.seqs and e.client_ip]
                ip = ips[-1] if ips else ""
                approvers = [
                    e.key_approved_by or live.plan_approved_by or live.created_by
                    for e in keys
                    if e.seq in decision.seqs
                ]
                to_enqueue += _send_key_events(
                    session, live, account, chosen, now, client_ip=ip, approvers=approvers
                )
    return to_enqueue


def _send_key_events(
    session: Session,
    live: LiveSession,
    account: Account,
    events: list[rules.Pending],
    now: datetime,
    *,
    client_ip: str = "",
    approvers: Sequence[int] = (),
) -> list[int]:
    """One post of the chosen key events, approved by whoever approved them (the approvers of
    the events, or the reviewer of the plan), never by their author alone."""
    deciders = list(dict.fromkeys(approvers)) or [live.plan_approved_by or live.created_by]
    deciding = session.get(User, deciders[-1])
    assert deciding is not None
    by_plan = all(e.key_approved_by is None for e in _entries_of(session, live, events))
    link = public_url(live)
    anchor = f"{link}#e{events[0].seq}"
    title = live.title if len(events) == 1 else f"{live.title}·要点{len(events)}条"
    post = Post(
        org_id=live.org_id,
        author_id=live.created_by,
        title=title[:200],
        status=PostStatus.publishing,
        approved_version=1,
        target_account_ids=[_pk(account)],
        created_at=now,
        updated_at=now,
        released_at=now,
    )
    session.add(post)
    session.flush()
    hall_link = channels.post_link(_pk(post))
    text = rules.weibo_text(
        title=live.title,
        events=[e.text for e in events],
        hall_link=hall_link,
        live_link=anchor,
    )
    body = rules.merged_body([(e.seq, e.text) for e in events], link)
    session.add(
        PostVersion(
            post_id=_pk(post),
            version=1,
            title=post.title,
            body=body,
            summary="",
            link=hall_link,
            overrides={"weibo.text": text},
            content_hash=post_rules.content_hash(
                title=post.title, body=body, summary="", images=[], overrides={"weibo.text": text}
            ),
            author_id=live.created_by,
            created_at=now,
        )
    )
    for decider in deciders:
        session.add(
            Approval(
                post_id=_pk(post),
                version=1,
                kind=ApprovalKind.approve,
                org_id=live.org_id,
                reviewer_id=decider,
                comment=(
                    f"直播要点（场次 {live.id}）在预先审定的方案范围内"
                    if by_plan
                    else f"直播要点（场次 {live.id}）经审核人在控制台通过"
                ),
                at=now,
                client_ip=client_ip,
            )
        )
    for event in events:
        session.add(
            LiveFanout(
                session_id=_pk(live),
                account_id=_pk(account),
                seq=event.seq,
                post_id=_pk(post),
                created_at=now,
            )
        )
    record(
        session=session,
        actor_id=deciding.id,
        actor_name=deciding.username,
        action="post.approve",
        object_type="post",
        object_id=post.id,
        org_id=live.org_id,
        summary=(
            ("v1 within the plan approved for" if by_plan else "v1 key events approved in")
            + f" live session {live.id} 「{live.title}」 (key events "
            + ", ".join(f"#{e.seq}" for e in events)
            + f" → {account.name})"
        ),
    )
    deliveries = engine.create_deliveries(
        session=session, post_id=_pk(post), version=1, account_ids=[_pk(account)], not_before=None
    )
    for delivery in deliveries:
        delivery.created_at = now  # the send's time, as the pacing rule counts it
        session.add(delivery)
    ids = [d.id for d in deliveries if d.id is not None]
    engine.mark_enqueued(session=session, delivery_ids=ids, now=now)
    return ids


def _entries_of(
    session: Session, live: LiveSession, events: Sequence[rules.Pending]
) -> list[LiveEntry]:
    seqs = [e.seq for e in events]
    return list(
        session.exec(
            select(LiveEntry).where(LiveEntry.session_id == live.id, col(LiveEntry.seq).in_(seqs))
        ).all()
    )
