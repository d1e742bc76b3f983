from __future__ import annotations

from cryptography.fernet import Fernet

from hub.security import (
    decrypt_credentials,
    encrypt_credentials,
    hash_password,
    issue_token,
    read_token,
    same_token,
    verify_password,
)


def test_passwords_are_argon2_and_verify() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")


def test_credentials_round_trip_and_are_not_readable_at_rest() -> None:
    key = Fernet.generate_key().decode()
    blob = encrypt_credentials(key, {"app_id": "wx123", "app_secret": "s3cr3t-value"})
    assert "s3cr3t-value" not in blob and "wx123" not in blob
    assert decrypt_credentials(key, blob) == {"app_id": "wx123", "app_secret": "s3cr3t-value"}


def test_tokens_carry_the_user_and_reject_tampering() -> None:
    token = issue_token("k", 7, 2)
    assert read_token("k", token, 60) == (7, 2)
    assert read_token("other-key", token, 60) is None
    assert read_token("k", token[:-2] + "xx", 60) is None


def test_token_comparison_takes_any_characters_without_raising() -> None:
    """A forged form field (CSRF token) or signature header may hold anything."""
    from connectors.webhook import sign, verify_signature

    token = "kq3V9Xz_token"
    assert same_token(token, token)
    for forged in ("é", "\x00", "\ud800", "令牌", token + "é"):
        assert not same_token(forged, token)
        assert not verify_signature("secret", "1700000000", b"{}", forged, now=1700000000)
    assert not same_token("", "")
    assert not same_token(None, token)
    good = sign("secret", "1700000000", b"{}")
    assert verify_signature("secret", "1700000000", b"{}", good, now=1700000000)
