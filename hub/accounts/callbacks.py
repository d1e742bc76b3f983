"""Platform callbacks: ``GET``/``POST /callbacks/{platform}/{account_id}``.

Any platform whose connector implements ``connectors.base.Callbacks`` is called back here
(WeChat: the server handshake, ``PUBLISHJOBFINISH``, ``MASSSENDJOBFINISH`` and followers'
messages, in plaintext, compatible or safe mode). The hub finds the account (404 when it does not
exist or is on another platform), bounds the body (64 KB), decrypts the account's credentials and
hands the request to the connector, which verifies and parses it (``CallbackRefused``: 403 for a
bad signature, 400 for an unreadable body). Then the hub applies the result: pending deliveries
are completed exactly as polling would (``complete_pending`` is idempotent, so a repeated or late
event and polling agree), followers' messages go to the inbox
(``hub.inbox.ingestion.receive_message``), and the connector's answer is sent (``success``; the
handshake's ``echostr``). These routes are called by the platform, not by people: no login, the
signature is the authentication.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from connectors.base import CallbackRefused, CallbackRequest, CallbackResult, Callbacks
from connectors.registry import UnknownPlatform
from hub.accounts.models import Account
from hub.accounts.service import credentials_of
from hub.config import Settings
from hub.delivery.service import complete_pending
from hub.errors import Forbidden, HubError, NotFound
from hub.inbox.ingestion import receive_message
from hub.security import CredentialsError
from hub.sqltypes import Id, utcnow
from hub.web.deps import SessionDep, SettingsDep

log = logging.getLogger(__name__)

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

MAX_EVENT_BYTES = 64 * 1024  # a PUBLISHJOBFINISH event is well under 2 KB


def _called_back(
    session: SessionDep, settings: Settings, platform: str, account_id: int
) -> tuple[Account, Callbacks]:
    from hub.delivery.channels import connector_for

    account = session.get(Account, account_id)
    if account is None or account.platform != platform:
        raise NotFound(
            "没有%(platform)s账号 %(account_id)s", platform=platform, account_id=account_id
        )
    try:
        connector = connector_for(platform, settings)
    except UnknownPlatform:
        raise NotFound(
            "没有%(platform)s账号 %(account_id)s", platform=platform, account_id=account_id
        ) from None
    if not isinstance(connector, Callbacks):
        raise NotFound("%(platform)s不向本系统回调", platform=platform)
    return account, connector


def _secrets(account: Account, settings: Settings) -> dict[str, str]:
    """The account's decrypted credentials (callback token, EncodingAESKey, AppID)."""
    try:
        return credentials_of(account, settings.credentials_key)
    except CredentialsError:
        log.error("callback, account %s: credentials cannot be decrypted", account.id)
        raise Forbidden(
            "该账号的凭据无法解密，无法校验签名：请核对 GOVHUB_CREDENTIALS_KEY"
        ) from None


def _handle(
    connector: Callbacks, account: Account, settings: Settings, request: CallbackRequest
) -> CallbackResult:
    try:
        return connector.handle_callback(request)
    except CallbackRefused as exc:
        if exc.status == 403:
            raise Forbidden(exc.message) from None
        log.warning("callback, account %s: %s", account.id, exc.message)
        raise HubError(exc.message) from None


@router.get("/{platform}/{account_id}", summary="Platform server handshake (WeChat: echostr)")
def handshake(
    platform: str, account_id: Id, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    account, connector = _called_back(session, settings, platform, account_id)
    query = dict(request.query_params)
    answer = _handle(
        connector,
        account,
        settings,
        CallbackRequest("GET", query, b"", _secrets(account, settings)),
    )
    return PlainTextResponse(answer.answer)


async def event_body(request: Request) -> bytes:
    """The request body, refused (400) beyond ``MAX_EVENT_BYTES`` without reading further."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise HubError(
            "回调内容过大（上限%(limit)s字节）",
            limit=MAX_EVENT_BYTES,
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise HubError(
                "回调内容过大（上限%(limit)s字节）",
                limit=MAX_EVENT_BYTES,
            )
    return bytes(body)


@router.post("/{platform}/{account_id}", summary="Platform event (WeChat: PUBLISHJOBFINISH ...)")
def event(
    platform: str,
    account_id: Id,
    request: Request,
    body: Annotated[bytes, Depends(event_body)],
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Complete pending deliveries with the platform's results, hand followers' messages to the
    inbox; answer what the connector says (always ``success`` once verified, for WeChat)."""
    account, connector = _called_back(session, settings, platform, account_id)
    query = dict(request.query_params)
    result = _handle(
        connector,
        account,
        settings,
        CallbackRequest("POST", query, body, _secrets(account, settings)),
    )
    for message in result.messages:
        receive_message(session=session, account=account, message=message)
    for done in result.completions:
        delivery_id = complete_pending(
            session=session,
            account_id=account_id,
            ref_prefix=done.ref_prefix,
            outcome=done.outcome,
            now=utcnow(),
        )
        if delivery_id is None:  # not ours (or already cleaned up): the platform must not retry
            log.info("callback, account %s: unknown job %s", account_id, done.ref_prefix)
    return PlainTextResponse(result.answer)
