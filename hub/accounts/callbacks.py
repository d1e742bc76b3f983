"""Platform callbacks: WeChat's server handshake, its ``PUBLISHJOBFINISH`` event and followers'
messages (text, image, events: handed to the inbox, ``hub.inbox.service.wechat_message``).

``GET /callbacks/wechat/{account_id}`` answers the handshake WeChat makes when the callback URL is
configured (echo ``echostr`` if the signature checks with the account's ``callback_token``, kept
in its encrypted credentials). POSTs come in plaintext, compatible or safe mode
(``connectors.wechat_crypto.open_callback``: ``msg_signature``, AES, AppID check).
``POST /callbacks/wechat/{account_id}`` receives the result of a freepublish job and completes the
pending delivery exactly as polling would (``publish_outcome`` is shared, and completing is
idempotent). These routes are called by the platform, not by people: no login, the signature is
the authentication.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from connectors.base import Published
from connectors.errors import Rejected
from connectors.wechat import EventError, check_signature, parse_mass_event, parse_publish_event
from connectors.wechat_crypto import BadSignature, CallbackError, open_callback
from hub.accounts.models import Account
from hub.accounts.service import credentials_of
from hub.config import Settings
from hub.delivery.service import complete_pending
from hub.errors import Forbidden, HubError, NotFound
from hub.inbox.service import wechat_message as inbox_message
from hub.security import CredentialsError
from hub.sqltypes import Id, utcnow
from hub.web.deps import SessionDep, SettingsDep

log = logging.getLogger(__name__)

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

MAX_EVENT_BYTES = 64 * 1024  # a PUBLISHJOBFINISH event is well under 2 KB


def _wechat_account(session: SessionDep, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.platform != "wechat":
        raise NotFound(f"no WeChat account {account_id}")
    return account


def _secrets(account: Account, settings: Settings) -> dict[str, str]:
    """The account's decrypted credentials (callback token, EncodingAESKey, AppID)."""
    try:
        return credentials_of(account, settings.credentials_key)
    except CredentialsError:
        log.error("wechat callback, account %s: credentials cannot be decrypted", account.id)
        raise Forbidden(
            "该账号的凭据无法解密，无法校验签名：请核对 GOVHUB_CREDENTIALS_KEY"
        ) from None


def _check(secrets: dict[str, str], timestamp: str, nonce: str, signature: str) -> None:
    if not check_signature(secrets.get("callback_token", ""), timestamp, nonce, signature):
        raise Forbidden("bad signature: check the account's callback token (消息校验Token)")


def _open(body: bytes, secrets: dict[str, str], query: dict[str, str], account_id: int) -> bytes:
    """Verify the callback in its mode (plaintext, compatible or safe) -> the message XML."""
    try:
        opened = open_callback(
            body,
            token=secrets.get("callback_token", ""),
            encoding_aes_key=secrets.get("encoding_aes_key", ""),
            appid=secrets.get("app_id", ""),
            **query,
        )
    except BadSignature as exc:
        raise Forbidden(
            f"bad signature ({exc}): check the account's callback token (消息校验Token) "
            "and EncodingAESKey (消息加解密密钥)"
        ) from None
    except CallbackError as exc:
        log.warning("wechat callback, account %s: %s", account_id, exc)
        raise HubError(f"unreadable callback: {exc}") from None
    return opened.xml


@router.get("/wechat/{account_id}", summary="WeChat server handshake (echostr)")
def wechat_handshake(
    account_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    echostr: str = "",
) -> Response:
    account = _wechat_account(session, account_id)
    _check(_secrets(account, settings), timestamp, nonce, signature)
    return PlainTextResponse(echostr)


async def event_body(request: Request) -> bytes:
    """The request body, refused (400) beyond ``MAX_EVENT_BYTES`` without reading further."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise HubError(f"callback body too large (limit {MAX_EVENT_BYTES} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise HubError(f"callback body too large (limit {MAX_EVENT_BYTES} bytes)")
    return bytes(body)


def mass_send_event(*, session: SessionDep, account: Account, body: bytes) -> bool:
    """``MASSSENDJOBFINISH``: settle the pushed delivery as ``message/mass/get`` would.

    Returns False when the body is not that event. Idempotent with polling (an already settled
    delivery is left as it is); an unknown ``MsgID`` is logged and acknowledged.
    """
    event = parse_mass_event(body)
    if event is None:
        return False
    outcome: Published | str
    try:
        result = event.outcome()
    except Rejected as exc:  # "send fail", "err(num)": the reason in words
        outcome = exc.message
    else:
        if not isinstance(result, Published):
            return True
        outcome = result
    delivery_id = complete_pending(
        session=session,
        account_id=account.id,  # type: ignore[arg-type]
        ref_prefix=f"mass:{event.msg_id}",
        outcome=outcome,
        now=utcnow(),
    )
    if delivery_id is None:
        log.info("wechat callback, account %s: unknown mass MsgID %s", account.id, event.msg_id)
    return True


@router.post("/wechat/{account_id}", summary="WeChat PUBLISHJOBFINISH event")
def wechat_event(
    account_id: Id,
    body: Annotated[bytes, Depends(event_body)],
    session: SessionDep,
    settings: SettingsDep,
    signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    msg_signature: str = "",
    encrypt_type: str = "",
) -> Response:
    """Complete the pending delivery with the job's result; always ``success`` once verified.

    Plaintext, compatible and safe mode (``encrypt_type=aes``) are all accepted; the answer is
    always the plaintext ``success``, which the platform takes in every mode.
    """
    account = _wechat_account(session, account_id)
    query = {"timestamp": timestamp, "nonce": nonce, "signature": signature}
    query |= {"msg_signature": msg_signature, "encrypt_type": encrypt_type}
    body = _open(body, _secrets(account, settings), query, account_id)
    if mass_send_event(session=session, account=account, body=body):
        return PlainTextResponse("success")  # a push (群发) ended
    if inbox_message(session=session, account=account, body=body):
        return PlainTextResponse("success")  # a follower's message: now an inbox case
    try:
        event = parse_publish_event(body)
    except EventError as exc:
        raise HubError(f"not a PUBLISHJOBFINISH event: {exc}") from None
    outcome: Published | str
    try:
        result = event.outcome()
    except Rejected as exc:  # statuses 2-6: the reason in words, as polling would record it
        outcome = exc.message
    else:
        if not isinstance(result, Published):  # 1: still publishing, the final event follows
            return PlainTextResponse("success")
        outcome = result
    delivery_id = complete_pending(
        session=session,
        account_id=account_id,
        ref_prefix=event.publish_id,
        outcome=outcome,
        now=utcnow(),
    )
    if delivery_id is None:  # not ours (or already cleaned up): WeChat must not retry
        log.info("wechat callback, account %s: unknown publish_id %s", account_id, event.publish_id)
    return PlainTextResponse("success")
