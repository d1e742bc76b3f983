"""Clock reminders (时限提醒) by e-mail and webhook.

Reminders are claimed by inserting ``(clock, threshold)`` (unique) and committing *before*
sending, so one goes out at most once, whatever restarts or concurrent passes happen; a claim
whose every channel failed is released, so the next pass tries again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.clocks import rules
from hub.clocks.models import Clock, ClockReminder, ClockState
from hub.clocks.notify import Mailer, WebhookPoster, mailer_from_settings, webhook_from_settings
from hub.clocks.service import kind_title, policy_in_force, to_public
from hub.config import Settings, get_settings
from hub.notify import service as notices
from hub.orgs.models import Org
from hub.policies import Policy
from hub.sqltypes import utcnow
from hub.users.models import Role, User

log = logging.getLogger(__name__)

REMINDER_ZH = {"50": "时限已过半", "80": "时限已用去80%", "overdue": "已逾期"}


# -- reminders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderSent:
    clock_id: int
    threshold: str
    emails: int
    webhook: bool
    error: str = ""


def _recipients(*, session: Session, org_id: int) -> list[User]:
    """The org's editors and every supervisor (active, with an e-mail address)."""
    users = session.exec(
        select(User).where(
            col(User.is_active).is_(True),
            ((User.role == Role.editor) & (User.org_id == org_id)) | (User.role == Role.supervisor),
        )
    ).all()
    return [user for user in users if user.email.strip()]


def _claim(*, session: Session, clock_id: int, threshold: str, now: datetime) -> int | None:
    """Insert the (clock, threshold) row and commit: the id if this pass won the claim."""
    reminder = ClockReminder(clock_id=clock_id, threshold=threshold, claimed_at=now)
    try:
        with session.begin_nested():  # a savepoint: losing the race leaves the session usable
            session.add(reminder)
    except IntegrityError:
        return None
    session.commit()
    return reminder.id


def _message(
    *,
    mailer: Mailer,
    to: str,
    clock: Clock,
    org: Org,
    threshold: str,
    tz: ZoneInfo,
    base: str,
    policy: Policy,
) -> EmailMessage:
    due = clock.due_at.astimezone(tz)
    message = EmailMessage()
    message["From"] = mailer.sender
    message["To"] = to
    message["Subject"] = f"【时限提醒】{org.name}：{clock.subject}（{REMINDER_ZH[threshold]}）"
    unconfirmed = "" if clock.calendar_confirmed else "（日历未确认，按工作日推算）"
    message.set_content(
        "\n".join(
            [
                f"{kind_title(policy, clock.kind)}（{clock.kind}）",
                f"机构：{org.name}（{org.code}）",
                f"事项：{clock.subject}",
                f"开始：{clock.started_at.astimezone(tz):%Y-%m-%d %H:%M}",
                f"截止：{due:%Y-%m-%d %H:%M:%S}{unconfirmed}",
                f"提醒：{REMINDER_ZH[threshold]}",
                f"查看：{base.rstrip('/')}/clocks",
                "",
                "govhub 政务新媒体发布平台（自动发送，请勿回复）",
            ]
        )
    )
    return message


