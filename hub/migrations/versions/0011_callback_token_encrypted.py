"""WeChat callback tokens move into the encrypted credentials: accounts.callback_token dropped

The plaintext column ``accounts.callback_token`` goes; its value is written into the account's
Fernet-encrypted credentials (``credentials_encrypted``, key ``callback_token``), where the
EncodingAESKey of safe-mode callbacks lives too. Needs ``GOVHUB_CREDENTIALS_KEY`` (the key the
credentials are encrypted with); refuses to run, changing nothing, if it cannot decrypt them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

accounts = sa.table(
    "accounts",
    sa.column("id", sa.Integer()),
    sa.column("credentials_encrypted", sa.Text()),
    sa.column("callback_token", sa.String()),
)


def _key() -> str:
    from hub.config import get_settings

    return get_settings().credentials_key


def _credentials(key: str, account_id: int, encrypted: str) -> dict[str, str]:
    from hub.security import CredentialsError, decrypt_credentials

    try:
        return decrypt_credentials(key, encrypted or "")
    except CredentialsError:
        raise RuntimeError(
            f"migration 0011: the credentials of account {account_id} cannot be decrypted with "
            "GOVHUB_CREDENTIALS_KEY; set the key the hub runs with and migrate again"
        ) from None


def upgrade() -> None:
    from hub.security import encrypt_credentials

    conn = op.get_bind()
    rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.credentials_encrypted, accounts.c.callback_token).where(
            accounts.c.callback_token != ""
        )
    ).all()
    if rows:
        key = _key()
        updates = []
        for account_id, encrypted, token in rows:
            credentials = _credentials(key, account_id, encrypted)
            credentials["callback_token"] = token  # the column was authoritative
            updates.append((account_id, encrypt_credentials(key, credentials)))
        for account_id, encrypted in updates:
            conn.execute(
                sa.update(accounts)
                .where(accounts.c.id == account_id)
                .values(credentials_encrypted=encrypted)
            )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("callback_token")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "callback_token",
                sqlmodel.sql.sqltypes.AutoString(length=100),
                nullable=False,
                server_default="",
            )
        )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.credentials_encrypted).where(
            accounts.c.credentials_encrypted != ""
        )
    ).all()
    if rows:
        key = _key()
        for account_id, encrypted in rows:
            token = _credentials(key, account_id, encrypted).get("callback_token", "")
            if token:
                conn.execute(
                    sa.update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(callback_token=token[:100])
                )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column("callback_token", server_default=None)
