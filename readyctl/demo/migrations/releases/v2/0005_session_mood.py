"""Release v2: counseling sessions get an optional mood (a nullable column, no rewrite).

Revision ID: 0005_session_mood
Revises: 0004_billing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_session_mood"
down_revision = "0004_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add counseling_sessions.mood (nullable: no table rewrite, no long lock)."""
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("counseling_sessions", sa.Column("mood", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop counseling_sessions.mood."""
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("counseling_sessions", "mood")
