"""WeChat callback transport: plaintext, compatible and safe mode (安全模式) messages.

The platform POSTs a follower's message or an event to the account's server URL in one of three
modes, chosen in the account's console (设置与开发 → 基本配置 → 消息加解密方式):

- plaintext (明文模式): the XML as is; ``signature = sha1(sorted(token, timestamp, nonce))``,
  which does not cover the body;
- compatible (兼容模式): ``?encrypt_type=aes&msg_signature=...``; the XML carries the plaintext
  fields *and* ``<Encrypt>``;
- safe (安全模式): ``?encrypt_type=aes&msg_signature=...``; the body is
  ``<xml><ToUserName/><Encrypt>...</Encrypt></xml>``.

``msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt))``. ``Encrypt`` is base64 of
AES-256-CBC with key = ``base64decode(EncodingAESKey + "=")`` and IV = ``key[:16]`` over
``16 random bytes + 4-byte big-endian length + XML + appid``, PKCS#7-padded to 32-byte blocks.

Everything here is pure and never raises on arbitrary input except with :class:`CallbackError`
(or :class:`BadSignature`, a subclass), so the hub's route can answer 403/400, never 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeElementTree

AES_KEY_CHARS = 43
BLOCK = 32  # WeChat pads to 32-byte blocks (not AES's 16)
_AES_KEY = re.compile(r"[A-Za-z0-9+/]{43}")


class CallbackError(ValueError):
    """The callback cannot be read: bad XML, bad ciphertext, wrong appid (HTTP 400/403)."""


class BadSignature(CallbackError):
    """``signature`` / ``msg_signature`` does not match the account's token (HTTP 403)."""


def encoding_aes_key_problem(value: str) -> str | None:
    """Why ``value`` is not a usable EncodingAESKey (in Chinese, for the editor), or ``None``."""
    if len(value) != AES_KEY_CHARS:
        return f"EncodingAESKey须为43个字符（当前{len(value)}个），请从公众号后台原样复制"
    if not _AES_KEY.fullmatch(value):
        return "EncodingAESKey只能包含英文字母、数字（以及+和/），请从公众号后台原样复制"
    return None


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of an EncodingAESKey (raises CallbackError if it is not one)."""
    problem = encoding_aes_key_problem(encoding_aes_key)
    if problem:
        raise CallbackError(problem)
    return base64.b64decode(encoding_aes_key + "=")


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _sha1_sorted(*parts: str) -> str:
    return hashlib.sha1(b"".join(sorted(_utf8(p) for p in parts))).hexdigest()


def sign(token: str, timestamp: str, nonce: str) -> str:
    """The plaintext-mode ``signature``."""
    return _sha1_sorted(token, timestamp, nonce)


def msg_sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The safe/compatible-mode ``msg_signature``."""
    return _sha1_sorted(token, timestamp, nonce, encrypt)


def same_digest(expected: str, given: str) -> bool:
    """Constant-time comparison of a hex digest with whatever the caller sent (any characters:
    compared as UTF-8 bytes, so nothing raises)."""
    return hmac.compare_digest(_utf8(expected), _utf8(given.strip().lower()))


def encrypt(xml: bytes, *, encoding_aes_key: str, appid: str, nonce: bytes | None = None) -> str:
    """``Encrypt`` for ``xml`` (what the platform sends; also the sandbox and tests)."""
    key = aes_key(encoding_aes_key)
    body = (nonce or os.urandom(16)) + struct.pack(">I", len(xml)) + xml + appid.encode()
    pad = BLOCK - len(body) % BLOCK
    body += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()


