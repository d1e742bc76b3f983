"""JSON API for accounts. Credentials go in; they never come out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from hub.accounts import service
from hub.accounts.models import AccountCreate, AccountPublic, AccountStatus, AccountUpdate, Platform
from hub.auditlog.service import audit
from hub.errors import Invalid, NotFound
from hub.orgs import service as orgs
from hub.sqltypes import Id
from hub.users.rules import Action, scope_path
from hub.web.deps import PrincipalDep, SessionDep, SettingsDep, WhoDep

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class ConnectionTest(BaseModel):
    """The answer of ``POST /api/v1/accounts/{id}/test``."""

    ok: bool
    message: str  # in words, for the person who asked
    error: str = ""  # the connector error class (AuthExpired, Misconfigured, ...) when not ok
    code: str = ""  # the platform's own error code, if it gave one
    recent_posts: int | None = None
    resumed: int = 0  # parked deliveries that resumed because the test passed
    status: AccountStatus | None = None  # the account's status after the test
    capabilities_off: dict[str, str] = {}  # capabilities the platform refused ({"comments": ..})


@router.post("", summary="Register an account", status_code=201, response_model=AccountPublic)
def create_account(
    data: AccountCreate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AccountPublic:
    org = orgs.resolve_code(session=session, code=data.org_code)
    principal.require(Action.account_manage, org)
    account = service.create(
        session=session, data=data, credentials_key=settings.credentials_key, org=org
    )
    audit(
        session,
        who,
        "account.create",
        "account",
        account.id,
        org_id=org.id,
        summary=f"{org.name} {account.platform.value} 账号「{account.name}」",
    )
    session.commit()
    return service.to_public(account, org)


@router.get("", summary="List accounts in my scope", response_model=list[AccountPublic])
def list_accounts(
    principal: PrincipalDep,
    session: SessionDep,
    org_code: str | None = None,
    platform: Platform | None = None,
    status: AccountStatus | None = None,
) -> list[AccountPublic]:
    principal.require(Action.account_read)
    scope = scope_path(principal.actor, Action.account_read)
    if org_code is not None:
        org = orgs.get_by_code(session=session, code=org_code)
        principal.require(Action.account_read, org)
    rows = service.list_accounts(
        session=session, scope_path=scope, org_code=org_code, platform=platform, status=status
    )
    return [service.to_public(a, o) for a, o in rows]


class PushQuotaPublic(BaseModel):
    """What is left of a WeChat account's mass-send (群发) allowance."""

    account_id: int
    kind: str  # subscription | service | "" (not set: no push possible)
    allowed: int
    used: int
    remaining: int
    period: str  # day | month (in GOVHUB_TIMEZONE)
    renews_at: datetime
    words: str  # e.g. 今日剩余 1 次


@router.get(
    "/push-quota",
    summary="Mass sends (群发) left per WeChat account in my scope",
    response_model=list[PushQuotaPublic],
)
def push_quota(
    principal: PrincipalDep, session: SessionDep, at: datetime | None = None
) -> list[PushQuotaPublic]:
    """Per WeChat account: pushes left in the day (订阅号) or month (服务号) of ``at`` (default
    now), counting pushes sent, under way and scheduled."""
    from hub.delivery.service import push_quotas
    from hub.sqltypes import utcnow

    principal.require(Action.account_read)
    if at is not None and at.tzinfo is None:
        raise Invalid("时间（at）须带时区，例如 2026-12-01T09:00:00+08:00", field="at")
    scope = scope_path(principal.actor, Action.account_read)
    rows = [
        row
        for platform in Platform.all()
        if platform.info.push_quota
        for row in service.list_accounts(
            session=session, scope_path=scope, org_code=None, platform=platform, status=None
        )
    ]
    quotas = push_quotas(session=session, accounts=[a for a, _ in rows], at=at or utcnow())
    return [
        PushQuotaPublic(
            account_id=account_id,
            kind=q.kind,
            allowed=q.allowed,
            used=q.used,
            remaining=q.remaining,
            period=q.period,
            renews_at=q.renews_at,
            words=q.words if q.allowed else "未设置公众号类型，不能群发",
        )
        for account_id, q in quotas.items()
    ]


@router.get("/{account_id}", summary="One account", response_model=AccountPublic)
def get_account(account_id: Id, principal: PrincipalDep, session: SessionDep) -> AccountPublic:
    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.reach(
        Action.account_read,
        org,
        NotFound("账号 %(account_id)s 不存在", account_id=account_id),
    )
    return service.to_public(account, org)


@router.patch("/{account_id}", summary="Change an account", response_model=AccountPublic)
def update_account(
    account_id: Id,
    data: AccountUpdate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AccountPublic:
    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.reach(
        Action.account_manage,
        org,
        NotFound("账号 %(account_id)s 不存在", account_id=account_id),
    )
    changed = service.update(
        session=session, account=account, data=data, credentials_key=settings.credentials_key
    )
    if changed:
        audit(
            session,
            who,
            "account.update",
            "account",
            account.id,
            org_id=org.id,
            summary="changed: " + ", ".join(changed),
        )
    session.commit()
    return service.to_public(account, org)


@router.post(
    "/{account_id}/test",
    summary="Test the connection to the platform (heals a flagged account)",
    response_model=ConnectionTest,
)
def check_connection(
    account_id: Id,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ConnectionTest:
    """Read the account's latest posts from its platform (``recent``; on Weibo also one page of
    ``comments/to_me``); report ok or the error. When it passes and the account was flagged
    (``needs_reauth``, ``misconfigured``), the account is active again and its parked deliveries
    resume on their own; a refused comment capability is switched off (or back on)."""
    from hub.accounts.health import connection_test
    from hub.delivery.service import enqueue
    from hub.sqltypes import utcnow

    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.reach(
        Action.account_bind,
        org,
        NotFound("账号 %(account_id)s 不存在", account_id=account_id),
    )
    result = connection_test(session=session, account=account, settings=settings, now=utcnow())
    audit(
        session,
        who,
        "account.test",
        "account",
        account.id,
        org_id=org.id,
        summary=("通过" if result.ok else "未通过") + f"：{result.message}"[:500],
    )
    if result.ok and account.check_failures:
        account.check_failures = 0  # a person looked: automatic re-tests start afresh
        session.add(account)
    session.commit()
    if result.resumed:
        enqueue(result.resumed)
    return ConnectionTest(
        ok=result.ok,
        message=result.message,
        error=result.error,
        code=result.code,
        recent_posts=result.recent_posts,
        resumed=len(result.resumed),
        status=account.status,
        capabilities_off=result.capabilities_off,
    )
