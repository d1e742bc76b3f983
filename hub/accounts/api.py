"""JSON API for accounts. Credentials go in; they never come out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from connectors.errors import ConnectorError
from hub.accounts import service
from hub.accounts.models import AccountCreate, AccountPublic, AccountStatus, AccountUpdate, Platform
from hub.auditlog.service import record
from hub.orgs import service as orgs
from hub.sqltypes import Id
from hub.users.rules import Action, scope_path
from hub.web.deps import PrincipalDep, SessionDep, SettingsDep, client_ip

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class ConnectionTest(BaseModel):
    """The answer of ``POST /api/v1/accounts/{id}/test``."""

    ok: bool
    message: str  # in words, for the person who asked
    error: str = ""  # the connector error class (AuthExpired, Misconfigured, ...) when not ok
    code: str = ""  # the platform's own error code, if it gave one
    recent_posts: int | None = None


@router.post("", summary="Register an account", status_code=201, response_model=AccountPublic)
def create_account(
    data: AccountCreate,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AccountPublic:
    org = orgs.resolve_code(session=session, code=data.org_code)
    principal.require(Action.account_manage, org)
    account = service.create(
        session=session, data=data, credentials_key=settings.credentials_key, org=org
    )
    record(
        session=session,
        actor_id=principal.user.id,
        actor_name=principal.user.username,
        action="account.create",
        object_type="account",
        object_id=account.id,
        org_id=org.id,
        summary=f"{org.name} {account.platform.value} 账号「{account.name}」",
        client_ip=client_ip(request),
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


@router.get("/{account_id}", summary="One account", response_model=AccountPublic)
def get_account(account_id: Id, principal: PrincipalDep, session: SessionDep) -> AccountPublic:
    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.require(Action.account_read, org)
    return service.to_public(account, org)


@router.patch("/{account_id}", summary="Change an account", response_model=AccountPublic)
def update_account(
    account_id: Id,
    data: AccountUpdate,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AccountPublic:
    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.require(Action.account_manage, org)
    changed = service.update(
        session=session, account=account, data=data, credentials_key=settings.credentials_key
    )
    if changed:
        record(
            session=session,
            actor_id=principal.user.id,
            actor_name=principal.user.username,
            action="account.update",
            object_type="account",
            object_id=account.id,
            org_id=org.id,
            summary="changed: " + ", ".join(changed),
            client_ip=client_ip(request),
        )
    session.commit()
    return service.to_public(account, org)


@router.post(
    "/{account_id}/test",
    summary="Test the connection to the platform",
    response_model=ConnectionTest,
)
def check_connection(
    account_id: Id, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> ConnectionTest:
    """Read the account's latest posts from its platform (``recent``); report ok or the error."""
    from hub.delivery import channels
    from hub.security import CredentialsError

    account = service.get(session=session, account_id=account_id)
    org = orgs.get(session=session, org_id=account.org_id)
    principal.require(Action.account_bind, org)
    try:
        connector = channels.connector_for(account.platform.value, settings)
        posts = connector.recent(channels.connector_account(account, settings))
    except ConnectorError as exc:
        return ConnectionTest(
            ok=False, message=str(exc), error=type(exc).__name__, code=exc.code or ""
        )
    except CredentialsError as exc:
        return ConnectionTest(ok=False, message=str(exc), error=type(exc).__name__)
    return ConnectionTest(
        ok=True, message=f"连接正常：读到该账号最近 {len(posts)} 条发布", recent_posts=len(posts)
    )
