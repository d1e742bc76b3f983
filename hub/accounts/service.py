"""Creating, updating and listing accounts. Credentials are encrypted before they are stored."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from hub.accounts.models import (
    Account,
    AccountCreate,
    AccountPublic,
    AccountStatus,
    AccountUpdate,
    Platform,
)
from hub.errors import Invalid, NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.platforms import info as platform_info
from hub.platforms import label as platform_label
from hub.security import CredentialsError, decrypt_credentials, encrypt_credentials
from hub.sqltypes import utcnow


def credential_fields(platform: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) credential field names of ``platform``, as its connector declares.

    Fields the connector marks ``kept`` (WeChat's callback settings) survive a credentials
    update that leaves them out (send "" to clear)."""
    info = platform_info(platform)
    return info.required_credentials, info.optional_credentials


def check_kind(platform: Platform, kind: str) -> None:
    """An account's kind is one its platform knows (WeChat: subscription 订阅号 or service
    服务号; the kind sets its mass-send allowance), or not yet said ("")."""
    kinds = platform_info(platform).kinds
    if kinds and kind not in ("", *dict(kinds)):
        choices = "或".join(f" {key}（{label}）" for key, label in kinds).strip()
        raise Invalid(
            "%(platform)s账号类型须为 %(choices)s",
            field="kind",
            platform=platform_label(platform),
            choices=choices,
        )


def validate_credentials(platform: Platform, credentials: dict[str, str]) -> datetime | None:
    """Check the fields for ``platform``; return the token expiry when the credentials carry one."""
    required, optional = credential_fields(platform)
    missing = [name for name in required if not str(credentials.get(name) or "").strip()]
    if missing:
        raise Invalid(
            "%(platform)s凭据须包含：%(names)s",
            field="credentials",
            platform=platform.value,
            names=", ".join(missing),
        )
    unknown = sorted(set(credentials) - set(required) - set(optional))
    if unknown:
        raise Invalid(
            "%(platform)s凭据不接受以下字段：%(names)s",
            field="credentials",
            platform=platform.value,
            names=", ".join(unknown),
        )
    for spec in platform_info(platform).credentials:
        given = str(credentials.get(spec.name) or "")
        if given and spec.check is not None and (problem := spec.check(given)):
            raise Invalid(problem, field="credentials." + spec.name)
    expires = credentials.get("expires_at")
    if not expires:
        return None
    try:
        when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            "凭据有效期（credentials.expires_at）须为带时区的日期时间，例如 2026-12-31T00:00:00+08:00",
            field="credentials",
        ) from None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def outbound_target(platform: str, credentials: dict[str, str], handle: str) -> str | None:
    """The URL the hub will send to for an account whose connector posts to a URL the account
    names (``PlatformInfo.outbound_url``: that credential, else the handle); None otherwise."""
    field = platform_info(platform).outbound_url
    if not field:
        return None
    return str(credentials.get(field) or "") or handle.strip()


def check_webhook_target(url: str) -> None:
    """An account's outbound URL passes the partners' SSRF guard at registration, not only when
    a worker first sends to it (GOVHUB_WEBHOOK_ALLOW_PRIVATE lifts it)."""
    from hub.config import get_settings
    from hub.hall.partners import check_url

    check_url(url, settings=get_settings(), field="credentials")


def create(
    *, session: Session, data: AccountCreate, credentials_key: str, org: Org | None = None
) -> Account:
    org = org or orgs.get_by_code(session=session, code=data.org_code)
    if not data.name.strip():
        raise Invalid("请填写账号名称", field="name")
    check_kind(data.platform, data.kind)
    creds = {k: str(v) for k, v in (data.credentials or {}).items()}
    expires = validate_credentials(data.platform, creds) if creds else None
    if platform_info(data.platform).needs_credentials and not creds:
        raise Invalid(
            "%(platform)s账号须填写凭据",
            field="credentials",
            platform=data.platform.value,
        )
    if (target := outbound_target(data.platform, creds, data.handle)) is not None:
        check_webhook_target(target)
    account = Account(
        org_id=org.id,  # type: ignore[arg-type]
        platform=data.platform,
        name=data.name.strip(),
        handle=data.handle.strip(),
        opened_on=data.opened_on,
        interaction_channel=data.interaction_channel,
        kind=data.kind,
        token_expires_at=expires,
        credentials_encrypted=encrypt_credentials(credentials_key, creds),
    )
    session.add(account)
    session.flush()
    return account


