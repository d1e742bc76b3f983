"""Passwords (Argon2), signed bearer tokens, credential encryption (Fernet), CSRF tokens."""

from __future__ import annotations

import hmac
import json
import secrets
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    result: str = _hasher.hash(password)
    return result


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so timing does not reveal usernames.
DUMMY_HASH = hash_password("not-a-real-password")


class CredentialsError(ValueError):
    """Stored credentials cannot be decrypted (wrong GOVHUB_CREDENTIALS_KEY)."""


def credential_keys(key: str) -> list[str]:
    """The keys in ``GOVHUB_CREDENTIALS_KEY``: one Fernet key, or a comma-separated list during a
    rotation (the first encrypts, every one decrypts)."""
    return [k.strip() for k in key.split(",") if k.strip()]


@lru_cache(maxsize=8)
def _fernet(key: str) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in credential_keys(key)])


def rotate_token(key: str, token: str) -> str:
    """``token`` re-encrypted under the first key of ``key`` (readable with any key in it)."""
    try:
        return _fernet(key).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsError(
            "a value cannot be decrypted with any key in GOVHUB_CREDENTIALS_KEY"
        ) from exc


def encrypt_credentials(key: str, credentials: dict[str, str]) -> str:
    if not credentials:
        return ""
    payload = json.dumps(credentials, ensure_ascii=False).encode()
    return _fernet(key).encrypt(payload).decode()


def seal_text(key: str, text: str) -> str:
    """``text`` encrypted under the first key of ``GOVHUB_CREDENTIALS_KEY`` (platform tokens)."""
    return _fernet(key).encrypt(text.encode()).decode()


def unseal_text(key: str, sealed: str) -> str:
    """The text :func:`seal_text` sealed; ``CredentialsError`` (a ``ValueError``) if no key reads it."""
    try:
        return _fernet(key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsError("a value cannot be decrypted with GOVHUB_CREDENTIALS_KEY") from exc


def decrypt_credentials(key: str, token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        data: dict[str, str] = json.loads(_fernet(key).decrypt(token.encode()))
    except InvalidToken as exc:
        raise CredentialsError(
            "credentials cannot be decrypted with GOVHUB_CREDENTIALS_KEY"
        ) from exc
    return data


def _serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt)


def issue_token(secret_key: str, user_id: int, token_version: int) -> str:
    return _serializer(secret_key, "api-token").dumps({"u": user_id, "v": token_version})


def read_token(secret_key: str, token: str, max_age_seconds: int) -> tuple[int, int] | None:
    """(user_id, token_version) of a valid token, or None."""
    try:
        data: Any = _serializer(secret_key, "api-token").loads(token, max_age=max_age_seconds)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    return int(data["u"]), int(data["v"])


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; any characters (a forged form field) give False,
    never an error (``compare_digest`` refuses non-ASCII ``str``, so bytes are compared)."""
    if not a or not b:
        return False
    return hmac.compare_digest(
        str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass")
    )
