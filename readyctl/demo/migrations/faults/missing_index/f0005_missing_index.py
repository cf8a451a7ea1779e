"""Fault missing-index: drops the (user_id, status) index of the hot session query.

Revision ID: f0005_missing_index
Revises: 0004_billing
"""

from __future__ import annotations

from alembic import op

revision = "f0005_missing_index"
down_revision = "0004_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop ix_counseling_sessions_user_id_status."""
    op.drop_index("ix_counseling_sessions_user_id_status", table_name="counseling_sessions")


def downgrade() -> None:
    """Recreate the index."""
    op.create_index(
        "ix_counseling_sessions_user_id_status", "counseling_sessions", ["user_id", "status"]
    )