def send_due_reminders(
    *,
    session: Session,
    now: datetime,
    mailer: Mailer | None,
    webhook_poster: WebhookPoster | None,
    policy: Policy | None = None,
    tz: ZoneInfo | None = None,
    base_url: str | None = None,
) -> list[ReminderSent]:
    """One reminder pass: for each running clock, the threshold
    :func:`~hub.clocks.rules.reminder_thresholds_crossed` returns (only the highest one crossed)
    is claimed, then e-mailed to the org's editors and all supervisors and posted to the
    webhook. Commits as it goes (each claim before its sending)."""
    settings = get_settings()
    policy = policy or policy_in_force(settings)
    tz = tz or settings.tz
    base = base_url if base_url is not None else settings.public_base_url
    already_overdue = select(ClockReminder.clock_id).where(ClockReminder.threshold == "overdue")
    candidates = session.exec(
        select(Clock, Org)
        .join(Org, col(Clock.org_id) == col(Org.id))
        .where(
            Clock.state == ClockState.running,
            col(Clock.started_at) <= now,
            col(Clock.id).not_in(already_overdue),
        )
        .order_by(col(Clock.due_at))
    ).all()
    ids = [clock.id for clock, _ in candidates]
    sent_before: dict[int, set[str]] = defaultdict(set)
    if ids:
        for row in session.exec(
            select(ClockReminder).where(col(ClockReminder.clock_id).in_(ids))
        ).all():
            sent_before[row.clock_id].add(row.threshold)
    results: list[ReminderSent] = []
    for clock, org in candidates:
        clock_id: int = clock.id  # type: ignore[assignment]
        for threshold in rules.reminder_thresholds_crossed(
            clock.started_at, clock.due_at, now, sent_before[clock_id]
        ):
            claim_id = _claim(session=session, clock_id=clock_id, threshold=threshold, now=now)
            if claim_id is None:
                continue  # another pass has it
            notices.deadline_reached(
                session,
                clock_id=clock_id,
                org=org,
                kind_title=kind_title(policy, clock.kind),
                subject=clock.subject,
                threshold=threshold,
                due=f"{clock.due_at.astimezone(tz):%Y-%m-%d %H:%M}",
            )
            session.commit()  # the in-app notice stands whatever the e-mail and webhook do
            results.append(
                _deliver(
                    session=session,
                    claim_id=claim_id,
                    clock=clock,
                    org=org,
                    threshold=threshold,
                    now=now,
                    mailer=mailer,
                    webhook_poster=webhook_poster,
                    policy=policy,
                    tz=tz,
                    base=base,
                )
            )
    return results


def _deliver(
    *,
    session: Session,
    claim_id: int,
    clock: Clock,
    org: Org,
    threshold: str,
    now: datetime,
    mailer: Mailer | None,
    webhook_poster: WebhookPoster | None,
    policy: Policy,
    tz: ZoneInfo,
    base: str,
) -> ReminderSent:
    channels: list[str] = []
    errors: list[str] = []
    attempted = 0
    emails = 0
    webhook = False
    if mailer is not None:
        messages = [
            _message(
                mailer=mailer,
                to=user.email.strip(),
                clock=clock,
                org=org,
                threshold=threshold,
                tz=tz,
                base=base,
                policy=policy,
            )
            for user in _recipients(session=session, org_id=org.id)  # type: ignore[arg-type]
        ]
        if messages:
            attempted += 1
            try:
                mailer.send(messages)
                emails = len(messages)
                channels.append(f"email:{emails}")
            except (OSError, ValueError) as exc:  # smtplib.SMTPException is an OSError
                errors.append(f"email: {type(exc).__name__}: {exc}")
    if webhook_poster is not None:
        attempted += 1
        public = to_public(session=session, rows=[(clock, org)], now=now, tz=tz, policy=policy)[0]
        payload = {
            "event": "clock.reminder",
            "threshold": threshold,
            "at": now.astimezone(tz).isoformat(),
            "clock": public.model_dump(mode="json"),
        }
        try:
            webhook_poster.post("clock.reminder", payload)
            webhook = True
            channels.append("webhook")
        except (httpx.HTTPError, OSError) as exc:
            errors.append(f"webhook: {type(exc).__name__}: {exc}")
    if attempted and not channels:
        log.warning(
            "reminder %s for clock %s failed, retrying next pass: %s", threshold, clock.id, errors
        )
        session.execute(delete(ClockReminder).where(col(ClockReminder.id) == claim_id))
        session.commit()
        return ReminderSent(clock.id, threshold, 0, False, "; ".join(errors))  # type: ignore[arg-type]
    session.execute(
        update(ClockReminder)
        .where(col(ClockReminder.id) == claim_id)
        .values(sent_at=now, channels=",".join(channels) or "none", error="; ".join(errors))
    )
    session.commit()
    return ReminderSent(clock.id, threshold, emails, webhook, "; ".join(errors))  # type: ignore[arg-type]


def remind_now(*, session: Session, settings: Settings | None = None) -> list[ReminderSent]:
    """A reminder pass with the configured channels (the beat task and ``govhub clocks remind``)."""
    settings = settings or get_settings()
    return send_due_reminders(
        session=session,
        now=utcnow(),
        mailer=mailer_from_settings(settings),
        webhook_poster=webhook_from_settings(settings),
        policy=policy_in_force(settings),
        tz=settings.tz,
        base_url=settings.public_base_url,
    )
