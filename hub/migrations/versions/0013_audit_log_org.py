"""audit_log.org_id for every entry with an actor: the acting user's org where none was stored

Readers of the audit log see the entries of their subtree (docs/security.md, "Reach and
tenancy"). An entry belongs to the org of the object it is about; entries written without one
(matrix audits, calendar changes) belong to the org of the user who acted. This backfills those.
Entries with neither (system jobs) stay without an org: only a root's readers see them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE audit_log SET org_id = "
        "(SELECT users.org_id FROM users WHERE users.id = audit_log.actor_id) "
        "WHERE org_id IS NULL AND actor_id IS NOT NULL"
    )


def downgrade() -> None:
    """Nothing to undo: the filled-in orgs are true, and the column stays as it was."""
