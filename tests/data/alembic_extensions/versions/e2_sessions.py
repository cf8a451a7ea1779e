"""e2_sessions: a table keyed by gen_random_uuid() with a citext token."""

from alembic import op

revision = "e2_sessions"
down_revision = "e1_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE session ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " account_id uuid NOT NULL REFERENCES account (id) ON DELETE CASCADE,"
        " token citext NOT NULL DEFAULT encode(gen_random_bytes(16), 'hex'),"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute("CREATE INDEX session_account_idx ON session (account_id)")


def downgrade() -> None:
    op.execute("DROP TABLE session")