def decrypt(encrypted: str, *, encoding_aes_key: str) -> tuple[bytes, str]:
    """``(xml, appid)`` from an ``Encrypt`` value; CallbackError for anything malformed."""
    key = aes_key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise CallbackError("Encrypt is not base64") from None
    if not data or len(data) % 16:
        raise CallbackError("Encrypt is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise CallbackError("bad padding (wrong EncodingAESKey?)")
    content = plain[16:-pad]
    if len(content) < 4:
        raise CallbackError("decrypted message too short")
    (length,) = struct.unpack(">I", content[:4])
    if length > len(content) - 4:
        raise CallbackError("decrypted length out of range (wrong EncodingAESKey?)")
    xml, appid = content[4 : 4 + length], content[4 + length :]
    try:
        return xml, appid.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackError("decrypted appid is not text (wrong EncodingAESKey?)") from None


def encrypted_envelope(
    xml: bytes,
    *,
    token: str,
    encoding_aes_key: str,
    appid: str,
    to_user: str,
    timestamp: str,
    nonce: str,
    compatible: bool = False,
) -> tuple[bytes, str]:
    """``(body, msg_signature)`` as the platform POSTs ``xml`` in safe mode (``<ToUserName>`` and
    ``<Encrypt>``) or, ``compatible``, with the plaintext fields kept beside ``<Encrypt>``."""
    encrypted = encrypt(xml, encoding_aes_key=encoding_aes_key, appid=appid)
    element = f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
    if compatible:
        text = xml.decode("utf-8")
        cut = text.rindex("</xml>")
        body = text[:cut] + element + text[cut:]
    else:
        body = f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>{element}</xml>"
    return body.encode("utf-8"), msg_sign(token, timestamp, nonce, encrypted)


def encrypted_field(body: bytes) -> str:
    """The ``<Encrypt>`` text of a safe/compatible-mode body ("" if there is none)."""
    try:
        root = SafeElementTree.fromstring(body, forbid_dtd=True)
    except Exception:  # ParseError and defusedxml's DTDForbidden/EntitiesForbidden
        raise CallbackError("unreadable callback XML") from None
    return (root.findtext("Encrypt") or "").strip()


@dataclass(frozen=True)
class Opened:
    """A verified callback: the message XML and the mode it came in."""

    xml: bytes
    mode: str  # "plaintext" | "compatible" | "safe"


def open_callback(
    body: bytes,
    *,
    token: str,
    timestamp: str,
    nonce: str,
    signature: str = "",
    msg_signature: str = "",
    encrypt_type: str = "",
    encoding_aes_key: str = "",
    appid: str = "",
) -> Opened:
    """Verify a POSTed callback and return its message XML.

    ``encrypt_type=aes`` (safe or compatible mode): ``msg_signature`` over ``Encrypt`` must match,
    then the message is decrypted and its appid must be the account's. A compatible-mode body on
    an account without an EncodingAESKey falls back to its plaintext fields, checked like
    plaintext mode. Otherwise (plaintext mode) ``signature`` must match — and only on an account
    without an EncodingAESKey: plaintext mode's signature does not cover the body.
    """
    if not token:
        raise BadSignature("the account has no callback token")
    mode = encrypt_type.strip().lower()
    if mode not in ("", "raw", "aes"):
        raise CallbackError(f"unknown encrypt_type {encrypt_type!r}")
    if encoding_aes_key and mode != "aes":
        # Plaintext mode signs only timestamp and nonce, never the body: with one captured
        # signature anyone could post any event. An account that has an EncodingAESKey is in
        # safe or compatible mode, where WeChat always sends the signed <Encrypt>.
        raise BadSignature(
            "plaintext callback for an account in safe/compatible mode (it has an EncodingAESKey); "
            "if the console was switched to plaintext mode, remove the key from the account"
        )
    if mode == "aes":
        encrypted = encrypted_field(body)
        if not encrypted:
            raise CallbackError("encrypt_type=aes but no <Encrypt> in the body")
        if encoding_aes_key:
            if not msg_signature or not same_digest(
                msg_sign(token, timestamp, nonce, encrypted), msg_signature
            ):
                raise BadSignature("bad msg_signature")
            xml, sender = decrypt(encrypted, encoding_aes_key=encoding_aes_key)
            if not appid or not hmac.compare_digest(_utf8(sender), _utf8(appid)):
                raise BadSignature("the message was encrypted for another AppID")
            plaintext_fields = _has_plaintext_fields(body)
            return Opened(xml, "compatible" if plaintext_fields else "safe")
        if not _has_plaintext_fields(body):
            raise CallbackError(
                "safe-mode message but the account has no EncodingAESKey: add it to the account"
            )
    if not signature or not same_digest(sign(token, timestamp, nonce), signature):
        raise BadSignature("bad signature")
    return Opened(body, "compatible" if mode == "aes" else "plaintext")


def _has_plaintext_fields(body: bytes) -> bool:
    root = SafeElementTree.fromstring(body, forbid_dtd=True)  # already parsed once: readable
    return root.find("MsgType") is not None
