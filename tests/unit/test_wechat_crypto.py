"""The callback transport's pure functions: round trips, and hostile input never escapes as
anything but CallbackError (the route turns that into 400/403, never 500)."""

from __future__ import annotations

import base64
import random

import pytest

from connectors.wechat import check_signature, sign
from connectors.wechat_crypto import (
    BadSignature,
    CallbackError,
    decrypt,
    encoding_aes_key_problem,
    encrypt,
    encrypted_envelope,
    msg_sign,
    open_callback,
)

KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
XML = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>".encode()


def test_round_trip_keeps_the_xml_and_the_appid() -> None:
    encrypted = encrypt(XML, encoding_aes_key=KEY, appid="wx1234")
    assert len(base64.b64decode(encrypted)) % 32 == 0  # padded to 32-byte blocks
    assert decrypt(encrypted, encoding_aes_key=KEY) == (XML, "wx1234")
    assert encrypt(XML, encoding_aes_key=KEY, appid="wx1234") != encrypted  # random prefix


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (KEY, True),
        (KEY[:-1], False),
        (KEY + "a", False),
        (KEY[:-1] + "=", False),
        (KEY[:-1] + "é", False),
        ("", False),
    ],
)
def test_encoding_aes_key_is_43_base64_characters(value: str, ok: bool) -> None:
    assert (encoding_aes_key_problem(value) is None) is ok


def test_random_bytes_never_raise_anything_but_callback_error() -> None:
    rng = random.Random(7)
    for size in (0, 1, 15, 16, 31, 32, 48, 64, 200):
        for _ in range(20):
            blob = rng.randbytes(size)
            for candidate in (base64.b64encode(blob).decode(), blob.decode("latin-1")):
                with pytest.raises(CallbackError):
                    decrypt(candidate, encoding_aes_key=KEY)


def test_signatures_with_any_characters_are_false_not_errors() -> None:
    good = sign("tok", "1", "2")
    assert check_signature("tok", "1", "2", good)
    assert check_signature("tok", "1", "2", good.upper() + " ")
    for hostile in ("é", "\x00", "\ud800", "a" * 10_000, ""):
        assert not check_signature("tok", "1", "2", hostile)
        assert not check_signature("tok", hostile, hostile, good)


def test_open_callback_in_each_mode() -> None:
    ts, nonce = "1700000000", "abc"
    plain = open_callback(
        XML, token="tok", timestamp=ts, nonce=nonce, signature=sign("tok", ts, nonce)
    )
    assert (plain.xml, plain.mode) == (XML, "plaintext")
    for compatible, mode in ((False, "safe"), (True, "compatible")):
        body, msg_signature = encrypted_envelope(
            XML,
            token="tok",
            encoding_aes_key=KEY,
            appid="wx1",
            to_user="gh_1",
            timestamp=ts,
            nonce=nonce,
            compatible=compatible,
        )
        opened = open_callback(
            body,
            token="tok",
            timestamp=ts,
            nonce=nonce,
            msg_signature=msg_signature,
            encrypt_type="aes",
            encoding_aes_key=KEY,
            appid="wx1",
        )
        assert (opened.xml, opened.mode) == (XML, mode)
        with pytest.raises(BadSignature):
            open_callback(
                body,
                token="tok",
                timestamp=ts,
                nonce=nonce,
                msg_signature=msg_signature,
                encrypt_type="aes",
                encoding_aes_key=KEY,
                appid="wx2",
            )
    encrypted = encrypt(XML, encoding_aes_key=KEY, appid="wx1")
    assert msg_sign("tok", ts, nonce, encrypted) != sign("tok", ts, nonce)
