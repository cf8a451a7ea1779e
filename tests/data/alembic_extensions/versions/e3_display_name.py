"""e3_display_name: a citext column with a default, and a uuid_generate_v4() column."""

from alembic import op

revision = "e3_display_name"
down_revision = "e2_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE account ADD COLUMN display_name citext NOT NULL DEFAULT 'anon'")
    op.execute("ALTER TABLE account ADD COLUMN public_id uuid NOT NULL DEFAULT uuid_generate_v4()")


def downgrade() -> None:
    op.execute("ALTER TABLE account DROP COLUMN public_id")
    op.execute("ALTER TABLE account DROP COLUMN display_name")
