"""WeChat callbacks in compatible and safe mode (安全模式), hostile signatures, and the callback
token / EncodingAESKey kept encrypted at rest.

The sandbox POSTs encrypted events and followers' messages to the hub served on loopback, as
the platform would after the account's console was switched to 兼容模式 or 安全模式.
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from connectors.sandbox.wechat import user_message_xml
from connectors.wechat_crypto import encrypt, encrypted_envelope, msg_sign
from hub.accounts import service as accounts
from hub.accounts.models import Account, AccountUpdate
from hub.db import engine_for
from hub.delivery.models import DeliveryStatus
from hub.inbox.models import Case
from tests.factories import credentials_key
from tests.integration.test_wechat_callbacks import (
    CALLBACK_TOKEN,
    Wechat,
    _delivery,
    _pending_delivery,
    _publish,
    _signed,
    wechat,
)

__all__ = ["wechat"]  # the fixture used by this module

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as the console makes


def _set_aes_key(w: Wechat, aes_key: str) -> None:
    """The operator adds the EncodingAESKey, leaving out the callback token (it is kept)."""
    with Session(engine_for(w.database_url)) as session:
        account = accounts.get(session=session, account_id=w.account_id)
        credentials = {"app_id": w.appid, "app_secret": w.secret, "encoding_aes_key": aes_key}
        accounts.update(
            session=session,
            account=account,
            data=AccountUpdate(credentials=credentials),
            credentials_key=credentials_key(),
        )
        session.commit()


def _callback_mode(w: Wechat, mode: str) -> None:
    url = w.hub.base_url + w.callback_url()
    w.sandbox.set_callback(w.appid, url, CALLBACK_TOKEN, mode=mode, encoding_aes_key=AES_KEY)  # type: ignore[arg-type]


def _cases(w: Wechat) -> list[Case]:
    with Session(engine_for(w.database_url)) as session:
        return list(session.exec(select(Case).where(Case.account_id == w.account_id)).all())


def _envelope(
    xml: bytes, *, appid: str, token: str = CALLBACK_TOKEN, key: str = AES_KEY
) -> tuple[dict[str, str], bytes]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
    body, signature = encrypted_envelope(
        xml,
        token=token,
        encoding_aes_key=key,
        appid=appid,
        to_user="gh_test",
        timestamp=timestamp,
        nonce=nonce,
    )
    query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes"}
    return query | {"msg_signature": signature}, body


def _message(openid: str = "oSafe1", content: str = "社保卡在哪里补办？") -> bytes:
    return user_message_xml(
        to_user="gh_test",
        openid=openid,
        create_time=int(time.time()),
        msg_type="text",
        content=content,
        msg_id=int(time.time() * 1000),
    )


# -- the platform's own deliveries ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["safe", "compatible"])
def test_encrypted_publish_events_complete_the_delivery(
    wechat: Wechat, tmp_path: Path, mode: str
) -> None:
    _set_aes_key(wechat, AES_KEY)
    delivery_id, _ = _publish(wechat, tmp_path)
    _callback_mode(wechat, mode)
    assert wechat.sandbox.wait_for_callbacks(wechat.appid, 1)
    [sent] = wechat.sandbox.state(wechat.appid)["callbacks"]
    assert (sent["status_code"], sent["body"]) == (200, "success")
    delivery, attempts = _delivery(wechat, delivery_id)
    [publication] = wechat.sandbox.state(wechat.appid)["publications"]
    assert delivery.status is DeliveryStatus.published
    assert delivery.remote_id == publication["article_id"]
    assert [a.action for a in attempts] == ["callback"]


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_followers_messages_become_cases_in_every_mode(wechat: Wechat, mode: str) -> None:
    if mode != "plaintext":  # plaintext mode: the account has no EncodingAESKey in the hub
        _set_aes_key(wechat, AES_KEY)
    _callback_mode(wechat, mode)
    sent = wechat.sandbox.send_user_message(wechat.appid, "oSafe1", "公积金怎么提取？")
    assert (sent["status_code"], sent["body"]) == (200, "success")
    [case] = _cases(wechat)
    assert case.text == "公积金怎么提取？"
    assert case.author_id == "oSafe1"


def test_compatible_mode_without_a_key_falls_back_to_the_plaintext_fields(
    wechat: Wechat,
) -> None:
    url = wechat.hub.base_url + wechat.callback_url()
    wechat.sandbox.set_callback(
        wechat.appid, url, CALLBACK_TOKEN, mode="compatible", encoding_aes_key=AES_KEY
    )
    sent = wechat.sandbox.send_user_message(wechat.appid, "oSafe2", "你好")
    assert (sent["status_code"], sent["body"]) == (200, "success")
    assert [c.text for c in _cases(wechat)] == ["你好"]


def test_safe_mode_without_a_key_is_refused_and_says_what_is_missing(wechat: Wechat) -> None:
    _callback_mode(wechat, "safe")
    sent = wechat.sandbox.send_user_message(wechat.appid, "oSafe3", "你好")
    assert sent["status_code"] == 400
    assert "EncodingAESKey" in sent["body"]
    assert _cases(wechat) == []


# -- forged and hostile requests -----------------------------------------------------------------


def test_a_plaintext_callback_on_an_account_with_a_key_is_refused(
    wechat: Wechat, client: TestClient
) -> None:
    """Plaintext mode signs timestamp and nonce only, not the body: one signature captured from
    a log or a proxy would let anyone post any message or publish event. An account configured
    with an EncodingAESKey accepts only signed <Encrypt> bodies, and the refusal says what to do
    if the console really was switched to plaintext mode."""
    _set_aes_key(wechat, AES_KEY)
    _callback_mode(wechat, "plaintext")
    sent = wechat.sandbox.send_user_message(wechat.appid, "oSafe4", "你好")
    assert sent["status_code"] == 403
    assert "remove the key" in sent["body"]
    assert _cases(wechat) == []


def test_forged_encrypted_messages_are_refused(wechat: Wechat, client: TestClient) -> None:
    _set_aes_key(wechat, AES_KEY)
    url = wechat.callback_url()

    query, body = _envelope(_message(), appid=wechat.appid, token="guessed-token")
    assert client.post(url, params=query, content=body).status_code == 403

    query, body = _envelope(_message(), appid="wx-someone-else")
    answer = client.post(url, params=query, content=body)
    assert answer.status_code == 403
    assert "AppID" in answer.json()["detail"]

    other_key = base64.b64encode(bytes(range(32))).decode()[:43]
    query, body = _envelope(_message(), appid=wechat.appid, key=other_key)
    assert client.post(url, params=query, content=body).status_code == 400

    # An attacker who knows the token but not the key: signed garbage instead of ciphertext.
    for garbage in ("not base64 at all!", base64.b64encode(b"x" * 31).decode(), "é"):
        timestamp, nonce = "1700000000", "n1"
        query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes"}
        query["msg_signature"] = msg_sign(CALLBACK_TOKEN, timestamp, nonce, garbage)
        body = f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>".encode()
        assert client.post(url, params=query, content=body).status_code == 400
    assert _cases(wechat) == []

    query, body = _envelope(_message(), appid=wechat.appid)
    assert client.post(url, params=query, content=body).text == "success"
    assert len(_cases(wechat)) == 1


@pytest.mark.parametrize("field", ["signature", "msg_signature", "timestamp", "nonce"])
def test_arbitrary_characters_in_the_query_are_403_never_500(
    wechat: Wechat, client: TestClient, field: str
) -> None:
    _set_aes_key(wechat, AES_KEY)
    url = wechat.callback_url()
    hostile = "%C3%A9%FF\u202e"  # (a NUL byte is refused before any route: 422, below)
    signed = _signed()
    # msg_signature only counts in safe/compatible mode (encrypt_type=aes)
    modes = ("&encrypt_type=aes",) if field == "msg_signature" else ("", "&encrypt_type=aes")
    for mode in modes:
        query = "&".join(f"{k}={v}" for k, v in signed.items() if k != field)
        query += f"&{field}={hostile}{mode}"
        if not mode:
            assert client.get(f"{url}?{query}&echostr=1").status_code == 403
        body = (
            _envelope(_message(), appid=wechat.appid)[1]
            if mode
            else _message(content="plaintext mode")
        )
        assert client.post(f"{url}?{query}", content=body).status_code == 403
    assert client.get(f"{url}?signature=%C3%A9&timestamp=1&nonce=2&echostr=1").status_code == 403
    assert client.get(f"{url}?signature=%00&timestamp=1&nonce=2&echostr=1").status_code == 422
    assert _cases(wechat) == []


def test_an_unknown_encrypt_type_is_400(wechat: Wechat, client: TestClient) -> None:
    answer = client.post(
        wechat.callback_url(), params={**_signed(), "encrypt_type": "rot13"}, content=_message()
    )
    assert answer.status_code == 400


# -- the secrets at rest -------------------------------------------------------------------------


def test_callback_token_and_key_are_encrypted_at_rest_and_survive_updates(
    wechat: Wechat, client: TestClient
) -> None:
    _set_aes_key(wechat, AES_KEY)
    with engine_for(wechat.database_url).connect() as conn:
        row = conn.execute(
            text("SELECT * FROM accounts WHERE id = :id"), {"id": wechat.account_id}
        ).one()
    stored = " ".join(str(value) for value in row)
    assert CALLBACK_TOKEN not in stored
    assert AES_KEY not in stored
    with Session(engine_for(wechat.database_url)) as session:
        account = session.get(Account, wechat.account_id)
        assert account is not None
        credentials = accounts.credentials_of(account, credentials_key())
    assert credentials["callback_token"] == CALLBACK_TOKEN  # kept by the update above
    assert credentials["encoding_aes_key"] == AES_KEY

    delivery_id = _pending_delivery(wechat, "2247999101:media-1")
    query, body = _envelope(_message(), appid=wechat.appid)
    assert client.post(wechat.callback_url(), params=query, content=body).text == "success"
    assert _delivery(wechat, delivery_id)[0].status is DeliveryStatus.pending


@pytest.mark.parametrize(
    ("value", "words"),
    [("abc", "43个字符"), ("é" * 43, "字母"), ("a" * 42 + "=", "字母")],
)
def test_a_malformed_encoding_aes_key_is_refused_in_words(
    wechat: Wechat,
    client: TestClient,
    auth: dict[str, dict[str, str]],
    value: str,
    words: str,
) -> None:
    answer = client.patch(
        f"/api/v1/accounts/{wechat.account_id}",
        headers=auth["admin"],
        json={
            "credentials": {
                "app_id": wechat.appid,
                "app_secret": wechat.secret,
                "encoding_aes_key": value,
            }
        },
    )
    assert answer.status_code == 422
    assert words in answer.text
    assert value not in answer.text or len(value) < 5


def test_the_sandbox_refuses_a_malformed_key(wechat: Wechat) -> None:
    with pytest.raises(ValueError):
        wechat.sandbox.set_callback(
            wechat.appid, "http://x", "t", mode="safe", encoding_aes_key="x"
        )
    assert encrypt(b"<xml/>", encoding_aes_key=AES_KEY, appid="wx")  # a valid key works


# -- a third party's encryption ------------------------------------------------------------------


def test_our_endpoint_opens_what_wechatpy_encrypts(wechat: Wechat, client: TestClient) -> None:
    """wechatpy's WeChatCrypto (the SDK many WeChat back ends use) makes the encrypted message."""
    from wechatpy.crypto import WeChatCrypto

    _set_aes_key(wechat, AES_KEY)
    crypto = WeChatCrypto(CALLBACK_TOKEN, AES_KEY, wechat.appid)
    nonce, timestamp = "1320562132", str(int(time.time()))
    envelope = crypto.encrypt_message(
        _message("oWechatpy", "wechatpy 加密的留言").decode(), nonce, timestamp
    )
    encrypted = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = envelope.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    body = (
        "<xml><ToUserName><![CDATA[gh_x]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()
    query = {"timestamp": timestamp, "nonce": nonce, "openid": "oWechatpy"}
    query |= {"encrypt_type": "aes", "msg_signature": signature}
    forged = client.post(
        wechat.callback_url(), params={**query, "msg_signature": "0" * 40}, content=body
    )
    assert forged.status_code == 403
    answer = client.post(wechat.callback_url(), params=query, content=body)
    assert (answer.status_code, answer.text) == (200, "success")
    assert [(c.author_id, c.text) for c in _cases(wechat)] == [("oWechatpy", "wechatpy 加密的留言")]
