"""Demo accounts bound to the platform simulators (``govhub demo``).

For a handful of orgs: a Weibo account whose token is minted in the Weibo sandbox and a WeChat
account whose app is registered in the WeChat sandbox, with the PUBLISHJOBFINISH callback pointed
at the hub's ``/callbacks/wechat/{id}``. Everything goes through the sandboxes' HTTP control API,
so it works with an in-process sandbox or a ``govhub sandbox`` started elsewhere.

A new sandbox process forgets every token and app, so this runs on every demo start: accounts are
created once (same org, platform and name) and their credentials replaced each time.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import date, datetime, timedelta

import httpx
from sqlmodel import Session, select

from hub.accounts import service
from hub.accounts.models import Account, AccountCreate, AccountStatus, AccountUpdate, Platform
from hub.orgs import service as orgs
from hub.orgs.models import Org

DEMO_ORGS = ("520000-xwb", "522600", "522601", "520100")
FIRST_WEIBO_UID = 2_000_000_001  # clear of the sandbox's own uids (1_000_000_001 ...)
WEIBO_TOKEN_SECONDS = 30 * 24 * 3600  # an ordinary Weibo app's token lifetime


def _ensure(
    *,
    session: Session,
    org: Org,
    platform: Platform,
    name: str,
    handle: str,
    credentials: dict[str, str],
    credentials_key: str,
    kind: str = "",
) -> Account:
    """The org's demo account on ``platform`` with these credentials (created the first time)."""
    account = session.exec(
        select(Account).where(
            Account.org_id == org.id, Account.platform == platform, Account.name == name
        )
    ).first()
    if account is None:
        return service.create(
            session=session,
            data=AccountCreate(
                org_code=org.code,
                platform=platform,
                name=name,
                handle=handle,
                opened_on=date(2016, 1, 1),
                interaction_channel=True,
                kind=kind,
                credentials=credentials,
            ),
            credentials_key=credentials_key,
            org=org,
        )
    service.update(
        session=session,
        account=account,
        data=AccountUpdate(credentials=credentials, handle=handle, status=AccountStatus.active),
        credentials_key=credentials_key,
    )
    session.flush()
    return account


def bind_sandbox_accounts(
    *,
    session: Session,
    client: httpx.Client,
    sandbox_url: str,
    public_base_url: str,
    credentials_key: str,
    now: datetime,
) -> list[str]:
    """Create or refresh the demo's Weibo and WeChat accounts; one line per account."""
    weibo_control = f"{sandbox_url.rstrip('/')}/weibo/_sandbox"
    wechat_control = f"{sandbox_url.rstrip('/')}/wechat/_sandbox"
    public = public_base_url.rstrip("/")
    lines: list[str] = []
    for index, code in enumerate(DEMO_ORGS):
        org = orgs.get_by_code(session=session, code=code)

        uid = str(FIRST_WEIBO_UID + index)
        minted = client.post(
            f"{weibo_control}/tokens", json={"uid": uid, "expires_in": WEIBO_TOKEN_SECONDS}
        )
        minted.raise_for_status()
        expires_at = now + timedelta(seconds=WEIBO_TOKEN_SECONDS)
        weibo = _ensure(
            session=session,
            org=org,
            platform=Platform("weibo"),
            name=f"{org.name}微博",
            handle=uid,
            credentials={
                "access_token": str(minted.json()["access_token"]),
                "expires_at": expires_at.isoformat(),
                "uid": uid,
            },
            credentials_key=credentials_key,
        )

        app_id = "wx" + hashlib.sha256(code.encode()).hexdigest()[:16]
        app_secret, callback_token = secrets.token_hex(16), secrets.token_hex(12)
        # Safe mode (安全模式), the console's suggestion: callbacks arrive AES-encrypted.
        aes_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
        client.post(
            f"{wechat_control}/apps", json={"appid": app_id, "secret": app_secret}
        ).raise_for_status()
        wechat = _ensure(
            session=session,
            org=org,
            platform=Platform("wechat"),
            name=f"{org.name}微信公众号",
            handle=f"gh_{app_id}",
            credentials={
                "app_id": app_id,
                "app_secret": app_secret,
                "callback_token": callback_token,
                "encoding_aes_key": aes_key,
            },
            credentials_key=credentials_key,
            kind="subscription",
        )
        callback = {
            "url": f"{public}/callbacks/wechat/{wechat.id}",
            "token": callback_token,
            "mode": "safe",
            "encoding_aes_key": aes_key,
        }
        client.post(f"{wechat_control}/apps/{app_id}/callback", json=callback).raise_for_status()
        lines.append(
            f"account {weibo.id:<4} weibo  {org.code:<11} {weibo.name} (sandbox uid {uid})"
        )
        lines.append(
            f"account {wechat.id:<4} wechat {org.code:<11} {wechat.name} (sandbox app {app_id})"
        )
    return lines
