"""`govhub secrets rotate`: every encrypted value moves to the new GOVHUB_CREDENTIALS_KEY."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.accounts.models import Account, AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.accounts.service import credentials_of
from hub.cli import app as cli
from hub.config import get_settings
from hub.db import engine_for
from hub.hall.models import Partner
from hub.keyrotation import encrypted_columns, rotate_all
from hub.security import CredentialsError, decrypt_credentials, encrypt_credentials
from hub.tables import metadata

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
SECRET = {"app_id": "wx-kaili", "app_secret": "s3cret-of-kaili"}


def _stored(database_url: str) -> tuple[str, str]:
    with Session(engine_for(database_url)) as session:
        account = session.exec(select(Account)).one()
        partner = session.exec(select(Partner)).one()
        return account.credentials_encrypted, partner.secret_encrypted


@pytest.fixture
def encrypted_with_old(guizhou: dict[str, str]) -> str:
    url = guizhou["GOVHUB_DATABASE_URL"]
    with Session(engine_for(url)) as session:
        create_account(
            session=session,
            data=AccountCreate(
                org_code="522601", platform=Platform("wechat"), name="凯里发布", credentials=SECRET
            ),
            credentials_key=OLD,
        )
        session.add(
            Partner(
                name="凯里新闻网",
                url="https://news.kaili.test/hook",
                secret_encrypted=encrypt_credentials(OLD, {"secret": "partner-secret"}),
            )
        )
        session.commit()
    return url


def _use_key(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", key)
    get_settings.cache_clear()


def test_every_encrypted_column_is_found_without_a_list() -> None:
    found = {f"{t.name}.{c.name}" for t, c in encrypted_columns(metadata)}
    assert {"accounts.credentials_encrypted", "partners.secret_encrypted"} <= found


def test_rotate_re_encrypts_everything_under_the_new_key(
    encrypted_with_old: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = encrypted_with_old
    _use_key(monkeypatch, f"{NEW},{OLD}")
    with Session(engine_for(url)) as session:  # during the rotation both keys read
        account = session.exec(select(Account)).one()
        assert credentials_of(account, get_settings().credentials_key) == SECRET

    result = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "accounts.credentials_encrypted: 1 value(s) re-encrypted" in result.output
    assert "partners.secret_encrypted: 1 value(s) re-encrypted" in result.output
    assert SECRET["app_secret"] not in result.output

    account_blob, partner_blob = _stored(url)
    assert decrypt_credentials(NEW, account_blob) == SECRET  # the old key is no longer needed
    assert decrypt_credentials(NEW, partner_blob) == {"secret": "partner-secret"}
    with pytest.raises(CredentialsError):
        decrypt_credentials(OLD, account_blob)


def test_a_value_no_key_opens_stops_the_rotation_and_changes_nothing(
    encrypted_with_old: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = encrypted_with_old
    stranger = Fernet.generate_key().decode()
    with Session(engine_for(url)) as session:
        partner = session.exec(select(Partner)).one()
        partner.secret_encrypted = encrypt_credentials(stranger, {"secret": "x"})
        session.add(partner)
        session.commit()
    before = _stored(url)
    _use_key(monkeypatch, f"{NEW},{OLD}")
    result = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert result.exit_code == 1
    assert "cannot decrypt: partners.secret_encrypted {'id': " in result.output
    assert "nothing was changed" in result.output
    assert _stored(url) == before
    assert decrypt_credentials(OLD, before[0]) == SECRET


def test_dry_run_checks_without_writing(
    encrypted_with_old: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _stored(encrypted_with_old)
    _use_key(monkeypatch, f"{NEW},{OLD}")
    result = CliRunner().invoke(cli, ["secrets", "rotate", "--dry-run"])
    assert result.exit_code == 0 and "2 value(s) can be re-encrypted" in result.output
    assert _stored(encrypted_with_old) == before


def test_a_column_marked_encrypted_in_another_table_is_rotated_too(
    hub_env: dict[str, str],
) -> None:
    """New encrypted columns (a Fernet column type, or info={"encrypted": True}) need no change
    to the rotation."""

    class FernetText(sa.types.TypeDecorator[str]):
        impl = sa.Text()
        cache_ok = True
        encrypted = True

    extra = sa.MetaData()
    table = sa.Table(
        "rotation_probe",
        extra,
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("token", sa.Text(), info={"encrypted": True}),
        sa.Column("aes_key", FernetText()),
        sa.Column("plain", sa.Text()),
    )
    engine = engine_for(hub_env["GOVHUB_DATABASE_URL"])
    extra.create_all(engine)
    try:
        old_token = Fernet(OLD.encode()).encrypt(b"callback-token").decode()
        old_aes = Fernet(OLD.encode()).encrypt(b"aes-key").decode()
        with Session(engine) as session:
            session.execute(
                table.insert().values(code="wx1", token=old_token, aes_key=old_aes, plain="p")
            )
            report = rotate_all(session=session, key=f"{NEW},{OLD}", metadata=extra)
            session.commit()
            row = session.execute(sa.select(table)).one()
        assert report.rotated == {"rotation_probe.token": 1, "rotation_probe.aes_key": 1}
        assert Fernet(NEW.encode()).decrypt(row.token.encode()) == b"callback-token"
        assert Fernet(NEW.encode()).decrypt(row.aes_key.encode()) == b"aes-key"
        assert row.plain == "p"
    finally:
        extra.drop_all(engine)


def test_the_credentials_key_setting_takes_a_list_and_checks_every_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from hub.config import DEV_CREDENTIALS_KEY, Settings

    monkeypatch.setenv("GOVHUB_ENV", "production")
    monkeypatch.setenv("GOVHUB_SECRET_KEY", "a-real-secret-key-for-production-use")
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", f"{NEW},{DEV_CREDENTIALS_KEY}")
    assert Settings().credentials_key.startswith(NEW)  # rotating away from the dev key: fine
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", f"{DEV_CREDENTIALS_KEY},{NEW}")
    with pytest.raises(ValidationError, match="GOVHUB_CREDENTIALS_KEY"):
        Settings()
    monkeypatch.setenv("GOVHUB_CREDENTIALS_KEY", f"{NEW},not-a-key")
    with pytest.raises(ValidationError, match="Fernet key"):
        Settings()
