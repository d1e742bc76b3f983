"""Notifications: who is told (rules), written in one transaction with the event, and sent by
e-mail and group robot afterwards.

Each event hook (:func:`post_submitted`, :func:`post_decided`, :func:`copy_settled`,
:func:`remind_tokens`, :func:`deadline_reached`) writes one row per recipient inside the
caller's transaction, in a savepoint: a notification that cannot be written never undoes the
event. The e-mail and robot channels are queued on the session and sent as Celery tasks after
the transaction commits (``notify.send``): a request never waits for an SMTP server or a robot,
and a rolled-back event sends nothing. :func:`send` retries a few times (tenacity) and logs
what still fails; it never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import event, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from connectors.outbound import Unresolvable, UnsafeTarget, check_target, pinned_request
from hub.accounts.models import Account, AccountStatus
from hub.auditlog.service import audit
from hub.clocks.notify import Mailer, mailer_from_settings
from hub.config import Settings, get_settings
from hub.errors import Invalid
from hub.notify import rules
from hub.notify.models import Notification, NotifyPreference, NotifyWebhook
from hub.orgs.models import Org
from hub.platforms import label as platform_label
from hub.security import seal_text, unseal_text
from hub.sqltypes import utcnow
from hub.users.models import Role, User
from hub.users.service import actor_of
from hub.users.who import Who

log = logging.getLogger(__name__)

OUTBOX = "govhub_notify_outbox"
EXTERNAL = (rules.Channel.email, rules.Channel.robot)


# -- choices --------------------------------------------------------------------------------------


def choices_of(session: Session, user_ids: Iterable[int]) -> dict[int, dict[tuple[str, str], bool]]:
    ids = list(set(user_ids))
    out: dict[int, dict[tuple[str, str], bool]] = {i: {} for i in ids}
    if ids:
        for row in session.exec(
            select(NotifyPreference).where(col(NotifyPreference.user_id).in_(ids))
        ).all():
            out[row.user_id][(row.kind, row.channel)] = row.enabled
    return out


def set_choice(session: Session, user: User, kind: str, channel: str, enabled: bool) -> None:
    if kind not in rules.Kind.__members__ or channel not in rules.Channel.__members__:
        raise Invalid("没有这种通知或渠道", field="kind")
    row = session.exec(
        select(NotifyPreference).where(
            NotifyPreference.user_id == user.id,
            NotifyPreference.kind == kind,
            NotifyPreference.channel == channel,
        )
    ).first()
    row = row or NotifyPreference(user_id=user.id, kind=kind, channel=channel, enabled=enabled)  # type: ignore[arg-type]
    row.enabled = enabled
    session.add(row)
    session.flush()


def preferences(session: Session, user: User) -> list[dict[str, Any]]:
    mine = choices_of(session, [user.id])[user.id]  # type: ignore[index,list-item]
    return [
        {
            "kind": kind.value,
            "kind_label": rules.KIND_LABELS[kind],
            **{ch.value: rules.wants(mine, kind, ch) for ch in rules.Channel},
        }
        for kind in rules.Kind
    ]


# -- writing --------------------------------------------------------------------------------------


def notify(
    session: Session,
    user_ids: Iterable[int],
    message: rules.Message,
    *,
    dedupe: str | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Write ``message`` for each user who wants it on some channel; queue its e-mail and robot
    sending for after the commit. The ids written (a ``dedupe`` key already used: skipped)."""
    now = now or utcnow()
    ids = [i for i in dict.fromkeys(user_ids)]
    active = set(
        session.exec(
            select(User.id).where(col(User.id).in_(ids), col(User.is_active).is_(True))
        ).all()
    )
    choices = choices_of(session, active)  # type: ignore[arg-type]
    written: list[int] = []
    for user_id in ids:
        if user_id not in active:
            continue
        mine = choices[user_id]
        wanted = [ch for ch in rules.Channel if rules.wants(mine, message.kind, ch)]
        if not wanted:
            continue
        row = Notification(
            user_id=user_id,
            kind=message.kind.value,
            title=message.title[:300],
            body=message.body,
            link=message.link[:500],
            in_app=rules.Channel.in_app in wanted,
            dedupe=dedupe,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # told already
        written.append(row.id)  # type: ignore[arg-type]
        for channel in wanted:
            if channel in EXTERNAL:
                _outbox(session).append((row.id, channel.value))  # type: ignore[arg-type]
    return written


def _outbox(session: Session) -> list[tuple[int, str]]:
    box: list[tuple[int, str]] | None = session.info.get(OUTBOX)
    if box is None:
        box = session.info[OUTBOX] = []
        event.listen(session, "after_commit", _send_outbox)
        event.listen(session, "after_soft_rollback", _drop_outbox)
    return box


def _send_outbox(session: Session) -> None:
    box: list[tuple[int, str]] = session.info.get(OUTBOX) or []
    pending, box[:] = list(box), []
    if pending:
        enqueue(pending)


def _drop_outbox(session: Session, previous: Any) -> None:
    if not previous.nested and previous.parent is None:
        box: list[tuple[int, str]] = session.info.get(OUTBOX) or []
        box.clear()


def enqueue(pending: Iterable[tuple[int, str]]) -> int:
    """One ``notify.send`` task per (notification, channel); a broker that is away is logged."""
    count = 0
    try:
        from scheduler.app import get_celery

        app = get_celery()
        for notification_id, channel in pending:
            app.send_task("notify.send", args=[notification_id, channel])
            count += 1
    except Exception:
        log.warning("notifications could not be queued for sending", exc_info=True)
    return count


def _safely(session: Session, what: str, work: Callable[[], object]) -> None:
    """Run a hook in a savepoint; a failure is logged and leaves the caller's transaction alone."""
    try:
        with session.begin_nested():
            work()
    except Exception:
        log.warning("notification for %s could not be written", what, exc_info=True)


# -- who --------------------------------------------------------------------------------------------


def _people_above(session: Session, org: Org) -> list[rules.Person]:
    """Active users of the org and every org above it (the only ones whose rights reach it)."""
    parts = [p for p in org.path.strip("/").split("/") if p]
    prefixes = ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    rows = session.exec(
        select(User)
        .join(Org, col(Org.id) == col(User.org_id))
        .where(col(Org.path).in_(prefixes), col(User.is_active).is_(True))
    ).all()
    return [rules.Person(actor_of(session=session, user=u)) for u in rows]


def _people_around(session: Session, org: Org) -> list[rules.Person]:
    """Users above the org and supervisors of its government (whose reads reach it)."""
    people = _people_above(session, org)
    seen = {p.user_id for p in people}
    for user in session.exec(
        select(User).where(User.role == Role.supervisor, col(User.is_active).is_(True))
    ).all():
        if user.id not in seen:
            people.append(rules.Person(actor_of(session=session, user=user)))
    return people


def _name(user: User | None) -> str:
    return (user.display_name or user.username) if user else ""


# -- event hooks ------------------------------------------------------------------------------------


def post_submitted(session: Session, post: Any, *, author: User) -> None:
    """A post waits for review (or the next level of its chain): tell who may decide it now."""

    def work() -> None:
        from hub.posts import chains
        from hub.posts import levels as level_rules
        from hub.posts.models import Approval, ApprovalKind

        org = session.get(Org, post.org_id)
        if org is None:
            return
        chain = chains.chain_of(session, post.org_id)
        level: level_rules.Level | None = None
        any_level: list[level_rules.Level] = []
        level_name = ""
        if chain is not None and post.review_level is not None:
            levels = chains.levels_of(chain)
            level = levels[min(post.review_level, len(levels)) - 1]
            level_name = level.name
            if post.urgency.value == "emergency" and chain.emergency.value == "one":
                any_level = levels
        decided = session.exec(
            select(Approval.reviewer_id).where(
                Approval.post_id == post.id,
                Approval.version == post.current_version,
                Approval.kind == ApprovalKind.approve,
            )
        ).all()
        ids = rules.reviewers(
            _people_above(session, org),
            org_path=org.path,
            author_id=post.author_id,
            level=level,
            decided=decided,
            any_level=any_level,
        )
        message = rules.review_waiting(post.title, org.name, _name(author), level_name, post.id)
        notify(session, ids, message)

    _safely(session, f"post {post.id} submitted", work)


def post_decided(
    session: Session,
    post: Any,
    *,
    reviewer: User,
    approved: bool,
    released: bool = True,
    level: str = "",
    reason: str = "",
) -> None:
    """An approval (a level, or the release) or a rejection: tell the author."""

    def work() -> None:
        if post.author_id == reviewer.id:
            return
        if approved:
            message = rules.post_approved(post.title, _name(reviewer), level, released, post.id)
        else:
            message = rules.post_rejected(post.title, _name(reviewer), reason, post.id)
        notify(session, [post.author_id], message)

    _safely(session, f"post {post.id} decided", work)


def copy_settled(session: Session, delivery_id: int) -> None:
    """A copy failed or was parked (after its outcome committed): tell the post's author.
    Commits its own transaction; never raises."""
    from hub.delivery.models import Delivery, DeliveryStatus
    from hub.posts.models import Post

    try:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status not in (
            DeliveryStatus.failed,
            DeliveryStatus.parked,
        ):
            return
        post = session.get(Post, delivery.post_id)
        account = session.get(Account, delivery.account_id)
        if post is None or account is None:
            return
        message = rules.copy_problem(
            post.title,
            platform_label(account.platform.value),
            account.name,
            delivery.status is DeliveryStatus.parked,
            delivery.error,
            post.id,  # type: ignore[arg-type]
        )
        notify(
            session,
            [post.author_id],
            message,
            dedupe=f"copy:{delivery_id}:{delivery.status.value}:{delivery.attempts}",
        )
        session.commit()
    except Exception:
        session.rollback()
        log.warning(
            "delivery %s: its notification could not be written", delivery_id, exc_info=True
        )


def remind_tokens(session: Session, *, now: datetime, settings: Settings | None = None) -> int:
    """Accounts whose authorisation ends within 7 days: tell who may re-authorise them, once per
    expiry date. Commits; how many notifications were written."""
    settings = settings or get_settings()
    rows = session.exec(
        select(Account, Org)
        .join(Org, col(Org.id) == col(Account.org_id))
        .where(
            col(Account.token_expires_at).is_not(None),
            col(Account.token_expires_at) > now,
            col(Account.token_expires_at) <= now + rules.TOKEN_WARNING,
            Account.status != AccountStatus.closed,
        )
    ).all()
    written = 0
    for account, org in rows:
        expires = account.token_expires_at
        if not rules.token_expiring(expires, now) or expires is None:
            continue
        message = rules.token_expiring_message(
            platform_label(account.platform.value),
            account.name,
            org.name,
            f"{expires.astimezone(settings.tz):%Y-%m-%d %H:%M}",
        )
        ids = rules.account_keepers(_people_above(session, org), org_path=org.path)
        written += len(
            notify(
                session, ids, message, dedupe=f"token:{account.id}:{expires:%Y%m%d%H%M}", now=now
            )
        )
        session.commit()
    return written


def deadline_reached(
    session: Session,
    *,
    clock_id: int,
    org: Org,
    kind_title: str,
    subject: str,
    threshold: str,
    due: str,
) -> None:
    """A clock (or a case's answer clock) crossed a reminder threshold: tell the org's editors and
    the supervisors whose reach covers it, once per threshold."""

    def work() -> None:
        people = _people_around(session, org)
        ids = sorted(
            {
                p.user_id
                for p in people
                if (p.actor.role is Role.editor and p.actor.org_path == org.path)
                or (p.actor.role is Role.supervisor and org.path.startswith(p.actor.read_path))
            }
        )
        from hub.inbox.models import Case

        case_id = session.exec(
            select(Case.id).where(
                (col(Case.answer_clock_id) == clock_id)
                | (col(Case.first_response_clock_id) == clock_id)
            )
        ).first()
        message = rules.deadline_due(kind_title, subject, org.name, threshold, due, case_id)
        notify(session, ids, message, dedupe=f"clock:{clock_id}:{threshold}")

    _safely(session, f"clock {clock_id} {threshold}", work)


# -- reading ----------------------------------------------------------------------------------------


def listing(
    session: Session, user: User, *, unread_only: bool = False, limit: int = 100
) -> list[Notification]:
    query = select(Notification).where(
        Notification.user_id == user.id, col(Notification.in_app).is_(True)
    )
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    return list(session.exec(query.order_by(col(Notification.id).desc()).limit(limit)).all())


def unread_count(session: Session, user_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.user_id == user_id,
                col(Notification.in_app).is_(True),
                col(Notification.read_at).is_(None),
            )
        ).one()
    )


