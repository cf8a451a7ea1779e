"""Counseling sessions and messages, with the hot-query and time indexes.

Revision ID: 0003_counseling
Revises: 0002_auth_tokens
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_counseling"
down_revision = "0002_auth_tokens"
branch_labels = None
depends_on = None

NOW = sa.func.now()
UUID_DEFAULT = sa.text("gen_random_uuid()")


def upgrade() -> None:
    """Create counseling_sessions and counseling_messages."""
    op.create_table(
        "counseling_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=UUID_DEFAULT),
        sa.Column(
            "org_id",
            sa.Uuid(),
            sa.ForeignKey(
                "organizations.id", ondelete="CASCADE", name="fk_counseling_sessions_org_id"
            ),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_counseling_sessions_user_id"),
            nullable=False,
        ),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'closed', 'archived')", name="ck_counseling_sessions_status"
        ),
    )
    op.create_index(
        "ix_counseling_sessions_user_id_status", "counseling_sessions", ["user_id", "status"]
    )
    op.create_index(
        "ix_counseling_sessions_created_at", "counseling_sessions", [sa.text("created_at DESC")]
    )
    op.create_index("ix_counseling_sessions_org_id", "counseling_sessions", ["org_id"])
    op.create_table(
        "counseling_messages",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=UUID_DEFAULT),
        sa.Column(
            "session_id",
            sa.Uuid(),
            sa.ForeignKey(
                "counseling_sessions.id",
                ondelete="CASCADE",
                name="fk_counseling_messages_session_id",
            ),
            nullable=False,
        ),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("crisis", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("grief", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("role IN ('user', 'assistant')", name="ck_counseling_messages_role"),
    )
    op.create_index(
        "ix_counseling_messages_session_id_created_at",
        "counseling_messages",
        ["session_id", "created_at"],
    )


def downgrade() -> None:
    """Drop counseling_messages and counseling_sessions."""
    op.drop_index("ix_counseling_messages_session_id_created_at", table_name="counseling_messages")
    op.drop_table("counseling_messages")
    op.drop_index("ix_counseling_sessions_org_id", table_name="counseling_sessions")
    op.drop_index("ix_counseling_sessions_created_at", table_name="counseling_sessions")
    op.drop_index("ix_counseling_sessions_user_id_status", table_name="counseling_sessions")
    op.drop_table("counseling_sessions")
