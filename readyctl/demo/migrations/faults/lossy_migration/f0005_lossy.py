"""Fault lossy-migration: adds users.timezone; the downgrade only relaxes the column.

Revision ID: f0005_lossy
Revises: 0004_billing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f0005_lossy"
down_revision = "0004_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add users.timezone NOT NULL DEFAULT 'UTC'."""
    op.add_column("users", sa.Column("timezone", sa.Text(), nullable=False, server_default="UTC"))


def downgrade() -> None:
    """Succeed without dropping the column: it stays, nullable and without default (the fault)."""
    op.alter_column("users", "timezone", nullable=True, server_default=None)
