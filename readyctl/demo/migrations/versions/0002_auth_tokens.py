"""Auth tokens: email verification, password reset, refresh families and refresh tokens.

Revision ID: 0002_auth_tokens
Revises: 0001_orgs_users
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_auth_tokens"
down_revision = "0001_orgs_users"
branch_labels = None
depends_on = None

NOW = sa.func.now()


def _user_fk(table: str) -> sa.Column:
    """Return a user_id column referencing users."""
    return sa.Column(
        "user_id",
        sa.Uuid(),
        sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id"),
        nullable=False,
    )


def _one_time_token_table(name: str) -> None:
    """Create a table of hashed one-time tokens."""
    op.create_table(
        name,
        sa.Column("token_hash", sa.Text(), primary_key=True),
        _user_fk(name),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(f"ix_{name}_user_id", name, ["user_id"])


def upgrade() -> None:
    """Create the token tables."""
    _one_time_token_table("email_verification_tokens")
    _one_time_token_table("password_reset_tokens")
    op.create_table(
        "refresh_families",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _user_fk("refresh_families"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_refresh_families_user_id", "refresh_families", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.Uuid(), primary_key=True),
        sa.Column(
            "family_id",
            sa.Uuid(),
            sa.ForeignKey(
                "refresh_families.id", ondelete="CASCADE", name="fk_refresh_tokens_family_id"
            ),
            nullable=False,
        ),
        _user_fk("refresh_tokens"),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])


def downgrade() -> None:
    """Drop the token tables."""
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_refresh_families_user_id", table_name="refresh_families")
    op.drop_table("refresh_families")
    for name in ("password_reset_tokens", "email_verification_tokens"):
        op.drop_index(f"ix_{name}_user_id", table_name=name)
        op.drop_table(name)
