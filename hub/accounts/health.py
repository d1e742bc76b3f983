"""An account's connection test, and healing: a flagged account whose test passes resumes.

Deliveries stopped by the account's setup on the platform (WeChat 40164/48001/48004, Weibo
21321/20031: :class:`connectors.errors.AccountBlocked`) or by an expired token (AuthExpired) are
``parked`` and the account is flagged (``misconfigured`` / ``needs_reauth``) with the reason. The
same test an admin runs (``POST /api/v1/accounts/{id}/test``) heals it: when it passes, the
account is active again and its parked deliveries go back to the engine, which claims each one
before any call (so nothing goes out twice). Beat re-tests misconfigured accounts by itself
(``accounts.recheck``), less and less often (``GOVHUB_ACCOUNT_RECHECK_*``).

A Weibo account's test also tries the comment API (``comments/to_me``, one page): a 10014
switches the ``comments`` capability off on the account (inbox ingestion skips it), a pass
switches it back on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from connectors.base import Comments
from connectors.errors import AccountBlocked, CapabilityUnavailable, ConnectorError
from hub.accounts import service
from hub.accounts.models import Account, AccountStatus
from hub.config import Settings
from hub.delivery.rules import recheck_delay
from hub.security import CredentialsError
from hub.users.who import SYSTEM_WHO

log = logging.getLogger(__name__)

COMMENTS = "comments"


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    error: str = ""  # the connector error class when not ok
    code: str = ""
    recent_posts: int | None = None
    resumed: list[int] = field(default_factory=list)  # delivery ids to enqueue after commit
    healed: bool = False
    capabilities_off: dict[str, str] = field(default_factory=dict)


def reads_comments(account: Account, settings: Settings) -> bool:
    """Does the account's connector read comments (the ``Comments`` capability)?"""
    from hub.delivery import channels

    return isinstance(channels.connector_for(account.platform.value, settings), Comments)


def probe(account: Account, settings: Settings) -> tuple[int, str | None]:
    """Read the account's latest posts (and, where the connector reads comments, its comments):
    (posts, comments refusal).

    Raises the connector's error when the account itself does not work."""
    from hub.delivery import channels

    connector = channels.connector_for(account.platform.value, settings)
    target = channels.connector_account(account, settings)
    posts = connector.recent(target)
    refusal: str | None = None
    if isinstance(connector, Comments):
        try:
            connector.comments_to_me(target, max_pages=1)
        except CapabilityUnavailable as exc:
            refusal = str(exc)
        except ConnectorError as exc:  # anything else is not about the capability: keep as is
            log.info("account %s: comments probe inconclusive: %s", account.id, exc)
            refusal = (account.capabilities_off or {}).get(COMMENTS)
    return len(posts), refusal


def connection_test(
    *, session: Session, account: Account, settings: Settings, now: datetime
) -> ConnectionCheck:
    """Test the account against its platform; heal it when it passes (the caller commits, then
    enqueues ``resumed``). A blocked account found by the test is flagged like a send would."""
    from hub.delivery.service import resume_parked

    try:
        posts, comments_refusal = probe(account, settings)
    except AccountBlocked as exc:
        flag_blocked(session, account, exc, settings, now)
        return ConnectionCheck(False, str(exc), type(exc).__name__, exc.code or "")
    except ConnectorError as exc:
        return ConnectionCheck(False, str(exc), type(exc).__name__, exc.code or "")
    except CredentialsError as exc:
        return ConnectionCheck(False, str(exc), type(exc).__name__)
    result = ConnectionCheck(True, f"连接正常：读到该账号最近 {posts} 条发布", recent_posts=posts)
    if reads_comments(account, settings):
        service.set_capability(
            session=session, account=account, capability=COMMENTS, reason=comments_refusal, now=now
        )
        if comments_refusal:
            result.message += f"；{comments_refusal}"
    if account.status in service.FLAGGED:
        account.status = AccountStatus.active
        service.clear_flag(account)
        account.updated_at = now
        session.add(account)
        session.flush()
        result.resumed = resume_parked(session=session, account_id=account.id or 0, now=now)
        result.healed = True
        result.message += f"；账号已恢复正常，{len(result.resumed)} 条暂停的投递自动继续"
    result.capabilities_off = dict(account.capabilities_off or {})
    return result


def flag_blocked(
    session: Session, account: Account, exc: AccountBlocked, settings: Settings, now: datetime
) -> None:
    """Flag ``account`` ``misconfigured`` with the platform's words; beat re-tests it with back-off."""
    delay = recheck_delay(
        account.check_failures,
        base_seconds=settings.account_recheck_seconds,
        max_seconds=settings.account_recheck_max_seconds,
    )
    service.flag(
        session=session,
        account=account,
        status=AccountStatus.misconfigured,
        reason=str(exc),
        code=exc.code or "",
        now=now,
        next_check_at=now + delay,
    )


def recheck_due(
    *, session: Session, settings: Settings, now: datetime, limit: int = 50
) -> tuple[list[int], list[str]]:
    """Beat's pass: re-test every misconfigured account whose time has come.

    Each test (passed or not) pushes the next one further out (``check_failures``): an account
    whose test passes while its sends are still refused (a captcha only blocks posting) costs one
    refused call per re-test, less and less often, never a loop. Returns the delivery ids to
    enqueue (after this function's commits) and one line per account tested.
    """
    due = session.exec(
        select(Account.id)
        .where(
            Account.status == AccountStatus.misconfigured,
            col(Account.next_check_at).is_not(None),
            col(Account.next_check_at) <= now,
        )
        .order_by(col(Account.next_check_at))
        .limit(limit)
    ).all()
    resumed: list[int] = []
    lines: list[str] = []
    for account_id in due:
        account = session.get(Account, account_id)
        if account is None or account.status is not AccountStatus.misconfigured:
            continue
        # Claim this re-test first (a second beat or a slow pass never tests it twice at once).
        account.check_failures += 1
        account.next_check_at = now + recheck_delay(
            account.check_failures,
            base_seconds=settings.account_recheck_seconds,
            max_seconds=settings.account_recheck_max_seconds,
        )
        session.add(account)
        session.commit()
        result = connection_test(session=session, account=account, settings=settings, now=now)
        if not result.ok and account.status is AccountStatus.misconfigured:
            # the test's own flagging restarted the clock from the old count: keep the new one
            account.next_check_at = now + recheck_delay(
                account.check_failures,
                base_seconds=settings.account_recheck_seconds,
                max_seconds=settings.account_recheck_max_seconds,
            )
            session.add(account)
        _audit_recheck(session, account, result)
        session.commit()
        resumed += result.resumed
        lines.append(f"{account.name}: {'ok' if result.ok else result.message}")
    return resumed, lines


def _audit_recheck(session: Session, account: Account, result: ConnectionCheck) -> None:
    if not result.healed:
        return
    from hub.auditlog.service import audit

    audit(
        session,
        SYSTEM_WHO,
        "account.healed",
        "account",
        account.id,
        org_id=account.org_id,
        summary=f"自动复测通过：账号「{account.name}」恢复正常，继续 {len(result.resumed)} 条投递",
    )