def update(
    *, session: Session, account: Account, data: AccountUpdate, credentials_key: str
) -> list[str]:
    """Apply a partial update; return the names of the fields that changed (never values)."""
    if platform_info(account.platform).outbound_url and (
        data.credentials is not None or data.handle is not None
    ):  # the URL it will send to (credentials' url, else the handle) is checked before any change
        creds = (
            data.credentials
            if data.credentials is not None
            else credentials_of(account, credentials_key)
        )
        handle = data.handle if data.handle is not None else account.handle
        check_webhook_target(outbound_target(account.platform, creds, handle) or "")
    changed: list[str] = []
    if data.kind is not None:
        check_kind(account.platform, data.kind)
    for name in (
        "name",
        "handle",
        "opened_on",
        "closed_on",
        "interaction_channel",
        "status",
        "kind",
    ):
        value = getattr(data, name)
        if value is not None and getattr(account, name) != value:
            setattr(account, name, value)
            changed.append(name)
    if data.credentials is not None:
        creds = {k: str(v) for k, v in data.credentials.items()}
        account.token_expires_at = validate_credentials(account.platform, creds)
        kept = [
            name for name in platform_info(account.platform).kept_credentials if name not in creds
        ]
        if kept and account.credentials_encrypted:
            try:
                previous = decrypt_credentials(credentials_key, account.credentials_encrypted)
            except CredentialsError:
                previous = {}  # the old key is gone: nothing to keep
            creds |= {name: previous[name] for name in kept if previous.get(name)}
        account.credentials_encrypted = encrypt_credentials(credentials_key, creds)
        if account.status is AccountStatus.needs_reauth:
            account.status = AccountStatus.active
        changed.append("credentials")
    if ("status" in changed or "credentials" in changed) and account.status is AccountStatus.active:
        clear_flag(account)
    if changed:
        account.updated_at = utcnow()
        session.add(account)
    return changed


FLAGGED = frozenset({AccountStatus.needs_reauth, AccountStatus.misconfigured})


def flag(
    *,
    session: Session,
    account: Account,
    status: AccountStatus,
    reason: str,
    code: str,
    now: datetime,
    next_check_at: datetime | None = None,
) -> None:
    """Mark the account as needing the operator (``needs_reauth`` or ``misconfigured``), with
    the reason in words. A suspended or closed account keeps its status (a person chose it)."""
    if account.status not in (AccountStatus.active, *FLAGGED):
        return
    if account.status is not status or not account.flagged_at:
        account.flagged_at = now
    account.status = status
    account.attention = reason[:2000]
    account.attention_code = code[:40]
    account.next_check_at = next_check_at if status is AccountStatus.misconfigured else None
    account.updated_at = now
    session.add(account)


def clear_flag(account: Account) -> None:
    """The account works again: forget why it was flagged (the caller sets it active)."""
    account.attention = ""
    account.attention_code = ""
    account.flagged_at = None
    account.next_check_at = None


def set_capability(
    *, session: Session, account: Account, capability: str, reason: str | None, now: datetime
) -> bool:
    """Switch a capability off (``reason``) or back on (None). Returns True when it changed."""
    current = dict(account.capabilities_off or {})
    if reason is None:
        if capability not in current:
            return False
        current.pop(capability)
    else:
        if current.get(capability) == reason:
            return False
        current[capability] = reason[:500]
    account.capabilities_off = current  # a new dict: the JSON column sees the change
    account.updated_at = now
    session.add(account)
    return True


def credentials_of(account: Account, credentials_key: str) -> dict[str, str]:
    return decrypt_credentials(credentials_key, account.credentials_encrypted)


def get(*, session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("账号 %(account_id)s 不存在", account_id=account_id)
    return account


def list_accounts(
    *,
    session: Session,
    scope_path: str | None = None,
    org_code: str | None = None,
    platform: Platform | None = None,
    status: AccountStatus | None = None,
) -> list[tuple[Account, Org]]:
    query = select(Account, Org).join(Org, col(Account.org_id) == col(Org.id))
    if scope_path:
        query = query.where(col(Org.path).startswith(scope_path))
    if org_code:
        query = query.where(Org.code == org_code)
    if platform:
        query = query.where(Account.platform == platform)
    if status:
        query = query.where(Account.status == status)
    rows = session.exec(query.order_by(col(Org.path), col(Account.platform), col(Account.id)))
    return [(a, o) for a, o in rows.all()]


def to_public(account: Account, org: Org) -> AccountPublic:
    return AccountPublic(
        id=account.id,
        org_code=org.code,
        org_name=org.name,
        platform=account.platform,
        name=account.name,
        handle=account.handle,
        opened_on=account.opened_on,
        closed_on=account.closed_on,
        interaction_channel=account.interaction_channel,
        status=account.status,
        kind=account.kind,
        token_expires_at=account.token_expires_at,
        has_credentials=bool(account.credentials_encrypted),
        last_activity_at=account.last_activity_at,
        attention=account.attention,
        attention_code=account.attention_code,
        flagged_at=account.flagged_at,
        next_check_at=account.next_check_at,
        capabilities_off=dict(account.capabilities_off or {}),
    )
