"""merge the domain branches (audit, live, hall, inbox) into one head

Four domains were migrated on branches that all start from the posts schema (0002/0003). With
four heads, `govhub db downgrade` (one step) was ambiguous; from this merge point it steps back
to the four branch heads, and `govhub db upgrade` returns here.

Revision ID: 0008
Revises: 0004, 0005, 0006, 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

revision = "0008"
down_revision = ("0004", "0005", "0006", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # a merge point: no schema change


def downgrade() -> None:
    pass
