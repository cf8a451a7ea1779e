"""Fault unsafe-migration: a blocking CREATE INDEX (no CONCURRENTLY) on an existing table.

Revision ID: f0005_unsafe
Revises: 0004_billing
"""

from __future__ import annotations

from alembic import op

revision = "f0005_unsafe"
down_revision = "0004_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Build an index while holding a lock that blocks writes to counseling_messages."""
    op.create_index("ix_counseling_messages_created_at", "counseling_messages", ["created_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_counseling_messages_created_at", table_name="counseling_messages")
