"""Release v2 under the failing-migration fault: it fails half way.

The first step builds an index CONCURRENTLY in an autocommit block (committed at once, as
such a step must be); the transactional part then adds the mood column twice, which fails:
the column and the revision bump roll back, the index stays. The schema then differs from
v1's although the revision is still v1's head, as after a real half-applied migration.

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

PARTIAL_INDEX = "ix_counseling_sessions_org_id_created_at"


def upgrade() -> None:
    """Build the index outside the transaction, then fail in the transactional part."""
    with op.get_context().autocommit_block():
        op.create_index(
            PARTIAL_INDEX,
            "counseling_sessions",
            ["org_id", "created_at"],
            postgresql_concurrently=True,
        )
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("counseling_sessions", sa.Column("mood", sa.Text(), nullable=True))
    # the bug: the column is added a second time (DuplicateColumn at run time)
    op.add_column("counseling_sessions", sa.Column("mood", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column and the index (never reached: the upgrade fails)."""
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("counseling_sessions", "mood")
    with op.get_context().autocommit_block():
        op.drop_index(
            PARTIAL_INDEX,
            table_name="counseling_sessions",
            postgresql_concurrently=True,
            if_exists=True,
        )
