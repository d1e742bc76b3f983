"""Weibo rip and configuration faults: approvals/live entries keep the acting person's IP;
accounts keep why they are flagged, when beat re-tests them, and the capabilities refused.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.sqltypes

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_ip", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("live_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_ip", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("attention_code", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("flagged_at", hub.sqltypes.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("next_check_at", hub.sqltypes.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("check_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("capabilities_off", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name in (
            "capabilities_off",
            "check_failures",
            "next_check_at",
            "flagged_at",
            "attention_code",
            "attention",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("live_entries", schema=None) as batch_op:
        batch_op.drop_column("client_ip")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_column("client_ip")
