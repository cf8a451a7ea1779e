"""Fault irreversible-migration: adds users.locale; the downgrade raises.

Revision ID: f0005_irreversible
Revises: 0004_billing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f0005_irreversible"
down_revision = "0004_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add a nullable users.locale column."""
    op.add_column("users", sa.Column("locale", sa.Text(), nullable=True))


def downgrade() -> None:
    """Refuse to revert (the fault)."""
    raise NotImplementedError("f0005_irreversible cannot be downgraded")
