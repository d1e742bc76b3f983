"""platform_tokens.token holds sealed (encrypted) tokens: text instead of 600 characters

A WeChat access token is up to 512 characters; sealed with Fernet it is about 800. The rows are a
cache, so the upgrade empties the table: no plaintext token stays behind, and each app fetches a
fresh one on its next call.

Revision ID: 0024
Revises: 0022
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM platform_tokens"))
    with op.batch_alter_table("platform_tokens") as batch:
        batch.alter_column("token", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM platform_tokens"))
    with op.batch_alter_table("platform_tokens") as batch:
        batch.alter_column("token", type_=sa.String(length=600), existing_nullable=False)