def mark_read(session: Session, user: User, notification_id: int | None, now: datetime) -> int:
    """Mark one of the user's notifications read (None: all of them); how many changed. Another
    user's id changes nothing (the caller answers 404)."""
    query = update(Notification).where(
        col(Notification.user_id) == user.id, col(Notification.read_at).is_(None)
    )
    if notification_id is not None:
        query = query.where(col(Notification.id) == notification_id)
    result = session.execute(query.values(read_at=now).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def own(session: Session, user: User, notification_id: int) -> Notification | None:
    row = session.get(Notification, notification_id)
    return row if row is not None and row.user_id == user.id and row.in_app else None


# -- robot targets ----------------------------------------------------------------------------------


def robot_of(
    session: Session, *, user_id: int | None = None, org_id: int | None = None
) -> NotifyWebhook | None:
    if user_id is not None:
        return session.exec(select(NotifyWebhook).where(NotifyWebhook.user_id == user_id)).first()
    return session.exec(select(NotifyWebhook).where(NotifyWebhook.org_id == org_id)).first()


def save_robot(
    session: Session,
    *,
    flavor: str,
    url: str,
    secret: str,
    user_id: int | None = None,
    org_id: int | None = None,
    settings: Settings | None = None,
) -> NotifyWebhook:
    """Set (or, with an empty URL, remove) the robot of a user or an org. The URL passes the
    outbound guard; the secret is sealed with the credentials key."""
    settings = settings or get_settings()
    row = robot_of(session, user_id=user_id, org_id=org_id)
    url = url.strip()
    if not url:
        if row is not None:
            session.delete(row)
            session.flush()
        return NotifyWebhook(flavor=flavor, url="")
    refusal = rules.robot_refusal(flavor, url)
    if refusal:
        raise Invalid(refusal, field="url")
    try:
        check_target(url, allow_private=settings.webhook_allow_private)
    except UnsafeTarget:
        raise Invalid("机器人地址不能指向内网、本机或保留地址", field="url") from None
    except Unresolvable:
        raise Invalid("机器人地址的域名无法解析", field="url") from None
    row = row or NotifyWebhook(user_id=user_id, org_id=org_id, flavor=flavor, url=url)
    row.flavor, row.url, row.updated_at = flavor, url, utcnow()
    if secret.strip():  # an empty secret keeps the one saved (the form never shows it)
        row.secret_encrypted = seal_text(settings.credentials_key, secret.strip())
    session.add(row)
    session.flush()
    return row


def robot_host(url: str) -> str:
    """Where a robot posts, without its key (the URL's query is the robot's credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else ""


def set_org_robot(
    session: Session,
    *,
    org: Org,
    flavor: str,
    url: str,
    secret: str,
    who: Who,
    settings: Settings | None = None,
) -> NotifyWebhook:
    """Set (or, with an empty URL, clear) ``org``'s robot and say so in the audit log; the caller
    has checked reach and ``org.manage``."""
    had = robot_of(session, org_id=org.id) is not None
    row = save_robot(
        session, flavor=flavor, url=url, secret=secret, org_id=org.id, settings=settings
    )
    if row.url:
        kind = "企业微信" if row.flavor == rules.Flavor.wecom else "钉钉"
        summary = f"{org.name} 群机器人设为{kind}：{robot_host(row.url)}" + (
            "（加签）" if row.secret_encrypted else ""
        )
    elif had:
        summary = f"{org.name} 群机器人已清除"
    else:
        return row  # nothing was set, nothing changed
    audit(session, who, "org.robot", "org", org.code, org_id=org.id, summary=summary)
    return row


def try_org_robot(
    session: Session,
    *,
    org: Org,
    who: Who,
    settings: Settings | None = None,
    wait_max: float = 1.0,
) -> str:
    """Send a test message to ``org``'s robot now; ``""`` when the robot took it, else why not
    (Chinese). Audited either way."""
    settings = settings or get_settings()
    target = robot_of(session, org_id=org.id)
    if target is None:
        return "本机构尚未设置群机器人"
    message = rules.Message(
        rules.Kind.review_waiting,
        "govhub 测试消息",
        f"{org.name}的群机器人已接入 govhub，稿件待审、发布失败、时限到期等提醒将发到本群。",
        "/notifications",
    )
    try:
        _post_robot(target, message, settings, wait_max)
        why = ""
    except Exception as exc:  # any failure is the answer the admin asked for
        log.warning("test of org %s robot failed: %s: %s", org.code, type(exc).__name__, exc)
        why = (
            f"机器人拒收：{exc}"
            if isinstance(exc, RobotRefused)
            else "无法连接机器人地址（已重试3次）"
        )
    outcome = "成功" if not why else f"失败：{why}"
    audit(
        session,
        who,
        "org.robot_test",
        "org",
        org.code,
        org_id=org.id,
        summary=f"{org.name} 群机器人测试{outcome}",
    )
    return why


# -- sending ----------------------------------------------------------------------------------------


class RobotRefused(Exception):
    """The robot answered, but not with errcode 0."""


def _retrying(wait_max: float) -> Retrying:
    return Retrying(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=wait_max / 8, max=wait_max),
        retry=retry_if_exception_type((OSError, httpx.HTTPError, RobotRefused)),
        reraise=True,
    )


def send(
    session: Session,
    notification_id: int,
    channel: str,
    *,
    settings: Settings | None = None,
    mailer: Mailer | None = None,
    wait_max: float = 8.0,
) -> bool:
    """Send one notification on ``email`` or ``robot``; True when it went out. Retried up to three
    times; a failure is logged, never raised."""
    settings = settings or get_settings()
    row = session.get(Notification, notification_id)
    user = session.get(User, row.user_id) if row else None
    if row is None or user is None:
        return False
    message = rules.Message(rules.Kind(row.kind), row.title, row.body, row.link)
    try:
        if channel == rules.Channel.email.value:
            return _send_email(user, message, settings, mailer, wait_max)
        if channel == rules.Channel.robot.value:
            return _send_robot(session, user, message, settings, wait_max)
    except Exception as exc:
        log.warning(
            "notification %s by %s to user %s failed: %s: %s",
            notification_id,
            channel,
            user.id,
            type(exc).__name__,
            exc,
        )
    return False


def _send_email(
    user: User, message: rules.Message, settings: Settings, mailer: Mailer | None, wait_max: float
) -> bool:
    mailer = mailer or mailer_from_settings(settings)
    if mailer is None or not user.email.strip():
        log.info("notification e-mail to user %s skipped: no SMTP server or no address", user.id)
        return False
    mail = EmailMessage()
    mail["From"] = mailer.sender
    mail["To"] = user.email.strip()
    mail["Subject"] = f"【govhub】{message.title}"
    link = f"{settings.public_base_url.rstrip('/')}{message.link}" if message.link else ""
    mail.set_content(
        "\n".join(
            [
                message.body,
                "",
                f"查看：{link}" if link else "",
                "",
                "govhub 政务新媒体发布平台（自动发送，请勿回复）",
            ]
        )
    )
    for attempt in _retrying(wait_max):
        with attempt:
            mailer.send([mail])
    return True


def _send_robot(
    session: Session, user: User, message: rules.Message, settings: Settings, wait_max: float
) -> bool:
    target = robot_of(session, user_id=user.id) or robot_of(session, org_id=user.org_id)
    if target is None:
        log.info("notification robot for user %s skipped: no robot set", user.id)
        return False
    _post_robot(target, message, settings, wait_max)
    return True


def _post_robot(
    target: NotifyWebhook, message: rules.Message, settings: Settings, wait_max: float
) -> None:
    """Post ``message`` to the robot (retried); raises what still fails."""
    flavor = rules.Flavor(target.flavor)
    payload = rules.robot_payload(flavor, message, settings.public_base_url)
    secret = (
        unseal_text(settings.credentials_key, target.secret_encrypted)
        if target.secret_encrypted
        else ""
    )
    for attempt in _retrying(wait_max):
        with attempt:
            url = target.url
            if flavor is rules.Flavor.dingtalk and secret:
                url = rules.signed_url(url, secret, int(time.time() * 1000))
            checked = check_target(url, allow_private=settings.webhook_allow_private)
            with httpx.Client(timeout=10.0) as client:
                response = pinned_request(client, "POST", checked, json=payload)
            response.raise_for_status()
            try:
                code = response.json().get("errcode", 0)
            except ValueError:
                code = 0
            if code not in (0, "0"):
                raise RobotRefused(f"errcode {code}: {response.text[:200]}")
