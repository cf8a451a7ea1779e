"""Billing events received through the Stripe webhook.

Revision ID: 0004_billing
Revises: 0003_counseling
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_billing"
down_revision = "0003_counseling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create billing_events."""
    op.create_table(
        "billing_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.UniqueConstraint("event_id", name="uq_billing_events_event_id"),
    )
    op.create_index("ix_billing_events_received_at", "billing_events", ["received_at"])


def downgrade() -> None:
    """Drop billing_events."""
    op.drop_index("ix_billing_events_received_at", table_name="billing_events")
    op.drop_table("billing_events")
